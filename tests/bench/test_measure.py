"""The loop-stall monitor and percentiles of ``tokenmw bench``."""

from __future__ import annotations

import asyncio
import time

from tokenmw._bench.measure import LoopMonitor, percentile


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([5.0], 0.99) == 5.0
    assert percentile([], 0.99) == 0.0


async def test_monitor_sees_a_blocked_loop() -> None:
    monitor = LoopMonitor(interval=0.001)
    monitor.start()
    await asyncio.sleep(0.01)
    time.sleep(0.05)  # holds the loop, as a synchronous encode would
    await asyncio.sleep(0.01)
    await monitor.stop()
    assert max(monitor.lags) >= 0.04  # the monitor woke at least that late: it saw the stall
    assert len(monitor.lags) > 2
