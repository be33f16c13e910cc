"""Per-call cost of the chain itself, measured side by side in one run.

Raw client vs the same client wrapped with an empty chain and with one no-op hook, against the
embedded server (in a child process) with zero latency. The variants are interleaved call by
call, in a rotating order, so drift in machine load hits all of them alike. HTTP noise on a
loopback call is larger than the chain's cost, so the chain is also timed alone, around a
``send()`` that does nothing.
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
from tokenmw.server import server_process

CALLS = int(os.environ.get("TOKENMW_BENCH_CALLS", "1500"))
MESSAGES = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Name three rivers in Europe."},
]


class NoOp(tokenmw.Hook):
    name = "noop"

    async def before(self, call: tokenmw.Call) -> None:
        return None


def bench_sync(clients: dict[str, Any]) -> dict[str, list[float]]:
    """Per-call times, the variants interleaved call by call in a rotating order."""
    samples: dict[str, list[float]] = {name: [] for name in clients}
    names = list(clients)
    for i in range(CALLS):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            start = time.perf_counter()
            clients[name].chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=16)
            samples[name].append(time.perf_counter() - start)
    return samples


async def bench_async(clients: dict[str, Any]) -> dict[str, list[float]]:
    """``bench_sync`` for async clients."""
    samples: dict[str, list[float]] = {name: [] for name in clients}
    names = list(clients)
    for i in range(CALLS):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            start = time.perf_counter()
            await clients[name].chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=16)
            samples[name].append(time.perf_counter() - start)
    return samples


def variants(raw: Any) -> dict[str, Any]:
    return {
        "raw client": raw,
        "empty chain": tokenmw.Middleware([]).wrap(raw),
        "one no-op hook": tokenmw.Middleware([NoOp()]).wrap(raw),
    }


def report(title: str, samples: dict[str, list[float]], show: Callable[[str], None] = print) -> float:
    """Print median and 10th percentile per variant against the raw client; returns the raw median."""
    median = {name: statistics.median(v) for name, v in samples.items()}
    p10 = {name: statistics.quantiles(v, n=10)[0] for name, v in samples.items()}
    show(f"\n{title}  ({CALLS} calls per variant, interleaved call by call)")
    show(f"{'variant':<16} {'median':>9} {'vs raw':>8} {'p10':>9} {'vs raw':>8}")
    for name in samples:
        show(
            f"{name:<16} {median[name] * 1e6:>7.0f}µs {median[name] / median['raw client']:>7.3f}x"
            f" {p10[name] * 1e6:>7.0f}µs {p10[name] / p10['raw client']:>7.3f}x"
        )
    return median["raw client"]


def chain_only(hooks: list[tokenmw.Hook], calls: int = 20_000) -> tuple[float, float]:
    """Per-call seconds of the chain alone (sync, async) around a ``send`` that does nothing:
    the part of the overhead that end-to-end timings cannot resolve through HTTP noise."""
    from tokenmw._clients.sync import run_sync

    mw = tokenmw.Middleware(hooks)

    async def send(call: tokenmw.Call) -> str:
        return "reply"

    def new_call() -> tokenmw.Call:
        return tokenmw.Call({"model": "gpt-4o-mini", "messages": list(MESSAGES)}, "chat")

    def sync_round() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            run_sync(mw.run(new_call(), send))
        return (time.perf_counter() - start) / calls

    async def async_round() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            await mw.run(new_call(), send)
        return (time.perf_counter() - start) / calls

    sync_s = min(sync_round() for _ in range(3))
    async_s = min(asyncio.run(async_round()) for _ in range(3))
    return sync_s, async_s


def main() -> None:
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, openai {openai.__version__}")
    with server_process(reply_words=8) as base_url:
        sync_raw = openai.OpenAI(api_key="bench", base_url=base_url, max_retries=0)
        sync_clients = variants(sync_raw)
        bench_sync(sync_clients)  # warm-up: connections, encodings
        sync_raw_call = report("sync OpenAI client", bench_sync(sync_clients))

        async def run_async() -> dict[str, list[float]]:
            async_raw = openai.AsyncOpenAI(api_key="bench", base_url=base_url, max_retries=0)
            clients = variants(async_raw)
            await bench_async(clients)
            return await bench_async(clients)

        async_raw_call = report("async AsyncOpenAI client", asyncio.run(run_async()))

    print("\nthe chain alone, around a send() that does nothing (best of 3 x 20,000 calls),")
    print("as a share of the median raw call to the embedded server measured above:")
    print(f"{'chain':<16} {'sync':>9} {'of raw':>8} {'async':>9} {'of raw':>8}")
    chains = {"empty": [], "1 no-op hook": [NoOp()], "4 no-op hooks": [NoOp() for _ in range(4)]}
    for label, hooks in chains.items():
        sync_s, async_s = chain_only(hooks)
        print(
            f"{label:<16} {sync_s * 1e6:>7.1f}µs {sync_s / sync_raw_call:>7.2%}"
            f" {async_s * 1e6:>7.1f}µs {async_s / async_raw_call:>7.2%}"
        )


if __name__ == "__main__":
    main()
