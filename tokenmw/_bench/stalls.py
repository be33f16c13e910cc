"""How long the event loop was blocked: the time each callback held it, measured exactly.

A ticker task (sleep 1 ms, see how late it woke) is the usual loop-lag monitor, but it undercounts
a stall that starts between two ticks and costs the process CPU on every tick, which would be billed
to the calls ``tokenmw bench`` measures. Timing every callback instead gives each stall's true
length for about a microsecond per callback, the same in every mode: the loop runs one callback
(a task step, a future's done callback, a timer) at a time, so the longest callback is the longest
the loop was stalled, and everything ready meanwhile waited for it.

Each callback is timed twice: by the wall clock (what the other tasks waited) and by the loop
thread's CPU clock (the work the callback itself did). On a shared machine the wall clock also
counts the time the OS gave the core to another process, or another thread held the GIL; the CPU
clock does not, so it is the figure that says what the code costs.
"""

from __future__ import annotations

import asyncio.events
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Stalls", "watch_stalls"]


class Stalls:
    """The callbacks' durations (seconds) while ``watch_stalls`` was on."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self.cpu: list[float] = []
        """The loop thread's CPU time in each callback."""

    @property
    def max_ms(self) -> float:
        return max(self.durations, default=0.0) * 1e3

    @property
    def p99_ms(self) -> float:
        return _p99(self.durations)

    @property
    def max_cpu_ms(self) -> float:
        return max(self.cpu, default=0.0) * 1e3

    @property
    def p99_cpu_ms(self) -> float:
        return _p99(self.cpu)


def _p99(durations: list[float]) -> float:
    """The 99th percentile (ms) of the callbacks that did work (longer than 0.1 ms): most callbacks
    are a few microseconds, and their count would hide the ones that block."""
    busy = sorted(d for d in durations if d > 1e-4)
    if not busy:
        return 0.0
    return busy[min(len(busy) - 1, int(len(busy) * 0.99))] * 1e3


@contextmanager
def watch_stalls() -> Iterator[Stalls]:
    """Time every event-loop callback of this process until the block ends."""
    stalls = Stalls()
    handle = asyncio.events.Handle
    original = handle._run
    record = stalls.durations.append
    record_cpu = stalls.cpu.append
    clock = time.perf_counter
    cpu_clock = time.thread_time

    def _run(self: Any) -> None:
        start, cpu = clock(), cpu_clock()
        try:
            original(self)
        finally:
            record(clock() - start)
            record_cpu(cpu_clock() - cpu)

    handle._run = _run  # type: ignore[method-assign]
    try:
        yield stalls
    finally:
        handle._run = original  # type: ignore[method-assign]
