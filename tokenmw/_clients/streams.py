"""Stream proxies: the caller's stream, with per-chunk hooks and an end that runs exactly once.

The proxies are ``wrapt.ObjectProxy`` objects, so ``isinstance(s, openai.Stream)``, ``.response``
and every other attribute of the real stream keep working. They only move chunks: what the caller
gets next and when the call ends is the ``StreamRun``'s (one state machine for both). The call ends
(hooks, usage, span) whichever way the stream ends: read to the end, an error, ``close()``, leaving
a ``with`` block, a hook stopping it, or the caller dropping it (garbage collection).
"""

from __future__ import annotations

import inspect
from typing import Any

import wrapt

from tokenmw._core.stream_run import NEED_UPSTREAM, STREAM_OVER, StreamRun

__all__ = ["AsyncStreamProxy", "SyncStreamProxy", "async_result", "sync_result"]


class _StreamProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """What both proxies share: the run, and ending an abandoned stream at garbage collection."""

    def __init__(self, run: StreamRun) -> None:
        super().__init__(run.stream)
        self._self_run = run

    def __del__(self) -> None:
        run = getattr(self, "_self_run", None)
        if run is not None and not run.finished:
            run.finish("abandoned")


class SyncStreamProxy(_StreamProxy):
    """A synchronous stream seen through the chain."""

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        run = self._self_run
        while True:
            item = run.pull()
            if item is NEED_UPSTREAM:
                try:
                    chunk = next(self.__wrapped__)
                except StopIteration:
                    run.upstream_ended()
                    continue
                except BaseException as error:
                    run.upstream_failed(error)
                    raise
                if run.push(chunk):
                    _close_sync(self.__wrapped__)
            elif item is STREAM_OVER:
                raise StopIteration
            else:
                return item

    def close(self) -> None:
        """Close the upstream response and end the call."""
        try:
            _close_sync(self.__wrapped__)
        finally:
            self._self_run.finish("closed")

    def __enter__(self) -> SyncStreamProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncStreamProxy(_StreamProxy):
    """An asynchronous stream seen through the chain."""

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        run = self._self_run
        while True:
            item = run.pull()
            if item is NEED_UPSTREAM:
                try:
                    chunk = await self.__wrapped__.__anext__()
                except StopAsyncIteration:
                    run.upstream_ended()
                    continue
                except BaseException as error:
                    run.upstream_failed(error)
                    raise
                if run.push(chunk):
                    await _close_async(self.__wrapped__)
            elif item is STREAM_OVER:
                raise StopAsyncIteration
            else:
                return item

    async def close(self) -> None:
        """Close the upstream response and end the call."""
        try:
            await _close_async(self.__wrapped__)
        finally:
            self._self_run.finish("closed")

    async def aclose(self) -> None:
        """Alias of ``close()`` for async-generator style callers."""
        await self.close()

    async def __aenter__(self) -> AsyncStreamProxy:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def sync_result(result: Any) -> Any:
    """What a sync caller gets from ``Chain.run``: a stream run becomes a sync stream proxy."""
    return SyncStreamProxy(result) if isinstance(result, StreamRun) else result


def async_result(result: Any) -> Any:
    """What an async caller gets from ``Chain.run``: a stream run becomes an async stream proxy."""
    return AsyncStreamProxy(result) if isinstance(result, StreamRun) else result


def _close_sync(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()


async def _close_async(stream: Any) -> None:
    # ``aclose`` first: LiteLLM's stream wrapper also has a sync ``close`` that cannot close an
    # async upstream (it drops the coroutine), so the server would go on generating.
    for name in ("aclose", "close"):
        close = getattr(stream, name, None)
        if close is not None:
            result = close()
            if inspect.isawaitable(result):
                await result
            return
