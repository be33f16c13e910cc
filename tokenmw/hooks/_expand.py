"""Reversible compression's side of the conversation: the ``tokenmw_expand`` tool, and the loop that
answers it so the caller never sees it.

``Compress(level="aggressive", reversible=True)`` marks every elision ``[… ref=<id>]`` and, through
``offer``, adds one function tool. When the model calls it, ``expand`` answers each call with the
original (or, for a ref the store no longer holds, says so), sends the follow-up request (the
request as sent, plus the model's expand call and tokenmw's tool result) and goes on until the
model answers without expanding. The follow-up history lives only in ``call.request`` for the
duration of the call: the caller's own messages are never changed, so its next turn is the
conversation it saw (its request, the final answer).

Mixed turns (the model calls the caller's tools and ``tokenmw_expand`` in one response): the
expand calls are answered first and the model asked again, with the caller's calls left out of the
follow-up (an assistant message's tool calls must all be answered, and only the caller can answer
its own). The model, now with the original, calls the caller's tools again with full knowledge.
Once ``max_expansions`` is reached, the tool is withdrawn from the follow-up, so the model must
answer; expand calls a model makes anyway are removed from what the caller gets.

Streams: the first events decide (a text delta or a call of a caller tool: the stream is the
caller's, with what was read put back in front; an expand call: the stream is read to its end,
its usage kept, and the follow-up stream takes its place).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tokenmw._compress import originals
from tokenmw._tokens.count_cache import cache_for
from tokenmw._tokens.encodings import encoding_for_async
from tokenmw._wire.fields import get_field
from tokenmw.hooks._shapes import replace
from tokenmw.telemetry._spans import record_expansion

if TYPE_CHECKING:
    from tokenmw._core.call import Call
    from tokenmw._core.hook import CallNext

__all__ = ["EXPAND_TOOL", "Expansion", "expand", "off_reason", "offer"]

EXPAND_TOOL = "tokenmw_expand"
DESCRIPTION = (
    "Parts of this conversation were shortened to save tokens; each cut is marked in square "
    "brackets ending with ref=<id>, e.g. [… 310 lines omitted … ref=3fa9c0e1b2]. Call this tool "
    "with that id to get the omitted original text back, when answering needs something the "
    "shown text does not contain (an exact value, a row, a log line). Do not call it when the "
    "shown text is enough."
)
_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"ref": {"type": "string", "description": "The id after ref= in a cut marker."}},
    "required": ["ref"],
    "additionalProperties": False,
}
NOT_AVAILABLE = (
    "The original text of ref {ref} is no longer available (it was not kept, or the process "
    "restarted). Answer from the text that is shown."
)
LIMIT_REACHED = (
    "Not expanded: the limit of expansions for this request was reached. Answer from the text that is shown."
)


@dataclass(slots=True)
class Expansion:
    """A call whose request offers ``tokenmw_expand`` (kept in ``call.state``)."""

    max_expansions: int
    added_tools: bool
    """Whether ``tools`` was added (the caller sent none): withdrawing the tool removes it."""
    done: int = 0
    refs: list[str] = field(default_factory=list)


def off_reason(call: Call) -> str | None:
    """Why the expand tool cannot be offered on this request, or ``None`` when it can."""
    request = call.request
    choice = request.get("tool_choice")
    if choice == "none":
        return "tool_choice none"
    if isinstance(choice, dict) or (choice is not None and not isinstance(choice, str)):
        return "forced tool"  # the model must call the caller's tool: an expand call cannot come
    tools = request.get("tools")
    if tools is not None and not isinstance(tools, list):
        return "tools not a list"
    for tool in tools or ():
        if _tool_name(call, tool) == EXPAND_TOOL:
            return "caller tool named tokenmw_expand"
    if call.operation == "chat":
        fmt = request.get("response_format")
    else:
        text = request.get("text")
        fmt = get_field(text, "format") if text is not None else None
    if get_field(fmt, "type") == "json_schema":
        # Structured outputs: the answer must be the schema's document, and the SDK's parse()
        # accepts only strict tools; a tool of tokenmw's would change what the caller asked for.
        return "json_schema response format"
    return None


def offer(call: Call, max_expansions: int) -> None:
    """Add the expand tool to the request."""
    request = call.request
    tools = request.get("tools")
    if call.operation == "chat":
        spec: dict[str, Any] = {
            "type": "function",
            "function": {"name": EXPAND_TOOL, "description": DESCRIPTION, "parameters": _PARAMETERS},
        }
    else:
        spec = {
            "type": "function",
            "name": EXPAND_TOOL,
            "description": DESCRIPTION,
            "parameters": _PARAMETERS,
        }
    request["tools"] = [*(tools or ()), spec]
    call.state[_STATE] = Expansion(max_expansions, added_tools=tools is None)


_STATE = "compress.expand"


def _tool_name(call: Call, tool: Any) -> Any:
    if call.operation == "chat":
        return get_field(get_field(tool, "function"), "name")
    return get_field(tool, "name")


def _withdraw(call: Call, state: Expansion) -> None:
    """Take the expand tool out of the request (the limit is reached: the model must answer)."""
    request = call.request
    kept = [t for t in request.get("tools") or () if _tool_name(call, t) != EXPAND_TOOL]
    if kept or not state.added_tools:
        request["tools"] = kept
    else:
        request.pop("tools", None)


# -- reading a response -------------------------------------------------------------------------------


def _expand_calls(call: Call, response: Any) -> tuple[list[tuple[str, str]], bool]:
    """``([(call_id, arguments)], other_calls)``: the expand calls of ``response`` and whether it
    also calls the caller's tools."""
    found: list[tuple[str, str]] = []
    others = False
    for name, call_id, arguments in _tool_calls(call, response):
        if name == EXPAND_TOOL:
            found.append((call_id, arguments))
        else:
            others = True
    return found, others


def _tool_calls(call: Call, response: Any) -> list[tuple[Any, Any, Any]]:
    if call.operation == "chat":
        choices = get_field(response, "choices") or ()
        message = get_field(choices[0], "message") if choices else None
        calls = get_field(message, "tool_calls") or ()
        return [
            (get_field(get_field(c, "function"), "name"), get_field(c, "id"), _args(c, True)) for c in calls
        ]
    items = get_field(response, "output") or ()
    return [
        (get_field(i, "name"), get_field(i, "call_id"), _args(i, False))
        for i in items
        if get_field(i, "type") == "function_call"
    ]


def _args(tool_call: Any, chat: bool) -> str:
    holder = get_field(tool_call, "function") if chat else tool_call
    arguments = get_field(holder, "arguments")
    return arguments if isinstance(arguments, str) else ""


def _ref_of(arguments: str) -> str | None:
    try:
        ref = json.loads(arguments or "{}").get("ref")
    except (ValueError, AttributeError):
        return None
    return ref if isinstance(ref, str) else None


def _strip(call: Call, response: Any) -> Any:
    """``response`` without its expand calls (what the caller may see)."""
    if call.operation == "chat":
        choices = list(get_field(response, "choices") or ())
        if not choices:
            return response
        message = get_field(choices[0], "message")
        calls = get_field(message, "tool_calls") or ()
        kept = [c for c in calls if get_field(get_field(c, "function"), "name") != EXPAND_TOOL]
        choice = replace(choices[0], message=replace(message, tool_calls=kept or None))
        if not kept and get_field(choices[0], "finish_reason") == "tool_calls":
            choice = replace(choice, finish_reason="stop")
        return replace(response, choices=[choice, *choices[1:]])
    items = get_field(response, "output") or ()
    kept_items = [
        i
        for i in items
        if not (get_field(i, "type") == "function_call" and get_field(i, "name") == EXPAND_TOOL)
    ]
    return replace(response, output=kept_items)


# -- answering ----------------------------------------------------------------------------------------


async def _answers(call: Call, state: Expansion, calls: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(call_id, tool result)`` for each expand call; each counts against the limit."""
    out: list[tuple[str, str]] = []
    encoding = None
    for call_id, arguments in calls:
        ref = _ref_of(arguments) or ""
        if state.done >= state.max_expansions:
            out.append((call_id, LIMIT_REACHED))
            continue
        state.done += 1
        state.refs.append(ref)
        original = originals.get(ref) if ref else None
        tokens = 0
        if original is not None:
            encoding = encoding or await encoding_for_async(call.model)
            tokens = await cache_for(encoding).count_all_async([original])
        record_expansion(ref, tokens, original is not None)
        out.append((call_id, original if original is not None else NOT_AVAILABLE.format(ref=ref or "?")))
    return out


def _follow_up(
    call: Call, calls: list[tuple[str, str]], answers: list[tuple[str, str]], content: Any
) -> None:
    """Extend ``call.request`` with the model's expand calls and tokenmw's answers."""
    request = call.request
    if call.operation == "chat":
        assistant: dict[str, Any] = {
            "role": "assistant",
            "content": content if isinstance(content, str) and content else None,
            "tool_calls": [
                {"id": cid, "type": "function", "function": {"name": EXPAND_TOOL, "arguments": args}}
                for cid, args in calls
            ],
        }
        results = [{"role": "tool", "tool_call_id": cid, "content": text} for cid, text in answers]
        request["messages"] = [*request["messages"], assistant, *results]
        return
    items = request.get("input")
    history: list[Any] = [{"role": "user", "content": items}] if isinstance(items, str) else list(items or ())
    history += [
        {"type": "function_call", "call_id": cid, "name": EXPAND_TOOL, "arguments": args}
        for cid, args in calls
    ]
    history += [{"type": "function_call_output", "call_id": cid, "output": text} for cid, text in answers]
    request["input"] = history


def _message_content(call: Call, response: Any) -> Any:
    if call.operation != "chat":
        return None
    choices = get_field(response, "choices") or ()
    return get_field(get_field(choices[0], "message"), "content") if choices else None


# -- the loop ----------------------------------------------------------------------------------------


async def expand(call: Call, call_next: CallNext) -> Any:
    """Send the call; while the model asks for originals, answer and send the follow-up."""
    state: Expansion | None = call.state.get(_STATE)
    if state is None:
        return await call_next(call)
    sent = dict(call.request)
    try:
        response = await call_next(call)
        while True:
            read: list[Any] = []
            if call.stream:
                response, read, calls, content = await _read_ahead(call, response)
            else:
                calls, _ = _expand_calls(call, response)
                content = _message_content(call, response)
            if not calls:
                return response
            if state.done >= state.max_expansions:
                # The model asked again though the tool was withdrawn: the caller never sees the
                # call (a stream, read whole already, is replayed as it came).
                return _Replay(read) if call.stream else _strip(call, response)
            answers = await _answers(call, state, calls)
            _follow_up(call, calls, answers, content)
            if state.done >= state.max_expansions:
                _withdraw(call, state)
            response = await call_next(call)
    finally:
        # The caller's next turn starts from its own history; the expansion lives in this call only.
        call.request.clear()
        call.request.update(sent)


# -- streams -----------------------------------------------------------------------------------------


async def _read_ahead(call: Call, stream: Any) -> tuple[Any, list[Any], list[tuple[str, str]], Any]:
    """Read the stream until it shows what the model does: ``(stream, chunks read, expand calls,
    text)``. Text: the stream, with what was read put back (``call.unread``). A tool call: the
    stream is read to its end (tool calls are not shown as they stream) and closed, and either it
    holds expand calls (its usage is kept; the follow-up replaces it) or it is replayed whole."""
    read: list[Any] = []
    is_async = hasattr(stream, "__anext__") and not (call.blocking and hasattr(stream, "__next__"))
    while True:
        chunk = await _next(stream, is_async)
        if chunk is _END:
            break
        read.append(chunk)
        decided = _decides(call, chunk)
        if decided == "text":
            call.unread(*read)
            return stream, read, [], None
        if decided == "tool":
            break
    while True:
        chunk = await _next(stream, is_async)
        if chunk is _END:
            break
        read.append(chunk)
    await _close(stream, is_async)
    calls, content = _assemble(call, read)
    if not calls:
        return _Replay(read), read, [], None
    usage = call.usage
    reported = False
    for chunk in read:
        if get_field(chunk, "usage") is not None or get_field(chunk, "type") == "response.completed":
            reported = usage.record_reported(chunk) or reported
    if not reported:  # no usage chunk (include_usage off): the expand call's tokens, counted here
        encoding = await encoding_for_async(call.model)
        spent = sum(cache_for(encoding).count(EXPAND_TOOL + args) for _, args in calls)
        usage.output_tokens = (usage.output_tokens or 0) + spent
        usage.output_tokens_estimated = True
    usage.bank()
    return stream, read, calls, content


_END: Any = object()


async def _next(stream: Any, is_async: bool) -> Any:
    try:
        return await stream.__anext__() if is_async else next(stream)
    except (StopIteration, StopAsyncIteration):
        return _END


async def _close(stream: Any, is_async: bool) -> None:
    closer = getattr(stream, "aclose" if is_async else "close", None) or getattr(stream, "close", None)
    if closer is not None:
        result = closer()
        if hasattr(result, "__await__"):
            await result


def _decides(call: Call, chunk: Any) -> str | None:
    """``"text"`` (the model answers), ``"tool"`` (it calls a tool), or ``None`` (not yet)."""
    if call.operation == "chat":
        for choice in get_field(chunk, "choices") or ():
            delta = get_field(choice, "delta")
            if get_field(delta, "tool_calls"):
                return "tool"
            if get_field(delta, "content") or get_field(choice, "finish_reason"):
                return "text"
        return None
    kind = get_field(chunk, "type")
    if kind == "response.output_item.added":
        item_kind = get_field(get_field(chunk, "item"), "type")
        if item_kind == "function_call":
            return "tool"
        return None if item_kind == "reasoning" else "text"
    if kind in ("response.output_text.delta", "response.completed", "response.incomplete", "response.failed"):
        return "text"
    return None


def _assemble(call: Call, chunks: list[Any]) -> tuple[list[tuple[str, str]], Any]:
    """The expand calls and the text of a whole stream."""
    if call.operation != "chat":
        for chunk in chunks:
            if get_field(chunk, "type") == "response.completed":
                found, _ = _expand_calls(call, get_field(chunk, "response"))
                return found, None
        return [], None
    calls: dict[int, list[Any]] = {}
    text: list[str] = []
    for chunk in chunks:
        for choice in get_field(chunk, "choices") or ():
            delta = get_field(choice, "delta")
            content = get_field(delta, "content")
            if isinstance(content, str):
                text.append(content)
            for tool_call in get_field(delta, "tool_calls") or ():
                index = get_field(tool_call, "index") or 0
                entry = calls.setdefault(index, [None, None, ""])
                function = get_field(tool_call, "function")
                entry[0] = get_field(tool_call, "id") or entry[0]
                entry[1] = get_field(function, "name") or entry[1]
                entry[2] += get_field(function, "arguments") or ""
    found = [(cid, args) for cid, name, args in calls.values() if name == EXPAND_TOOL]
    return found, "".join(text)


class _Replay:
    """A stream already read to its end (it ended before showing what the model does)."""

    def __init__(self, chunks: list[Any]) -> None:
        self._chunks = iter(chunks)

    def __iter__(self) -> _Replay:
        return self

    def __next__(self) -> Any:
        return next(self._chunks)

    def __aiter__(self) -> _Replay:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self._chunks)
        except StopIteration:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Nothing to close: the upstream was closed when it was read."""
