"""The wrapped OpenAI client end to end: real client, real HTTP, the embedded server."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

import tokenmw
from tokenmw import Call, Hook, Middleware
from tokenmw.server import EmbeddedServer

from .._billed import server_billed
from ..conftest import MESSAGES

MARK = " [seen by tokenmw]"


class Marker(Hook):
    """Changes the request (so the server proves hooks ran) and counts each phase."""

    name = "marker"

    def __init__(self) -> None:
        self.counts = {"before": 0, "after": 0, "chunks": 0, "end": 0}
        self.outcomes: list[str] = []
        self.responses: list[Any] = []

    async def before(self, call: Call) -> None:
        self.counts["before"] += 1
        if call.operation == "chat":
            messages = list(call.request["messages"])
            messages[-1] = {**messages[-1], "content": messages[-1]["content"] + MARK}
            call.request["messages"] = messages
        else:
            call.request["input"] = call.request["input"] + MARK

    async def after(self, call: Call, response: Any) -> Any:
        self.counts["after"] += 1
        self.responses.append(response)
        return response

    def on_chunk(self, call: Call, chunk: Any) -> Any:
        self.counts["chunks"] += 1
        return chunk

    def on_stream_end(self, call: Call, outcome: tokenmw.StreamOutcome) -> None:
        self.counts["end"] += 1
        self.outcomes.append(outcome)


def last_user_text(server: EmbeddedServer) -> str:
    body = server.requests[-1].body
    if "messages" in body:
        return str(body["messages"][-1]["content"])
    return str(body["input"])


# -- non-streaming ------------------------------------------------------------------------------


def test_sync_chat(sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    hook = Marker()
    mw = Middleware([hook])
    client = mw.wrap(sync_client)
    assert isinstance(client, openai.OpenAI)
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert isinstance(resp, ChatCompletion)
    assert resp.choices[0].message.content
    assert last_user_text(live_server).endswith(MARK)
    assert hook.counts == {"before": 1, "after": 1, "chunks": 0, "end": 0}
    assert hook.responses == [resp]
    assert mw.usage.calls == 1
    assert mw.usage.input_tokens_reported == resp.usage.prompt_tokens  # type: ignore[union-attr]
    assert mw.usage.output_tokens == resp.usage.completion_tokens  # type: ignore[union-attr]
    billed = server_billed(live_server)
    assert (mw.usage.input_tokens_reported, mw.usage.output_tokens) == (
        billed.input_tokens,
        billed.output_tokens,
    )
    assert MESSAGES[-1]["content"].endswith("Paris.")  # the caller's messages were not mutated


async def test_async_chat(async_client: openai.AsyncOpenAI, live_server: EmbeddedServer) -> None:
    hook = Marker()
    client = Middleware([hook]).wrap(async_client)
    assert isinstance(client, openai.AsyncOpenAI)
    resp = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert isinstance(resp, ChatCompletion)
    assert last_user_text(live_server).endswith(MARK)
    assert hook.counts["before"] == hook.counts["after"] == 1


def test_sync_responses(sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    hook = Marker()
    client = Middleware([hook]).wrap(sync_client)
    resp = client.responses.create(model="gpt-4o-mini", input="Summarise the news.")
    assert isinstance(resp, Response)
    assert resp.output_text
    assert last_user_text(live_server) == "Summarise the news." + MARK
    assert hook.counts["before"] == hook.counts["after"] == 1


async def test_async_responses(async_client: openai.AsyncOpenAI, live_server: EmbeddedServer) -> None:
    hook = Marker()
    mw = Middleware([hook])
    resp = await mw.wrap(async_client).responses.create(model="gpt-4o-mini", input="Hello")
    assert isinstance(resp, Response)
    assert last_user_text(live_server) == "Hello" + MARK
    assert mw.usage.input_tokens_reported == resp.usage.input_tokens  # type: ignore[union-attr]
    assert mw.usage.input_tokens_reported == server_billed(live_server).input_tokens


# -- streaming ----------------------------------------------------------------------------------


def test_sync_stream_matches_unwrapped(sync_client: openai.OpenAI) -> None:
    plain = [c.model_dump() for c in sync_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )]
    hook = Marker()
    wrapped = Middleware([hook]).wrap(sync_client)
    stream = wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert len(chunks) == len(plain) > 2
    assert [c.choices[0].delta.content for c in chunks if c.choices] == [
        c["choices"][0]["delta"]["content"] for c in plain if c["choices"]
    ]
    assert hook.counts["chunks"] == len(chunks)
    assert hook.outcomes == ["completed"]
    assert hook.counts["after"] == 0  # after() is for whole responses; streams get on_chunk


async def test_async_stream_matches_unwrapped(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    plain = [c async for c in await async_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )]
    hook = Marker()
    mw = Middleware([hook])
    stream = await mw.wrap(async_client).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, openai.AsyncStream)
    chunks = [c async for c in stream]
    assert len(chunks) == len(plain) + 1  # plus the usage chunk asked for
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert hook.outcomes == ["completed"]
    assert mw.usage.calls == 1
    assert mw.usage.output_tokens == chunks[-1].usage.completion_tokens
    billed = server_billed(live_server)  # both streams billed; only the second reported usage
    assert (billed.requests, billed.input_tokens_reported) == (2, mw.usage.input_tokens_reported)
    assert mw.usage.output_tokens == billed.output_tokens_reported
    times = mw.hook_times.snapshot()
    assert times[("marker", "on_chunk")].runs == len(chunks)
    assert times[("marker", "on_stream_end")].runs == 1


def test_sync_stream_end_runs_once_on_early_close(sync_client: openai.OpenAI) -> None:
    hook = Marker()
    client = Middleware([hook]).wrap(sync_client)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(stream)
    stream.close()
    stream.close()
    assert hook.outcomes == ["closed"]
    assert stream.response.is_closed


def test_sync_stream_end_runs_once_on_break_out_of_with(sync_client: openai.OpenAI) -> None:
    hook = Marker()
    client = Middleware([hook]).wrap(sync_client)
    with client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
        for _ in stream:
            break
    assert hook.outcomes == ["closed"]
    del stream
    gc.collect()
    assert hook.outcomes == ["closed"]


async def test_async_stream_end_runs_once_on_break_out_of_with(async_client: openai.AsyncOpenAI) -> None:
    hook = Marker()
    client = Middleware([hook]).wrap(async_client)
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    async with stream:
        async for _ in stream:
            break
    assert hook.outcomes == ["closed"]


def test_abandoned_stream_still_ends_the_call(sync_client: openai.OpenAI) -> None:
    hook = Marker()
    mw = Middleware([hook])
    stream = mw.wrap(sync_client).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    next(stream)
    del stream
    gc.collect()
    assert hook.outcomes == ["abandoned"]
    assert mw.usage.calls == 1


def test_sync_responses_stream(sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    hook = Marker()
    mw = Middleware([hook])
    events = list(mw.wrap(sync_client).responses.create(model="gpt-4o-mini", input="Hi", stream=True))
    assert events[-1].type == "response.completed"
    assert hook.outcomes == ["completed"]
    assert mw.usage.output_tokens == events[-1].response.usage.output_tokens
    billed = server_billed(live_server)
    assert (mw.usage.input_tokens_reported, mw.usage.output_tokens) == (
        billed.input_tokens,
        billed.output_tokens,
    )


def test_stream_error_ends_the_call_with_the_error(sync_client: openai.OpenAI) -> None:
    hook = Marker()
    mw = Middleware([hook])
    with pytest.raises(openai.APIStatusError):
        mw.wrap(sync_client).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-tokenmw-error": "500"}
        )
    assert mw.usage.calls == 0


# -- raw responses, pass-through, wrapping ----------------------------------------------------


def test_with_raw_response_sync(sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    hook = Marker()
    client = Middleware([hook]).wrap(sync_client)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw.headers.get("content-type", "").startswith("application/json")
    parsed = raw.parse()
    assert isinstance(parsed, ChatCompletion)
    assert hook.responses == [parsed]
    assert last_user_text(live_server).endswith(MARK)


async def test_with_raw_response_async_stream(async_client: openai.AsyncOpenAI) -> None:
    hook = Marker()
    client = Middleware([hook]).wrap(async_client)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    chunks = [c async for c in raw.parse()]
    assert chunks
    assert hook.counts["chunks"] == len(chunks)
    assert hook.outcomes == ["completed"]


def test_with_raw_response_responses(sync_client: openai.OpenAI) -> None:
    hook = Marker()
    raw = Middleware([hook]).wrap(sync_client).responses.with_raw_response.create(
        model="gpt-4o-mini", input="Hi"
    )
    assert isinstance(raw.parse(), Response)
    assert hook.counts["after"] == 1


def test_other_methods_pass_through(sync_client: openai.OpenAI) -> None:
    hook = Marker()
    client = Middleware([hook]).wrap(sync_client)
    models = client.models.list()
    assert models.data
    assert hook.counts["before"] == 0


def test_wrapping_twice_runs_hooks_once(sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    hook = Marker()
    mw = Middleware([hook])
    once = mw.wrap(sync_client)
    twice = mw.wrap(once)
    assert twice is once
    twice.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert hook.counts["before"] == 1
    assert last_user_text(live_server).count(MARK) == 1


def test_wrapping_is_per_instance(sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    hook = Marker()
    Middleware([hook]).wrap(sync_client)
    sync_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert hook.counts["before"] == 0
    assert not last_user_text(live_server).endswith(MARK)


def test_with_options_stays_wrapped(sync_client: openai.OpenAI) -> None:
    hook = Marker()
    client = Middleware([hook]).wrap(sync_client).with_options(timeout=5)
    assert isinstance(client, openai.OpenAI)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert hook.counts["before"] == 1


class Cache(Hook):
    name = "cache"

    def __init__(self) -> None:
        self.store: dict[str, Any] = {}

    async def wrap(self, call: Call, call_next: tokenmw.CallNext) -> Any:
        key = repr(call.request["messages"])
        if key not in self.store:
            self.store[key] = await call_next(call)
        return self.store[key]


async def test_short_circuit_sends_nothing(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    client = Middleware([Cache()]).wrap(async_client)
    first = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    second = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert second is first
    assert len(live_server.requests) == 1


class Exploding(Hook):
    name = "exploding"

    async def before(self, call: Call) -> None:
        raise KeyError("no such thing")


def test_failing_hook_skipped_end_to_end(sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    client = Middleware([Exploding(), Marker()]).wrap(sync_client)
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert resp.choices[0].message.content
    assert last_user_text(live_server).endswith(MARK)  # the hook after the broken one still ran


def test_failing_hook_raised_end_to_end(sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    client = Middleware([Exploding()], on_hook_error="raise").wrap(sync_client)
    with pytest.raises(KeyError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert live_server.requests == []


async def test_sync_client_inside_a_running_loop(sync_client: openai.OpenAI) -> None:
    hook = Marker()
    client = Middleware([hook]).wrap(sync_client)
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert resp.choices
    assert hook.counts["after"] == 1


async def test_concurrent_async_calls_keep_their_own_context(async_client: openai.AsyncOpenAI) -> None:
    seen: list[str] = []

    class Tag(Hook):
        async def before(self, call: Call) -> None:
            call.state["tag"] = call.request["messages"][-1]["content"]
            await asyncio.sleep(0)

        async def after(self, call: Call, response: Any) -> Any:
            seen.append(call.state["tag"])
            return response

    client = Middleware([Tag()]).wrap(async_client)
    prompts = [f"question {i}" for i in range(20)]
    await asyncio.gather(
        *(client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": p}])
          for p in prompts)
    )
    assert sorted(seen) == sorted(prompts)


def test_wrap_rejects_what_is_not_a_client() -> None:
    with pytest.raises(TypeError, match="wrap_litellm"):
        Middleware([]).wrap(object())


class Suspending(Hook):
    """Marked for the sync fast path, yet really suspends: the call must finish on the loop."""

    name = "suspending"
    sync_fast_path = True

    def __init__(self) -> None:
        self.tasks: list[bool] = []

    async def before(self, call: Call) -> None:
        await asyncio.sleep(0)  # a bare yield
        call.state["thread_result"] = await asyncio.to_thread(lambda: "from a thread")
        self.tasks.append(asyncio.current_task() is not None)

    async def after(self, call: Call, response: Any) -> Any:
        assert call.state["thread_result"] == "from a thread"
        return response


def test_sync_fast_path_falls_back_to_the_loop_when_a_hook_suspends(sync_client: openai.OpenAI) -> None:
    hook = Suspending()
    mw = Middleware([hook], on_hook_error="raise")
    assert mw.sync_fast_path
    client = mw.wrap(sync_client)
    for _ in range(3):
        resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert resp.choices
    assert hook.tasks == [True, True, True]  # after suspending, the rest ran as a loop task
    assert mw.hook_times.snapshot()[("suspending", "after")].runs == 3


def test_hooks_without_the_mark_always_get_a_task(sync_client: openai.OpenAI) -> None:
    seen: list[bool] = []

    class NeedsTask(Hook):
        async def before(self, call: Call) -> None:
            seen.append(asyncio.current_task() is not None)

    mw = Middleware([NeedsTask()])
    assert not mw.sync_fast_path
    mw.wrap(sync_client).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert seen == [True]


def test_azure_clients_are_wrapped_and_named_for_telemetry(live_server: EmbeddedServer) -> None:
    seen: list[str] = []

    class Provider(Hook):
        async def before(self, call: Call) -> None:
            seen.append(call.provider)

    azure = openai.AzureOpenAI(
        api_key="test-key", azure_endpoint=live_server.url, api_version="2024-10-21", max_retries=0
    )
    client = Middleware([Provider()]).wrap(azure)
    assert isinstance(client, openai.AzureOpenAI)
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert isinstance(resp, ChatCompletion) and resp.choices[0].message.content
    assert seen == ["azure.ai.openai"]
    record = live_server.requests[-1]  # the Azure path and header, answered as the OpenAI ones
    assert record.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert record.headers["api-key"] == "test-key"


def test_interrupted_sync_call_is_never_sent_later(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    import _thread
    import threading
    import time

    class Slow(Hook):
        sync_fast_path = True

        async def before(self, call: Call) -> None:
            if call.request["messages"][-1]["content"] == "first":
                await asyncio.to_thread(time.sleep, 0.5)

    client = Middleware([Slow()]).wrap(sync_client)
    timer = threading.Timer(0.1, _thread.interrupt_main)  # Ctrl-C while the loop waits
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "first"}])
    timer.join()
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "second"}])
    assert [r.body["messages"][-1]["content"] for r in live_server.requests] == ["second"]


def test_client_level_raw_response_runs_the_hooks(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    hook = Marker()
    client = Middleware([hook]).wrap(sync_client)
    raw = client.with_raw_response.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert isinstance(raw.parse(), ChatCompletion)
    raw = client.with_raw_response.responses.create(model="gpt-4o-mini", input="Hi")
    assert isinstance(raw.parse(), Response)
    assert hook.counts["before"] == hook.counts["after"] == 2
    assert last_user_text(live_server).endswith(MARK)


class EndFails(Hook):
    name = "end_fails"

    def on_stream_end(self, call: Call, outcome: tokenmw.StreamOutcome) -> None:
        raise RuntimeError("broken end")


def test_strict_failing_stream_end_still_ends_the_call(sync_client: openai.OpenAI) -> None:
    hook = Marker()
    mw = Middleware([hook, EndFails()], on_hook_error="raise")
    stream = mw.wrap(sync_client).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    with pytest.raises(RuntimeError, match="broken end"):
        list(stream)
    assert hook.outcomes == ["completed"]  # the other end hook still ran
    assert mw.usage.calls == 1


class ChunkRefuses(Hook):
    name = "chunk_refuses"

    def on_chunk(self, call: Call, chunk: Any) -> Any:
        raise tokenmw.TokenmwError("no more")


async def test_refusing_chunk_hook_ends_the_stream(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    hook = Marker()
    mw = Middleware([ChunkRefuses(), hook])  # hook sees chunks first (reverse order)
    stream = await mw.wrap(async_client).chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-tokenmw-chunk-delay": "0.01", "x-tokenmw-reply-words": "200"},
    )
    with pytest.raises(tokenmw.TokenmwError):
        await stream.__anext__()
    assert hook.outcomes == ["error"]
    assert mw.usage.calls == 0
    record = live_server.streams[-1]
    assert record.wait(5)
    assert record.disconnected and record.chunks_sent < record.chunks_total


def test_two_middlewares_stack_and_copy_stays_wrapped(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    inner, outer = Marker(), Marker()
    client = Middleware([outer]).wrap(Middleware([inner]).wrap(sync_client)).copy(timeout=5)
    assert isinstance(client, openai.OpenAI)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert inner.counts["before"] == outer.counts["before"] == 1
    assert last_user_text(live_server).count(MARK) == 2  # each chain changed the request once


def test_stacked_fast_path_chains(sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    outer = Middleware([tokenmw.CountTokens(), Suspending()])
    inner = Middleware([tokenmw.Enhance(max_words=5)])
    assert outer.sync_fast_path and inner.sync_fast_path
    client = outer.wrap(inner.wrap(sync_client))
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "Answer in at most 5 words." in live_server.requests[-1].body["messages"][0]["content"]
    assert outer.usage.calls == inner.usage.calls == 2


class StopAfterTwo(Hook):
    name = "stop_after_two"

    def __init__(self) -> None:
        self.seen = 0

    def on_chunk(self, call: Call, chunk: Any) -> Any:
        self.seen += 1
        if self.seen == 2:
            call.end_stream()
        return chunk


def test_a_hook_can_stop_a_stream_and_upstream_stops(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    marker = Marker()
    mw = Middleware([marker, StopAfterTwo()])
    stream = mw.wrap(sync_client).chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-tokenmw-chunk-delay": "0.01", "x-tokenmw-reply-words": "200"},
    )
    assert len(list(stream)) == 2
    assert marker.outcomes == ["stopped"]
    record = live_server.streams[-1]
    assert record.wait(5)
    assert record.disconnected and record.chunks_sent < record.chunks_total
    assert mw.usage.calls == 1


def test_with_streaming_response_runs_the_chain(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    hook = Marker()
    mw = Middleware([hook])
    client = mw.wrap(sync_client)
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    ) as response:
        parsed = response.parse()
        assert isinstance(parsed, ChatCompletion)
    assert hook.counts["before"] == hook.counts["after"] == 1 and mw.usage.calls == 1
    assert hook.responses == [parsed]
    assert last_user_text(live_server).endswith(MARK)


async def test_a_cache_hit_is_a_call_but_bills_nothing(async_client: openai.AsyncOpenAI) -> None:
    mw = Middleware([Cache()])
    client = mw.wrap(async_client)
    first = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert mw.usage.calls == 2
    assert mw.usage.input_tokens_reported == first.usage.prompt_tokens  # type: ignore[union-attr]
    assert mw.usage.output_tokens == first.usage.completion_tokens  # type: ignore[union-attr]
