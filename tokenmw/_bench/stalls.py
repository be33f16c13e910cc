"""How long the event loop was blocked: the time each callback held it, measured exactly.

A ticker task (sleep 1 ms, see how late it woke) is the usual loop-lag monitor, but it undercounts
a stall that starts between two ticks and costs the process CPU on every tick, which would be billed
to the calls ``tokenmw bench`` measures. Timing every callback instead gives each stall's true
length for a few hundred nanoseconds per callback, the same in every mode: the loop runs one
callback (a task step, a future's done callback, a timer) at a time, so the longest callback is the
longest the loop was stalled, and everything ready meanwhile waited for it.
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

    @property
    def max_ms(self) -> float:
        return max(self.durations, default=0.0) * 1e3

    @property
    def p99_ms(self) -> float:
        """The 99th percentile of the callbacks that did work (longer than 0.1 ms): most callbacks
        are a few microseconds, and their count would hide the ones that block."""
        busy = sorted(d for d in self.durations if d > 1e-4)
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
    clock = time.perf_counter

    def _run(self: Any) -> None:
        start = clock()
        try:
            original(self)
        finally:
            record(clock() - start)

    handle._run = _run  # type: ignore[method-assign]
    try:
        yield stalls
    finally:
        handle._run = original  # type: ignore[method-assign]
