"""Send tokenmw's spans and metrics to an OTLP endpoint (Jaeger, a collector) in one call.

tokenmw itself uses ``opentelemetry-api`` only and never configures anything: an application that
already sets up OpenTelemetry needs nothing from here, and its spans and tokenmw's share a trace.
``setup()`` is a convenience for applications and examples that have not: SDK tracer and meter
providers, a batch span processor and OTLP/HTTP exporters, configured by the standard ``OTEL_*``
variables (endpoint, headers, sampler, batch sizes, export interval). It needs the SDK, an
optional extra: ``pip install 'tokenmw[otel]'``.

If the client is also instrumented by another OpenAI instrumentation (one that wraps the client
class's ``create`` with ``wrapt``, as opentelemetry-instrumentation-openai-v2, OpenLLMetry and
Langfuse do), its span (around ``create``) holds tokenmw's (around the request the client
posts) and carries the usage; tokenmw then leaves
``gen_ai.usage.*`` and the ``gen_ai.client.*`` metrics to it, so nothing is counted twice in a
trace. ``set_usage_reporting("always" | "never")`` overrides that detection.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from tokenmw.telemetry._spans import UsageReporting, set_usage_reporting

__all__ = ["Telemetry", "UsageReporting", "set_usage_reporting", "setup", "setup_from_env"]

logger = logging.getLogger("tokenmw")

_INSTALL_HINT = "tokenmw.telemetry needs the OpenTelemetry SDK: pip install 'tokenmw[otel]'"


@dataclass
class Telemetry:
    """The providers ``setup()`` installed (``None`` for a signal it left alone)."""

    tracer_provider: Any = None
    meter_provider: Any = None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export what is buffered now; ``True`` if everything was sent in time."""
        ok = True
        for provider in (self.tracer_provider, self.meter_provider):
            if provider is not None:
                ok = bool(provider.force_flush(timeout_millis)) and ok
        return ok

    def shutdown(self) -> None:
        """Flush and stop the exporters (also done at interpreter exit)."""
        for provider in (self.tracer_provider, self.meter_provider):
            if provider is not None:
                provider.shutdown()


def _env(name: str) -> str:
    return os.environ.get(name, "").strip().lower()


def _signal_url(endpoint: str | None, path: str) -> str | None:
    # Like OTEL_EXPORTER_OTLP_ENDPOINT, ``endpoint`` is the base URL; each signal has its path.
    return None if endpoint is None else endpoint.rstrip("/") + path


def setup(
    service_name: str | None = None,
    endpoint: str | None = None,
    *,
    metrics: bool | None = None,
) -> Telemetry:
    """Install SDK tracer and meter providers that export over OTLP/HTTP; the library's spans and
    metrics (and the application's) go there from now on.

    ``service_name`` names the service unless ``OTEL_SERVICE_NAME`` (or ``service.name`` in
    ``OTEL_RESOURCE_ATTRIBUTES``) does. ``endpoint`` is the OTLP/HTTP base URL, e.g.
    ``http://localhost:4318``; ``None`` leaves it to ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``
    (default ``http://localhost:4318``). ``metrics``: export metrics too; ``None`` follows
    ``OTEL_METRICS_EXPORTER`` (``none`` turns them off; Jaeger stores traces only).
    ``OTEL_SDK_DISABLED=true`` makes this do nothing. A provider that is already installed is left
    in place (OpenTelemetry allows one per process) and not returned.
    """
    if _env("OTEL_SDK_DISABLED") == "true":
        return Telemetry()
    try:
        from opentelemetry import metrics as metrics_api
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as error:
        raise ImportError(_INSTALL_HINT) from error

    from tokenmw.telemetry import _spans as tel

    attributes: dict[str, str] = {}
    named_by_env = _env("OTEL_SERVICE_NAME") or "service.name=" in _env("OTEL_RESOURCE_ATTRIBUTES")
    if service_name and not named_by_env:
        attributes["service.name"] = service_name
    resource = Resource.create(attributes)
    installed = Telemetry()

    if _env("OTEL_TRACES_EXPORTER") != "none":
        if tel._tracer_provider_set():
            logger.warning("tokenmw.telemetry.setup: a tracer provider is installed already; left as is")
        else:
            tracer_provider = TracerProvider(resource=resource)
            tracer_provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=_signal_url(endpoint, "/v1/traces")))
            )
            trace.set_tracer_provider(tracer_provider)
            installed.tracer_provider = tracer_provider

    if metrics is None:
        metrics = _env("OTEL_METRICS_EXPORTER") != "none"
    if metrics:
        if tel._meter_provider_set():
            logger.warning("tokenmw.telemetry.setup: a meter provider is installed already; left as is")
        else:
            reader = PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=_signal_url(endpoint, "/v1/metrics"))
            )
            meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
            metrics_api.set_meter_provider(meter_provider)
            installed.meter_provider = meter_provider
    return installed


def setup_from_env(service_name: str, *, metrics: bool | None = None) -> Telemetry | None:
    """``setup(service_name)`` if ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces one) is set and
    the SDK is installed; otherwise nothing, and ``None``. For demos and scripts that export only
    when asked to."""
    if not (_env("OTEL_EXPORTER_OTLP_ENDPOINT") or _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return None
    try:
        return setup(service_name, metrics=metrics)
    except ImportError:
        logger.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but %s", _INSTALL_HINT)
        return None
