"""The OpenAI wire format: JSON bodies and SSE events of both APIs, as bytes ready to write.

Shapes follow what the API sends (and what ``openai.types`` parses), including the fields clients
read to decide things: ``finish_reason``, ``status``, ``incomplete_details`` and every ``usage``
detail. Stream chunks differ only in their delta, so the constant part of a chunk is serialised
once per stream and each event costs one small ``json.dumps`` of its text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "chat_completion",
    "chat_stream",
    "chat_stream_length",
    "chat_tool_call",
    "chat_tool_stream",
    "error_body",
    "function_call_item",
    "models_list",
    "response_object",
    "responses_stream",
    "responses_stream_length",
    "responses_tool_stream",
]

_dumps = json.JSONEncoder(separators=(",", ":")).encode
FINGERPRINT = "fp_tokenmw"
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "gpt-5-mini", "gpt-3.5-turbo")


def _json(value: Any) -> bytes:
    return _dumps(value).encode()


def error_body(message: str, type_: str, *, param: str | None = None, code: str | None = None) -> bytes:
    """An OpenAI error body: the client reads ``error.message`` into the exception it raises."""
    return _json({"error": {"message": message, "type": type_, "param": param, "code": code}})


def models_list(created: int) -> bytes:
    """The ``GET /v1/models`` body."""
    data = [{"id": m, "object": "model", "created": created, "owned_by": "tokenmw"} for m in MODELS]
    return _json({"object": "list", "data": data})


# -- chat completions ------------------------------------------------------------------------------


def chat_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion(
    id_: str, created: int, model: str, text: str, finish_reason: str, usage: Mapping[str, Any]
) -> bytes:
    """A ``chat.completion`` body."""
    return _json(
        {
            "id": id_,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        }
    )


def chat_stream_length(deltas: int, include_usage: bool) -> int:
    """Events in a chat stream: role, deltas, finish, usage (when asked), ``[DONE]``."""
    return deltas + 3 + include_usage


def chat_stream(
    id_: str,
    created: int,
    model: str,
    deltas: list[str],
    finish_reason: str,
    usage: Mapping[str, Any] | None,
) -> Iterator[bytes]:
    """The SSE events of a streamed chat completion; a final usage chunk when ``usage`` is given.

    Events are made one at a time, so a stream the client abandons stops being generated.
    """
    head = (
        b'data: {"id":'
        + _json(id_)
        + b',"object":"chat.completion.chunk","created":%d' % created
        + b',"model":'
        + _json(model)
        + b',"service_tier":"default","system_fingerprint":"'
        + FINGERPRINT.encode()
        + b'","choices":['
    )
    # With include_usage the API sends "usage": null on every chunk but the last.
    tail = b'],"usage":null}\n\n' if usage is not None else b"]}\n\n"
    yield (
        head + b'{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
        b'"logprobs":null,"finish_reason":null}' + tail
    )
    for delta in deltas:
        yield (
            head
            + b'{"index":0,"delta":{"content":'
            + _json(delta)
            + b'},"logprobs":null,"finish_reason":null}'
            + tail
        )
    yield (
        head + b'{"index":0,"delta":{},"logprobs":null,"finish_reason":' + _json(finish_reason) + b"}" + tail
    )
    if usage is not None:
        yield head + b'],"usage":' + _json(usage) + b"}\n\n"
    yield b"data: [DONE]\n\n"


# -- responses -------------------------------------------------------------------------------------


def responses_usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def output_message(id_: str, text: str | None, status: str) -> dict[str, Any]:
    """The assistant message item; ``text=None`` gives the empty item a stream starts with."""
    content = [] if text is None else [_output_text(text)]
    return {"id": id_, "type": "message", "status": status, "role": "assistant", "content": content}


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def response_object(
    id_: str,
    created: int,
    request: Mapping[str, Any],
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A ``response`` object; ``status`` ``incomplete`` means the output cap cut it."""
    instructions = request.get("instructions")
    return {
        "id": id_,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "completed_at": created if status == "completed" else None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": instructions if isinstance(instructions, str) else None,
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": request["model"],
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": bool(request.get("store", True)),
        "temperature": request.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": request.get("metadata") or {},
    }


def response_body(response: Mapping[str, Any]) -> bytes:
    """A non-streamed Responses API body."""
    return _json(response)


def responses_stream_length(deltas: int) -> int:
    """Events in a Responses stream: 4 opening, the deltas, 4 closing."""
    return deltas + 8


def responses_stream(final: dict[str, Any], message_id: str, text: str, deltas: list[str]) -> Iterator[bytes]:
    """The SSE events that build up ``final`` (a finished ``response_object``), one at a time.

    A cut response ends with ``response.incomplete``, as the API does; otherwise
    ``response.completed``.
    """
    seq = 0

    def event(type_: str, fields: dict[str, Any]) -> bytes:
        nonlocal seq
        fields["type"] = type_
        fields["sequence_number"] = seq
        seq += 1
        return b"event: " + type_.encode() + b"\ndata: " + _json(fields) + b"\n\n"

    item_status = final["status"]
    started = {
        **final,
        "status": "in_progress",
        "completed_at": None,
        "incomplete_details": None,
        "output": [],
        "usage": None,
    }
    yield event("response.created", {"response": started})
    yield event("response.in_progress", {"response": started})
    where = {"item_id": message_id, "output_index": 0, "content_index": 0}
    yield event(
        "response.output_item.added",
        {"output_index": 0, "item": output_message(message_id, None, "in_progress")},
    )
    yield event("response.content_part.added", {**where, "part": _output_text("")})
    delta_head = (
        b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":'
        + _json(message_id)
        + b',"output_index":0,"content_index":0,"logprobs":[],"delta":'
    )
    for delta in deltas:
        yield delta_head + _json(delta) + b',"sequence_number":%d}\n\n' % seq
        seq += 1
    yield event("response.output_text.done", {**where, "text": text, "logprobs": []})
    yield event("response.content_part.done", {**where, "part": _output_text(text)})
    yield event(
        "response.output_item.done",
        {"output_index": 0, "item": output_message(message_id, text, item_status)},
    )
    closing = "response.completed" if final["status"] == "completed" else "response.incomplete"
    yield event(closing, {"response": final})


# -- tool calls (``x-tokenmw-answer: auto``) -------------------------------------------------------


def chat_tool_call(
    id_: str, created: int, model: str, call_id: str, name: str, arguments: str, usage: Mapping[str, Any]
) -> bytes:
    """A ``chat.completion`` body whose answer is one tool call."""
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    return _json(
        {
            "id": id_,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "refusal": None,
                        "annotations": [],
                        "tool_calls": [call],
                    },
                    "logprobs": None,
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        }
    )


def chat_tool_stream(
    id_: str,
    created: int,
    model: str,
    call_id: str,
    name: str,
    pieces: list[str],
    usage: Mapping[str, Any] | None,
) -> Iterator[bytes]:
    """A streamed tool call: the call's id and name first, then its arguments in ``pieces``."""
    base = {
        "id": id_,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }
    extra = {"usage": None} if usage is not None else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + _json({**base, "choices": [choice], **extra}) + b"\n\n"

    opening = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    yield chunk({"role": "assistant", "content": None, "refusal": None, "tool_calls": [opening]})
    for piece in pieces:
        yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
    yield chunk({}, "tool_calls")
    if usage is not None:
        yield b"data: " + _json({**base, "choices": [], "usage": usage}) + b"\n\n"
    yield b"data: [DONE]\n\n"


def function_call_item(id_: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    """A Responses ``function_call`` output item."""
    return {
        "id": id_,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def responses_tool_stream(final: dict[str, Any], item: dict[str, Any], pieces: list[str]) -> Iterator[bytes]:
    """The SSE events of a Responses stream whose answer is one function call (``item``)."""
    seq = 0

    def event(type_: str, fields: dict[str, Any]) -> bytes:
        nonlocal seq
        fields["type"] = type_
        fields["sequence_number"] = seq
        seq += 1
        return b"event: " + type_.encode() + b"\ndata: " + _json(fields) + b"\n\n"

    started = {**final, "status": "in_progress", "completed_at": None, "output": [], "usage": None}
    yield event("response.created", {"response": started})
    yield event("response.in_progress", {"response": started})
    opening = {**item, "arguments": "", "status": "in_progress"}
    yield event("response.output_item.added", {"output_index": 0, "item": opening})
    where = {"item_id": item["id"], "output_index": 0}
    for piece in pieces:
        yield event("response.function_call_arguments.delta", {**where, "delta": piece})
    done = {**where, "name": item["name"], "arguments": item["arguments"]}
    yield event("response.function_call_arguments.done", done)
    yield event("response.output_item.done", {"output_index": 0, "item": item})
    yield event("response.completed", {"response": final})
