"""Run the async chain from synchronous code without a new event loop per call.

Each thread that makes sync calls gets one private event loop, created on its first call and
closed when the thread ends; the model call itself runs inline on that loop (it is the thread's
own, so blocking it blocks nobody else). A thread that already runs an event loop (sync client
used inside async code) cannot nest one, so its call runs on a worker thread instead.

Running a blocking HTTP call inside ``run_until_complete`` costs ~0.1 ms more than the call
alone (measured: benchmarks/bench_overhead.py). So when every hook declares that it needs no
asyncio Task (``Hook.sync_fast_path``), the chain is first stepped by hand with the thread's loop
set as the running loop: if it never suspends, that is the whole call; if it does (a hook awaits
``asyncio.to_thread``, say), the rest runs as a task on the loop, in the same context.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["call_blocking", "run_sync"]

T = TypeVar("T")


class _LoopHolder:
    """Owns a thread's private loop and closes it when the thread (and so this holder) goes."""

    __slots__ = ("loop",)

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        loop = getattr(self, "loop", None)
        if loop is not None and not loop.is_closed() and not loop.is_running():
            loop.close()


_CREATE_TASK_TAKES_CONTEXT = sys.version_info >= (3, 11)
_local = threading.local()
_nested_pool: ThreadPoolExecutor | None = None
_nested_pool_lock = threading.Lock()


def run_sync(coro: Coroutine[Any, Any, T], *, fast: bool = False) -> T:
    """Run ``coro`` to completion from synchronous code and return its result.

    ``fast``: step it by hand before falling back to a task (see the module docstring); only for
    coroutines whose code never asks for the current asyncio Task.
    """
    if asyncio._get_running_loop() is None:
        return _run_here(coro, fast)
    # Called from inside a running loop: run on a worker with the caller's context (current span).
    ctx = contextvars.copy_context()
    return _pool().submit(ctx.run, _run_here, coro, fast).result()


def _run_here(coro: Coroutine[Any, Any, T], fast: bool) -> T:
    loop = _thread_loop()
    if not fast or not _CREATE_TASK_TAKES_CONTEXT:
        return _complete(loop, loop.create_task(coro))
    ctx = contextvars.copy_context()
    asyncio._set_running_loop(loop)  # hooks' asyncio calls find this thread's loop
    try:
        awaited = ctx.run(coro.send, None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    except BaseException:
        coro.close()
        raise
    finally:
        asyncio._set_running_loop(None)
    task = loop.create_task(_resume(coro, awaited), context=ctx)  # type: ignore[call-arg]
    return _complete(loop, task)


def _complete(loop: asyncio.AbstractEventLoop, task: asyncio.Task[T]) -> T:
    """Run ``task`` to its end; if the caller is interrupted (Ctrl-C), cancel it first, so an
    abandoned call is never resumed, and sent, by the thread's next call."""
    try:
        return loop.run_until_complete(task)
    except BaseException:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
        raise


async def _resume(coro: Coroutine[Any, Any, T], awaited: Any) -> T:
    """Go on with a hand-stepped coroutine that suspended on ``awaited`` (a future or ``None``)."""
    while True:
        if awaited is None:
            await asyncio.sleep(0)  # a bare yield: give the loop one turn
        else:
            # What a Task does with a yielded future: clear its "awaited" mark, then wait for it.
            awaited._asyncio_future_blocking = False
            with contextlib.suppress(BaseException):  # the coroutine reads the outcome itself
                await awaited
        try:
            awaited = coro.send(None)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def call_blocking(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Call the sync client from inside the chain as the plain sync code it is: with no running
    loop visible, so libraries that look for one (LiteLLM's logging does) act as in sync code."""
    loop = asyncio._get_running_loop()
    if loop is None:
        return fn(**kwargs)
    asyncio._set_running_loop(None)
    try:
        return fn(**kwargs)
    finally:
        asyncio._set_running_loop(loop)


def _thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's idle private loop. A sync call made from inside a running chain on the same
    thread (a wrapped client wrapped again, a hook calling a wrapped sync client) finds the first
    loop busy and gets a second one: loops are kept per nesting depth, never one per call."""
    holders: list[_LoopHolder] | None = getattr(_local, "holders", None)
    if holders is None:
        holders = _local.holders = []
    for holder in holders:
        if not holder.loop.is_running() and not holder.loop.is_closed():
            return holder.loop
    holder = _LoopHolder()
    holders.append(holder)
    return holder.loop


def _pool() -> ThreadPoolExecutor:
    global _nested_pool
    if _nested_pool is None:
        with _nested_pool_lock:
            if _nested_pool is None:
                _nested_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="tokenmw-sync")
    return _nested_pool
