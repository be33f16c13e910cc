"""Message text for spans, in the GenAI conventions' JSON shape, only when the user opts in.

Prompts and replies often hold personal data, so the conventions keep them off spans unless
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` says otherwise. Only roles, text and tool
calls are copied, field by field: nothing else of the request (headers, keys, extra arguments)
can reach a span through here.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tokenmw._wire.fields import get_field
from tokenmw._wire.text import reply_pieces
from tokenmw.telemetry import _semconv as sc

__all__ = ["capture_enabled", "input_attributes", "output_messages", "response_output"]

_TRUE = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event"})


def capture_enabled() -> bool:
    """Whether the user opted in to message content on spans."""
    return os.environ.get(sc.CAPTURE_MESSAGE_CONTENT_ENV, "").strip().lower() in _TRUE



def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    for part in content or ():
        kind = get_field(part, "type")
        text = get_field(part, "text")
        if isinstance(text, str):
            parts.append({"type": "text", "content": text})
        elif isinstance(kind, str):
            parts.append({"type": kind})  # images, audio, files: the kind only, never the bytes
    return parts


def _tool_calls(calls: Any) -> list[dict[str, Any]]:
    parts = []
    for call in calls or ():
        fn = get_field(call, "function")
        parts.append(
            {
                "type": "tool_call",
                "id": get_field(call, "id"),
                "name": get_field(fn, "name") if fn is not None else get_field(call, "name"),
                "arguments": get_field(fn, "arguments") if fn is not None else get_field(call, "arguments"),
            }
        )
    return parts


def _message(message: Any) -> dict[str, Any]:
    role = get_field(message, "role") or "user"
    if role == "tool":
        call_id, reply = get_field(message, "tool_call_id"), get_field(message, "content")
        return {"role": "tool", "parts": [{"type": "tool_call_response", "id": call_id, "response": reply}]}
    parts = _parts(get_field(message, "content")) + _tool_calls(get_field(message, "tool_calls"))
    return {"role": role, "parts": parts}


def input_attributes(operation: str, request: dict[str, Any]) -> dict[str, str]:
    """``gen_ai.input.messages`` (and system instructions) for a request as it was sent."""
    out: dict[str, str] = {}
    if operation == "chat":
        messages = request.get("messages")
        if messages:
            out[sc.GEN_AI_INPUT_MESSAGES] = _dumps([_message(m) for m in messages])
        return out
    instructions = request.get("instructions")
    if isinstance(instructions, str):
        out[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = _dumps([{"type": "text", "content": instructions}])
    items = request.get("input")
    if isinstance(items, str):
        out[sc.GEN_AI_INPUT_MESSAGES] = _dumps([{"role": "user", "parts": _parts(items)}])
    elif items:
        messages = [_message(item) for item in items if get_field(item, "role") is not None]
        out[sc.GEN_AI_INPUT_MESSAGES] = _dumps(messages)
    return out


def output_messages(texts: dict[int, str], finish_reasons: list[str]) -> str:
    """``gen_ai.output.messages`` from the text of each choice."""
    messages = []
    for index in sorted(texts):
        reason = finish_reasons[index] if index < len(finish_reasons) else None
        messages.append(
            {"role": "assistant", "parts": _parts(texts[index]), "finish_reason": reason or "stop"}
        )
    return _dumps(messages)


def response_output(response: Any) -> dict[int, str]:
    """The answer text of each choice of a complete response (chat or Responses API)."""
    texts: dict[int, str] = {}
    for index, kind, text in reply_pieces(response) or ():
        if kind == "text":
            texts[index] = texts.get(index, "") + text
    return texts
