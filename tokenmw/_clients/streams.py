"""Stream proxies: the caller's stream, with per-chunk hooks and an end that runs exactly once.

The proxies are ``wrapt.ObjectProxy`` objects, so ``isinstance(s, openai.Stream)``, ``.response``
and every other attribute of the real stream keep working. They only move chunks: what the caller
gets next and when the call ends is the ``StreamRun``'s (one state machine for both). The call ends
(hooks, usage, span) whichever way the stream ends: read to the end, an error, ``close()``, leaving
a ``with`` block, a hook stopping it, or the caller dropping it (garbage collection).

Below the proxies, ``watch_body`` watches the HTTP connection under an OpenAI stream, for the ends
no proxy sees (a raw read of a streaming response, a stream helper closing the connection itself).
"""

from __future__ import annotations

import inspect
import json
import weakref
from typing import Any

import httpx2
import wrapt

from tokenmw._core.stream_run import NEED_UPSTREAM, STREAM_OVER, StreamRun

__all__ = [
    "ATTR_BODY_UNSEEN",
    "AsyncStreamProxy",
    "SyncStreamProxy",
    "async_result",
    "sync_result",
    "watch_body",
]


class _StreamProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """What both proxies share: the run, and ending an abandoned stream at garbage collection."""

    def __init__(self, run: StreamRun) -> None:
        super().__init__(run.stream)
        self._self_run = run
        self._self_closing = False
        """Set once the proxy itself closes upstream (the caller's ``close()``, a hook stopping the
        stream): the run decides how the call ended, not whoever watches the connection close."""
        self._self_reading = False
        """Set while the proxy waits for an upstream chunk: a connection that closes meanwhile
        (openai's stream closes it at ``[DONE]``, or on an error) is the proxy's to report."""

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
                self._self_reading = True
                try:
                    chunk = run.replayed() if run.replaying else next(self.__wrapped__)
                except StopIteration:
                    run.upstream_ended()
                    continue
                except BaseException as error:
                    run.upstream_failed(error)
                    raise
                finally:
                    self._self_reading = False
                if run.push(chunk):
                    self._self_closing = True
                    _close_sync(self.__wrapped__)
            elif item is STREAM_OVER:
                raise StopIteration
            else:
                return item

    def close(self) -> None:
        """Close the upstream response and end the call."""
        self._self_closing = True
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
                self._self_reading = True
                try:
                    chunk = run.replayed() if run.replaying else await self.__wrapped__.__anext__()
                except StopAsyncIteration:
                    run.upstream_ended()
                    continue
                except BaseException as error:
                    run.upstream_failed(error)
                    raise
                finally:
                    self._self_reading = False
                if run.push(chunk):
                    self._self_closing = True
                    await _close_async(self.__wrapped__)
            elif item is STREAM_OVER:
                raise StopAsyncIteration
            else:
                return item

    async def close(self) -> None:
        """Close the upstream response and end the call."""
        self._self_closing = True
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


# -- the connection under a stream ------------------------------------------------------------
#
# Watching a streamed response's connection, for the ends of a call that no stream proxy sees.
#
# Two ways a stream's body can be read without going through tokenmw's stream proxy:
#
# - ``with_streaming_response`` callers that read bytes or lines (``iter_lines()``) instead of
#   ``parse()``: per-chunk hooks cannot see that body, but the call must still end (``on_stream_end``,
#   usage, span) and the usage the stream reported must still be recorded;
# - openai's stream helpers (``chat.completions.stream()``, ``responses.stream()``), which close the
#   HTTP response themselves when their ``with`` block ends, not the stream they read.
#
# So the HTTP response's byte stream is swapped for a watcher that passes every byte through and
# notices the close. Until the first chunk reaches a proxy it also keeps the last SSE ``data:`` line
# that carries ``"usage"`` (the chat stream's usage chunk, the Responses final event), so a raw read
# still records it. A run a proxy is driving is left to the proxy (it knows how the stream ended);
# the watcher only ends runs the connection closed under: nothing read through the proxy, or the
# caller closed the response part-way.


ATTR_BODY_UNSEEN = "tokenmw.stream.body_unseen"
"""Set (true) on the call span when the caller read the streamed body raw: per-chunk hooks did
not see it (usage, when the stream reported it, is still recorded)."""

_sync_bases: list[type] = [httpx2.SyncByteStream]
_async_bases: list[type] = [httpx2.AsyncByteStream]
try:  # openai also accepts a plain httpx client (http_client=httpx.Client())
    import httpx

    _sync_bases.append(httpx.SyncByteStream)
    _async_bases.append(httpx.AsyncByteStream)
except ImportError:  # pragma: no cover - httpx is optional next to httpx2
    pass


def watch_body(http_response: Any, proxies: list[weakref.ref[Any]]) -> None:
    """Watch ``http_response``'s body for the stream proxies that ``proxies`` will refer to (filled
    as the chains return). Weak references: the watcher must not keep an abandoned stream alive,
    and a stream collected as garbage ends as ``abandoned`` (its own finalizer), not ``closed``."""
    stream = getattr(http_response, "stream", None)
    if stream is None or isinstance(stream, _Watch):
        return
    if isinstance(stream, tuple(_async_bases)):
        http_response.stream = _AsyncWatch(stream, proxies, http_response)
    elif isinstance(stream, tuple(_sync_bases)):
        http_response.stream = _SyncWatch(stream, proxies, http_response)


class _Watch:
    """What both watchers share: the SSE usage scan and the end of the call at close."""

    def __init__(self, stream: Any, proxies: list[weakref.ref[Any]], http_response: Any) -> None:
        self._stream = stream
        self._proxies = proxies
        self._response = weakref.ref(http_response)
        self._tail = b""
        self._usage_line: bytes | None = None
        self._eof = False
        self._failed = False
        self._ended = False

    def _seen(self, data: bytes) -> None:
        proxies = self._proxies
        first = proxies[0]() if proxies else None
        if first is not None and first._self_run.chunks:
            return  # read through a proxy: its chunks carry the usage
        lines = (self._tail + data).split(b"\n")
        self._tail = lines.pop()
        for line in lines:
            if line.startswith(b"data:") and b'"usage"' in line:
                self._usage_line = line

    def _closed(self) -> None:
        if self._ended or self._failed:
            return  # a failed read ends the call through the proxy that raises it
        self._ended = True
        first = self._proxies[0]() if self._proxies else None
        if first is None or getattr(first._self_run.stream, "response", None) is not self._response():
            return  # not the stream the call went on with (a wrap hook sent twice and kept the other)
        for ref in self._proxies:
            proxy = ref()
            if proxy is None:
                continue  # collected: the proxy ends its call as abandoned
            run: StreamRun = proxy._self_run
            if run.finished or proxy._self_closing or proxy._self_reading:
                continue
            if not run.chunks:
                self._record_usage(run)
                if run.span is not None:
                    run.span.set_attribute(ATTR_BODY_UNSEEN, True)
                run.finish("completed" if self._eof else "closed")
            elif not self._eof:
                run.finish("closed")  # the caller closed the response part-way (a helper's with block)

    def _record_usage(self, run: StreamRun) -> None:
        line = self._usage_line
        tail = self._tail
        if tail.startswith(b"data:") and b'"usage"' in tail:
            line = tail
        if line is None:
            return
        try:
            event = json.loads(line[5:])
        except ValueError:
            return
        run.call.usage.record_reported(event)


class _SyncWatch(_Watch, *_sync_bases):  # type: ignore[misc]
    def __iter__(self) -> Any:
        try:
            for data in self._stream:
                self._seen(data)
                yield data
        except GeneratorExit:  # the reader stopped early; closing says how the call ended
            raise
        except BaseException:
            self._failed = True
            raise
        self._eof = True

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._closed()


class _AsyncWatch(_Watch, *_async_bases):  # type: ignore[misc]
    async def __aiter__(self) -> Any:
        try:
            async for data in self._stream:
                self._seen(data)
                yield data
        except GeneratorExit:  # the reader stopped early; closing says how the call ended
            raise
        except BaseException:
            self._failed = True
            raise
        self._eof = True

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._closed()
