"""The chain's share of one stream: per-chunk hooks, a hook's stop request, and an end that runs
exactly once.

This is the one state machine behind the sync and the async stream proxy (``_clients/streams.py``):
a proxy only fetches upstream chunks (``next`` or ``await __anext__``) and closes upstream when told
to; everything else — which chunk the caller gets next, when the stream is over, how it ended — is
decided here, so the two proxies cannot drift apart.
"""

from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import Callable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, Protocol

from tokenmw._core.errors import HookResultError, TokenmwError
from tokenmw._core.hook import Hook, StreamOutcome
from tokenmw._core.timing import HookTimes
from tokenmw._wire.usage import FINAL_EVENTS
from tokenmw.telemetry import _spans as tel

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from tokenmw._core.call import Call

__all__ = ["NEED_UPSTREAM", "STREAM_OVER", "StreamRun"]

logger = logging.getLogger("tokenmw")

NEED_UPSTREAM: Any = object()
"""``StreamRun.pull()``: nothing queued; fetch the next upstream chunk and ``push()`` it."""
STREAM_OVER: Any = object()
"""``StreamRun.pull()``: the stream is over and the call has ended; stop the caller's iteration."""


class StreamLayer(Protocol):
    """What a stream run needs of a chain layer: its hook and its name (for failures and times)."""

    @property
    def hook(self) -> Hook: ...

    @property
    def name(self) -> str: ...


class StreamChain(Protocol):
    """The chain as a stream run sees it (``Chain`` satisfies it; no import of the chain here)."""

    @property
    def hook_times(self) -> HookTimes: ...

    @property
    def chunk_layers(self) -> tuple[StreamLayer, ...]: ...

    @property
    def end_layers(self) -> tuple[StreamLayer, ...]: ...

    def stream_hook_failed(self, layer: Any, phase: str, error: Exception) -> None: ...

    def finish_call(self, call: Call, span: Span | None, error: BaseException | None = None) -> None: ...


class StreamRun:
    """One streamed call between the chain and the caller's iteration.

    A proxy loops on ``pull()``: a chunk is handed to the caller; ``NEED_UPSTREAM`` means fetch one
    upstream chunk and ``push()`` it (or ``upstream_ended()`` / ``upstream_failed()``); ``STREAM_OVER``
    means stop. ``push()`` returns True when upstream must be closed now (a hook stopped the stream or
    failed on a chunk).
    """

    __slots__ = (
        "_chunk_ns",
        "_error",
        "_pending",
        "_upstream_done",
        "call",
        "chain",
        "chunks",
        "finished",
        "span",
        "stopped",
        "stream",
    )

    def __init__(self, chain: StreamChain, call: Call, span: Span | None, stream: Any) -> None:
        self.chain = chain
        self.call = call
        self.span = span
        self.stream = stream
        """The upstream stream (an openai ``Stream``, LiteLLM's wrapper, …) the proxy reads."""
        self.finished = False
        self.stopped = False
        self.chunks = 0
        self._pending: deque[Any] = deque()
        self._upstream_done = False
        self._error: BaseException | None = None
        # Time in each on_chunk hook, added to hook_times once at the end (no lock per chunk).
        self._chunk_ns = [0] * len(chain.chunk_layers)

    # -- the proxy's loop ---------------------------------------------------------------------------

    def pull(self) -> Any:
        """The next chunk for the caller, ``NEED_UPSTREAM`` or ``STREAM_OVER`` (see the class)."""
        if self._pending:
            return self._pending.popleft()
        unread = self.call._unread
        if unread:  # read ahead by a wrap hook: they come first, through every on_chunk hook
            self.call._unread = ()
            for chunk in unread:
                self.push(chunk)
            if self._pending:
                return self._pending.popleft()
        error = self._error
        if error is not None:
            self._error = None
            self.finish("error", error)
            raise error
        if self._upstream_done:
            self.finish("stopped" if self.stopped else "completed")
            return STREAM_OVER
        return NEED_UPSTREAM

    def push(self, chunk: Any) -> bool:
        """Run one upstream chunk through the hooks; True: close upstream now."""
        try:
            out = self._feed(chunk)
            if out is not None:
                self._pending.append(out)
            final = self.call._stream_end
            if final is None or self.stopped:
                return False
            self.stopped = True
            self._upstream_done = True
            for extra in final:  # a hook's last chunks go through every on_chunk hook too
                out = self._feed(extra)
                if out is not None:
                    self._pending.append(out)
            return True
        except BaseException as error:  # strict mode, or a deliberate refusal: the stream ends
            self._pending.clear()
            self._upstream_done = True
            self._error = error
            return True

    def upstream_ended(self) -> None:
        """Upstream is exhausted; what is queued is still delivered."""
        self._upstream_done = True

    def upstream_failed(self, error: BaseException) -> None:
        """Reading upstream raised ``error`` (which the proxy re-raises): end the call."""
        self._upstream_done = True
        self.finish("error", error)

    # -- per chunk ----------------------------------------------------------------------------------

    def _feed(self, chunk: Any) -> Any:
        """``chunk`` after every ``on_chunk`` hook, or ``None`` when a hook dropped it."""
        call = self.call
        if self.span is not None:
            tel.observe_chunk(self.span, chunk)
        if getattr(chunk, "usage", None) is not None or getattr(chunk, "type", None) in FINAL_EVENTS:
            call.usage.record_reported(chunk)
        self.chunks += 1
        chunk_ns = self._chunk_ns
        for position, layer in enumerate(self.chain.chunk_layers):
            started = perf_counter_ns()
            try:
                replaced = _call_chunk_hook(layer.hook.on_chunk, call, chunk)
                if _not_a_chunk(replaced):
                    raise _wrong_chunk(layer.name, replaced)
            except TokenmwError:
                raise
            except Exception as error:
                self.chain.stream_hook_failed(layer, "on_chunk", error)
                continue
            finally:
                chunk_ns[position] += perf_counter_ns() - started
            if replaced is None:
                return None
            chunk = replaced
        return chunk

    # -- the end ------------------------------------------------------------------------------------

    def finish(self, outcome: StreamOutcome, error: BaseException | None = None) -> None:
        """End the call: ``on_stream_end`` hooks, usage, span. Runs once; later calls do nothing."""
        if self.finished:
            return
        self.finished = True
        chain = self.chain
        times = chain.hook_times
        for layer, ns in zip(chain.chunk_layers, self._chunk_ns, strict=True):
            times.add(layer.name, "on_chunk", ns, runs=self.chunks)
        first_error: BaseException | None = None  # raised (strict mode) once the call has ended
        # The call span is current here, as in the request phases, so a hook can note what the
        # stream came to on it (``trace.get_current_span()``).
        with tel.current(self.span if chain.end_layers else None):
            try:
                for layer in chain.end_layers:
                    started = perf_counter_ns()
                    try:
                        layer.hook.on_stream_end(self.call, outcome)
                    except Exception as hook_error:
                        if outcome == "abandoned":  # at garbage collection nobody can catch it
                            logger.debug("tokenmw: on_stream_end failed", exc_info=hook_error)
                            continue
                        try:
                            chain.stream_hook_failed(layer, "on_stream_end", hook_error)
                        except Exception as strict_error:
                            first_error = first_error or strict_error
                    finally:
                        times.add(layer.name, "on_stream_end", perf_counter_ns() - started)
            finally:
                chain.finish_call(self.call, self.span, error=error)
        if first_error is not None:
            raise first_error


def _call_chunk_hook(on_chunk: Callable[[Call, Any], Any], call: Call, chunk: Any) -> Any:
    """Run one ``on_chunk``; a ``StopIteration`` leaking out of it would silently end the caller's
    loop, so it becomes an error like any other."""
    try:
        return on_chunk(call, chunk)
    except (StopIteration, StopAsyncIteration) as stop:
        raise RuntimeError(f"on_chunk raised {type(stop).__name__}") from stop


def _not_a_chunk(value: Any) -> bool:
    """What no stream yields: text (a hook returning the delta instead of the chunk) or an
    un-awaited coroutine (``on_chunk`` written as ``async def``)."""
    return isinstance(value, str | bytes) or inspect.iscoroutine(value)


def _wrong_chunk(hook: str, value: Any) -> HookResultError:
    if inspect.iscoroutine(value):
        value.close()  # never awaited: say so in the error, not in a RuntimeWarning
        return HookResultError(hook, "on_chunk", value, "a chunk (on_chunk is a plain function, not async)")
    return HookResultError(hook, "on_chunk", value, "a chunk")
