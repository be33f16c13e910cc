"""Reversible compression's tool: offering ``tokenmw_expand``, reading its calls, answering them.

``Compress(reversible=True)`` offers the tool when the request it sends carries at least one
``ref=`` marker, and only when adding a tool cannot change what the caller asked for (``blocked``).
When the model calls it, the conversation *as the model sees it* grows by the model's call and
tokenmw's answer (the original text), and is sent again; the caller's own request and history are
never touched, so the caller's next turn is the conversation without the detour.

Mixed turns (the model calls the caller's tools and ``tokenmw_expand`` in one response): the expand
calls are answered and the model is asked again with the caller's calls left out of its turn
(they were never run, so nothing is lost); with the original in view it calls them again if it
still needs them, and the caller gets that answer. So the caller never has a call it cannot answer
validly, and never sees ``tokenmw_expand``.

Everything here reads the response through ``get_field`` (openai or LiteLLM objects, or dicts) and
writes plain dicts into the request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tokenmw._compress import refs
from tokenmw._core.stream_run import UPSTREAM_END, read_upstream
from tokenmw._wire.fields import get_field as get
from tokenmw._wire.usage import FINAL_EVENTS

if TYPE_CHECKING:
    from tokenmw._core.call import Call

__all__ = [
    "TOOL_NAME",
    "ExpandCall",
    "Peeked",
    "answer",
    "blocked",
    "expand_calls",
    "follow_up",
    "offer",
    "peek",
    "withdraw",
]

TOOL_NAME = "tokenmw_expand"

DESCRIPTION = (
    "Shortened text here is marked [… ref=<id>]. If your answer needs the exact text a marker "
    "replaced (a value, a line, a row), call this with its ref to read the original."
)
_PARAMETERS = {
    "type": "object",
    "properties": {"ref": {"type": "string", "description": "the id after ref="}},
    "required": ["ref"],
    "additionalProperties": False,
}
CHAT_TOOL = {
    "type": "function",
    "function": {"name": TOOL_NAME, "description": DESCRIPTION, "parameters": _PARAMETERS},
}
RESPONSES_TOOL = {
    "type": "function",
    "name": TOOL_NAME,
    "description": DESCRIPTION,
    "parameters": _PARAMETERS,
    "strict": True,
}

LIMIT_REACHED = (
    "Not expanded: the limit of expansions for this request is reached. Answer from what is shown."
)


def _unknown(ref: str) -> str:
    return (
        f"The original text for ref={ref} is no longer available (it was not kept, or the process "
        "restarted). Answer from what is shown, and say so if that is not enough."
    )


def blocked(call: Call) -> str | None:
    """Why the expand tool must not be offered on this request, or ``None`` when it can be.

    A caller's ``tool_choice`` that forbids or forces tools, a tool of the caller's with the same
    name, ``n`` > 1 (several answers cannot share one detour), the legacy ``functions`` parameter,
    and structured output (``json_schema``): the model would be free to call a tool where the caller
    expects a document, and some providers refuse tools next to a strict schema.
    """
    request = call.request
    choice = request.get("tool_choice")
    if choice == "none":
        return "tool_choice none"
    if isinstance(choice, dict) or (choice is not None and not isinstance(choice, str)):
        return "forced tool"
    if request.get("functions") is not None or request.get("function_call") is not None:
        return "legacy functions"
    n = request.get("n")
    if isinstance(n, int) and n > 1:
        return "n > 1"
    tools = request.get("tools")
    if tools is not None and not isinstance(tools, list):
        return "tools not a list"
    for tool in tools or ():
        if _tool_name(call, tool) == TOOL_NAME:
            return "caller tool named tokenmw_expand"
    if call.operation == "chat":
        fmt = request.get("response_format")
        kind = get(fmt, "type") if fmt is not None else None
    else:
        text = request.get("text")
        fmt = get(text, "format") if text is not None else None
        kind = get(fmt, "type") if fmt is not None else None
    if kind == "json_schema":
        return "json_schema response format"
    if call.operation == "responses" and not isinstance(request.get("input"), str | list):
        return "no input list"
    return None


def _tool_name(call: Call, tool: Any) -> Any:
    spec = get(tool, "function") if call.operation == "chat" else tool
    return get(spec, "name") if spec is not None else None


def offer(call: Call) -> None:
    """Add the tool to the request (a new list: the caller's list is never changed)."""
    tool = CHAT_TOOL if call.operation == "chat" else RESPONSES_TOOL
    call.request["tools"] = [*(call.request.get("tools") or ()), tool]


def withdraw(call: Call) -> None:
    """Stop offering the tool (the expansion budget is spent): the follow-up's answer cannot be
    another expand call. Parameters that need tools go when no tool is left."""
    tools = [t for t in call.request.get("tools") or () if _tool_name(call, t) != TOOL_NAME]
    if tools:
        call.request["tools"] = tools
        return
    for key in ("tools", "tool_choice", "parallel_tool_calls"):
        call.request.pop(key, None)


@dataclass(frozen=True, slots=True)
class ExpandCall:
    """One call of the tool in a response."""

    call_id: str
    arguments: str
    ref: str | None
    """``None`` when the arguments are not ``{"ref": "<string>"}``."""


def expand_calls(call: Call, response: Any) -> list[ExpandCall]:
    """The ``tokenmw_expand`` calls in a complete response (first choice; Responses output)."""
    found: list[ExpandCall] = []
    if call.operation == "chat":
        choices = get(response, "choices")
        message = get(choices[0], "message") if choices else None
        for tool_call in get(message, "tool_calls") or () if message is not None else ():
            function = get(tool_call, "function")
            if function is not None and get(function, "name") == TOOL_NAME:
                found.append(_read(get(tool_call, "id"), get(function, "arguments")))
        return found
    for item in get(response, "output") or ():
        if get(item, "type") == "function_call" and get(item, "name") == TOOL_NAME:
            found.append(_read(get(item, "call_id"), get(item, "arguments")))
    return found


def _read(call_id: Any, arguments: Any) -> ExpandCall:
    ref = None
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            parsed = None
        value = parsed.get("ref") if isinstance(parsed, dict) else None
        ref = value.strip() if isinstance(value, str) and value.strip() else None
        if ref is not None and ref.startswith("ref="):
            ref = ref[4:]
    return ExpandCall(str(call_id or ""), arguments if isinstance(arguments, str) else "{}", ref)


def answer(expand: ExpandCall, allowed: bool) -> tuple[str, str | None]:
    """The tool result for one call, and the original restored (``None`` when none was)."""
    if not allowed:
        return LIMIT_REACHED, None
    if expand.ref is None:
        return 'Invalid arguments: call tokenmw_expand with {"ref": "<the id after ref= in a marker>"}.', None
    original = refs.get(expand.ref)
    if original is None:
        return _unknown(expand.ref), None
    return original, original


def follow_up(call: Call, response: Any, expands: list[ExpandCall], results: list[str]) -> None:
    """Append the model's expand calls and their results to the request, as the model sees it.

    Only the expand calls of the model's turn go in (mixed turns: see the module docstring); the
    text it wrote beside them stays, so its train of thought is kept.
    """
    request = call.request
    if call.operation == "chat":
        choices = get(response, "choices")
        message = get(choices[0], "message") if choices else None
        content = get(message, "content") if message is not None else None
        turn: dict[str, Any] = {
            "role": "assistant",
            "content": content if isinstance(content, str) and content else None,
            "tool_calls": [
                {
                    "id": e.call_id,
                    "type": "function",
                    "function": {"name": TOOL_NAME, "arguments": e.arguments},
                }
                for e in expands
            ],
        }
        replies = [
            {"role": "tool", "tool_call_id": e.call_id, "content": text}
            for e, text in zip(expands, results, strict=True)
        ]
        request["messages"] = [*request["messages"], turn, *replies]
        return
    items = request.get("input")
    base = [{"role": "user", "content": items}] if isinstance(items, str) else list(items or ())
    calls = [
        {"type": "function_call", "call_id": e.call_id, "name": TOOL_NAME, "arguments": e.arguments}
        for e in expands
    ]
    outputs = [
        {"type": "function_call_output", "call_id": e.call_id, "output": text}
        for e, text in zip(expands, results, strict=True)
    ]
    request["input"] = [*base, *calls, *outputs]


# -- streams -------------------------------------------------------------------------------------
#
# A stream is read ahead only as far as it takes to see how it begins. Text first (chat content, a
# Responses ``message`` item): it is the caller's, and the chunks read so far are replayed to the
# caller ahead of the rest. Tool calls first: they are short, so the stream is read to its end and
# it is the caller's unless it calls ``tokenmw_expand``. Known limit: a model that writes text
# first and calls ``tokenmw_expand`` after it in the same stream hands the caller that call.


@dataclass(slots=True)
class Peeked:
    """How a stream began: the chunks read, and, when it is an expand turn, the model's turn as a
    complete response (what ``expand_calls`` and ``follow_up`` read)."""

    chunks: list[Any]
    expand: Any = None


async def peek(call: Call, stream: Any) -> Peeked:
    """Read ``stream`` until it is clear whether the model called ``tokenmw_expand``."""
    chunks: list[Any] = []
    tools = False
    final: Any = None
    while True:
        chunk = await read_upstream(stream)
        if chunk is UPSTREAM_END:
            break
        chunks.append(chunk)
        if call.operation == "chat":
            choices = get(chunk, "choices")
            delta = get(choices[0], "delta") if choices else None
            if delta is None:
                continue
            if get(delta, "tool_calls"):
                tools = True
            elif get(delta, "content") and not tools:
                return Peeked(chunks)  # text first: the caller's stream
            continue
        kind = get(chunk, "type")
        if kind == "response.output_item.added":
            item_kind = get(get(chunk, "item"), "type")
            if item_kind == "function_call":
                tools = True
            elif item_kind != "reasoning" and not tools:
                return Peeked(chunks)
        elif kind in FINAL_EVENTS:
            final = get(chunk, "response")
    if not tools:
        return Peeked(chunks)
    turn = _chat_turn(chunks) if call.operation == "chat" else final
    return Peeked(chunks, turn if turn is not None and expand_calls(call, turn) else None)


def _chat_turn(chunks: list[Any]) -> dict[str, Any]:
    """The assistant turn a chat stream's chunks spell (first choice), as a complete response."""
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        choices = get(chunk, "choices")
        delta = get(choices[0], "delta") if choices else None
        if delta is None:
            continue
        text = get(delta, "content")
        if isinstance(text, str):
            content.append(text)
        for piece in get(delta, "tool_calls") or ():
            index = get(piece, "index") or 0
            entry = calls.setdefault(
                index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            if get(piece, "id"):
                entry["id"] = get(piece, "id")
            function = get(piece, "function")
            for key in ("name", "arguments"):
                value = get(function, key) if function is not None else None
                if isinstance(value, str):
                    entry["function"][key] += value
    message = {
        "role": "assistant",
        "content": "".join(content) or None,
        "tool_calls": [calls[i] for i in sorted(calls)],
    }
    return {"choices": [{"index": 0, "message": message}]}
