"""Faults around one call, end to end: the real openai client, the embedded server over loopback.

Each test says what the caller must see when something goes wrong (a hook that raises, returns the
wrong thing or takes too long; a wrap hook with its own deadline; one-shot iterables) and checks
on the server that the request went out exactly as often as it should.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm
import openai
import pytest

import tokenmw
from tokenmw import Call, Hook, Middleware
from tokenmw._core.errors import HookResultError, HookTimeout
from tokenmw.server import EmbeddedServer

from .._otel import capture
from ..conftest import MESSAGES

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def chat_requests(server: EmbeddedServer) -> list[Any]:
    return [r.body for r in server.requests if r.path.endswith("/chat/completions")]


class Noop(Hook):
    name = "noop"
    sync_fast_path = True

    async def before(self, call: Call) -> None:
        pass


# -- 1. one-shot iterables ----------------------------------------------------------------------


def test_generators_and_chains_reach_the_server_through_the_openai_client(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    mw = Middleware([Noop(), tokenmw.CountTokens()])
    client = mw.wrap(sync_client)
    history = [MESSAGES[0]]
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=itertools.chain(history, [MESSAGES[1]]),  # type: ignore[arg-type]
        tools=(t for t in TOOLS),  # type: ignore[arg-type]
    )
    (body,) = chat_requests(live_server)
    assert body["messages"] == MESSAGES
    assert body["tools"] == TOOLS
    assert mw.usage.input_tokens_sent == tokenmw.count_tokens(MESSAGES, "gpt-4o-mini", tools=TOOLS)


def test_generators_reach_the_server_through_litellm(live_server: EmbeddedServer) -> None:
    # openai's client turns iterables into lists before tokenmw sees them; litellm hands them on as
    # given, so counting them used to consume them: the server got `messages: []`, `tools: []`.
    mw = Middleware([Noop(), tokenmw.CountTokens()])
    completion = tokenmw.wrap_litellm(litellm.completion, mw)
    completion(
        model="openai/gpt-4o-mini",
        api_base=live_server.base_url,
        api_key="test-key",
        messages=itertools.chain([MESSAGES[0]], [MESSAGES[1]]),
        tools=(t for t in TOOLS),
    )
    (body,) = chat_requests(live_server)
    assert body["messages"] == MESSAGES
    assert body["tools"] == TOOLS
    assert mw.usage.input_tokens_sent == tokenmw.count_tokens(MESSAGES, "gpt-4o-mini", tools=TOOLS)


async def test_tuples_and_nested_iterables_are_counted_and_sent_once() -> None:
    sent: list[dict[str, Any]] = []

    async def send(call: Call) -> str:
        sent.append(call.request)
        return "reply"

    parts = ({"type": "text", "text": "look at this"},)  # a tuple inside a message: read, not consumed
    caller_message = {"role": "user", "content": parts}
    request = {"model": "gpt-4o", "messages": (caller_message,), "stop": (s for s in ("a", "b"))}
    mw = Middleware([tokenmw.CountTokens()])
    await mw.run(Call(request, "chat"), send)
    assert sent[0]["messages"] == [caller_message]
    assert sent[0]["stop"] == ["a", "b"]
    expected = [{"role": "user", "content": [{"type": "text", "text": "look at this"}]}]
    assert mw.usage.input_tokens_sent == tokenmw.count_tokens(expected, "gpt-4o")


# -- 4. SDK message objects changed between calls -------------------------------------------------


def test_a_reused_sdk_message_with_new_content_is_counted_again(live_server: EmbeddedServer) -> None:
    from openai.types.chat import ChatCompletionMessage

    mw = Middleware([tokenmw.CountTokens(max_input_tokens=100)])
    completion = tokenmw.wrap_litellm(litellm.completion, mw)
    message = ChatCompletionMessage.model_validate({"role": "assistant", "content": "Sunny."})
    args = {"model": "openai/gpt-4o-mini", "api_base": live_server.base_url, "api_key": "test-key"}
    completion(**args, messages=[MESSAGES[1], message])
    message.content = "It is sunny and warm. " * 30  # the agent reuses the object
    with pytest.raises(tokenmw.TokenBudgetExceeded) as refused:
        completion(**args, messages=[MESSAGES[1], message])
    assert refused.value.tokens == tokenmw.count_tokens(
        [MESSAGES[1], {"role": "assistant", "content": message.content}], "gpt-4o-mini"
    )
    assert len(chat_requests(live_server)) == 1  # the over-budget request was not sent


# -- 2. a wrap hook's own error after call_next failed ------------------------------------------


class Deadline(Hook):
    name = "deadline"

    async def wrap(self, call: Call, call_next: tokenmw.CallNext) -> Any:
        return await asyncio.wait_for(call_next(call), 0.2)


class AppError(Exception):
    pass


class ConvertRateLimit(Hook):
    name = "convert"

    async def wrap(self, call: Call, call_next: tokenmw.CallNext) -> Any:
        try:
            return await call_next(call)
        except openai.RateLimitError as error:
            raise AppError("slow down") from error


@pytest.mark.parametrize("policy", ["skip", "raise"])
async def test_a_deadline_hook_that_times_out_never_sends_again(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer, policy: str
) -> None:
    client = Middleware([Deadline()], on_hook_error=policy).wrap(async_client)  # type: ignore[arg-type]
    with pytest.raises(asyncio.TimeoutError):  # the builtin TimeoutError from 3.11
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-tokenmw-latency": "1"}
        )
    assert len(chat_requests(live_server)) == 1


@pytest.mark.parametrize("policy", ["skip", "raise"])
async def test_a_hook_turning_an_api_error_into_its_own_reaches_the_caller(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer, policy: str
) -> None:
    client = Middleware([ConvertRateLimit()], on_hook_error=policy).wrap(async_client)  # type: ignore[arg-type]
    with pytest.raises(AppError):
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-tokenmw-error": "429"}
        )
    assert len(chat_requests(live_server)) == 1


# -- 8. hooks returning the wrong thing ------------------------------------------------------------


class ForgetsReturn(Hook):
    name = "forgets_return"

    async def after(self, call: Call, response: Any) -> Any:
        response.id = "seen"  # and no `return response`


class ReturnsText(Hook):
    name = "returns_text"

    def on_chunk(self, call: Call, chunk: Any) -> Any:
        return chunk.choices[0].delta.content if chunk.choices else chunk


class AsyncOnChunk(Hook):
    name = "async_on_chunk"

    async def on_chunk(self, call: Call, chunk: Any) -> Any:  # type: ignore[override]
        return chunk


def test_an_after_hook_returning_none_is_skipped_and_logged_once(
    sync_client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    client = Middleware([ForgetsReturn()]).wrap(sync_client)
    with caplog.at_level(logging.DEBUG, logger="tokenmw"):
        for _ in range(2):
            response = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            assert isinstance(response, openai.types.chat.ChatCompletion)
            assert response.choices[0].message.content
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "forgets_return" in warnings[0].getMessage()
    assert "HookResultError" in warnings[0].getMessage()


def test_an_after_hook_returning_none_raises_a_clear_error_when_strict(sync_client: openai.OpenAI) -> None:
    client = Middleware([ForgetsReturn()], on_hook_error="raise").wrap(sync_client)
    with pytest.raises(TypeError, match=r"'forgets_return' after returned NoneType.*return response"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


@pytest.mark.parametrize("hook", [ReturnsText(), AsyncOnChunk()], ids=["str", "coroutine"])
def test_an_on_chunk_returning_no_chunk_is_skipped(
    sync_client: openai.OpenAI, hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    client = Middleware([hook]).wrap(sync_client)
    with caplog.at_level(logging.WARNING, logger="tokenmw"):
        chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert chunks
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert [r for r in caplog.records if hook.name in r.getMessage()]


def test_an_on_chunk_returning_text_raises_when_strict(sync_client: openai.OpenAI) -> None:
    client = Middleware([ReturnsText()], on_hook_error="raise").wrap(sync_client)
    with pytest.raises(HookResultError, match="returns_text"):
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))


# -- 9. StopIteration leaking out of on_chunk -----------------------------------------------------


class LeaksStop(Hook):
    name = "leaks_stop"

    def __init__(self, error: type[BaseException]) -> None:
        self.error = error
        self.seen = 0

    def on_chunk(self, call: Call, chunk: Any) -> Any:
        self.seen += 1
        if self.seen == 2:
            raise self.error  # e.g. next() on an exhausted iterator inside the hook
        return chunk


@pytest.mark.parametrize("error", [StopIteration, StopAsyncIteration])
def test_stop_iteration_from_on_chunk_is_an_error_when_strict(
    sync_client: openai.OpenAI, error: type[BaseException]
) -> None:
    client = Middleware([LeaksStop(error)], on_hook_error="raise").wrap(sync_client)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    with pytest.raises(RuntimeError, match=error.__name__):
        list(stream)


@pytest.mark.parametrize("error", [StopIteration, StopAsyncIteration])
async def test_stop_iteration_from_on_chunk_is_an_error_when_strict_async(
    async_client: openai.AsyncOpenAI, error: type[BaseException]
) -> None:
    client = Middleware([LeaksStop(error)], on_hook_error="raise").wrap(async_client)
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    with pytest.raises(RuntimeError, match=error.__name__):
        async for _ in stream:
            pass


@pytest.mark.parametrize("error", [StopIteration, StopAsyncIteration])
def test_stop_iteration_from_on_chunk_is_skipped_otherwise(
    sync_client: openai.OpenAI, error: type[BaseException]
) -> None:
    client = Middleware([LeaksStop(error)]).wrap(sync_client)
    plain = list(sync_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert len(chunks) == len(plain)  # nothing truncated


# -- hook_timeout ---------------------------------------------------------------------------------


class Slow(Hook):
    """Takes ``seconds`` in one request phase, awaiting (``sleep``) or blocking (``block``)."""

    name = "slow"

    def __init__(self, phase: str, seconds: float = 1.0, how: str = "sleep") -> None:
        self.phase = phase
        self.seconds = seconds
        self.how = how

    async def _take_time(self, call: Call) -> None:
        call.request["temperature"] = 1.5  # a change that must be rolled back
        if self.how == "sleep":
            await asyncio.sleep(self.seconds)
        else:
            import time

            time.sleep(self.seconds)

    async def before(self, call: Call) -> None:
        if self.phase == "before":
            await self._take_time(call)

    async def on_send(self, call: Call) -> None:
        if self.phase == "on_send":
            await self._take_time(call)

    async def wrap(self, call: Call, call_next: tokenmw.CallNext) -> Any:
        if self.phase == "wrap":
            await self._take_time(call)
        return await call_next(call)


@pytest.mark.parametrize("how", ["sleep", "block"])
@pytest.mark.parametrize("phase", ["before", "wrap", "on_send"])
async def test_a_request_phase_hook_over_its_time_budget_is_skipped(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer, phase: str, how: str
) -> None:
    otel = capture()
    otel.clear()
    mw = Middleware([Slow(phase, 0.5, how)], hook_timeout=0.1)
    client = mw.wrap(async_client)
    response = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert response.choices[0].message.content
    (body,) = chat_requests(live_server)
    assert "temperature" not in body  # its change was rolled back
    hook_span = otel.span(f"tokenmw.slow.{phase}")
    assert hook_span.attributes["tokenmw.hook.skipped"] is True
    assert hook_span.attributes["error.type"] == "HookTimeout"
    assert hook_span.attributes["tokenmw.hook.timeout"] == 0.1
    assert hook_span.status.status_code.name == "ERROR"


@pytest.mark.parametrize("phase", ["before", "wrap", "on_send"])
def test_a_slow_hook_raises_hook_timeout_when_strict_and_nothing_is_sent(
    sync_client: openai.OpenAI, live_server: EmbeddedServer, phase: str
) -> None:
    client = Middleware([Slow(phase, 0.5)], on_hook_error="raise", hook_timeout=0.1).wrap(sync_client)
    with pytest.raises(HookTimeout, match=r"'slow'.*hook_timeout=0\.1s"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert chat_requests(live_server) == []


async def test_the_time_budget_does_not_cover_the_model_call_or_a_fast_hook(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    seen: list[str] = []

    class Fast(Hook):
        name = "fast"

        async def before(self, call: Call) -> None:
            seen.append("before")

        async def wrap(self, call: Call, call_next: tokenmw.CallNext) -> Any:
            response = await call_next(call)  # the model takes longer than the budget
            seen.append("wrap")
            return response

    mw = Middleware([Fast()], on_hook_error="raise", hook_timeout=0.2)
    client = mw.wrap(async_client)
    await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-tokenmw-latency": "0.5"}
    )
    assert seen == ["before", "wrap"]
    assert len(chat_requests(live_server)) == 1


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "1", True])
def test_hook_timeout_is_validated(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"hook_timeout must be None .* number of seconds > 0"):
        Middleware([], hook_timeout=bad)


def test_hook_timeout_accepts_seconds() -> None:
    assert Middleware([], hook_timeout=0.5).hook_timeout == 0.5
    assert Middleware([], hook_timeout=2).hook_timeout == 2
    assert Middleware([]).hook_timeout is None


# -- TokenBudgetExceeded ------------------------------------------------------------------------------


def test_a_budget_refusal_names_tokens_limit_and_where_the_limit_came_from(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    n = tokenmw.count_tokens(MESSAGES, "gpt-4o-mini")
    client = Middleware([tokenmw.CountTokens(max_input_tokens=n - 1)]).wrap(sync_client)
    with pytest.raises(tokenmw.TokenBudgetExceeded) as refused:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    message = str(refused.value)
    assert f"{n} input tokens" in message
    assert f"budget of {n - 1}" in message
    assert f"CountTokens(max_input_tokens={n - 1})" in message
    assert refused.value.source == f"CountTokens(max_input_tokens={n - 1})"
    assert chat_requests(live_server) == []


def test_the_default_budget_names_the_context_window_it_used(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    huge = " ".join(f"w{i}" for i in range(9000))  # over gpt-4's 8,192 tokens
    client = Middleware([tokenmw.CountTokens()]).wrap(sync_client)
    with pytest.raises(
        tokenmw.TokenBudgetExceeded, match=r"budget of 8192 for gpt-4 \(from the context window of gpt-4 in"
    ) as refused:
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": huge}])
    assert refused.value.source is not None and "table" in refused.value.source
    assert chat_requests(live_server) == []


@pytest.mark.parametrize("stream", [False, True])
async def test_a_budget_refusal_is_also_the_apis_own_context_length_error(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer, stream: bool
) -> None:
    # Handlers written for the API's error (catch BadRequestError, look for the code) also work.
    client = Middleware([tokenmw.CountTokens(max_input_tokens=5)]).wrap(async_client)
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=stream)
    error = refused.value
    assert isinstance(error, tokenmw.TokenBudgetExceeded)
    assert error.status_code == 400
    assert error.code == "context_length_exceeded"
    assert "context_length_exceeded" in str(error)
    assert error.limit == 5 and error.tokens == tokenmw.count_tokens(MESSAGES, "gpt-4o-mini")
    assert chat_requests(live_server) == []
