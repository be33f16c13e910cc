"""Spans for calls and hook phases, and the metrics beside them, through ``opentelemetry-api`` only.

Without an SDK every span would be a no-op costing about a microsecond; with four hooks that adds
up, so ``active()`` checks once per call whether a real tracer or meter provider is installed and
the chain creates no spans at all when none is. The check reads the API's provider globals
directly: the public getters look an environment variable up on every call, which costs ~1.5 µs
each (a ``KeyError`` raised and caught inside ``os.environ``) and would be most of the price.

A call span carries the GenAI attributes; what a stream tells about the response (id, model,
finish reasons) is gathered per chunk into a small record and written once when the call ends.
Everything here is guarded: a telemetry failure is logged at DEBUG and never fails the call.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    NonRecordingSpan,
    NoOpTracerProvider,
    ProxyTracerProvider,
    Span,
    SpanKind,
    Status,
    StatusCode,
)

from tokenmw._wire.fields import get_field
from tokenmw._wire.text import chunk_pieces
from tokenmw._wire.usage import FINAL_EVENTS
from tokenmw.telemetry import _content as content
from tokenmw.telemetry import _semconv as sc
from tokenmw.telemetry._metrics import Instruments

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from tokenmw._core.call import Call

__all__ = [
    "DeferredSpan",
    "UsageReporting",
    "annotate_phase",
    "annotate_tokens",
    "current",
    "end_call_span",
    "end_hook_span",
    "hook_phase",
    "hook_span_error",
    "hook_span_timeout",
    "observe_chunk",
    "phase_span",
    "sdk_configured",
    "set_usage_reporting",
    "start_call_span",
    "start_hook_span",
]

logger = logging.getLogger("tokenmw")

UsageReporting = Literal["auto", "always", "never"]

# -- is an SDK configured? -----------------------------------------------------------------------

_trace_api: Any = trace
_metrics_api: Any = getattr(metrics, "_internal", None)  # where the API keeps its meter provider
_NO_TRACER = (ProxyTracerProvider, NoOpTracerProvider)
_NO_METER = (
    metrics.NoOpMeterProvider,
    getattr(_metrics_api, "_ProxyMeterProvider", metrics.NoOpMeterProvider),
)
# The one place tokenmw reads OpenTelemetry's private globals: ``get_tracer_provider()`` costs a
# function call and a lock per call, and these reads answer "is an SDK set?" in ~30 ns. Checked
# against opentelemetry-api 1.27 to 1.45 (pyproject pins <2); tests/telemetry/test_spans.py fails
# if a release moves them. The reads are valid while no provider is loaded lazily from an
# OTEL_PYTHON_*_PROVIDER variable; otherwise (or if the globals are gone) the public getters are used.
_FAST_TRACE = hasattr(_trace_api, "_TRACER_PROVIDER") and "OTEL_PYTHON_TRACER_PROVIDER" not in os.environ
_FAST_METER = hasattr(_metrics_api, "_METER_PROVIDER") and "OTEL_PYTHON_METER_PROVIDER" not in os.environ

_tracer: Tracer | None = None
"""tokenmw's tracer, taken from the real provider once there is one."""
_instruments: Instruments | None = None
"""The metric instruments, built once a real meter provider is set."""
_setup_lock = threading.Lock()


def _tracer_provider_set() -> bool:
    provider = _trace_api._TRACER_PROVIDER if _FAST_TRACE else trace.get_tracer_provider()
    return provider is not None and not isinstance(provider, _NO_TRACER)


def _meter_provider_set() -> bool:
    provider = _metrics_api._METER_PROVIDER if _FAST_METER else metrics.get_meter_provider()
    return provider is not None and not isinstance(provider, _NO_METER)


def sdk_configured() -> bool:
    """Whether an OpenTelemetry SDK (a real tracer or meter provider) is configured.

    The global providers can be set only once, so once both are found this answers at once.
    """
    if _tracer is not None and _instruments is not None:
        return True
    if _tracer is None and _tracer_provider_set():
        _start_tracing()
    if _instruments is None and _meter_provider_set():
        _start_metrics()
    return _tracer is not None or _instruments is not None


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tokenmw")
    except PackageNotFoundError:
        return None


def _start_tracing() -> None:
    global _tracer
    with _setup_lock:
        if _tracer is None:
            _tracer = trace.get_tracer("tokenmw", _version())


def _start_metrics() -> None:
    global _instruments
    with _setup_lock:
        if _instruments is None:
            version = _version()
            meter = metrics.get_meter("tokenmw", version) if version else metrics.get_meter("tokenmw")
            _instruments = Instruments(meter)


# -- usage already reported by another instrumentation ------------------------------------------

_usage_reporting: UsageReporting = "auto"


def set_usage_reporting(mode: UsageReporting) -> None:
    """Whether call spans carry ``gen_ai.usage.*`` (and the ``gen_ai.client.*`` metrics are
    recorded): ``"auto"`` leaves them to another OpenAI instrumentation when one wraps the
    client's ``create`` (see ``tokenmw.telemetry``), ``"always"`` / ``"never"`` force it."""
    global _usage_reporting
    if mode not in ("auto", "always", "never"):
        raise ValueError(f"usage reporting must be 'auto', 'always' or 'never', got {mode!r}")
    _usage_reporting = mode


def _usage_reported_elsewhere(call: Call) -> bool:
    """Whether another instrumentation reports this call's usage in its own span (in the same
    trace); the client integration tells (``call.usage_reported_elsewhere``)."""
    if _usage_reporting != "auto":
        return _usage_reporting == "never"
    return call.usage_reported_elsewhere


class current:  # lower-case: it reads as a function, ``with current(span):``
    """Make ``span`` the current span inside a ``with`` block (nothing to do for ``None``).

    A class rather than ``@contextmanager``: it runs on every call, and a generator costs more."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span | None) -> None:
        self._span = span
        self._token: object = None

    def __enter__(self) -> None:
        if self._span is not None:
            self._token = otel_context.attach(trace.set_span_in_context(self._span))

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]


class hook_phase:  # lower-case, like ``current``
    """The span of a hook phase while the phase runs: made current (``attach``), or only put on
    the call for the built-in hooks (``Hook._span_current``), which start no spans of their own.
    An exception leaving the phase marks the span as an error, as ``trace.use_span`` does (the
    status, not the exception: the chain records a hook's failure once). A class rather than
    ``use_span`` (a generator context manager): ~0.6 µs a phase instead of ~2, and none without
    the attach."""

    __slots__ = ("_call", "_current", "_span")

    def __init__(self, span: Span, call: Call, attach: bool) -> None:
        self._span = span
        self._call = call
        self._current = current(span) if attach else None

    def __enter__(self) -> None:
        if self._current is not None:
            self._current.__enter__()
        else:
            self._call._phase_span = self._span

    def __exit__(self, *exc_info: object) -> None:
        if self._current is not None:
            self._current.__exit__()
        else:
            self._call._phase_span = None
        error = exc_info[1] if len(exc_info) > 1 else None
        span = self._span
        if isinstance(error, Exception) and span.is_recording():
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


def phase_span(call: Call) -> Span:
    """The span of the hook phase running on ``call`` (else the current span): where a built-in
    hook notes what it did."""
    span = call._phase_span
    if span is not None:
        return span
    # No tracer: every span is a no-op, and the context lookup (~1 µs) runs per hook per call.
    return trace.get_current_span() if _tracer is not None else _NOT_RECORDING


_NOT_RECORDING = NonRecordingSpan(INVALID_SPAN_CONTEXT)


# -- call spans ----------------------------------------------------------------------------------


class _CallRecord:
    """What the end of a call needs: when it started, the metric attributes, and what the
    response (or the stream's chunks) said about itself."""

    __slots__ = ("attrs", "capture", "finish_reasons", "output", "response_id", "response_model", "start")

    def __init__(self, attrs: dict[str, Any], capture: bool) -> None:
        self.start = time.perf_counter()
        self.attrs = attrs
        self.capture = capture
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.finish_reasons: list[str] = []
        self.output: dict[int, list[str]] | None = {} if capture else None


_calls: dict[Span, _CallRecord] = {}
_hooks: dict[Span, tuple[float, str, str]] = {}


def _default_port(scheme: str | None) -> int | None:
    return 443 if scheme == "https" else 80 if scheme == "http" else None


def _server(call: Call) -> tuple[str | None, int | None]:
    """Host and port the call goes to: the OpenAI client's ``base_url``, LiteLLM's ``api_base``.
    Only host and port are kept: a URL can carry credentials."""
    if call.client is not None:
        url = getattr(call.client, "base_url", None)
        host = getattr(url, "host", None)
        if not host:
            return None, None
        return str(host), getattr(url, "port", None) or _default_port(getattr(url, "scheme", None))
    base = call.request.get("api_base") or call.request.get("base_url")
    if not isinstance(base, str):
        return None, None
    try:
        parts = urlsplit(base)
        return parts.hostname, parts.port or _default_port(parts.scheme)
    except ValueError:
        return None, None


def _span_name(call: Call) -> str:
    model = call.model
    return f"{sc.OPERATION_CHAT} {model}" if model else sc.OPERATION_CHAT


def start_call_span(call: Call) -> Span:
    """The CLIENT span of one model call (GenAI semantic conventions), started as a child of the
    caller's current span."""
    attrs: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
        sc.GEN_AI_PROVIDER_NAME: call.provider,
    }
    model = call.model
    if model:
        attrs[sc.GEN_AI_REQUEST_MODEL] = model
    host, port = _server(call)
    if host:
        attrs[sc.SERVER_ADDRESS] = host
        if port:
            attrs[sc.SERVER_PORT] = port
    tracer = _tracer
    if tracer is not None:
        span = tracer.start_span(_span_name(call), kind=SpanKind.CLIENT, attributes=attrs)
    else:  # metrics only: a span of its own, so the call's record has a key
        span = NonRecordingSpan(INVALID_SPAN_CONTEXT)
    recording = span.is_recording()
    if recording or _instruments is not None:
        _calls[span] = _CallRecord(attrs, recording and content.capture_enabled())
    return span


def end_call_span(span: Span, call: Call, error: BaseException | None = None, response: Any = None) -> None:
    """Record the call's request, response, usage (and error) on its span, end it, and record
    the call's metrics."""
    record = _calls.pop(span, None)
    try:
        if record is not None:
            if response is not None:
                _observe_response(record, response)
            elsewhere = _usage_reported_elsewhere(call)
            if span.is_recording():
                _annotate_call(span, call, record, error, elsewhere)
            if _instruments is not None:
                _record_call_metrics(_instruments, call, record, error, elsewhere)
    except Exception:
        logger.debug("tokenmw: could not record telemetry for %r", call, exc_info=True)
    finally:
        span.end()


def _annotate_call(
    span: Span, call: Call, record: _CallRecord, error: BaseException | None, elsewhere: bool
) -> None:
    request = call.request
    attrs: dict[str, Any] = {sc.GEN_AI_REQUEST_STREAM: call.stream}
    model = call.model
    if model and model != record.attrs.get(sc.GEN_AI_REQUEST_MODEL):
        span.update_name(_span_name(call))  # a hook routed the call to another model
        attrs[sc.GEN_AI_REQUEST_MODEL] = model
    max_tokens = request.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = request.get("max_tokens")
    if max_tokens is None:
        max_tokens = request.get("max_output_tokens")
    if isinstance(max_tokens, int):
        attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    for key, name in (("temperature", sc.GEN_AI_REQUEST_TEMPERATURE), ("top_p", sc.GEN_AI_REQUEST_TOP_P)):
        value = request.get(key)
        if isinstance(value, int | float):
            attrs[name] = value
    if record.response_id:
        attrs[sc.GEN_AI_RESPONSE_ID] = record.response_id
    if record.response_model:
        attrs[sc.GEN_AI_RESPONSE_MODEL] = record.response_model
    if record.finish_reasons:
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = record.finish_reasons
    u = call.usage
    if not elsewhere:
        if u.input_tokens_reported is not None:
            attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = u.input_tokens_reported
        if u.output_tokens is not None:
            attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = u.output_tokens
            if u.output_tokens_estimated:
                attrs[sc.TOKENMW_OUTPUT_ESTIMATED] = True
        if u.cached_input_tokens is not None:
            attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = u.cached_input_tokens
    if u.input_tokens_original is not None and u.input_tokens_sent is not None:
        attrs[sc.TOKENMW_TOKENS_BEFORE] = u.input_tokens_original
        attrs[sc.TOKENMW_TOKENS_AFTER] = u.input_tokens_sent
        attrs[sc.TOKENMW_TOKENS_SAVED] = u.input_tokens_original - u.input_tokens_sent
    if record.capture:
        attrs.update(content.input_attributes(call.operation, request))
        if record.output:
            texts = {index: "".join(pieces) for index, pieces in record.output.items()}
            attrs[sc.GEN_AI_OUTPUT_MESSAGES] = content.output_messages(texts, record.finish_reasons)
    if error is not None:
        error_type = type(error).__qualname__
        attrs[sc.ERROR_TYPE] = error_type
        span.set_status(Status(StatusCode.ERROR, error_type))
    span.set_attributes(attrs)


def _record_call_metrics(
    instruments: Instruments, call: Call, record: _CallRecord, error: BaseException | None, elsewhere: bool
) -> None:
    u = call.usage
    if error is None and u.input_tokens_original is not None and u.input_tokens_sent is not None:
        keys = (sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_REQUEST_MODEL)
        saved_attrs = {k: record.attrs[k] for k in keys if k in record.attrs}
        instruments.tokens_saved.add(u.input_tokens_original - u.input_tokens_sent, saved_attrs)
    if elsewhere:
        return  # the other instrumentation records the gen_ai.client.* metrics
    attrs = dict(record.attrs)
    if record.response_model:
        attrs[sc.GEN_AI_RESPONSE_MODEL] = record.response_model
    if error is not None:
        attrs[sc.ERROR_TYPE] = type(error).__qualname__
    instruments.operation_duration.record(time.perf_counter() - record.start, attrs)
    if error is not None:
        return
    for count, token_type in (
        (u.input_tokens_reported, sc.TOKEN_TYPE_INPUT),
        (u.output_tokens, sc.TOKEN_TYPE_OUTPUT),
    ):
        if count is not None:
            instruments.token_usage.record(count, {**attrs, sc.GEN_AI_TOKEN_TYPE: token_type})


# -- what the response says about itself ---------------------------------------------------------


# The Responses API reports a status; the conventions name finish reasons like chat does.
_RESPONSES_REASONS = {
    "completed": "stop",
    "failed": "error",
    "max_output_tokens": "length",
    "content_filter": "content_filter",
}


def _observe_response(record: _CallRecord, response: Any) -> None:
    record.response_id = get_field(response, "id")
    record.response_model = get_field(response, "model")
    choices = get_field(response, "choices")
    if isinstance(choices, list):
        record.finish_reasons = [r for r in (get_field(c, "finish_reason") for c in choices) if r is not None]
    else:
        _responses_reason(record, response)
    if record.capture:
        record.output = {i: [text] for i, text in content.response_output(response).items()}


def _responses_reason(record: _CallRecord, response: Any) -> None:
    status = get_field(response, "status")
    details = get_field(response, "incomplete_details")
    reason = get_field(details, "reason") if details is not None else None
    reason = reason or status
    if isinstance(reason, str):
        record.finish_reasons = [_RESPONSES_REASONS.get(reason, reason)]


def observe_chunk(span: Span, chunk: Any) -> None:
    """Note what a stream chunk tells about the response (id, model, finish reason); written on
    the span once, when the stream ends."""
    record = _calls.get(span)
    if record is None:
        return
    try:
        kind = get_field(chunk, "type")
        if kind is None:
            _observe_chat_chunk(record, chunk)
        elif kind == "response.created" or kind in FINAL_EVENTS:
            response = get_field(chunk, "response")
            record.response_id = get_field(response, "id") or record.response_id
            record.response_model = get_field(response, "model") or record.response_model
            if kind != "response.created":
                _responses_reason(record, response)
        elif kind == "response.output_text.delta" and record.output is not None:
            record.output.setdefault(0, []).append(get_field(chunk, "delta") or "")
    except Exception:
        logger.debug("tokenmw: could not read a stream chunk for telemetry", exc_info=True)


def _observe_chat_chunk(record: _CallRecord, chunk: Any) -> None:
    if record.response_id is None:
        record.response_id = get_field(chunk, "id")
        record.response_model = get_field(chunk, "model")
    choices = get_field(chunk, "choices")
    if not choices:
        return
    for choice in choices:
        reason = get_field(choice, "finish_reason")
        if reason is not None:
            record.finish_reasons.append(reason)
    if record.output is not None:
        for index, kind, text in chunk_pieces(chunk):
            if kind == "text":
                record.output.setdefault(index, []).append(text)


# -- hook spans ----------------------------------------------------------------------------------


_hook_span_made: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}
"""Name and start attributes of each hook phase's span, made once (the SDK copies the attributes)."""


def _hook_span_args(hook_name: str, phase: str) -> tuple[str, dict[str, str]]:
    args = _hook_span_made.get((hook_name, phase))
    if args is None:
        args = (
            f"tokenmw.{hook_name}.{phase}",
            {sc.TOKENMW_HOOK_NAME: hook_name, sc.TOKENMW_HOOK_PHASE: phase},
        )
        if len(_hook_span_made) < 4096:
            _hook_span_made[hook_name, phase] = args
    return args


def start_hook_span(hook_name: str, phase: str, deferred: bool = False) -> Span:
    """An INTERNAL span for one hook phase, child of the current (call) span.

    Under a call span that is not recording (sampled out), the hook spans would be sampled out
    too: the SDK is not asked (about 8 µs a span) and the call span's context is reused.
    ``deferred`` (a phase whose span is not made current, ``Hook._span_current``): what the phase
    notes is gathered and the SDK span is made once, when the phase ends, with its real start
    time and every attribute in one go (``DeferredSpan``)."""
    parent = trace.get_current_span()
    tracer = _tracer
    if tracer is not None and parent.is_recording():
        name, attributes = _hook_span_args(hook_name, phase)
        if deferred:
            span: Span = DeferredSpan(tracer, name, attributes)
        else:
            span = tracer.start_span(name, attributes=attributes)
    elif _instruments is None:
        return parent
    else:  # metrics only, or sampled out: a span of its own, so the hook's timing has a key
        span = NonRecordingSpan(parent.get_span_context())
    if _instruments is not None:
        _hooks[span] = (time.perf_counter(), hook_name, phase)
    return span


class DeferredSpan(Span):
    """The span of a built-in hook's phase, held as a record until the phase ends.

    An SDK span costs ~20 µs to start and end on a small VM, and every ``set_attributes`` after
    the start takes its lock and cleans the values again (~7 µs more); a call has six hook phases.
    Built-in hooks only note attributes on their phase span (it is never made current, nothing is
    parented to it), so the SDK span can be made when the phase is over: started at the phase's
    start time with every attribute at once, its status and exception events replayed, ended.
    What Jaeger shows is the same span. ``get_span_context`` is invalid until then: nothing may
    be parented to a phase that has not ended.
    """

    __slots__ = ("_attributes", "_events", "_exception", "_name", "_start", "_status", "_tracer")

    def __init__(self, tracer: Tracer, name: str, attributes: dict[str, Any]) -> None:
        self._tracer = tracer
        self._name = name
        self._attributes: dict[str, Any] = dict(attributes)
        self._start = time.time_ns()
        self._status: Status | None = None
        self._exception: BaseException | None = None
        self._events: list[tuple[str, Any, int]] = []

    def is_recording(self) -> bool:
        return True

    def get_span_context(self) -> Any:
        return INVALID_SPAN_CONTEXT

    def set_attributes(self, attributes: Any) -> None:
        self._attributes.update(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        self._attributes[key] = value

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        self._events.append((name, attributes, timestamp or time.time_ns()))

    def update_name(self, name: str) -> None:
        self._name = name

    def set_status(self, status: Any, description: str | None = None) -> None:
        self._status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(self, exception: BaseException, *args: Any, **kwargs: Any) -> None:
        self._exception = exception

    def end(self, end_time: int | None = None) -> None:
        span = self._tracer.start_span(self._name, attributes=self._attributes, start_time=self._start)
        for name, attributes, timestamp in self._events:
            span.add_event(name, attributes, timestamp)
        if self._exception is not None:
            span.record_exception(self._exception)
        if self._status is not None:
            span.set_status(self._status)
        span.end(end_time)


def end_hook_span(span: Span) -> None:
    """End a hook phase span and record its duration."""
    span.end()
    if _hooks:
        started = _hooks.pop(span, None)
        if started is not None and _instruments is not None:
            start, name, phase = started
            _instruments.hook_duration.record(
                time.perf_counter() - start, {sc.TOKENMW_HOOK_NAME: name, sc.TOKENMW_HOOK_PHASE: phase}
            )


def hook_span_error(span: Span, error: BaseException, skipped: bool) -> None:
    """Mark a hook span as failed; ``skipped`` says whether the call went on without the hook."""
    if span.is_recording():
        span.record_exception(error)
        span.set_attribute(sc.ERROR_TYPE, type(error).__qualname__)
        span.set_attribute(sc.TOKENMW_HOOK_SKIPPED, skipped)
        span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))


def hook_span_timeout(span: Span, seconds: float) -> None:
    """Note on a failed hook's span that it failed by running over its time budget."""
    if span.is_recording():
        span.set_attribute(sc.TOKENMW_HOOK_TIMEOUT, seconds)


def annotate_tokens(before: int, after: int, **extra: Any) -> None:
    """Put tokens before/after/saved (and ``extra`` as ``tokenmw.<key>``) on the current hook span."""
    _annotate_tokens(trace.get_current_span(), before, after, extra)


def annotate_phase(call: Call, before: int, after: int, **extra: Any) -> None:
    """``annotate_tokens`` on the span of the hook phase running on ``call`` (``phase_span``)."""
    _annotate_tokens(phase_span(call), before, after, extra)


def _annotate_tokens(span: Span, before: int, after: int, extra: dict[str, Any]) -> None:
    if span.is_recording():
        attrs: dict[str, Any] = {  # one call: the SDK takes its lock once, not per attribute
            sc.TOKENMW_TOKENS_BEFORE: before,
            sc.TOKENMW_TOKENS_AFTER: after,
            sc.TOKENMW_TOKENS_SAVED: before - after,
        }
        for key, value in extra.items():
            attrs[f"tokenmw.{key}"] = value
        span.set_attributes(attrs)


# A forked child has none of the parent's threads: a pool without its workers, or a lock one of
# them held, would hang the child's first call (gunicorn --preload, multiprocessing, celery).
def _reset_in_child() -> None:
    global _setup_lock
    _setup_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


def record_expansion(ref: str, tokens: int, found: bool) -> None:
    """One reversible-compression expansion: a ``tokenmw.compress.expand`` span, child of the
    current (call) span, and the expansion counter. The ref is an opaque id, never content."""
    tracer = _tracer
    parent = trace.get_current_span()
    if tracer is not None and parent.is_recording():
        span = tracer.start_span(
            sc.SPAN_EXPAND,
            attributes={
                sc.TOKENMW_HOOK_NAME: "compress",
                sc.TOKENMW_EXPAND_REF: ref,
                sc.TOKENMW_EXPAND_FOUND: found,
                sc.TOKENMW_EXPAND_TOKENS: tokens,
            },
        )
        span.end()
    if _instruments is not None:
        _instruments.expansions.add(1, {sc.TOKENMW_EXPAND_FOUND: found})
