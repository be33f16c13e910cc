"""The fault table: every hook phase failing every way, API errors, cancellation (issue 11).

End to end: the real openai client against the embedded server. What each row checks is what the
README's "What happens when…" section promises the caller.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
import pytest

import tokenmw
from tokenmw import Call, Hook, Middleware
from tokenmw._core.errors import HookResultError, HookTimeout
from tokenmw._tokens import count_cache
from tokenmw.server import EmbeddedServer

from .._otel import capture
from ..conftest import MESSAGES

SLOW = 0.5
BUDGET = 0.1


class HookBug(Exception):
    """What a broken hook raises."""


@dataclass(frozen=True)
class Fault:
    phase: str
    how: str  # "raises", "wrong type", "too slow"

    @property
    def before_the_call(self) -> bool:
        return self.phase in ("before", "wrap-before-next", "on_send")

    @property
    def streamed(self) -> bool:
        return self.phase in ("on_chunk", "on_stream_end")

    @property
    def expected_error(self) -> type[BaseException]:
        return {"raises": HookBug, "wrong type": HookResultError, "too slow": HookTimeout}[self.how]

    def __str__(self) -> str:
        return f"{self.phase}-{self.how.replace(' ', '-')}"


FAULTS = [
    *(
        Fault(phase, "raises")
        for phase in (
            "before",
            "wrap-before-next",
            "wrap-after-next",
            "on_send",
            "after",
            "on_chunk",
            "on_stream_end",
        )
    ),
    *(Fault(phase, "wrong type") for phase in ("wrap-after-next", "after", "on_chunk")),
    *(Fault(phase, "too slow") for phase in ("before", "wrap-before-next", "on_send")),
]


class Faulty(Hook):
    """Fails in one phase, one way; every other phase behaves."""

    name = "faulty"

    def __init__(self, fault: Fault) -> None:
        self.fault = fault

    async def _fail(self, phase: str, call: Call) -> None:
        if self.fault.phase != phase:
            return
        call.request["temperature"] = 1.9  # a half-made change, to be rolled back
        if self.fault.how == "raises":
            raise HookBug(f"broken in {phase}")
        if self.fault.how == "too slow":
            await asyncio.sleep(SLOW)

    async def before(self, call: Call) -> None:
        await self._fail("before", call)

    async def wrap(self, call: Call, call_next: tokenmw.CallNext) -> Any:
        await self._fail("wrap-before-next", call)
        response = await call_next(call)
        if self.fault.phase == "wrap-after-next":
            if self.fault.how == "raises":
                raise HookBug("broken after call_next")
            return None  # wrong type: forgot to return the response
        return response

    async def on_send(self, call: Call) -> None:
        await self._fail("on_send", call)

    async def after(self, call: Call, response: Any) -> Any:
        if self.fault.phase == "after":
            if self.fault.how == "raises":
                raise HookBug("broken in after")
            return None
        return response

    def on_chunk(self, call: Call, chunk: Any) -> Any:
        if self.fault.phase == "on_chunk":
            if self.fault.how == "raises":
                raise HookBug("broken in on_chunk")
            return "text instead of a chunk"
        return chunk

    def on_stream_end(self, call: Call, outcome: tokenmw.StreamOutcome) -> None:
        if self.fault.phase == "on_stream_end":
            raise HookBug("broken in on_stream_end")


def chat_requests(server: EmbeddedServer) -> list[Any]:
    return [r.body for r in server.requests if r.path.endswith("/chat/completions")]


def answer(client: openai.OpenAI, stream: bool) -> str:
    if not stream:
        response = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert isinstance(response, openai.types.chat.ChatCompletion)
        return response.choices[0].message.content or ""
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_under_skip_the_caller_always_gets_the_models_answer(
    fault: Fault, sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    expected = answer(sync_client, fault.streamed)
    live_server.reset()
    mw = Middleware([Faulty(fault), tokenmw.CountTokens()], on_hook_error="skip", hook_timeout=BUDGET)
    assert answer(mw.wrap(sync_client), fault.streamed) == expected
    (body,) = chat_requests(live_server)  # sent once
    assert "temperature" not in body  # a failed request phase's change was rolled back
    assert mw.usage.calls == 1
    assert mw.usage.input_tokens_sent == tokenmw.count_tokens(MESSAGES, "gpt-4o-mini")


@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_under_raise_the_caller_gets_the_hooks_error(
    fault: Fault, sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    mw = Middleware([Faulty(fault), tokenmw.CountTokens()], on_hook_error="raise", hook_timeout=BUDGET)
    with pytest.raises(fault.expected_error, match="faulty" if fault.how != "raises" else "broken"):
        answer(mw.wrap(sync_client), fault.streamed)
    assert len(chat_requests(live_server)) == (0 if fault.before_the_call else 1)
    if fault.before_the_call:
        assert mw.usage.calls == 0 and mw.usage.input_tokens_sent == 0  # nothing was billed


@pytest.mark.parametrize("fault", [f for f in FAULTS if not f.streamed], ids=str)
async def test_under_skip_the_async_caller_gets_the_answer_too(
    fault: Fault, async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    mw = Middleware([Faulty(fault)], on_hook_error="skip", hook_timeout=BUDGET)
    response = await mw.wrap(async_client).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert response.choices[0].message.content
    assert len(chat_requests(live_server)) == 1


# -- API errors -------------------------------------------------------------------------------------


class Tally(Hook):
    """Counts each phase; a wrap that passes everything on."""

    name = "tally"

    def __init__(self) -> None:
        self.runs: dict[str, int] = {}

    def _note(self, phase: str) -> None:
        self.runs[phase] = self.runs.get(phase, 0) + 1

    async def before(self, call: Call) -> None:
        self._note("before")

    async def wrap(self, call: Call, call_next: tokenmw.CallNext) -> Any:
        self._note("wrap")
        return await call_next(call)

    async def on_send(self, call: Call) -> None:
        self._note("on_send")

    async def after(self, call: Call, response: Any) -> Any:
        self._note("after")
        return response

    def on_stream_end(self, call: Call, outcome: tokenmw.StreamOutcome) -> None:
        self._note(f"end:{outcome}")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


API_ERRORS = {
    "400": (openai.BadRequestError, {"x-tokenmw-error": "400"}, False),
    "401": (openai.AuthenticationError, {"x-tokenmw-error": "401"}, False),
    "404": (openai.NotFoundError, {"x-tokenmw-error": "404"}, False),
    "429": (openai.RateLimitError, {"x-tokenmw-error": "429"}, True),
    "500": (openai.InternalServerError, {"x-tokenmw-error": "500"}, True),
    "503": (openai.InternalServerError, {"x-tokenmw-error": "503"}, True),
    "read timeout": (openai.APITimeoutError, {"x-tokenmw-latency": "2"}, True),
}


def _client(server: EmbeddedServer, *, retries: int, base_url: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="test-key",
        base_url=base_url or server.base_url,
        max_retries=retries,
        timeout=httpx2.Timeout(0.5),
    )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("kind", [*API_ERRORS, "connection refused"])
def test_api_errors_reach_the_caller_as_the_clients_own(
    kind: str, stream: bool, live_server: EmbeddedServer
) -> None:
    if kind == "connection refused":
        expected: type[BaseException] = openai.APIConnectionError
        headers: dict[str, str] = {}
        retried = True
        base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    else:
        expected, headers, retried = API_ERRORS[kind]
        base_url = None
    otel = capture()
    otel.clear()
    tally = Tally()
    mw = Middleware([tally, tokenmw.CountTokens()])
    args = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": stream, "extra_headers": headers}

    plain = _client(live_server, retries=0, base_url=base_url)
    with pytest.raises(expected):
        plain.chat.completions.create(**args)  # the unwrapped client's outcome
    live_server.reset()

    client = mw.wrap(_client(live_server, retries=1, base_url=base_url))
    with pytest.raises(expected) as raised:
        client.chat.completions.create(**args)
    assert type(raised.value) is expected or expected is openai.APIConnectionError
    # openai's retries run inside the one chain run: each hook phase ran once.
    assert tally.runs == {"before": 1, "wrap": 1, "on_send": 1}
    if base_url is None:
        assert len(chat_requests(live_server)) == (2 if retried else 1)
    calls = [s for s in otel.spans() if s.name == "chat gpt-4o-mini"]
    assert len(calls) == 1  # the end of the call ran once
    assert calls[0].attributes["error.type"] == type(raised.value).__qualname__
    assert mw.usage.calls == 0 and mw.usage.input_tokens_sent == 0  # nothing half-recorded


# -- cancellation -------------------------------------------------------------------------------------


def _no_count_work_pending() -> bool:
    pool = count_cache._executor
    return pool is None or pool._work_queue.qsize() == 0


async def test_cancelling_mid_call_leaves_nothing_running_open_or_half_recorded(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    otel = capture()
    otel.clear()
    tally = Tally()
    mw = Middleware([tally, tokenmw.CountTokens()])
    client = mw.wrap(async_client)
    long_prompt = [{"role": "user", "content": " ".join(f"cancel{i}" for i in range(30_000))}]
    task = asyncio.create_task(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=long_prompt, extra_headers={"x-tokenmw-latency": "2"}
        )
    )
    while not chat_requests(live_server):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (call_span,) = [s for s in otel.spans() if s.name == "chat gpt-4o-mini"]  # ended, not left open
    assert call_span.attributes["error.type"] == "CancelledError"
    assert "after" not in tally.runs
    assert mw.usage.calls == 0 and mw.usage.input_tokens_sent == 0 and mw.usage.output_tokens == 0
    assert _no_count_work_pending()


async def test_cancelling_mid_stream_ends_the_call_once(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    otel = capture()
    otel.clear()
    tally = Tally()
    mw = Middleware([tally, tokenmw.CountTokens()])
    client = mw.wrap(async_client)
    got: list[Any] = []

    async def read() -> None:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            extra_headers={"x-tokenmw-chunk-delay": "0.05"},
        )
        async for chunk in stream:
            got.append(chunk)

    task = asyncio.create_task(read())
    while len(got) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    ends = {k: v for k, v in tally.runs.items() if k.startswith("end:")}
    assert sum(ends.values()) == 1  # exactly once
    calls = [s for s in otel.spans() if s.name == "chat gpt-4o-mini"]
    assert len(calls) == 1
    assert mw.usage.calls in (0, 1)
    if mw.usage.calls == 0:  # not recorded, or recorded whole: never half
        assert mw.usage.input_tokens_sent == 0 and mw.usage.output_tokens == 0
    (record,) = live_server.streams
    assert record.wait(5) and record.disconnected  # upstream closed, not left streaming
    deadline = time.monotonic() + 5
    while not _no_count_work_pending() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert _no_count_work_pending()
