"""LimitResponse: the cap on the wire, the cut when the server ignores it, and what is never cut.

End to end against the embedded server with real clients; the server is told to ignore the cap
(``x-tokenmw-ignore-max-tokens``) so the hook's own cut is what the caller sees.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseIncompleteEvent

import tokenmw
from tokenmw import Call, Hook, Middleware
from tokenmw._tokens.encodings import encoding_for
from tokenmw.hooks import LimitResponse
from tokenmw.hooks._cut import MAX_WORD, StreamBudget, cut_text, word_cut
from tokenmw.hooks.limit_response import (
    ATTR_MAX_TOKENS,
    ATTR_OUTPUT_TOKENS,
    ATTR_REQUEST_MAX_TOKENS,
    ATTR_SKIPPED,
    ATTR_TRUNCATED,
)
from tokenmw.server import EmbeddedServer
from tokenmw.server._reply import reply_text, split_deltas

from .._billed import server_billed
from .._otel import Capture, capture
from ..conftest import MESSAGES

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
import litellm  # slow: imported once, after the env var above

CAP = 40
WORDS = 300
IGNORE = {"x-tokenmw-ignore-max-tokens": "true", "x-tokenmw-reply-words": str(WORDS)}
SLOW = {**IGNORE, "x-tokenmw-chunk-delay": "0.01"}
ENC = encoding_for("gpt-4o-mini")
FULL = reply_text(WORDS)


def tokens(text: str) -> int:
    return len(ENC.encode_ordinary(text))


def assert_cut_well(text: str, cap: int = CAP) -> None:
    """At most ``cap`` tokens, a prefix of the full reply, ending at a word boundary."""
    assert 0 < tokens(text) <= cap
    assert FULL.startswith(text)
    assert FULL[len(text)] in " \n"


def shown_by_stream(cap: int) -> str:
    """What a stream of the full reply shows under ``cap``: whole deltas while the text fits."""
    shown = ""
    for delta in split_deltas(FULL):
        if tokens(shown + delta) > cap:
            return shown
        shown += delta
    return shown


def body(server: EmbeddedServer) -> dict[str, Any]:
    return server.requests[-1].body  # type: ignore[no-any-return]


def server_stream_cut_short(server: EmbeddedServer) -> None:
    record = server.streams[-1]
    assert record.wait(5)
    assert record.disconnected
    assert record.chunks_sent < record.chunks_total


@pytest.fixture
def otel() -> Iterator[Capture]:
    cap = capture()
    cap.clear()
    yield cap


# -- the parameter on the wire --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        ({}, {"max_completion_tokens": CAP}),
        ({"max_completion_tokens": 1000}, {"max_completion_tokens": CAP}),
        ({"max_completion_tokens": 10}, {"max_completion_tokens": 10}),
        # A caller on max_tokens (servers that know only that name) keeps it; nothing is added.
        ({"max_tokens": 1000}, {"max_tokens": CAP}),
        ({"max_tokens": 10}, {"max_tokens": 10}),
        ({"max_tokens": 1000, "max_completion_tokens": 10}, {"max_tokens": CAP, "max_completion_tokens": 10}),
    ],
)
def test_chat_parameter_on_the_wire(
    sync_client: openai.OpenAI, live_server: EmbeddedServer, caller: dict[str, int], expected: dict[str, int]
) -> None:
    client = Middleware([LimitResponse(CAP)]).wrap(sync_client)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **caller)
    sent = body(live_server)
    assert {k: sent[k] for k in ("max_tokens", "max_completion_tokens") if k in sent} == expected


@pytest.mark.parametrize(
    ("model", "extra", "reasoning", "expected"),
    [
        ("gpt-5-mini", {}, "total", CAP),
        ("gpt-5-mini", {}, "headroom", CAP + 1000),
        ("o4-mini", {}, "headroom", CAP + 1000),
        ("gpt-4o-mini", {"reasoning_effort": "low"}, "headroom", CAP + 1000),
        ("gpt-5.1", {"reasoning_effort": "none"}, "headroom", CAP),  # not reasoning: no headroom
        ("gpt-5-chat-latest", {}, "headroom", CAP),
        ("gpt-4o-mini", {}, "headroom", CAP),
    ],
)
async def test_reasoning_models_get_headroom_only_when_asked(
    async_client: openai.AsyncOpenAI,
    live_server: EmbeddedServer,
    model: str,
    extra: dict[str, Any],
    reasoning: Any,
    expected: int,
) -> None:
    hook = LimitResponse(CAP, reasoning=reasoning, reasoning_headroom=1000)
    await (
        Middleware([hook]).wrap(async_client).chat.completions.create(model=model, messages=MESSAGES, **extra)
    )
    assert body(live_server)["max_completion_tokens"] == expected


@pytest.mark.parametrize(("caller", "expected"), [(None, CAP), (1000, CAP), (10, 10)])
def test_responses_parameter_on_the_wire(
    sync_client: openai.OpenAI, live_server: EmbeddedServer, caller: int | None, expected: int
) -> None:
    client = Middleware([LimitResponse(CAP)]).wrap(sync_client)
    kwargs = {} if caller is None else {"max_output_tokens": caller}
    client.responses.create(model="gpt-4o-mini", input="Hello", **kwargs)
    sent = body(live_server)
    assert sent["max_output_tokens"] == expected
    assert "max_tokens" not in sent and "max_completion_tokens" not in sent


def test_headroom_cut_visible_text_to_max_tokens(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    # The provider may spend the headroom; the caller still sees at most max_tokens.
    hook = LimitResponse(CAP, reasoning="headroom", reasoning_headroom=200)
    client = Middleware([hook]).wrap(sync_client)
    resp = client.chat.completions.create(model="gpt-5-mini", messages=MESSAGES, extra_headers=IGNORE)
    assert body(live_server)["max_completion_tokens"] == CAP + 200
    assert_cut_well(resp.choices[0].message.content or "")
    assert resp.choices[0].finish_reason == "length"


# -- complete responses ---------------------------------------------------------------------------


def test_sync_chat_cut_when_server_ignores_the_cap(sync_client: openai.OpenAI) -> None:
    plain = sync_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=IGNORE)
    client = Middleware([LimitResponse(CAP)]).wrap(sync_client)
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=IGNORE)
    assert isinstance(resp, ChatCompletion)
    choice = resp.choices[0]
    assert_cut_well(choice.message.content or "")
    assert choice.finish_reason == "length"
    # Every other field is the server's own; usage stays what was billed.
    assert resp.usage == plain.usage
    assert resp.usage is not None and resp.usage.completion_tokens == tokens(FULL)
    assert resp.model_dump(exclude={"id", "created"}) == {
        **plain.model_dump(exclude={"id", "created"}),
        "choices": [
            {
                **plain.choices[0].model_dump(),
                "finish_reason": "length",
                "message": {**plain.choices[0].message.model_dump(), "content": choice.message.content},
            }
        ],
    }


async def test_async_chat_cut_when_server_ignores_the_cap(async_client: openai.AsyncOpenAI) -> None:
    client = Middleware([LimitResponse(CAP)]).wrap(async_client)
    resp = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=IGNORE)
    assert isinstance(resp, ChatCompletion)
    assert_cut_well(resp.choices[0].message.content or "")
    assert resp.choices[0].finish_reason == "length"


def test_cut_prefers_a_sentence_end(sync_client: openai.OpenAI) -> None:
    # The reply's first sentence ends at token ~11; a cap of 12 ends there rather than mid-sentence.
    client = Middleware([LimitResponse(12)]).wrap(sync_client)
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=IGNORE)
    text = resp.choices[0].message.content or ""
    assert text == FULL[: FULL.index(".") + 1]
    assert tokens(text) <= 12


def test_within_the_cap_nothing_changes(sync_client: openai.OpenAI) -> None:
    # The server honours the cap: the response is the server's, untouched.
    plain = sync_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, max_completion_tokens=CAP
    )
    client = Middleware([LimitResponse(CAP)]).wrap(sync_client)
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert resp.choices[0].message.content == plain.choices[0].message.content
    assert resp.choices[0].finish_reason == plain.choices[0].finish_reason == "length"
    short = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-tokenmw-reply-words": "5"}
    )
    assert short.choices[0].finish_reason == "stop"
    assert short.choices[0].message.content == reply_text(5)


def test_sync_responses_cut(sync_client: openai.OpenAI) -> None:
    plain = sync_client.responses.create(model="gpt-4o-mini", input="Hello", extra_headers=IGNORE)
    client = Middleware([LimitResponse(CAP)]).wrap(sync_client)
    resp = client.responses.create(model="gpt-4o-mini", input="Hello", extra_headers=IGNORE)
    assert isinstance(resp, Response)
    assert_cut_well(resp.output_text)
    assert resp.status == "incomplete"
    assert resp.incomplete_details is not None and resp.incomplete_details.reason == "max_output_tokens"
    assert resp.output[0].status == "incomplete"  # type: ignore[union-attr]
    assert resp.usage == plain.usage
    assert plain.status == "completed" and plain.output_text == FULL


async def test_async_responses_cut(async_client: openai.AsyncOpenAI) -> None:
    client = Middleware([LimitResponse(CAP)]).wrap(async_client)
    resp = await client.responses.create(model="gpt-4o-mini", input="Hello", extra_headers=IGNORE)
    assert_cut_well(resp.output_text)
    assert resp.status == "incomplete"


# -- streams --------------------------------------------------------------------------------------


def chat_text(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_sync_stream_stops_upstream_at_the_cap(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    mw = Middleware([LimitResponse(CAP)])
    stream = mw.wrap(sync_client).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=SLOW
    )
    chunks = list(stream)
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert chat_text(chunks) == shown_by_stream(CAP)  # exact: not one token over, not one less
    assert chunks[-1].choices[0].finish_reason == "length"
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    server_stream_cut_short(live_server)
    # No usage chunk was asked for: the output is counted locally, and says so.
    assert mw.usage.output_tokens > CAP
    assert mw.usage.output_tokens_counted_locally == mw.usage.output_tokens


async def test_async_stream_with_usage_chunk(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    mw = Middleware([LimitResponse(CAP)])
    stream = await mw.wrap(async_client).chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=SLOW,
    )
    assert isinstance(stream, openai.AsyncStream)
    chunks = [c async for c in stream]
    assert chat_text(chunks) == shown_by_stream(CAP)
    finish, usage = chunks[-2], chunks[-1]
    assert finish.choices[0].finish_reason == "length"
    assert usage.choices == [] and usage.usage is not None
    assert usage.usage.completion_tokens >= tokens(chat_text(chunks))
    assert usage.usage.prompt_tokens == tokenmw.count_tokens(MESSAGES, model="gpt-4o-mini")
    assert usage.usage.total_tokens == usage.usage.prompt_tokens + usage.usage.completion_tokens
    assert finish.id == chunks[0].id and usage.model == chunks[0].model
    server_stream_cut_short(live_server)
    assert mw.usage.output_tokens == usage.usage.completion_tokens
    assert mw.usage.output_tokens_counted_locally == usage.usage.completion_tokens  # local, not the API's
    assert mw.usage.input_tokens_reported == 0  # the API reported none
    assert server_billed(live_server).input_tokens_reported == 0
    assert usage.usage.prompt_tokens != server_billed(live_server).input_tokens  # counted, not billed


def test_stream_within_the_cap_ends_as_the_server_sent_it(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    client = Middleware([LimitResponse(CAP)]).wrap(sync_client)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    record = live_server.streams[-1]
    assert record.wait(5) and record.completed
    assert chunks[-2].choices[0].finish_reason == "length"  # the server's own cut at the cap
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == CAP


def test_sync_responses_stream_ends_incomplete(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    mw = Middleware([LimitResponse(CAP)])
    events = list(
        mw.wrap(sync_client).responses.create(
            model="gpt-4o-mini", input="Hello", stream=True, extra_headers=SLOW
        )
    )
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == shown_by_stream(CAP)
    assert [e.type for e in events[-4:]] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    last = events[-1]
    assert isinstance(last, ResponseIncompleteEvent)
    assert last.response.status == "incomplete"
    assert last.response.incomplete_details is not None
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert last.response.output_text == text == events[-4].text  # type: ignore[union-attr]
    assert last.response.usage is not None and last.response.usage.output_tokens >= tokens(text)
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    server_stream_cut_short(live_server)
    assert mw.usage.output_tokens == last.response.usage.output_tokens


async def test_async_responses_stream_ends_incomplete(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    client = Middleware([LimitResponse(CAP)]).wrap(async_client)
    stream = await client.responses.create(
        model="gpt-4o-mini", input="Hello", stream=True, extra_headers=SLOW
    )
    events = [e async for e in stream]
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.output_text == shown_by_stream(CAP)  # type: ignore[union-attr]
    server_stream_cut_short(live_server)


class Seen(Hook):
    """Records every chunk it is given (it runs before LimitResponse on the way out)."""

    name = "seen"

    def __init__(self) -> None:
        self.finish_reasons: list[Any] = []

    def on_chunk(self, call: Call, chunk: Any) -> Any:
        if chunk.choices:
            self.finish_reasons.append(chunk.choices[0].finish_reason)
        return chunk


def test_final_chunks_pass_through_every_hook(sync_client: openai.OpenAI) -> None:
    seen = Seen()
    client = Middleware([seen, LimitResponse(CAP)]).wrap(sync_client)
    list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=IGNORE
        )
    )
    assert seen.finish_reasons[-1] == "length"


# -- what is never cut ----------------------------------------------------------------------------


def test_json_mode_untouched(sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    client = Middleware([LimitResponse(CAP)]).wrap(sync_client)
    resp = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        response_format={"type": "json_object"},
        extra_headers=IGNORE,
    )
    assert "max_completion_tokens" not in body(live_server)
    assert resp.choices[0].message.content == FULL
    assert resp.choices[0].finish_reason == "stop"


def test_json_schema_stream_untouched(sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    client = Middleware([LimitResponse(CAP)]).wrap(sync_client)
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, response_format=schema, stream=True, extra_headers=IGNORE
        )
    )
    assert chat_text(chunks) == FULL
    assert live_server.streams[-1].wait(5) and live_server.streams[-1].completed


def test_responses_structured_output_untouched(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    client = Middleware([LimitResponse(CAP)]).wrap(sync_client)
    resp = client.responses.create(
        model="gpt-4o-mini",
        input="Hello",
        text={"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
        extra_headers=IGNORE,
    )
    assert "max_output_tokens" not in body(live_server)
    assert resp.output_text == FULL and resp.status == "completed"


def test_forced_tool_call_untouched(sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    client = Middleware([LimitResponse(CAP)]).wrap(sync_client)
    client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, tools=tools, tool_choice="required"
    )
    assert "max_completion_tokens" not in body(live_server)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=tools)
    assert body(live_server)["max_completion_tokens"] == CAP  # tools offered, not forced: capped


LONG = " ".join(["word"] * 500)


def tool_call_completion() -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": LONG,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "write", "arguments": json.dumps({"text": LONG})},
                            }
                        ],
                    },
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1200, "total_tokens": 1205},
        }
    )


async def limited_call(hook: LimitResponse, request: dict[str, Any], operation: Any = "chat") -> Call:
    call = Call(request, operation)
    await hook.before(call)
    return call


async def test_tool_calls_in_a_response_untouched(otel: Capture) -> None:
    hook = LimitResponse(CAP)
    call = await limited_call(hook, {"model": "gpt-4o-mini", "messages": MESSAGES})
    response = tool_call_completion()
    with capture().tracer_provider.get_tracer("test").start_as_current_span("after") as span:
        result = await hook.after(call, response)
    assert result is response
    assert span.attributes is not None and span.attributes[ATTR_SKIPPED] == "tool_calls"  # type: ignore[attr-defined]
    assert span.attributes[ATTR_TRUNCATED] is False  # type: ignore[attr-defined]


async def test_tool_call_stream_untouched() -> None:
    hook = LimitResponse(5)
    call = await limited_call(hook, {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True})

    def chunk(delta: dict[str, Any], finish: str | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk.model_validate(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    start = {
        "tool_calls": [
            {"index": 0, "id": "t", "type": "function", "function": {"name": "f", "arguments": ""}}
        ]
    }
    parts = [chunk(start)] + [
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}) for piece in LONG.split(" ")
    ]
    out = [hook.on_chunk(call, c) for c in [*parts, chunk({}, "tool_calls")]]
    assert out == [*parts, out[-1]] and out[-1].choices[0].finish_reason == "tool_calls"
    assert call._stream_end is None


async def test_responses_function_call_untouched() -> None:
    hook = LimitResponse(CAP)
    call = await limited_call(hook, {"model": "gpt-4o-mini", "input": "x"}, "responses")
    response = Response.model_validate(
        {
            "id": "resp_1",
            "object": "response",
            "created_at": 1,
            "model": "gpt-4o-mini",
            "status": "completed",
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "output": [
                {
                    "id": "m",
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": LONG, "annotations": []}],
                },
                {
                    "id": "f",
                    "type": "function_call",
                    "call_id": "c",
                    "name": "write",
                    "arguments": LONG,
                    "status": "completed",
                },
            ],
        }
    )
    assert await hook.after(call, response) is response


async def test_n_choices_cut_one_at_a_time() -> None:
    # Choice 0 passes the cap first: its text stops and its end is reported as a cut when
    # upstream finishes it; choice 1 runs on; the stream is not stopped early.
    hook = LimitResponse(3)
    call = await limited_call(hook, {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True, "n": 2})

    def chunk(index: int, content: str | None, finish: str | None = None) -> ChatCompletionChunk:
        delta = {} if content is None else {"content": content}
        return ChatCompletionChunk.model_validate(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-4o-mini",
                "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
            }
        )

    feed = [
        chunk(0, "one"),
        chunk(1, "a"),
        chunk(0, " two three"),
        chunk(1, " b"),
        chunk(0, " four five"),
        chunk(0, None, "stop"),
        chunk(1, None, "stop"),
    ]
    out = [hook.on_chunk(call, c) for c in feed]
    assert [c.choices[0].delta.content for c in out if c is not None and c.choices[0].index == 0] == [
        "one",
        " two three",
        None,
    ]
    assert out[4] is None
    assert out[5].choices[0].finish_reason == "length"
    assert out[6].choices[0].finish_reason == "stop"
    assert call._stream_end is None


# -- telemetry ------------------------------------------------------------------------------------


def test_span_records_the_cut(otel: Capture, sync_client: openai.OpenAI) -> None:
    client = Middleware([LimitResponse(CAP)]).wrap(sync_client)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=IGNORE)
    before = otel.span("tokenmw.limit_response.before").attributes or {}
    assert before[ATTR_MAX_TOKENS] == CAP and before[ATTR_REQUEST_MAX_TOKENS] == CAP
    after = otel.span("tokenmw.limit_response.after").attributes or {}
    assert after[ATTR_MAX_TOKENS] == CAP
    assert after[ATTR_OUTPUT_TOKENS] == tokens(FULL)
    assert after[ATTR_TRUNCATED] is True


def test_stream_span_records_the_cut(otel: Capture, sync_client: openai.OpenAI) -> None:
    client = Middleware([LimitResponse(CAP)]).wrap(sync_client)
    list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=IGNORE
        )
    )
    call_span = otel.span("chat gpt-4o-mini").attributes or {}
    assert call_span[ATTR_TRUNCATED] is True
    assert call_span[ATTR_OUTPUT_TOKENS] > CAP
    assert call_span["gen_ai.response.finish_reasons"] == ("length",)


def test_span_records_why_nothing_was_cut(otel: Capture, sync_client: openai.OpenAI) -> None:
    client = Middleware([LimitResponse(CAP)]).wrap(sync_client)
    client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, response_format={"type": "json_object"}, extra_headers=IGNORE
    )
    before = otel.span("tokenmw.limit_response.before").attributes or {}
    assert before[ATTR_SKIPPED] == "structured_output"


# -- LiteLLM --------------------------------------------------------------------------------------


def litellm_kwargs(server: EmbeddedServer, model: str = "openai/gpt-4o-mini") -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES, "api_base": server.base_url, "api_key": "x"}


@pytest.mark.parametrize(
    ("model", "param"),
    [("openai/gpt-4o-mini", "max_tokens"), ("openai/o3-mini", "max_completion_tokens")],
)
def test_litellm_sends_max_tokens_and_litellm_translates_it(
    live_server: EmbeddedServer, model: str, param: str
) -> None:
    completion = tokenmw.wrap_litellm(litellm.completion, Middleware([LimitResponse(CAP)]))
    completion(**litellm_kwargs(live_server, model))
    assert body(live_server)[param] == CAP


def test_litellm_lower_caller_value_kept(live_server: EmbeddedServer) -> None:
    completion = tokenmw.wrap_litellm(litellm.completion, Middleware([LimitResponse(CAP)]))
    completion(**litellm_kwargs(live_server), max_tokens=7)
    assert body(live_server)["max_tokens"] == 7


async def test_litellm_cut(live_server: EmbeddedServer) -> None:
    acompletion = tokenmw.wrap_litellm(litellm.acompletion, Middleware([LimitResponse(CAP)]))
    resp = await acompletion(**litellm_kwargs(live_server), extra_headers=IGNORE)
    assert type(resp).__name__ == "ModelResponse"
    assert_cut_well(resp.choices[0].message.content)
    assert resp.choices[0].finish_reason == "length"


def test_litellm_stream_stops_upstream(live_server: EmbeddedServer) -> None:
    completion = tokenmw.wrap_litellm(litellm.completion, Middleware([LimitResponse(CAP)]))
    chunks = list(completion(**litellm_kwargs(live_server), stream=True, extra_headers=SLOW))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == shown_by_stream(CAP)
    assert chunks[-1].choices[0].finish_reason == "length"
    server_stream_cut_short(live_server)


# -- the cutting itself ---------------------------------------------------------------------------


def test_constructor_rejects_bad_values() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            LimitResponse(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LimitResponse(10, reasoning="visible")  # type: ignore[arg-type]
    assert "max_tokens=10" in repr(LimitResponse(10))


def test_cut_text_unspaced_script_cut_at_a_token_boundary() -> None:
    text = "这是一个没有空格的很长的句子" * 20
    cut, count = cut_text(ENC, text, 10)
    assert cut is not None and text.startswith(cut) and 0 < tokens(cut) <= 10
    assert count == tokens(text)


def test_word_cut() -> None:
    assert word_cut("alpha beta gamma", 8) == 5
    assert word_cut("alpha beta gamma", 10) == 10
    assert word_cut("alphabet", 4) == 0
    assert word_cut("x" * (MAX_WORD + 5), MAX_WORD + 1) == MAX_WORD + 1


text_pieces = st.lists(
    st.one_of(
        st.text(alphabet=" \n\t.,'-0123456789abcXYZéß字🙂", min_size=1, max_size=8),
        st.sampled_from([" the", " word", " 's", "  ", "\n\n", " 123", " 'll", "!", " Über"]),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(pieces=text_pieces, encoding=st.sampled_from(["o200k_base", "cl100k_base"]))
def test_split_before_space_letter_adds_up(pieces: list[str], encoding: str) -> None:
    """The fact StreamBudget relies on: tiktoken starts a piece at a space followed by a letter."""
    enc = encoding_for(encoding)
    text = "".join(pieces)
    for i in range(1, len(text) - 1):
        if text[i] == " " and text[i + 1].isalpha():
            assert len(enc.encode_ordinary(text)) == len(enc.encode_ordinary(text[:i])) + len(
                enc.encode_ordinary(text[i:])
            )


@settings(max_examples=300, deadline=None)
@given(pieces=text_pieces, limit=st.integers(min_value=1, max_value=40))
def test_stream_budget_is_exact(pieces: list[str], limit: int) -> None:
    budget = StreamBudget(ENC, limit)
    shown = ""
    for piece in pieces:
        keep = budget.add(piece)
        if keep is not None:
            assert len(ENC.encode_ordinary(shown + piece)) > limit  # over the cap with this piece
            assert budget.total() == len(ENC.encode_ordinary(shown + piece))
            shown += piece[:keep]
            assert len(ENC.encode_ordinary(shown)) <= limit
            return
        shown += piece
        assert len(ENC.encode_ordinary(shown)) <= limit
    assert budget.total() == len(ENC.encode_ordinary(shown))


async def test_litellm_async_stream_stops_upstream(
    live_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LiteLLM's default aiohttp transport does not drop a connection when its stream is closed;
    # on the httpx transport, closing the stream closes the connection.
    monkeypatch.setattr(litellm, "disable_aiohttp_transport", True)
    acompletion = tokenmw.wrap_litellm(litellm.acompletion, Middleware([LimitResponse(CAP)]))
    stream = await acompletion(**litellm_kwargs(live_server), stream=True, extra_headers=SLOW)
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == shown_by_stream(CAP)
    assert chunks[-1].choices[0].finish_reason == "length"
    server_stream_cut_short(live_server)


async def test_review_allowed_tools_required_is_a_forced_tool_call() -> None:
    from tokenmw import Call, LimitResponse

    request = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": []}},
    }
    call = Call(dict(request), "chat")
    await LimitResponse(max_tokens=50).before(call)
    assert "max_completion_tokens" not in call.request


async def test_review_explicit_none_cap_is_replaced_not_sent_beside_ours() -> None:
    from tokenmw import Call, LimitResponse

    messages = [{"role": "user", "content": "hi"}]
    call = Call({"model": "gpt-4o", "messages": messages, "max_tokens": None}, "chat")
    await LimitResponse(max_tokens=50).before(call)
    assert call.request.get("max_completion_tokens") == 50
    assert "max_tokens" not in call.request
