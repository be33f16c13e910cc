"""``CountTokens``: unit tests on a ``Call`` built by hand, then end to end through a real client."""

from __future__ import annotations

import pickle
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tokenmw import Call, Hook, Middleware, TokenBudgetExceeded, TokenmwError
from tokenmw._tokens.counting import count_request, count_tokens
from tokenmw._tokens.encodings import encoding_for
from tokenmw.hooks.count_tokens import CountTokens
from tokenmw.server import EmbeddedServer

from .._billed import server_billed
from .._otel import sdk_on
from ..conftest import MESSAGES

LONG = "The quick brown fox jumps over the lazy dog. " * 40


def tokens(text: str) -> int:
    return len(encoding_for("gpt-4o").encode_ordinary(text))


def chat_call(messages: list[dict[str, Any]] | None = None, model: str = "gpt-4o", **extra: Any) -> Call:
    return Call({"model": model, "messages": messages or list(MESSAGES), **extra}, "chat")


def shorten(call: Call) -> None:
    """What a compressing hook does: replace a message with a shorter one."""
    messages = list(call.request["messages"])
    messages[-1] = {"role": "user", "content": "Weather in Paris?"}
    call.request["messages"] = messages


# -- on_send: input counts and the budget ---------------------------------------------------------


async def test_on_send_records_original_and_sent_counts() -> None:
    call = chat_call([*MESSAGES, {"role": "user", "content": LONG}])
    original = count_tokens(call.request["messages"])
    call.snapshot_original()
    shorten(call)
    await CountTokens().on_send(call)
    assert call.usage.input_tokens_original == original
    assert call.usage.input_tokens_sent == count_tokens(call.request["messages"])
    assert call.usage.input_tokens_sent < original


async def test_on_send_without_snapshot_counts_the_request_twice_alike() -> None:
    call = chat_call()
    await CountTokens().on_send(call)
    assert call.usage.input_tokens_original == call.usage.input_tokens_sent == count_tokens(MESSAGES)


async def test_budget_guard_raises_with_count_and_limit() -> None:
    call = chat_call()
    n = count_tokens(MESSAGES)
    with pytest.raises(TokenBudgetExceeded) as info:
        await CountTokens(max_input_tokens=n - 1).on_send(call)
    error = info.value
    assert isinstance(error, ValueError) and isinstance(error, TokenmwError)
    assert (error.tokens, error.limit, error.model) == (n, n - 1, "gpt-4o")
    assert str(n) in str(error) and str(n - 1) in str(error)
    assert not error.estimated
    assert pickle.loads(pickle.dumps(error)).tokens == n
    await CountTokens(max_input_tokens=n).on_send(chat_call())  # at the limit: fine


async def test_budget_guard_counts_the_request_as_sent() -> None:
    call = chat_call([*MESSAGES, {"role": "user", "content": LONG}])
    call.snapshot_original()
    shorten(call)
    limit = count_tokens(call.request["messages"])
    await CountTokens(max_input_tokens=limit).on_send(call)  # the original was over, the sent is not


async def test_budget_guard_says_when_the_count_is_an_estimate() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    call = chat_call([{"role": "user", "content": [image]}])
    with pytest.raises(TokenBudgetExceeded, match="estimated") as info:
        await CountTokens(max_input_tokens=10).on_send(call)
    assert info.value.estimated


async def test_default_budget_is_the_model_context_window() -> None:
    huge = " ".join(f"w{i}" for i in range(9000))  # > 8192 tokens: gpt-4's window
    with pytest.raises(TokenBudgetExceeded, match="8192"):
        await CountTokens().on_send(chat_call([{"role": "user", "content": huge}], model="gpt-4"))
    await CountTokens().on_send(chat_call([{"role": "user", "content": huge}], model="gpt-4o"))
    await CountTokens().on_send(chat_call([{"role": "user", "content": huge}], model="my-local-llama"))


def test_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="max_input_tokens"):
        CountTokens(max_input_tokens=-1)


async def test_on_send_annotates_the_current_span() -> None:
    sdk_on()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    call = chat_call([*MESSAGES, {"role": "user", "content": LONG}])
    call.snapshot_original()
    shorten(call)
    with provider.get_tracer("test").start_as_current_span("tokenmw.count_tokens.on_send"):
        await CountTokens().on_send(call)
    (span,) = exporter.get_finished_spans()
    attrs = span.attributes or {}
    assert attrs["tokenmw.tokens.before"] == call.usage.input_tokens_original
    assert attrs["tokenmw.tokens.after"] == call.usage.input_tokens_sent
    assert attrs["tokenmw.tokens.saved"] > 0
    assert attrs["tokenmw.tokens.estimated"] is False
    assert attrs["tokenmw.budget.limit"] == 128_000  # gpt-4o's context window
    assert "tokenmw.budget.off" not in attrs


async def on_send_span(call: Call) -> dict[str, Any]:
    sdk_on()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("tokenmw.count_tokens.on_send"):
        await CountTokens().on_send(call)
    (span,) = exporter.get_finished_spans()
    return dict(span.attributes or {})


async def test_unknown_context_window_turns_the_default_budget_off_and_says_so() -> None:
    huge = " ".join(f"w{i}" for i in range(9000))
    attrs = await on_send_span(chat_call([{"role": "user", "content": huge}], model="my-local-llama"))
    assert attrs["tokenmw.budget.off"] == "context window unknown"
    assert "tokenmw.budget.limit" not in attrs
    assert attrs["tokenmw.tokens.estimated"] is True  # unknown model: encoding guessed


async def test_span_says_when_the_input_count_is_an_estimate() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    attrs = await on_send_span(chat_call([{"role": "user", "content": [image]}]))
    assert attrs["tokenmw.tokens.estimated"] is True


async def test_responses_call_is_counted() -> None:
    request = {"model": "gpt-4o", "instructions": "Be brief.", "input": "Hello there"}
    call = Call(dict(request), "responses")
    await CountTokens().on_send(call)
    assert call.usage.input_tokens_sent == count_request("responses", request)[0]


# -- after: output of complete responses ----------------------------------------------------------


def completion(content: str, usage: dict[str, Any] | None) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o",
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
            ],
            "usage": usage,
        }
    )


async def test_after_keeps_reported_output() -> None:
    call = chat_call()
    usage = {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}
    response = completion("Sunny and mild.", usage)
    assert await CountTokens().after(call, response) is response
    assert call.usage.output_tokens == 7
    assert not call.usage.output_tokens_estimated


async def test_after_counts_output_when_none_is_reported() -> None:
    call = chat_call()
    text = "Sunny and mild, around twenty degrees."
    await CountTokens().after(call, completion(text, None))
    assert call.usage.output_tokens == tokens(text)
    assert call.usage.output_tokens_estimated


async def test_after_counts_tool_calls_and_responses_output() -> None:
    call = chat_call()
    args = '{"city": "Paris"}'
    response = ChatCompletion.model_validate(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "t1",
                                "type": "function",
                                "function": {"name": "weather", "arguments": args},
                            }
                        ],
                    },
                }
            ],
        }
    )
    await CountTokens().after(call, response)
    assert call.usage.output_tokens == tokens("weather") + tokens(args)

    resp = Response.model_validate(
        {
            "id": "r1",
            "object": "response",
            "created_at": 0,
            "model": "gpt-4o",
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "output": [
                {
                    "type": "message",
                    "id": "m1",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "Hello world", "annotations": []}],
                }
            ],
        }
    )
    call2 = Call({"model": "gpt-4o", "input": "hi"}, "responses")
    await CountTokens().after(call2, resp)
    assert call2.usage.output_tokens == tokens("Hello world")
    assert call2.usage.output_tokens_estimated


async def test_after_leaves_unknown_shapes_alone() -> None:
    call = chat_call()
    await CountTokens().after(call, {"something": "else"})
    assert call.usage.output_tokens is None


# -- streams ------------------------------------------------------------------------------------

CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o"}


def chat_chunks(deltas: list[str], usage: dict[str, Any] | None) -> list[ChatCompletionChunk]:
    chunks = [
        ChatCompletionChunk.model_validate({**CHUNK, "choices": [{"index": 0, "delta": {"content": d}}]})
        for d in deltas
    ]
    if usage is not None:
        chunks.append(ChatCompletionChunk.model_validate({**CHUNK, "choices": [], "usage": usage}))
    return chunks


def feed(hook: CountTokens, call: Call, chunks: list[Any]) -> None:
    """What the chain does per chunk: usage first, then the hook."""
    for chunk in chunks:
        call.usage.record_reported(chunk)
        assert hook.on_chunk(call, chunk) is chunk


def test_stream_without_usage_chunk_is_counted_locally() -> None:
    hook, call = CountTokens(), chat_call(stream=True)
    deltas = ["The", " weather", " is", " sunny", " today."]
    feed(hook, call, chat_chunks(deltas, None))
    hook.on_stream_end(call, "completed")
    assert call.usage.output_tokens == tokens("".join(deltas))
    assert call.usage.output_tokens_estimated
    assert "count_tokens.deltas" not in call.state


def test_stream_with_usage_chunk_uses_it() -> None:
    hook, call = CountTokens(), chat_call(stream=True)
    feed(
        hook, call, chat_chunks(["a", "b"], {"prompt_tokens": 9, "completion_tokens": 41, "total_tokens": 50})
    )
    hook.on_stream_end(call, "completed")
    assert call.usage.output_tokens == 41
    assert not call.usage.output_tokens_estimated


def test_stream_tool_call_deltas_are_counted() -> None:
    hook, call = CountTokens(), chat_call(stream=True)
    chunk = ChatCompletionChunk.model_validate(
        {
            **CHUNK,
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "t",
                                "type": "function",
                                "function": {"name": "weather", "arguments": '{"c'},
                            }
                        ]
                    },
                }
            ],
        }
    )
    feed(hook, call, [chunk])
    hook.on_stream_end(call, "closed")
    assert call.usage.output_tokens == tokens('weather{"c')


def test_empty_stream_counts_zero() -> None:
    hook, call = CountTokens(), chat_call(stream=True)
    hook.on_stream_end(call, "completed")
    assert call.usage.output_tokens == 0
    assert call.usage.output_tokens_estimated


def test_responses_stream_events() -> None:
    hook, call = CountTokens(), Call({"model": "gpt-4o", "input": "hi", "stream": True}, "responses")
    events = [
        {"type": "response.created", "response": {"id": "r"}},
        {"type": "response.output_text.delta", "delta": "Hello", "item_id": "m", "output_index": 0},
        {"type": "response.output_text.delta", "delta": " world", "item_id": "m", "output_index": 0},
        {"type": "response.output_text.done", "text": "Hello world"},
    ]
    feed(hook, call, events)
    hook.on_stream_end(call, "abandoned")
    assert call.usage.output_tokens == tokens("Hello world")
    assert call.usage.output_tokens_estimated


# -- end to end: real client, embedded server ----------------------------------------------------


class Shorten(Hook):
    name = "shorten"

    async def before(self, call: Call) -> None:
        if call.operation == "chat":
            shorten(call)


@pytest.fixture
def mw() -> Middleware:
    return Middleware([Shorten(), CountTokens()])


LONG_MESSAGES = [*MESSAGES, {"role": "user", "content": LONG}]


def server_input_tokens(server: EmbeddedServer) -> int:
    body = server.requests[-1].body
    return count_request("responses" if "input" in body else "chat", body)[0]


async def test_e2e_chat_usage(
    mw: Middleware, async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    client = mw.wrap(async_client)
    response = await client.chat.completions.create(model="gpt-4o-mini", messages=LONG_MESSAGES)
    usage = mw.usage
    assert usage.calls == 1
    assert usage.input_tokens_original == count_tokens(LONG_MESSAGES, "gpt-4o-mini")
    assert usage.input_tokens_sent == server_input_tokens(live_server)
    assert usage.input_tokens_saved > 0
    assert usage.input_tokens_reported == response.usage.prompt_tokens
    assert usage.output_tokens == response.usage.completion_tokens
    # Reported means what the server billed (its own count), never tokenmw's local count.
    billed = server_billed(live_server)
    assert (usage.input_tokens_reported, usage.output_tokens) == (billed.input_tokens, billed.output_tokens)
    assert usage.input_tokens_reported != usage.input_tokens_sent
    assert usage.input_tokens_billed == billed.input_tokens
    assert usage.output_tokens_counted_locally == 0
    assert usage.by_model["gpt-4o-mini"].calls == 1
    assert usage.cost_usd is not None and usage.cost_usd > 0


@pytest.mark.parametrize("include_usage", [True, False])
async def test_e2e_stream(
    mw: Middleware, async_client: openai.AsyncOpenAI, live_server: EmbeddedServer, include_usage: bool
) -> None:
    client = mw.wrap(async_client)
    options: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-tokenmw-output-offset": "5"},  # billed output differs from the text's count
        **options,
    )
    text = ""
    reported = None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        if chunk.usage is not None:
            reported = chunk.usage.completion_tokens
    usage = mw.usage
    assert usage.calls == 1
    assert usage.input_tokens_sent == server_input_tokens(live_server)
    billed = server_billed(live_server)
    if include_usage:
        assert usage.output_tokens == reported == billed.output_tokens == tokens(text) + 5
        assert usage.input_tokens_reported == billed.input_tokens != usage.input_tokens_sent
        assert usage.output_tokens_counted_locally == 0
    else:
        # Nothing reported: the local count of the streamed text, not a figure from elsewhere.
        assert billed.input_tokens_reported == billed.output_tokens_reported == 0
        assert usage.output_tokens == tokens(text) > 0
        assert usage.output_tokens_counted_locally == usage.output_tokens
        assert usage.input_tokens_reported == 0
        assert usage.input_tokens_billed == usage.input_tokens_sent


def test_e2e_sync_responses(sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    mw = Middleware([CountTokens()])
    client = mw.wrap(sync_client)
    response = client.responses.create(
        model="gpt-4o-mini",
        instructions="Be brief.",
        input="Hello there",
        extra_headers={"x-tokenmw-usage-offset": "40", "x-tokenmw-output-offset": "3"},
    )
    assert mw.usage.input_tokens_sent == server_input_tokens(live_server)
    assert mw.usage.input_tokens_reported == response.usage.input_tokens
    assert mw.usage.output_tokens == response.usage.output_tokens
    billed = server_billed(live_server)
    assert (mw.usage.input_tokens_reported, mw.usage.output_tokens) == (
        billed.input_tokens,
        billed.output_tokens,
    )
    assert mw.usage.input_tokens_reported != mw.usage.input_tokens_sent
    assert mw.usage.output_tokens == tokens(response.output_text) + 3


async def test_e2e_budget_guard_sends_nothing(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    mw = Middleware([CountTokens(max_input_tokens=20)], on_hook_error="skip")
    client = mw.wrap(async_client)
    with pytest.raises(TokenBudgetExceeded):
        await client.chat.completions.create(model="gpt-4o-mini", messages=LONG_MESSAGES)
    with pytest.raises(TokenBudgetExceeded):
        await client.chat.completions.create(model="gpt-4o-mini", messages=LONG_MESSAGES, stream=True)
    assert live_server.requests == []
    assert mw.usage.calls == 0


def test_public_names() -> None:
    import tokenmw

    assert tokenmw.CountTokens is CountTokens
    assert tokenmw.TokenBudgetExceeded is TokenBudgetExceeded
    assert CountTokens.name == "count_tokens"
    assert repr(CountTokens(5)) == "CountTokens(max_input_tokens=5)"
