"""One real OpenTelemetry SDK per test process: spans in memory, metrics in memory.

The global tracer and meter providers can be set only once per process, so every test that reads
spans or metrics shares these; ``Capture.clear()`` forgets what earlier tests recorded. Metrics use
delta temporality, so each read returns only what was recorded since the previous one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = ["Capture", "capture", "sdk_on"]

_DELTA: dict[type, AggregationTemporality] = {
    kind: AggregationTemporality.DELTA
    for kind in (
        Counter,
        UpDownCounter,
        Histogram,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
    )
}


class Capture:
    """The process-wide in-memory exporter and metric reader."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.reader = InMemoryMetricReader(preferred_temporality=_DELTA)
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def clear(self) -> None:
        """Forget the spans and metric points recorded so far."""
        self.exporter.clear()
        self.reader.get_metrics_data()

    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``."""
        found = [s for s in self.spans() if s.name == name]
        assert len(found) == 1, f"expected one span {name!r}, got {[s.name for s in self.spans()]}"
        return found[0]

    def metric_points(self) -> dict[str, list[Any]]:
        """Metric name -> data points recorded since the last read (any scope)."""
        out: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out


_capture: Capture | None = None


def capture() -> Capture:
    """The process's capture, installing the SDK providers on first use."""
    global _capture
    if _capture is None:
        _capture = Capture()
        trace.set_tracer_provider(_capture.tracer_provider)
        metrics.set_meter_provider(_capture.meter_provider)
        assert trace.get_tracer_provider() is _capture.tracer_provider, "a tracer provider was set already"
    return _capture


def sdk_on() -> None:
    """An SDK configured for the process, and tokenmw aware of it: a test that drives a hook
    method directly under its own provider's span gets the hook's notes on that span whatever
    ran before it (without an SDK the built-in hooks note nothing)."""
    from tokenmw.telemetry import _spans as tel

    capture()
    assert tel.sdk_configured()


def walk(spans: list[ReadableSpan]) -> Iterator[tuple[ReadableSpan, ReadableSpan | None]]:
    """Each span with its parent among ``spans`` (``None`` when the parent is not there)."""
    by_id = {s.context.span_id: s for s in spans}
    for s in spans:
        yield s, by_id.get(s.parent.span_id) if s.parent is not None else None
