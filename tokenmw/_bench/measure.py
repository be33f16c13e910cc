"""What ``tokenmw bench`` measures besides wall time: event-loop stalls and the hooks' spans."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from typing import Any

__all__ = ["LoopMonitor", "SpanRecorder", "StepTimer", "percentile", "sdk_available"]

_HOOK_NAME = "tokenmw.hook.name"


def percentile(values: list[float], share: float) -> float:
    """The ``share`` (0..1) percentile of ``values`` by the nearest-rank rule; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(share * len(ordered) + 0.999999) - 1))
    return ordered[rank]


class LoopMonitor:
    """A task that wakes every ``interval`` seconds and records how late it woke (the loop's stall).

    A wake-up is late by as long as something held the loop (a synchronous encode, a tokenizer
    built on the loop); lateness is measured against the wake-up asked for, so a stall shorter than
    the interval can read low by up to one interval. Every mode runs with the monitor on, so its
    own small cost is in every mode's CPU figure alike.
    """

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.lags: list[float] = []
        """Lateness of each wake-up, in seconds."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        clock = time.perf_counter
        interval = self.interval
        record = self.lags.append
        while True:
            expected = clock() + interval
            await asyncio.sleep(interval)
            record(max(0.0, clock() - expected))


class StepTimer:
    """Times every callback the event loop runs (each task step is one), while active.

    The lag monitor says how late a ready task ran, which includes waiting behind other ready tasks
    (24 answers arriving together queue up even when no step is slow); this says how long the
    longest single step held the loop, which is what a synchronous encode or a tokenizer built on
    the loop does. It wraps ``asyncio.events.Handle._run``, which the loop calls for every callback
    (about a microsecond each, in every mode alike). Each step is timed twice: wall time, which on
    a shared machine includes the moments the OS ran another process, and the thread's CPU time,
    which is only the step's own work (the figure the 5 ms target is read against).
    """

    def __init__(self) -> None:
        self.longest = 0.0
        """The longest step, wall time."""
        self.longest_cpu = 0.0
        """The longest step, the loop thread's CPU time."""
        self.over_5ms = 0
        """Steps that computed (CPU time) for more than 5 ms."""
        self._original: Any = None

    def __enter__(self) -> StepTimer:
        handle = asyncio.events.Handle
        original = handle._run
        self._original = original
        clock = time.perf_counter
        cpu_clock = time.thread_time
        timer = self

        def _run(self: Any) -> None:
            start, cpu_start = clock(), cpu_clock()
            try:
                original(self)
            finally:
                took, cpu = clock() - start, cpu_clock() - cpu_start
                if cpu > 0.005:
                    timer.over_5ms += 1
                if took > timer.longest:
                    timer.longest = took
                if cpu > timer.longest_cpu:
                    timer.longest_cpu = cpu

        handle._run = _run  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]


class SpanRecorder:
    """The OpenTelemetry SDK as an application would run it: a batch span processor, here in front
    of an in-memory exporter so the hooks' spans can be summed per hook.

    OpenTelemetry allows one tracer provider per process: when an SDK provider is installed
    already (a test session's), the processor is added to it instead.
    """

    def __init__(self) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        provider: Any = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        self.provider = provider
        provider.add_span_processor(BatchSpanProcessor(self.exporter))

    def take(self) -> tuple[dict[str, float], int]:
        """Seconds spent in each hook's spans since the last ``take()``, and the spans seen."""
        self.provider.force_flush()
        spans = self.exporter.get_finished_spans()
        self.exporter.clear()
        seconds: dict[str, float] = defaultdict(float)
        for span in spans:
            name = (span.attributes or {}).get(_HOOK_NAME)
            if name is not None and span.start_time is not None and span.end_time is not None:
                seconds[str(name)] += (span.end_time - span.start_time) / 1e9
        return dict(seconds), len(spans)


def sdk_available() -> bool:
    """Whether the OpenTelemetry SDK is installed (``pip install 'tokenmw[otel]'``)."""
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return False
    return True
