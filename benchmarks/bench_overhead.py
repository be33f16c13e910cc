"""Per-call cost of the chain itself, measured side by side in one run.

Raw client vs the same client wrapped with an empty chain and with one no-op hook, against the
embedded server with zero latency. Rounds interleave the variants so drift in machine load hits
all of them alike; the figure is the median per-call time of each variant.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import openai

import tokenmw
from tokenmw.server import EmbeddedServer

CALLS_PER_ROUND = 50
ROUNDS = int(os.environ.get("TOKENMW_BENCH_ROUNDS", "12"))
MESSAGES = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Name three rivers in Europe."},
]


class NoOp(tokenmw.Hook):
    name = "noop"

    async def before(self, call: tokenmw.Call) -> None:
        return None


def bench_sync(clients: dict[str, Any]) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(ROUNDS):
        for name, client in clients.items():
            start = time.perf_counter()
            for _ in range(CALLS_PER_ROUND):
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=16)
            samples[name].append((time.perf_counter() - start) / CALLS_PER_ROUND)
    return {name: statistics.median(values) for name, values in samples.items()}


async def bench_async(clients: dict[str, Any]) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(ROUNDS):
        for name, client in clients.items():
            start = time.perf_counter()
            for _ in range(CALLS_PER_ROUND):
                await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=16)
            samples[name].append((time.perf_counter() - start) / CALLS_PER_ROUND)
    return {name: statistics.median(values) for name, values in samples.items()}


def variants(raw: Any) -> dict[str, Any]:
    return {
        "raw client": raw,
        "empty chain": tokenmw.Middleware([]).wrap(raw),
        "one no-op hook": tokenmw.Middleware([NoOp()]).wrap(raw),
    }


def report(title: str, medians: dict[str, float], show: Callable[[str], None] = print) -> None:
    base = medians["raw client"]
    show(f"\n{title}  (median of {ROUNDS} rounds x {CALLS_PER_ROUND} calls)")
    show(f"{'variant':<16} {'per call':>10} {'vs raw':>8} {'added':>9}")
    for name, value in medians.items():
        show(f"{name:<16} {value * 1e6:>8.0f}µs {value / base:>7.3f}x {(value - base) * 1e6:>7.1f}µs")


def main() -> None:
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, openai {openai.__version__}")
    with EmbeddedServer(port=0, reply_words=8) as server:
        sync_raw = openai.OpenAI(api_key="bench", base_url=server.base_url, max_retries=0)
        sync_clients = variants(sync_raw)
        bench_sync(sync_clients)  # warm-up: connections, encodings
        report("sync OpenAI client", bench_sync(sync_clients))

        async def run_async() -> dict[str, float]:
            async_raw = openai.AsyncOpenAI(api_key="bench", base_url=server.base_url, max_retries=0)
            clients = variants(async_raw)
            await bench_async(clients)
            return await bench_async(clients)

        report("async AsyncOpenAI client", asyncio.run(run_async()))


if __name__ == "__main__":
    main()
