"""Stream proxies: the caller's stream, with per-chunk hooks and an end that runs exactly once.

The proxies are ``wrapt.ObjectProxy`` objects, so ``isinstance(s, openai.Stream)``, ``.response``
and every other attribute of the real stream keep working. The call ends (hooks, usage, span)
whichever way the stream ends: read to the end, an error, ``close()``, leaving a ``with`` block,
a hook stopping it, or the caller dropping it (garbage collection).
"""

from __future__ import annotations

import inspect
from collections import deque
from typing import TYPE_CHECKING, Any

import wrapt

if TYPE_CHECKING:
    from tokenmw._core.chain import _StreamRun

__all__ = ["AsyncStreamProxy", "SyncStreamProxy", "is_async_stream", "is_sync_stream"]


def is_sync_stream(obj: Any) -> bool:
    """Whether ``obj`` is an iterator of chunks (openai ``Stream``, LiteLLM's stream wrapper)."""
    return hasattr(obj, "__next__") and not isinstance(obj, str | bytes | dict)


def is_async_stream(obj: Any) -> bool:
    """Whether ``obj`` is an async iterator of chunks."""
    return hasattr(obj, "__anext__")


class SyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """A synchronous stream seen through the chain."""

    def __init__(self, stream: Any, run: _StreamRun) -> None:
        super().__init__(stream)
        self._self_run = run
        self._self_pending: deque[Any] = deque()
        self._self_upstream_done = False

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        from tokenmw._core.chain import DROP

        run = self._self_run
        pending = self._self_pending
        while True:
            if pending:
                chunk = self._self_feed(pending.popleft())
                if chunk is not DROP:
                    return chunk
                continue
            if self._self_upstream_done:
                run.finish("stopped" if run.stopped else "completed")
                raise StopIteration
            try:
                chunk = next(self.__wrapped__)
            except StopIteration:
                self._self_upstream_done = True
                continue
            except BaseException as error:
                run.finish("error", error)
                raise
            chunk = self._self_feed(chunk)
            final = run.take_stop_request()
            if final is not None:
                self._self_upstream_done = True
                _close_sync(self.__wrapped__)
                pending.extend(final)
            if chunk is not DROP:
                return chunk

    def _self_feed(self, chunk: Any) -> Any:
        # A hook that raises here (strict mode, or a deliberate refusal) ends the stream.
        try:
            return self._self_run.feed(chunk)
        except BaseException as error:
            self._self_upstream_done = True
            try:
                _close_sync(self.__wrapped__)
            finally:
                self._self_run.finish("error", error)
            raise

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

    def __del__(self) -> None:
        run = getattr(self, "_self_run", None)
        if run is not None and not run.finished:
            run.finish("abandoned")


class AsyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """An asynchronous stream seen through the chain."""

    def __init__(self, stream: Any, run: _StreamRun) -> None:
        super().__init__(stream)
        self._self_run = run
        self._self_pending: deque[Any] = deque()
        self._self_upstream_done = False

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        from tokenmw._core.chain import DROP

        run = self._self_run
        pending = self._self_pending
        while True:
            if pending:
                chunk = await self._self_feed(pending.popleft())
                if chunk is not DROP:
                    return chunk
                continue
            if self._self_upstream_done:
                run.finish("stopped" if run.stopped else "completed")
                raise StopAsyncIteration
            try:
                chunk = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                self._self_upstream_done = True
                continue
            except BaseException as error:
                run.finish("error", error)
                raise
            chunk = await self._self_feed(chunk)
            final = run.take_stop_request()
            if final is not None:
                self._self_upstream_done = True
                await _close_async(self.__wrapped__)
                pending.extend(final)
            if chunk is not DROP:
                return chunk

    async def _self_feed(self, chunk: Any) -> Any:
        try:
            return self._self_run.feed(chunk)
        except BaseException as error:
            self._self_upstream_done = True
            try:
                await _close_async(self.__wrapped__)
            finally:
                self._self_run.finish("error", error)
            raise

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

    def __del__(self) -> None:
        run = getattr(self, "_self_run", None)
        if run is not None and not run.finished:
            run.finish("abandoned")


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
