"""Overhead per call at 1, 10, 100 and 1,000 concurrent calls on one wrapped client.

One ``AsyncOpenAI`` against the embedded server (a child process, zero latency), raw and wrapped
with the four built-in hooks, the two interleaved level by level. The requests are the seed
scenario's first two turns of 24 agents (48 distinct requests of 2k-6k tokens), cycled, so the caches
see real reuse and real novelty. Per level: process CPU per call for both and the difference,
calls that failed (must be none), then the peak RSS and the size of every process-wide cache
tokenmw keeps (they must stay bounded however many calls go through).

Run: ``python benchmarks/bench_scale.py`` (``--otel`` to configure the OpenTelemetry SDK first).
"""

from __future__ import annotations

import asyncio
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai

import tokenmw
from tokenmw._bench.workload import scenario_turns
from tokenmw.server import server_process

LEVELS = (1, 10, 100, 1000)
MODEL = "gpt-4o-mini"
REQUESTS = [turn for agent in range(24) for turn in scenario_turns(agent, 2)]


def calls_at(concurrency: int) -> int:
    return max(240, 2 * concurrency)


async def run(client: Any, concurrency: int, calls: int) -> tuple[float, int]:
    """Process CPU seconds for ``calls`` calls with ``concurrency`` in flight; and the failures."""
    queue = iter(range(calls))
    failures = 0

    async def worker() -> None:
        nonlocal failures
        for i in queue:
            try:
                await client.chat.completions.create(model=MODEL, messages=REQUESTS[i % len(REQUESTS)])
            except Exception as exc:
                failures += 1
                print(f"  call failed: {exc!r}", file=sys.stderr)

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - cpu, failures


def cache_sizes() -> dict[str, int]:
    """Every process-wide cache tokenmw keeps, by entries (and characters held where bounded so)."""
    from tokenmw._compress import history
    from tokenmw._compress import text as compress_text
    from tokenmw._tokens import aliases, count_cache, counting, encodings, prices

    sizes = {f"token counts ({name})": len(cache) for name, cache in count_cache._caches.items()}
    sizes["compressed texts"] = sum(len(c) for c in compress_text._caches.values())
    sizes["compressed texts: chars held"] = compress_text._held_chars
    sizes["request prefixes"] = len(history._steps) + len(history._roots)
    sizes["request prefixes: chars held"] = history._held_chars
    sizes["request dumps"] = len(counting._dumps)
    sizes["counting rules"] = len(counting._rules_cache)
    sizes["encodings loaded"] = len(encodings._loaded)
    sizes["model names"] = len(encodings._name_cache)
    sizes["prices resolved"] = len(prices._resolved)
    sizes["aliases"] = len(aliases._targets)
    return sizes


async def main() -> None:
    if "--otel" in sys.argv:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"OpenTelemetry SDK {'on' if '--otel' in sys.argv else 'off'}"
    )
    print(f"{len(REQUESTS)} distinct requests, cycled; four built-in hooks on one wrapped AsyncOpenAI\n")
    with server_process(latency=0.0, reply_words=60) as base_url:
        raw = openai.AsyncOpenAI(api_key="bench", base_url=base_url, max_retries=0, timeout=300)
        hooks = [
            tokenmw.Compress(),
            tokenmw.Enhance(max_words=150),
            tokenmw.LimitResponse(max_tokens=400),
            tokenmw.CountTokens(),
        ]
        wrapped = tokenmw.Middleware(hooks).wrap(raw)
        await run(raw, 4, 48)  # warm-up: connections, the encoding
        await run(wrapped, 4, 48)
        print(f"{'in flight':>9}{'calls':>7}{'raw CPU/call':>14}{'tokenmw':>10}{'added':>10}{'failed':>8}")
        failed = 0
        for level in LEVELS:
            calls = calls_at(level)
            raw_cpu, raw_failed = await run(raw, level, calls)
            mw_cpu, mw_failed = await run(wrapped, level, calls)
            failed += raw_failed + mw_failed
            r, m = raw_cpu / calls * 1e6, mw_cpu / calls * 1e6
            failed_here = raw_failed + mw_failed
            print(f"{level:>9}{calls:>7}{r:>11.0f} µs{m:>7.0f} µs{m - r:>+7.0f} µs{failed_here:>8}")
        await raw.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak:.0f} MB; calls failed: {failed}")
    print("process-wide caches after every level:")
    for name, size in cache_sizes().items():
        print(f"  {name:<32}{size:>12,}")


if __name__ == "__main__":
    asyncio.run(main())
