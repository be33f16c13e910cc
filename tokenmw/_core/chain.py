"""The middleware chain: hooks around one model call, as an onion.

Each hook is one layer: its ``before`` runs on the way in (list order), its ``wrap`` around the
rest of the chain (first hook outermost), its ``after`` on the way out (reverse order). At the
centre, ``on_send`` of every hook sees the request exactly as it goes out, then ``send`` makes the
model call. Streams leave the onion as soon as the first chunk can be read; the stream proxy then
runs ``on_chunk`` per chunk and ends the call (``on_stream_end``, usage, span) exactly once.

The chain knows nothing of any client: integrations hand it a ``Call`` and a ``send`` coroutine.
Layers are resolved once, at construction, so a phase a hook does not define costs nothing per call.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import trace

from tokenmw._clients.streams import AsyncStreamProxy, SyncStreamProxy, is_async_stream, is_sync_stream
from tokenmw._core.call import Call
from tokenmw._core.errors import TokenmwError
from tokenmw._core.hook import Hook, StreamOutcome, defined_phases
from tokenmw._core.timing import HookTimes
from tokenmw._core.usage import Usage, reported_usage
from tokenmw.telemetry import _spans as tel

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = ["Middleware", "OnHookError", "Send"]

logger = logging.getLogger("tokenmw")

OnHookError = Literal["skip", "raise"]
Send = Callable[[Call], Awaitable[Any]]
"""The model call at the centre of the chain."""


class _Layer:
    """A hook and the phases it defines, resolved once."""

    __slots__ = ("after", "before", "hook", "index", "name", "wrap")

    def __init__(self, hook: Hook, index: int) -> None:
        phases = defined_phases(hook)
        self.hook = hook
        self.index = index
        self.name = getattr(hook, "name", None) or type(hook).__name__
        self.before = "before" in phases
        self.wrap = "wrap" in phases
        self.after = "after" in phases


class Middleware:
    """An ordered chain of hooks that wraps OpenAI clients and LiteLLM functions."""

    def __init__(self, hooks: Iterable[Hook] = (), *, on_hook_error: OnHookError = "skip") -> None:
        hooks = tuple(hooks)
        for hook in hooks:
            if not isinstance(hook, Hook):
                raise TypeError(
                    f"tokenmw.Middleware takes tokenmw.Hook instances, got {type(hook).__name__!r}"
                    " (did you pass the class instead of an instance?)"
                )
        if on_hook_error not in ("skip", "raise"):
            raise ValueError(f"on_hook_error must be 'skip' or 'raise', got {on_hook_error!r}")
        self.hooks: tuple[Hook, ...] = hooks
        self.on_hook_error: OnHookError = on_hook_error
        self.usage = Usage()
        """Live totals over every call made through this middleware."""
        self.hook_times = HookTimes()
        """Time spent in each hook phase, summed over every call (no SDK needed)."""
        self._layers = tuple(_Layer(h, i) for i, h in enumerate(hooks))
        self._send_hooks = tuple(lay for lay in self._layers if "on_send" in defined_phases(lay.hook))
        # Stream phases run on the way out, like ``after``: last hook first.
        self._chunk_hooks = tuple(
            lay for lay in reversed(self._layers) if "on_chunk" in defined_phases(lay.hook)
        )
        self._end_hooks = tuple(
            lay for lay in reversed(self._layers) if "on_stream_end" in defined_phases(lay.hook)
        )
        self._logged_failures: set[tuple[int, str]] = set()
        self.sync_fast_path = all(h.sync_fast_path for h in hooks)
        """Whether sync clients may step this chain by hand (see ``Hook.sync_fast_path``)."""

    def __repr__(self) -> str:
        names = ", ".join(lay.name for lay in self._layers)
        return f"Middleware([{names}], on_hook_error={self.on_hook_error!r})"

    def wrap(self, client: Any) -> Any:
        """Return ``client`` with this chain around its ``create()`` calls (see API.md)."""
        from tokenmw._clients.openai import wrap_openai_client

        return wrap_openai_client(client, self)

    # -- running a call -------------------------------------------------------------------------

    async def run(self, call: Call, send: Send, *, sync_caller: bool = False) -> Any:
        """Run ``call`` through the chain; ``send`` makes the model call. ``sync_caller`` says
        whether a stream is handed to synchronous code (it decides the kind of stream proxy)."""
        span = tel.start_call_span(call) if tel.active() else None
        token = otel_context.attach(trace.set_span_in_context(span)) if span is not None else None
        try:
            if self._layers:
                call.snapshot_original()
            response = await self._dispatch(0, call, send, span)
        except BaseException as error:
            self._finish(call, span, error=error)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
        if call.stream:
            if sync_caller and is_sync_stream(response):
                return SyncStreamProxy(response, _StreamRun(self, call, span))
            if not sync_caller and is_async_stream(response):
                return AsyncStreamProxy(response, _StreamRun(self, call, span))
        self._finish(call, span, response=response)
        return response

    async def _dispatch(self, i: int, call: Call, send: Send, span: Span | None) -> Any:
        if i == len(self._layers):
            for layer in self._send_hooks:
                await self._run_phase(layer, "on_send", call, span)
            response = await send(call)
            if not call.stream:
                # Usage as billed, read where the model answered: a cache hook's short-circuit
                # bills nothing, and an ``after`` hook's rewrite does not change what was billed.
                reported_usage(response, call.usage)
            return response
        layer = self._layers[i]
        if layer.before:
            await self._run_phase(layer, "before", call, span)
        if layer.wrap:
            response = await self._run_wrap(layer, i, call, send, span)
        else:
            response = await self._dispatch(i + 1, call, send, span)
        if layer.after and not call.stream:
            response = await self._run_after(layer, call, response, span)
        return response

    async def _run_phase(self, layer: _Layer, phase: str, call: Call, span: Span | None) -> None:
        started = perf_counter_ns()
        hook_span = tel.start_hook_span(layer.name, phase) if span is not None else None
        saved_request = dict(call.request)
        try:
            method = layer.hook.before if phase == "before" else layer.hook.on_send
            if hook_span is None:
                await method(call)
            else:
                # tel.hook_span_error records a failure (once); use_span only sets the status.
                with trace.use_span(hook_span, end_on_exit=False, record_exception=False):
                    await method(call)
        except TokenmwError:
            raise  # a deliberate refusal (e.g. a token budget), not a broken hook
        except Exception as error:
            # A hook that fails half-way must not send a half-changed request.
            call.request.clear()
            call.request.update(saved_request)
            self._hook_failed(layer, phase, error, hook_span)
        finally:
            if hook_span is not None:
                tel.end_hook_span(hook_span)
            self.hook_times.add(layer.name, phase, perf_counter_ns() - started)

    async def _run_after(self, layer: _Layer, call: Call, response: Any, span: Span | None) -> Any:
        started = perf_counter_ns()
        hook_span = tel.start_hook_span(layer.name, "after") if span is not None else None
        try:
            if hook_span is None:
                return await layer.hook.after(call, response)
            with trace.use_span(hook_span, end_on_exit=False, record_exception=False):
                return await layer.hook.after(call, response)
        except TokenmwError:
            raise
        except Exception as error:
            self._hook_failed(layer, "after", error, hook_span)
            return response
        finally:
            if hook_span is not None:
                tel.end_hook_span(hook_span)
            self.hook_times.add(layer.name, "after", perf_counter_ns() - started)

    async def _run_wrap(self, layer: _Layer, i: int, call: Call, send: Send, span: Span | None) -> Any:
        # The hook's own work is timed (and traced) in segments that pause while ``call_next``
        # runs, and what runs inside ``call_next`` stays a child of the call span.
        segment = _WrapSegment(self, layer, span)
        next_result: list[Any] = []
        next_errors: list[BaseException] = []  # what call_next raised: not the hook's failure
        saved_request = dict(call.request)

        async def call_next(next_call: Call) -> Any:
            segment.pause()
            try:
                result = await self._dispatch(i + 1, next_call, send, span)
            except BaseException as error:
                next_errors.append(error)
                raise
            finally:
                segment.resume()
            next_result[:] = [result]
            return result

        self.hook_times.add(layer.name, "wrap", 0)  # one run, however many segments
        segment.resume()
        try:
            return await layer.hook.wrap(call, call_next)
        except TokenmwError:
            raise
        except Exception as error:
            if any(error is e for e in next_errors):
                raise  # the model call (or a later layer) failed; the hook only passed it on
            self._hook_failed(layer, "wrap", error, segment.span)
            if next_result:
                return next_result[0]
            call.request.clear()  # bypass the hook with the request as it found it
            call.request.update(saved_request)
            return await self._dispatch(i + 1, call, send, span)
        finally:
            segment.pause()

    def _hook_failed(self, layer: _Layer, phase: str, error: Exception, hook_span: Span | None) -> None:
        strict = self.on_hook_error == "raise"
        if hook_span is not None:
            tel.hook_span_error(hook_span, error, skipped=not strict)
        if strict:
            raise error
        key = (layer.index, phase)
        if key not in self._logged_failures:
            self._logged_failures.add(key)
            logger.warning(
                "tokenmw: hook %r failed in %s and was skipped (%s: %s); later failures of this "
                "hook phase are logged at DEBUG",
                layer.name,
                phase,
                type(error).__name__,
                error,
                exc_info=error,
            )
        else:
            logger.debug("tokenmw: hook %r failed in %s again", layer.name, phase, exc_info=error)

    def _finish(
        self, call: Call, span: Span | None, error: BaseException | None = None, response: Any = None
    ) -> None:
        if error is None:
            self.usage.record(call.model, call.usage)
        if span is not None:
            tel.end_call_span(span, call, error, response)

    # -- streams ----------------------------------------------------------------------------------

    def _chunk_failed(self, layer: _Layer, phase: str, error: Exception) -> None:
        self._hook_failed(layer, phase, error, None)


class _WrapSegment:
    """The running part of a ``wrap`` hook: timed, and traced as a span when the call is.

    The segment span is not made current: ``call_next`` may run in other tasks (a hedging hook
    gathers two), and a context attached in one task cannot be detached in another. So the rest
    of the chain stays a child of the call span, and so does anything the hook itself traces.
    """

    __slots__ = ("call_span", "layer", "mw", "paused", "span", "started")

    def __init__(self, mw: Middleware, layer: _Layer, call_span: Span | None) -> None:
        self.mw = mw
        self.layer = layer
        self.call_span = call_span
        self.span: Span | None = None
        self.started = 0
        self.paused = 1  # calls to call_next in flight (+1 before the hook starts); >0: not running

    def resume(self) -> None:
        """The hook's code runs (again). With several ``call_next`` in flight at once, that is when
        the last of them returns."""
        self.paused -= 1
        if self.paused:
            return
        self.started = perf_counter_ns()
        if self.call_span is not None:
            self.span = tel.start_hook_span(self.layer.name, "wrap")

    def pause(self) -> None:
        """The hook hands over (``call_next``) or returns: stop timing and end the segment's span."""
        self.paused += 1
        if not self.started:
            return
        self.mw.hook_times.add(self.layer.name, "wrap", perf_counter_ns() - self.started, runs=0)
        self.started = 0
        if self.span is not None:
            tel.end_hook_span(self.span)
            self.span = None


_DROP = object()
# Responses API stream events that carry the whole response, usage included.
_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class _StreamRun:
    """The chain's share of one stream: per-chunk hooks and the end of the call, exactly once."""

    __slots__ = ("call", "chunk_ns", "chunks", "finished", "mw", "span", "stopped")

    def __init__(self, mw: Middleware, call: Call, span: Span | None) -> None:
        self.mw = mw
        self.call = call
        self.span = span
        self.finished = False
        self.stopped = False
        self.chunks = 0
        # Time in each on_chunk hook, added to mw.hook_times once at the end (no lock per chunk).
        self.chunk_ns = [0] * len(mw._chunk_hooks)

    def feed(self, chunk: Any) -> Any:
        """The chunk to hand to the caller after every ``on_chunk`` hook, or ``DROP``."""
        call = self.call
        if self.span is not None:
            tel.observe_chunk(self.span, chunk)
        if getattr(chunk, "usage", None) is not None or getattr(chunk, "type", None) in _FINAL_EVENTS:
            reported_usage(chunk, call.usage)
        self.chunks += 1
        chunk_ns = self.chunk_ns
        for position, layer in enumerate(self.mw._chunk_hooks):
            started = perf_counter_ns()
            try:
                chunk = layer.hook.on_chunk(call, chunk)
            except TokenmwError:
                raise
            except Exception as error:
                self.mw._chunk_failed(layer, "on_chunk", error)
                continue
            finally:
                chunk_ns[position] += perf_counter_ns() - started
            if chunk is None:
                return _DROP
        return chunk

    def take_stop_request(self) -> tuple[Any, ...] | None:
        """The final chunks if a hook asked to stop (``call.end_stream``) and the stream has not
        stopped yet; ``None`` otherwise."""
        final = self.call._stream_end
        if final is None or self.stopped:
            return None
        self.stopped = True
        return final

    def finish(self, outcome: StreamOutcome, error: BaseException | None = None) -> None:
        """End the call: ``on_stream_end`` hooks, usage, span. Runs once; later calls do nothing."""
        if self.finished:
            return
        self.finished = True
        # The call span is current here, as it is in the request phases, so a hook can note what
        # the stream came to on it (``trace.get_current_span()``).
        span = self.span
        token = None
        if span is not None and self.mw._end_hooks:
            token = otel_context.attach(trace.set_span_in_context(span))
        times = self.mw.hook_times
        for layer, ns in zip(self.mw._chunk_hooks, self.chunk_ns, strict=True):
            times.add(layer.name, "on_chunk", ns, runs=self.chunks)
        first_error: BaseException | None = None  # raised (strict mode) once the call has ended
        try:
            for layer in self.mw._end_hooks:
                started = perf_counter_ns()
                try:
                    layer.hook.on_stream_end(self.call, outcome)
                except Exception as hook_error:
                    if outcome == "abandoned":  # at garbage collection nobody can catch it
                        logger.debug("tokenmw: on_stream_end failed", exc_info=hook_error)
                        continue
                    try:
                        self.mw._chunk_failed(layer, "on_stream_end", hook_error)
                    except Exception as strict_error:
                        first_error = first_error or strict_error
                finally:
                    times.add(layer.name, "on_stream_end", perf_counter_ns() - started)
        finally:
            if token is not None:
                otel_context.detach(token)
            self.mw._finish(self.call, self.span, error=error)
        if first_error is not None:
            raise first_error


DROP = _DROP
