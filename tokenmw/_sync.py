"""Run the async chain from synchronous code without a new event loop per call.

Each thread that makes sync calls gets one private event loop, created on its first call and
closed when the thread ends; the model call itself runs inline on that loop (it is the thread's
own, so blocking it blocks nobody else). A thread that already runs an event loop (sync client
used inside async code) cannot nest one, so its call runs on a worker thread instead.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["run_sync"]

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


_local = threading.local()
_nested_pool: ThreadPoolExecutor | None = None
_nested_pool_lock = threading.Lock()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code and return its result."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _thread_loop().run_until_complete(coro)
    # Called from inside a running loop: run on a worker with the caller's context (current span).
    ctx = contextvars.copy_context()
    return _pool().submit(ctx.run, _run_on_worker, coro).result()


def _run_on_worker(coro: Coroutine[Any, Any, T]) -> T:
    return _thread_loop().run_until_complete(coro)


def _thread_loop() -> asyncio.AbstractEventLoop:
    holder: _LoopHolder | None = getattr(_local, "holder", None)
    if holder is None or holder.loop.is_closed():
        holder = _local.holder = _LoopHolder()
    return holder.loop


def _pool() -> ThreadPoolExecutor:
    global _nested_pool
    if _nested_pool is None:
        with _nested_pool_lock:
            if _nested_pool is None:
                _nested_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="tokenmw-sync")
    return _nested_pool
