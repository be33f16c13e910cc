"""Overhead per call at 1, 10, 100 and 1,000 concurrent calls on one wrapped client.

One ``AsyncOpenAI`` (its pool capped at 100 connections, as a service would cap it), raw and
wrapped with the four built-in hooks, against the embedded server in its own process at zero
latency, so the client's own work is all there is to measure. At each level ``N`` workers each make
calls one after another (``max(1, 400 // N)`` each), raw and wrapped alternating over three rounds;
every call sends a different request (the seed-like agent turns, ``tokenmw._bench.seed``), so no
cache answers for a text it has not seen in that round. Printed: process CPU and wall per call,
raw and wrapped, the difference, failed calls, peak RSS, and the size of every cache tokenmw keeps.

Run: ``python benchmarks/bench_scale.py`` (``--levels 1,10,100,1000``, ``--rounds 3``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx2
from openai import AsyncOpenAI, DefaultAsyncHttpxClient

import tokenmw
from tokenmw._bench.seed import agent_turns
from tokenmw.server import server_process

MODEL = "gpt-4o-mini"
POOL = 100


def hooks() -> list[tokenmw.Hook]:
    return [
        tokenmw.Compress(),
        tokenmw.Enhance(max_words=150),
        tokenmw.LimitResponse(max_tokens=400),
        tokenmw.CountTokens(),
    ]


def requests_for(count: int, salt: int) -> list[list[dict[str, Any]]]:
    """``count`` different requests: turn ``i % 5`` of agent ``salt + i // 5``."""
    out = []
    agent = -1
    turns: list[list[dict[str, Any]]] = []
    for i in range(count):
        if i // 5 != agent:
            agent = i // 5
            turns = agent_turns(salt + agent)
        out.append(turns[i % 5])
    return out


async def run_level(
    client: Any, workers: int, per_worker: int, requests: list[Any]
) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, failed calls) for ``workers`` x ``per_worker`` calls."""
    failed = 0

    async def worker(w: int) -> None:
        nonlocal failed
        for k in range(per_worker):
            try:
                await client.chat.completions.create(model=MODEL, messages=requests[w * per_worker + k])
            except Exception:
                failed += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    return time.process_time() - cpu, time.perf_counter() - wall, failed


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cache_sizes() -> dict[str, str]:
    """Every cache tokenmw keeps, by the module globals that hold it (entries, and characters where
    the cache bounds them)."""
    from tokenmw._compress import history, text
    from tokenmw._tokens import aliases, count_cache, counting, encodings, prices
    from tokenmw.telemetry import _spans

    return {
        "token counts (per encoding)": ", ".join(
            f"{name}: {len(cache):,}" for name, cache in count_cache._caches.items()
        )
        + f" (max {count_cache.MAX_ENTRIES:,} each)",
        "token counts of lines (per encoding)": ", ".join(
            f"{name}: {cache.lines_held:,}" for name, cache in count_cache._caches.items()
        )
        + f" (max {count_cache.MAX_LINE_ENTRIES:,} each)",
        "compressed texts": f"{sum(len(c) for c in text._caches.values()):,} entries, "
        f"{text._held_chars / 1e6:.1f} M chars (max {text.MAX_ENTRIES:,} / {text.MAX_CHARS / 1e6:.0f} M)",
        "compressed request prefixes": f"{len(history._steps):,} steps ({len(history._sources):,} texts), "
        f"{len(history._roots):,} roots, "
        f"{history._held_chars / 1e6:.1f} M chars "
        f"(max {history.MAX_STEPS:,} / {history.MAX_CHARS / 1e6:.0f} M)",
        "rendered tool blocks": f"{len(counting._rendered_blocks):,} (max {counting._MAX_RENDERED:,})",
        "counting rules per model": f"{len(counting._rules_cache):,}",
        "encodings loaded / names": f"{len(encodings._loaded)} / {len(encodings._name_cache)}",
        "model aliases": f"{len(aliases._targets):,}",
        "prices resolved": f"{len(prices._resolved):,}",
        "open call / hook spans": f"{len(_spans._calls)} / {len(_spans._hooks)}",
    }


async def main_async(levels: list[int], rounds: int) -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"server in its own process, zero latency; pool {POOL} connections; {rounds} rounds, "
        "raw and wrapped alternating; no OpenTelemetry SDK\n"
    )
    with server_process(latency=0.0, reply_words=60) as base_url:
        limits = httpx2.Limits(max_connections=POOL, max_keepalive_connections=POOL)
        http = DefaultAsyncHttpxClient(limits=limits)
        raw = AsyncOpenAI(api_key="bench", base_url=base_url, max_retries=0, timeout=600, http_client=http)
        wrapped = tokenmw.Middleware(hooks()).wrap(raw)
        await run_level(raw, 4, 1, requests_for(4, 90_000))  # connections, tokenizer
        await run_level(wrapped, 4, 1, requests_for(4, 90_000))
        header = (
            f"{'concurrent':>10} {'calls':>6} {'raw CPU/call':>13} {'tokenmw CPU/call':>17} {'added':>9}"
            f" {'raw wall/call':>14} {'tokenmw wall/call':>18} {'failed':>7} {'peak RSS':>9}"
        )
        print(header)
        salt = 0
        for level in levels:
            per_worker = max(1, 400 // level)
            calls = level * per_worker
            raw_cpu: list[float] = []
            mw_cpu: list[float] = []
            raw_wall: list[float] = []
            mw_wall: list[float] = []
            failed = 0
            for _ in range(rounds):
                salt += calls // 5 + 1
                requests = requests_for(calls, salt)  # the same new requests for both
                cpu, wall, bad = await run_level(raw, level, per_worker, requests)
                raw_cpu.append(cpu / calls)
                raw_wall.append(wall / calls)
                failed += bad
                cpu, wall, bad = await run_level(wrapped, level, per_worker, requests)
                mw_cpu.append(cpu / calls)
                mw_wall.append(wall / calls)
                failed += bad
            r_cpu, m_cpu = statistics.median(raw_cpu), statistics.median(mw_cpu)
            print(
                f"{level:>10} {calls:>6} {r_cpu * 1e6:>10.0f} µs {m_cpu * 1e6:>14.0f} µs"
                f" {(m_cpu - r_cpu) * 1e6:>6.0f} µs {statistics.median(raw_wall) * 1e3:>11.2f} ms"
                f" {statistics.median(mw_wall) * 1e3:>15.2f} ms {failed:>7} {peak_rss_mb():>6.0f} MB",
                flush=True,
            )
        await raw.close()
    print("\ncaches after the run:")
    for name, size in cache_sizes().items():
        print(f"  {name:<30} {size}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--levels", default="1,10,100,1000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main_async([int(x) for x in args.levels.split(",")], args.rounds))


if __name__ == "__main__":
    main()
