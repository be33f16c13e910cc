"""Spans for calls and hook phases, through ``opentelemetry-api`` only.

Without an SDK every span would be a no-op costing a few microseconds; with four hooks that adds
up, so ``active()`` checks once per call whether a real tracer provider is installed and the chain
creates no spans at all when none is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, SpanKind, Status, StatusCode

from . import _semconv as sc

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from ._call import Call

__all__ = ["active", "end_call_span", "hook_span_error", "start_call_span", "start_hook_span"]

_NO_SDK = (ProxyTracerProvider, NoOpTracerProvider)
_tracer = trace.get_tracer("tokenmw")


def active() -> bool:
    """Whether an OpenTelemetry SDK (a real tracer provider) is configured."""
    return not isinstance(trace.get_tracer_provider(), _NO_SDK)


def start_call_span(call: Call) -> Span:
    """The CLIENT span of one model call (GenAI semantic conventions), started as a child of the
    caller's current span."""
    model = call.model or "unknown"
    operation = sc.OPERATION_CHAT if call.operation == "chat" else sc.OPERATION_RESPONSES
    span = _tracer.start_span(
        f"{operation} {model}",
        kind=SpanKind.CLIENT,
        attributes={
            sc.GEN_AI_OPERATION_NAME: operation,
            sc.GEN_AI_PROVIDER_NAME: call.provider,
            sc.GEN_AI_REQUEST_MODEL: model,
            sc.GEN_AI_REQUEST_STREAM: call.stream,
        },
    )
    return span


def end_call_span(span: Span, call: Call, error: BaseException | None = None, response: Any = None) -> None:
    """Record the call's usage (and error) on its span and end it."""
    if span.is_recording():
        u = call.usage
        if u.input_tokens_reported is not None:
            span.set_attribute(sc.GEN_AI_USAGE_INPUT_TOKENS, u.input_tokens_reported)
        if u.output_tokens is not None:
            span.set_attribute(sc.GEN_AI_USAGE_OUTPUT_TOKENS, u.output_tokens)
        if u.input_tokens_original is not None and u.input_tokens_sent is not None:
            span.set_attribute(sc.TOKENMW_TOKENS_BEFORE, u.input_tokens_original)
            span.set_attribute(sc.TOKENMW_TOKENS_AFTER, u.input_tokens_sent)
            span.set_attribute(sc.TOKENMW_TOKENS_SAVED, u.input_tokens_original - u.input_tokens_sent)
        if error is not None:
            span.set_attribute(sc.ERROR_TYPE, type(error).__qualname__)
            span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
    span.end()


def start_hook_span(hook_name: str, phase: str) -> Span:
    """An INTERNAL span for one hook phase, child of the current (call) span."""
    return _tracer.start_span(
        f"tokenmw.{hook_name}.{phase}",
        attributes={sc.TOKENMW_HOOK_NAME: hook_name, sc.TOKENMW_HOOK_PHASE: phase},
    )


def end_hook_span(span: Span) -> None:
    """End a hook phase span."""
    span.end()


def observe_chunk(span: Span, chunk: Any) -> None:
    """Note what a stream chunk tells about the response (id, model, finish reason) on the span."""


def hook_span_error(span: Span, error: BaseException, skipped: bool) -> None:
    """Mark a hook span as failed; ``skipped`` says whether the call went on without the hook."""
    if span.is_recording():
        span.record_exception(error)
        span.set_attribute(sc.ERROR_TYPE, type(error).__qualname__)
        span.set_attribute(sc.TOKENMW_HOOK_SKIPPED, skipped)
        span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))


def annotate_tokens(before: int, after: int, **extra: Any) -> None:
    """Put tokens before/after/saved (and ``extra``) on the current hook span."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(sc.TOKENMW_TOKENS_BEFORE, before)
        span.set_attribute(sc.TOKENMW_TOKENS_AFTER, after)
        span.set_attribute(sc.TOKENMW_TOKENS_SAVED, before - after)
        for key, value in extra.items():
            span.set_attribute(f"tokenmw.{key}", value)
