"""The sync edge under stress: forked children, sync calls nested in event loops, Ctrl-C.

Each test runs the real openai client against the embedded server and checks on the server what
went out; a hang shows as a thread or a child that has not finished within a generous timeout.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import signal
import sys
import threading
import time
from typing import Any

import openai
import pytest

import tokenmw
from tokenmw import Call, Hook, Middleware
from tokenmw._tokens.count_cache import INLINE_ENCODE_LIMIT
from tokenmw.server import EmbeddedServer

from ..conftest import MESSAGES

HANG = 60.0
"""Seconds after which a call that has not finished is taken as hung (each takes milliseconds)."""


def chat_requests(server: EmbeddedServer) -> list[Any]:
    return [r.body for r in server.requests if r.path.endswith("/chat/completions")]


def long_text(tag: str) -> str:
    """Text never counted before, long enough to be encoded in the counting pool."""
    text = " ".join(f"{tag}{i}" for i in range(INLINE_ENCODE_LIMIT // 3))
    assert len(text) > INLINE_ENCODE_LIMIT
    return text


# -- 3. forked children ---------------------------------------------------------------------------


def _child_calls(base_url: str, results: Any) -> None:
    mw = Middleware([tokenmw.CountTokens(), tokenmw.LimitResponse(max_tokens=50)])
    client = mw.wrap(openai.OpenAI(api_key="test-key", base_url=base_url, max_retries=0))
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": long_text("c")}]
    )

    async def async_call() -> None:
        aclient = mw.wrap(openai.AsyncOpenAI(api_key="test-key", base_url=base_url, max_retries=0))
        await aclient.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": long_text("d")}]
        )

    asyncio.run(async_call())
    results.put(mw.usage.calls)


@pytest.mark.skipif(sys.platform == "win32", reason="no fork")
def test_a_forked_child_makes_its_calls_after_the_parent_made_one(live_server: EmbeddedServer) -> None:
    mw = Middleware([tokenmw.CountTokens(), tokenmw.LimitResponse(max_tokens=50)])
    client = mw.wrap(openai.OpenAI(api_key="test-key", base_url=live_server.base_url, max_retries=0))
    # The parent's call starts the counting pool (and its thread's private loop).
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": long_text("p")}]
    )
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_child_calls, args=(live_server.base_url, results))
    child.start()
    child.join(HANG)
    hung = child.is_alive()
    if hung:
        child.kill()
        child.join()
    assert not hung, "the forked child hung on its first call"
    assert child.exitcode == 0
    assert results.get(timeout=5) == 2
    assert len(chat_requests(live_server)) == 3

    # And the parent goes on, on the thread that forked: the child must not have touched what it
    # shares with the parent (closing an inherited loop unregisters its wake-up pipe from the
    # epoll instance the parent's loop waits on). An alarm turns a hang into a failure.
    def hung_up(signum: int, frame: Any) -> None:
        raise TimeoutError("the parent hung after the fork")

    previous = signal.signal(signal.SIGALRM, hung_up)
    signal.setitimer(signal.ITIMER_REAL, HANG)
    try:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": long_text("q")}]
        )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert len(chat_requests(live_server)) == 4


def _child_call(base_url: str, results: Any) -> None:
    import gc

    mw = Middleware([tokenmw.CountTokens()])
    client = mw.wrap(openai.OpenAI(api_key="test-key", base_url=base_url, max_retries=0))
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": long_text("f")}]
    )
    gc.collect()  # what the child inherited of other threads is collected here, if anywhere
    results.put(mw.usage.calls)


@pytest.mark.skipif(sys.platform == "win32", reason="no fork")
def test_other_parent_threads_go_on_after_a_fork(live_server: EmbeddedServer) -> None:
    # A thread of the parent other than the forking one keeps its private loop across the fork:
    # the child must not close its copy (that would unregister the loop's wake-up pipe from the
    # epoll instance both copies share).
    mw = Middleware([tokenmw.CountTokens()])
    client = mw.wrap(openai.OpenAI(api_key="test-key", base_url=live_server.base_url, max_retries=0))
    jobs: queue.Queue[str] = queue.Queue()
    done: queue.Queue[str] = queue.Queue()

    def worker() -> None:
        while True:
            tag = jobs.get()
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": long_text(tag)}]
            )
            done.put(tag)

    threading.Thread(target=worker, daemon=True).start()
    jobs.put("g")
    assert done.get(timeout=HANG) == "g"
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_child_call, args=(live_server.base_url, results))
    child.start()
    child.join(HANG)
    assert child.exitcode == 0
    assert results.get(timeout=5) == 1
    jobs.put("h")
    assert done.get(timeout=HANG) == "h", "a parent thread hung after the fork"


# -- 6. sync calls nested inside event loops --------------------------------------------------------


class Judge(Hook):
    """Makes a sync call of its own (a moderation or judge call) through another wrapped client."""

    name = "judge"

    def __init__(self, judge_client: openai.OpenAI) -> None:
        self.judge_client = judge_client

    async def before(self, call: Call) -> None:
        self.judge_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Is this fine?"}]
        )


def test_sync_calls_nested_in_event_loops_on_many_threads_all_finish(live_server: EmbeddedServer) -> None:
    def new_client() -> openai.OpenAI:
        return openai.OpenAI(api_key="test-key", base_url=live_server.base_url, max_retries=0)

    judge = Middleware([tokenmw.CountTokens()]).wrap(new_client())
    mw = Middleware([Judge(judge), tokenmw.CountTokens()])
    client = mw.wrap(new_client())
    live_server.settings.latency = 0.05  # every inner call is in flight while the others queue
    finished: list[int] = []

    def agent(i: int) -> None:
        async def step() -> None:  # an async agent that calls the sync client (blocking its loop)
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(step())
        finally:
            loop.close()
        finished.append(i)

    threads = [threading.Thread(target=agent, args=(i,), daemon=True) for i in range(16)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + HANG
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert sorted(finished) == list(range(16)), f"{16 - len(finished)} of 16 calls hung"
    assert mw.usage.calls == 16
    assert len(chat_requests(live_server)) == 32  # each call and its judge call, once each


# -- 7. Ctrl-C on a sync call made inside a running loop --------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="pthread_kill")
def test_ctrl_c_on_a_sync_call_inside_a_loop_cancels_it(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    entered = threading.Event()
    outcome: list[str] = []

    class SlowBefore(Hook):
        name = "slow_before"

        async def before(self, call: Call) -> None:
            entered.set()
            try:
                await asyncio.sleep(0.5)
            except asyncio.CancelledError:
                outcome.append("cancelled")
                raise
            outcome.append("went on")

    client = Middleware([SlowBefore()]).wrap(sync_client)
    main = threading.main_thread().ident
    assert threading.current_thread().ident == main

    def press_ctrl_c() -> None:
        if entered.wait(HANG):
            signal.pthread_kill(main, signal.SIGINT)  # type: ignore[arg-type]

    async def agent() -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    presser = threading.Thread(target=press_ctrl_c, daemon=True)
    presser.start()
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(agent())
    finally:
        loop.close()
        presser.join(HANG)
    waited = 0.0
    while not outcome and waited < 5:  # the worker winds down on its own thread
        time.sleep(0.05)
        waited += 0.05
    assert outcome == ["cancelled"]
    assert chat_requests(live_server) == []  # never sent afterwards


def _child_uses(mw: Middleware, base_url: str, results: Any) -> None:
    client = mw.wrap(openai.OpenAI(api_key="test-key", base_url=base_url, max_retries=0))
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": long_text("e")}]
    )
    results.put(mw.usage.calls)


@pytest.mark.skipif(sys.platform == "win32", reason="no fork")
def test_a_child_forked_while_another_thread_holds_tokenmw_locks_does_not_hang(
    live_server: EmbeddedServer,
) -> None:
    from tokenmw._compress import history, text
    from tokenmw._tokens import count_cache, encodings, prices

    mw = Middleware([tokenmw.Compress(), tokenmw.CountTokens()])
    client = mw.wrap(openai.OpenAI(api_key="test-key", base_url=live_server.base_url, max_retries=0))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    locks = [
        count_cache._caches_lock,
        count_cache._executor_lock,
        *(cache._lock for cache in count_cache._caches.values()),
        encodings._locks_guard,
        prices._load_lock,
        history._lock,
        text._lock,
        mw.usage._lock,
        mw.hook_times._lock,
    ]
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # another thread of the parent, in the middle of its own work
        for lock in locks:
            lock.acquire()
        held.set()
        release.wait(HANG)
        for lock in locks:
            lock.release()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(HANG)
    try:
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        child = context.Process(target=_child_uses, args=(mw, live_server.base_url, results))
        child.start()
    finally:
        release.set()
        holder.join(HANG)
    child.join(HANG)
    hung = child.is_alive()
    if hung:
        child.kill()
        child.join()
    assert not hung, "the forked child hung on a lock another thread held at the fork"
    assert child.exitcode == 0
    assert results.get(timeout=5) == 2  # the parent's call, copied into the child, and its own
