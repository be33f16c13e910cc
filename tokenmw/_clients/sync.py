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
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["call_blocking", "run_sync"]

T = TypeVar("T")


class _LoopHolder:
    """Owns a thread's private loop and closes it when the thread (and so this holder) goes."""

    __slots__ = ("busy", "loop", "pid")

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.busy = False
        """A call runs on it (hand-stepped calls run with the loop set, not running)."""
        self.pid = os.getpid()

    def __del__(self) -> None:
        loop = getattr(self, "loop", None)
        if loop is None or loop.is_closed() or loop.is_running():
            return
        if getattr(self, "pid", None) != os.getpid():
            # Inherited by a forked child (whose copy of a parent thread's locals is going away):
            # closing it here would unregister its wake-up pipe from the epoll instance it shares
            # with the parent's loop, which would then never wake up. Keep it, unused.
            _inherited.append(loop)
            return
        loop.close()


_CREATE_TASK_TAKES_CONTEXT = sys.version_info >= (3, 11)
_inherited: list[asyncio.AbstractEventLoop] = []
"""Loops a forked child inherited: kept open and unused (see ``_LoopHolder.__del__``)."""
_local = threading.local()
_nested_pool: ThreadPoolExecutor | None = None
_nested_pool_lock = threading.Lock()


def run_sync(coro: Coroutine[Any, Any, T], *, fast: bool = False) -> T:
    """Run ``coro`` to completion from synchronous code and return its result.

    ``fast``: step it by hand before falling back to a task (see the module docstring); only for
    coroutines whose code never asks for the current asyncio Task.
    """
    running = asyncio._get_running_loop()
    if running is None:
        return _run_here(coro, fast)
    if _is_private(running):
        # A hook of a call on this thread's own loop made a sync call (a judge, a moderation call):
        # that loop waits for it whatever happens, so it runs here, on the next private loop.
        # Handing it to the pool instead deadlocks once every worker waits on an inner call
        # queued behind them.
        asyncio._set_running_loop(None)
        try:
            return _run_here(coro, fast)
        finally:
            asyncio._set_running_loop(running)
    return _run_in_worker(coro)


def _run_in_worker(coro: Coroutine[Any, Any, T]) -> T:
    """Called from inside the caller's running loop: the call runs on a worker thread, with the
    caller's context (current span). If the caller is interrupted while it waits (Ctrl-C), the
    call is cancelled: it must not go on without the caller and be sent later."""
    handoff = _Handoff()
    ctx = contextvars.copy_context()
    future = _pool().submit(ctx.run, _run_handed_off, handoff, coro)
    try:
        return future.result()
    except BaseException:
        if not future.done():
            if future.cancel():
                coro.close()  # never started
            else:
                handoff.cancel()
        raise


class _Handoff:
    """A call handed to a worker, and the caller's way to cancel it from its own thread."""

    __slots__ = ("_lock", "cancelled", "loop", "task")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.cancelled = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None

    def attach(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        with self._lock:
            self.loop, self.task = loop, task
            if self.cancelled:
                task.cancel()

    def detach(self) -> None:
        """The call is over: forget its task (the task's context holds this handoff, so keeping
        the task would make a reference cycle of every handed-off call)."""
        with self._lock:
            self.loop = self.task = None

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self.loop is not None and self.task is not None and not self.loop.is_closed():
                self.loop.call_soon_threadsafe(self.task.cancel)


_handoff: contextvars.ContextVar[_Handoff | None] = contextvars.ContextVar("tokenmw_handoff", default=None)


def _run_handed_off(handoff: _Handoff, coro: Coroutine[Any, Any, T]) -> T:
    """In a worker: the call as a task the caller can cancel (never hand-stepped)."""
    _handoff.set(handoff)  # call_blocking checks it right before the request goes out
    holder = _thread_holder()
    try:
        loop = holder.loop
        task = loop.create_task(coro)
        handoff.attach(loop, task)
        return _complete(loop, task)
    finally:
        handoff.detach()
        holder.busy = False


def _is_private(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` is one of this thread's private loops (a call of ours runs on it)."""
    return any(holder.loop is loop for holder in getattr(_local, "holders", ()))


def _run_here(coro: Coroutine[Any, Any, T], fast: bool) -> T:
    holder = _thread_holder()
    try:
        return _run_on(holder.loop, coro, fast)
    finally:
        holder.busy = False


def _run_on(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], fast: bool) -> T:
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
    # A wake-up every 50 ms while the call waits: work a thread finishes for this loop
    # (``to_thread``, the count pool) is queued before the loop's wake-up byte is written, so if
    # that byte never arrives (seen under Python 3.10 in the full test suite; cause not found) the
    # next tick still runs it instead of the call hanging for good.
    heartbeat = _Heartbeat(loop)
    try:
        return loop.run_until_complete(task)
    except BaseException:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
        raise
    finally:
        heartbeat.stop()


_HEARTBEAT = 0.05


class _Heartbeat:
    """A loop wake-up every ``_HEARTBEAT`` seconds until stopped. A class, not a closure that
    schedules itself: that is a reference cycle per call, left for the garbage collector."""

    __slots__ = ("handle", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.handle = loop.call_later(_HEARTBEAT, self.beat)

    def beat(self) -> None:
        self.handle = self.loop.call_later(_HEARTBEAT, self.beat)

    def stop(self) -> None:
        self.handle.cancel()  # a cancelled handle drops its callback: nothing refers back here


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
    handoff = _handoff.get()
    if handoff is not None and handoff.cancelled:
        raise asyncio.CancelledError  # the caller was interrupted: nothing goes out after that
    loop = asyncio._get_running_loop()
    if loop is None:
        return fn(**kwargs)
    asyncio._set_running_loop(None)
    try:
        return fn(**kwargs)
    finally:
        asyncio._set_running_loop(loop)


def _thread_holder() -> _LoopHolder:
    """This thread's idle private loop, marked busy (the caller clears ``busy``). A sync call
    made from inside a running chain on the same thread (a wrapped client wrapped again, a hook
    calling a wrapped sync client) finds the first loop busy and gets a second one: loops are
    kept per nesting depth, never one per call."""
    holders: list[_LoopHolder] | None = getattr(_local, "holders", None)
    if holders is None:
        holders = _local.holders = []
    for holder in holders:
        if not holder.busy and not holder.loop.is_running() and not holder.loop.is_closed():
            holder.busy = True
            return holder
    holder = _LoopHolder()
    holder.busy = True
    holders.append(holder)
    return holder


def _pool() -> ThreadPoolExecutor:
    global _nested_pool
    if _nested_pool is None:
        with _nested_pool_lock:
            if _nested_pool is None:
                _nested_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="tokenmw-sync")
    return _nested_pool


# A forked child has none of the parent's threads: a pool without its workers, or a lock one of
# them held, would hang the child's first call (gunicorn --preload, multiprocessing, celery). The
# thread's private loops are replaced too: their selector and wake-up pipe are shared with the
# parent, and their default executors (asyncio.to_thread) have no workers. The old loops are kept,
# never closed (see ``_LoopHolder.__del__``).
def _reset_in_child() -> None:
    global _local, _nested_pool, _nested_pool_lock
    _local = threading.local()
    _nested_pool = None
    _nested_pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
