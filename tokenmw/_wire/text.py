"""The text a model generated, read from a complete response or a stream chunk of either API.

One walker for each shape, so counting output, capturing content for spans and sizing a reply
agree on what "the text" is. Each piece comes with its choice index and its kind: ``"text"`` (the
answer), ``"refusal"``, or ``"tool"`` (a tool call's name, arguments or input); callers keep the
kinds they need.
"""

from __future__ import annotations

from typing import Any, Literal

from tokenmw._wire.fields import get_field

__all__ = ["Piece", "chunk_pieces", "reply_pieces"]

Kind = Literal["text", "refusal", "tool"]
Piece = tuple[int, Kind, str]
"""(choice index, kind, text)."""

_EVENT_KINDS: dict[str, Kind] = {
    "response.output_text.delta": "text",
    "response.refusal.delta": "refusal",
    "response.function_call_arguments.delta": "tool",
    "response.custom_tool_call_input.delta": "tool",
}


def reply_pieces(response: Any) -> list[Piece] | None:
    """The generated pieces of a complete chat or Responses response; ``None`` for another shape."""
    choices = get_field(response, "choices")
    if isinstance(choices, list):
        pieces: list[Piece] = []
        for position, choice in enumerate(choices):
            index = get_field(choice, "index")
            index = index if isinstance(index, int) else position
            message = get_field(choice, "message")
            if message is None:
                continue
            _add(pieces, index, "text", get_field(message, "content"))
            _add(pieces, index, "refusal", get_field(message, "refusal"))
            _add_tool_calls(pieces, index, get_field(message, "tool_calls"))
        return pieces
    output = get_field(response, "output")
    if isinstance(output, list):
        pieces = []
        for item in output:
            kind = get_field(item, "type")
            if kind == "message":
                for part in get_field(item, "content") or ():
                    _add(pieces, 0, "text", get_field(part, "text"))
                    _add(pieces, 0, "refusal", get_field(part, "refusal"))
            elif kind in ("function_call", "custom_tool_call"):
                for key in ("name", "arguments", "input"):
                    _add(pieces, 0, "tool", get_field(item, key))
        return pieces
    return None


def chunk_pieces(chunk: Any) -> list[Piece]:
    """The generated pieces one stream chunk (chat) or event (Responses) carries."""
    kind = get_field(chunk, "type")
    if isinstance(kind, str):
        event_kind = _EVENT_KINDS.get(kind)
        if event_kind is not None:
            pieces: list[Piece] = []
            _add(pieces, 0, event_kind, get_field(chunk, "delta"))
            return pieces
        if kind.startswith("response."):
            return []
    choices = get_field(chunk, "choices")
    if not choices:
        return []
    pieces = []
    for position, choice in enumerate(choices):
        delta = get_field(choice, "delta")
        if delta is None:
            continue
        index = get_field(choice, "index")
        index = index if isinstance(index, int) else position
        _add(pieces, index, "text", get_field(delta, "content"))
        _add_tool_calls(pieces, index, get_field(delta, "tool_calls"))
    return pieces


def _add(pieces: list[Piece], index: int, kind: Kind, value: Any) -> None:
    if isinstance(value, str) and value:
        pieces.append((index, kind, value))


def _add_tool_calls(pieces: list[Piece], index: int, tool_calls: Any) -> None:
    """A message's tool calls, or a delta's fragments of them: each function's name and arguments."""
    for tool_call in tool_calls or ():
        fn = get_field(tool_call, "function")
        if fn is not None:
            _add(pieces, index, "tool", get_field(fn, "name"))
            _add(pieces, index, "tool", get_field(fn, "arguments"))
