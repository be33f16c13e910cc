"""The middleware chain: hooks around one model call, as an onion.

Each hook is one layer: its ``before`` runs on the way in (list order), its ``wrap`` around the
rest of the chain (first hook outermost), its ``after`` on the way out (reverse order). At the
centre, ``on_send`` of every hook sees the request exactly as it goes out, then ``send`` makes the
model call. Streams leave the onion as soon as the first chunk can be read; the stream proxy then
runs ``on_chunk`` per chunk and ends the call (``on_stream_end``, usage, span) exactly once.

The chain knows nothing of any client: integrations hand it a ``Call`` and a ``send`` coroutine,
and get back the response, or for a stream a ``StreamRun`` that they wrap in their kind of proxy.
Layers are resolved once, at construction, so a phase a hook does not define costs nothing per call.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from time import monotonic, perf_counter_ns
from typing import TYPE_CHECKING, Any, Literal

from tokenmw._core.call import Call
from tokenmw._core.errors import HookResultError, HookTimeout, TokenmwError
from tokenmw._core.hook import Hook, after_idle, defined_phases, edits_by_replacing
from tokenmw._core.stream_run import StreamRun
from tokenmw._core.timing import HookTimes
from tokenmw._core.usage import Usage
from tokenmw.telemetry import _spans as tel

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = ["Chain", "OnHookError", "Send"]

logger = logging.getLogger("tokenmw")

OnHookError = Literal["skip", "raise"]

LARGE_REQUEST_CHARS = 32_768
"""Text in a request above which an async call hands the event loop back before the hooks run and
before the send: the client's own work on such a request takes a millisecond or more."""

NEW_TEXT_CHARS = 2_048
"""New text (never counted in this process) in a request above which an async call hands the loop
back before the hooks run: compressing and counting it takes a millisecond or more, which should
not share a loop step with the client's own work. An agent turn whose new message is a short
question skips that step (~10 µs of loop work)."""

HOOK_STEP_NS = 500_000
"""Hook work in one call above which the loop is handed back before the send (the client's
serialisation and sending is a step of its own); below it the two share a step."""
Send = Callable[[Call], Awaitable[Any]]
"""The model call at the centre of the chain."""


class _Layer:
    """A hook and the phases it defines, resolved once."""

    __slots__ = ("after", "after_idle", "before", "custom", "hook", "index", "name", "span_current", "wrap")

    def __init__(self, hook: Hook, index: int) -> None:
        phases = defined_phases(hook)
        self.hook = hook
        self.index = index
        self.name = getattr(hook, "name", None) or type(hook).__name__
        self.before = "before" in phases
        self.wrap = "wrap" in phases
        self.after = "after" in phases
        # Asked before ``after`` runs, only of hooks that answer it (the built-ins).
        self.after_idle = after_idle(hook)
        self.span_current = bool(getattr(hook, "_span_current", True))
        self.custom = not edits_by_replacing(hook)
        """The hook may edit the request in place: its phases are custom code to the count memo."""


class Chain:
    """An ordered chain of hooks around one model call (``tokenmw.Middleware`` adds wrapping)."""

    def __init__(
        self,
        hooks: Iterable[Hook] = (),
        *,
        on_hook_error: OnHookError = "skip",
        hook_timeout: float | None = None,
    ) -> None:
        hooks = tuple(hooks)
        for hook in hooks:
            if not isinstance(hook, Hook):
                raise TypeError(
                    f"tokenmw.Middleware takes tokenmw.Hook instances, got {type(hook).__name__!r}"
                    " (did you pass the class instead of an instance?)"
                )
        if on_hook_error not in ("skip", "raise"):
            raise ValueError(f"on_hook_error must be 'skip' or 'raise', got {on_hook_error!r}")
        if hook_timeout is not None and (
            isinstance(hook_timeout, bool)
            or not isinstance(hook_timeout, int | float)
            or not math.isfinite(hook_timeout)
            or hook_timeout <= 0
        ):
            raise ValueError(
                f"hook_timeout must be None (no limit) or a number of seconds > 0, got {hook_timeout!r}"
            )
        self.hook_timeout: float | None = hook_timeout
        """Seconds a request-phase hook may take before it is skipped as failed (None: no limit)."""
        self.hooks: tuple[Hook, ...] = hooks
        self.on_hook_error: OnHookError = on_hook_error
        self.usage = Usage()
        """Live totals over every call made through this middleware."""
        self.hook_times = HookTimes()
        """Time spent in each hook phase, summed over every call (no SDK needed)."""
        self._layers = tuple(_Layer(h, i) for i, h in enumerate(hooks))
        self._send_hooks = tuple(lay for lay in self._layers if "on_send" in defined_phases(lay.hook))
        # Stream phases run on the way out, like ``after``: last hook first.
        self.chunk_layers = tuple(
            lay for lay in reversed(self._layers) if "on_chunk" in defined_phases(lay.hook)
        )
        self.end_layers = tuple(
            lay for lay in reversed(self._layers) if "on_stream_end" in defined_phases(lay.hook)
        )
        self._logged_failures: set[tuple[int, str]] = set()
        # A time budget needs a Task to cancel a slow hook, which the hand-stepped path has not.
        self.sync_fast_path = all(h.sync_fast_path for h in hooks) and hook_timeout is None
        """Whether sync clients may step this chain by hand (see ``Hook.sync_fast_path``)."""

    def __repr__(self) -> str:
        names = ", ".join(lay.name for lay in self._layers)
        return f"{type(self).__name__}([{names}], on_hook_error={self.on_hook_error!r})"

    # -- running a call -------------------------------------------------------------------------

    async def run(self, call: Call, send: Send) -> Any:
        """Run ``call`` through the chain; ``send`` makes the model call.

        Returns the response; for a streamed response, a ``StreamRun`` that the integration wraps
        in its sync or async stream proxy (the call ends when that stream does).
        """
        span = tel.start_call_span(call) if tel.sdk_configured() else None
        call._enter_chain()
        try:
            with tel.current(span):
                if self._layers:
                    call.materialise()  # one-shot iterables: counted and sent, never consumed
                    call.snapshot_original()
                    if not call.blocking:
                        call._hooks_started = perf_counter_ns()
                        large = call._original_chars > LARGE_REQUEST_CHARS
                        if large or call._uncounted_chars() > NEW_TEXT_CHARS:
                            await asyncio.sleep(0)  # the client's own work before ours: a step each
                response = await self._dispatch(0, call, send, span)
        except BaseException as error:
            self.finish_call(call, span, error=error)
            raise
        finally:
            call._leave_chain()
        if call.stream and _is_stream(response):
            return StreamRun(self, call, span, response)
        self.finish_call(call, span, response=response)
        return response

    async def _dispatch(self, i: int, call: Call, send: Send, span: Span | None) -> Any:
        """Layers ``i`` onwards around the model call. A loop, not one coroutine per layer, up to
        the first ``wrap`` layer (which runs the rest inside its ``call_next``): every time the
        send waits on the network, each coroutine between it and the loop is resumed."""
        layers = self._layers
        last = i
        wrapper: _Layer | None = None
        for last in range(i, len(layers)):
            layer = layers[last]
            if layer.before:
                await self._run_phase(layer, "before", call, span)
            if layer.wrap:
                wrapper = layer
                break
        else:
            last = len(layers) - 1
        if wrapper is not None:
            response = await self._run_wrap(wrapper, last, call, send, span)
        else:
            response = await self._centre(call, send, span)
        for k in range(last, i - 1, -1):
            layer = layers[k]
            if layer.after and not call.stream:
                idle = layer.after_idle
                if idle is None or not idle(call, response):
                    response = await self._run_after(layer, call, response, span)
        return response

    async def _centre(self, call: Call, send: Send, span: Span | None) -> Any:
        """``on_send`` of every hook on the request as it goes out, then the model call."""
        for layer in self._send_hooks:
            await self._run_phase(layer, "on_send", call, span)
        if self._layers and not call.blocking and (
            perf_counter_ns() - call._hooks_started > HOOK_STEP_NS
            or call._original_chars > LARGE_REQUEST_CHARS
        ):
            # Hand the loop back once between the hooks' work and the client's own (building
            # and sending the request): each holds the loop for less, other tasks run between.
            await asyncio.sleep(0)
        response = await send(call)
        call.usage.requests += 1
        if not call.stream:
            # Usage as billed, read where the model answered: a cache hook's short-circuit
            # bills nothing, and an ``after`` hook's rewrite does not change what was billed.
            # Added per response: a wrap hook that sends twice (retry, hedge) billed twice.
            call.usage.record_response(response)
        return response

    async def _run_phase(self, layer: _Layer, phase: str, call: Call, span: Span | None) -> None:
        started = perf_counter_ns()
        deferred = not layer.span_current
        hook_span = tel.start_hook_span(layer.name, phase, deferred) if span is not None else None
        saved_request = dict(call.request)
        if layer.custom:
            call._enter_user_code()
        try:
            method = layer.hook.before if phase == "before" else layer.hook.on_send
            # Without a time budget the phase is awaited directly (one coroutine fewer per phase).
            timed = self.hook_timeout is not None
            if hook_span is None:
                await (self._within_budget(layer, phase, method(call)) if timed else method(call))
            else:
                # tel.hook_span_error records a failure (once); hook_phase only sets the status.
                with tel.hook_phase(hook_span, call, layer.span_current):
                    await (self._within_budget(layer, phase, method(call)) if timed else method(call))
        except TokenmwError:
            raise  # a deliberate refusal (e.g. a token budget), not a broken hook
        except Exception as error:
            # A hook that fails half-way must not send a half-changed request.
            call.request.clear()
            call.request.update(saved_request)
            self._hook_failed(layer, phase, error, hook_span)
        finally:
            if layer.custom:
                call._leave_user_code()
            if hook_span is not None:
                tel.end_hook_span(hook_span)
            self.hook_times.add(layer.name, phase, perf_counter_ns() - started)

    async def _run_after(self, layer: _Layer, call: Call, response: Any, span: Span | None) -> Any:
        started = perf_counter_ns()
        deferred = not layer.span_current
        hook_span = tel.start_hook_span(layer.name, "after", deferred) if span is not None else None
        if layer.custom:
            call._enter_user_code()
        try:
            if hook_span is None:
                result = await layer.hook.after(call, response)
            else:
                with tel.hook_phase(hook_span, call, layer.span_current):
                    result = await layer.hook.after(call, response)
            if result is None and response is not None:
                # Forgetting ``return response`` must not hand the caller None.
                raise HookResultError(layer.name, "after", result, "a response")
            return result
        except TokenmwError:
            raise
        except Exception as error:
            self._hook_failed(layer, "after", error, hook_span)
            return response
        finally:
            if layer.custom:
                call._leave_user_code()
            if hook_span is not None:
                tel.end_hook_span(hook_span)
            self.hook_times.add(layer.name, "after", perf_counter_ns() - started)

    async def _run_wrap(self, layer: _Layer, i: int, call: Call, send: Send, span: Span | None) -> Any:
        # The hook's own work is timed (and traced) in segments that pause while ``call_next``
        # runs, and what runs inside ``call_next`` stays a child of the call span.
        segment = _WrapSegment(self, layer, span)
        next_result: list[Any] = []
        next_errors: list[BaseException] = []  # what call_next raised: not the hook's failure
        entered: list[bool] = []  # call_next was called: the request may have gone out
        saved_request = dict(call.request)
        timeout = self.hook_timeout
        handed_over: asyncio.Future[None] | None = None
        late: list[HookTimeout] = []  # the hook blocked past its budget before calling call_next
        if timeout is not None:
            handed_over = asyncio.get_running_loop().create_future()
            started = monotonic()

        async def call_next(next_call: Call) -> Any:
            if timeout is not None and not entered and monotonic() - started > timeout:
                late.append(HookTimeout(layer.name, "wrap", timeout))
                raise late[0]  # too late to hand over: the hook is skipped, nothing sent by it
            entered.append(True)
            if handed_over is not None and not handed_over.done():
                handed_over.set_result(None)
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
        if layer.custom:
            call._enter_user_code()  # for the whole wrap: its code runs around call_next
        segment.resume()
        try:
            if handed_over is None:
                result = await layer.hook.wrap(call, call_next)
            else:
                result = await self._wrap_within_budget(layer, layer.hook.wrap(call, call_next), handed_over)
            if result is None and not (next_result and next_result[0] is None):
                raise HookResultError(layer.name, "wrap", result, "a response")
            return result
        except TokenmwError:
            raise
        except Exception as error:
            if not late and any(error is e for e in next_errors):
                raise  # the model call (or a later layer) failed; the hook only passed it on
            if entered and not next_result:
                # The hook sent (or is sending) and then raised its own error: a deadline, a
                # RateLimitError turned into the application's error. Sending again would bill
                # twice and override the hook's decision, so its error is what the caller gets.
                if segment.span is not None:
                    tel.hook_span_error(segment.span, error, skipped=False)
                raise
            self._hook_failed(layer, "wrap", late[0] if late else error, segment.span)
            if next_result:
                return next_result[0]
            call.request.clear()  # bypass the hook with the request as it found it
            call.request.update(saved_request)
            return await self._dispatch(i + 1, call, send, span)
        finally:
            segment.pause()
            if layer.custom:
                call._leave_user_code()

    async def _within_budget(self, layer: _Layer, phase: str, awaitable: Awaitable[None]) -> None:
        """Await a ``before`` / ``on_send`` within ``hook_timeout`` (when set); over it is a
        ``HookTimeout``. A hook that blocks the loop cannot be interrupted: it is judged by the
        time it took once it returns (its changes are rolled back like any failed hook's)."""
        timeout = self.hook_timeout
        if timeout is None:
            await awaitable
            return
        started = monotonic()
        try:
            await asyncio.wait_for(awaitable, timeout)
        except asyncio.TimeoutError:
            if monotonic() - started < timeout:
                raise  # the hook's own timeout, not the budget
            raise HookTimeout(layer.name, phase, timeout) from None
        if monotonic() - started > timeout:
            raise HookTimeout(layer.name, phase, timeout)

    async def _wrap_within_budget(
        self, layer: _Layer, running: Awaitable[Any], handed_over: asyncio.Future[None]
    ) -> Any:
        """Run a ``wrap`` whose part before ``call_next`` must take at most ``hook_timeout``;
        once it has called ``call_next`` (the request is on its way) it runs as long as it needs."""
        timeout = self.hook_timeout
        assert timeout is not None
        task = asyncio.ensure_future(running)
        started = monotonic()
        try:
            await asyncio.wait((task, handed_over), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # the caller cancelled: take the hook with it
            task.cancel()
            raise
        late = monotonic() - started > timeout
        if not handed_over.done() and (not task.done() or late):
            task.cancel()
            await asyncio.wait((task,))  # let it unwind; its outcome is the timeout
            raise HookTimeout(layer.name, "wrap", timeout)
        return await task

    def _hook_failed(self, layer: _Layer, phase: str, error: Exception, hook_span: Span | None) -> None:
        strict = self.on_hook_error == "raise"
        if hook_span is not None:
            tel.hook_span_error(hook_span, error, skipped=not strict)
            if isinstance(error, HookTimeout):
                tel.hook_span_timeout(hook_span, error.timeout)
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

    def finish_call(
        self, call: Call, span: Span | None, error: BaseException | None = None, response: Any = None
    ) -> None:
        """The end of every call: usage recorded and its span ended. A failed call records only
        what the model already billed it (a retry or an expansion follow-up failed after an
        earlier request was answered); one that never got an answer adds nothing."""
        if error is None or (call.usage.requests and call.usage.input_tokens_reported is not None):
            self.usage.record(call.model, call.usage)
        if span is not None:
            tel.end_call_span(span, call, error, response)

    def stream_hook_failed(self, layer: Any, phase: str, error: Exception) -> None:
        """A stream phase (``on_chunk``, ``on_stream_end``) failed: skip it, or raise in strict mode."""
        self._hook_failed(layer, phase, error, None)


class _WrapSegment:
    """The running part of a ``wrap`` hook: timed, and traced as a span when the call is.

    The segment span is not made current: ``call_next`` may run in other tasks (a hedging hook
    gathers two), and a context attached in one task cannot be detached in another. So the rest
    of the chain stays a child of the call span, and so does anything the hook itself traces.
    """

    __slots__ = ("call_span", "layer", "mw", "paused", "span", "started")

    def __init__(self, mw: Chain, layer: _Layer, call_span: Span | None) -> None:
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


def _is_stream(response: Any) -> bool:
    """Whether a streamed call's response is a stream (a caching hook may answer with a whole one)."""
    if isinstance(response, str | bytes | dict):
        return False
    return hasattr(response, "__next__") or hasattr(response, "__anext__")
