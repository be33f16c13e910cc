"""A wrapped call leaves no reference cycles behind: what it made is freed when it returns.

The raw openai client leaves none; a closure that calls itself, a plan and its stream pointing at
each other, or a timer that reschedules itself would leave each call's request, body and options
for the garbage collector (a collection every few dozen calls, and a full one now and then that
stalls the event loop for tens of milliseconds on a loaded process). Counted with the collector
switched off and ``DEBUG_SAVEALL``: ``gc.collect()`` then returns what only it could have freed.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import openai

from tokenmw import Compress, CountTokens, Enhance, LimitResponse, Middleware

from ..conftest import MESSAGES

CALLS = 5
MODEL = "gpt-4o-mini"


def hooks() -> Middleware:
    return Middleware(
        [Compress(min_tokens=0), Enhance(max_words=60), LimitResponse(max_tokens=200), CountTokens()]
    )


@contextmanager
def collector_off() -> Iterator[Counter[str]]:
    """Within: the collector is off; after: what only it could free, by type."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    left: Counter[str] = Counter()
    try:
        yield left
    finally:
        gc.collect()
        left.update(type(o).__qualname__ for o in gc.garbage)
        gc.garbage.clear()
        gc.set_debug(0)
        if enabled:
            gc.enable()


async def cycles_left(call: Callable[[], Awaitable[Any] | Any]) -> Counter[str]:
    """What ``CALLS`` calls (after two to warm up) left for the collector."""
    for _ in range(2):
        result = call()
        if asyncio.iscoroutine(result):
            await result
    with collector_off() as left:
        for _ in range(CALLS):
            result = call()
            if asyncio.iscoroutine(result):
                await result
    return left


def chat_calls(client: Any, sync: bool) -> dict[str, Callable[[], Any]]:
    """A whole reply and a stream read to its end, through ``client``."""

    def chat() -> None:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)

    def stream() -> None:
        for _ in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            pass

    async def achat() -> None:
        await client.chat.completions.create(model=MODEL, messages=MESSAGES)

    async def astream() -> None:
        async for _ in await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            pass

    async def aresponses() -> None:
        await client.responses.create(model=MODEL, input="Which orders are delayed at AMS1?")

    if sync:
        return {"chat": chat, "stream": stream}
    return {"chat": achat, "stream": astream, "responses": aresponses}


def added(wrapped: Counter[str], raw: Counter[str]) -> Counter[str]:
    """What the wrapped call left beyond what the raw call left. The raw client leaves nothing on
    Python 3.11+; on 3.10 its stream objects (httpx's) form cycles of their own, and tokenmw's
    stream watch, attached to them, is freed with them: a kind the raw client leaves cycles for
    cannot tell tokenmw's apart, so it is compared where the raw client is clean."""
    return Counter() if raw else wrapped - raw


async def assert_no_added_cycles(client: Any, sync: bool) -> None:
    """Each kind of call through ``client`` wrapped leaves no more for the collector than raw."""
    wrapped = chat_calls(hooks().wrap(client), sync=sync)
    raw = chat_calls(client, sync=sync)
    for kind, call in wrapped.items():
        baseline = await cycles_left(raw[kind])
        assert added(await cycles_left(call), baseline) == Counter(), kind


async def test_async_calls_leave_no_cycles(async_client: openai.AsyncOpenAI) -> None:
    await assert_no_added_cycles(async_client, sync=False)


def test_sync_calls_leave_no_cycles(sync_client: openai.OpenAI) -> None:
    # No running loop: the chain runs on this thread's private loop (stepped by hand, or as a task
    # with a heartbeat when a hook suspends).
    wrapped = chat_calls(hooks().wrap(sync_client), sync=True)
    raw = chat_calls(sync_client, sync=True)
    for kind, call in wrapped.items():
        left = []
        for run in (raw[kind], call):
            run()
            with collector_off() as found:
                for _ in range(CALLS):
                    run()
            left.append(found)
        assert added(left[1], left[0]) == Counter(), kind


async def test_sync_calls_inside_a_running_loop_leave_no_cycles(sync_client: openai.OpenAI) -> None:
    # From inside a running loop a sync call runs as a task on a worker thread's loop
    # (``_run_in_worker``): the task, its context and the loop's heartbeat must go too.
    await assert_no_added_cycles(sync_client, sync=True)
