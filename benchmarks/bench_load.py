"""The event loop under load: 1,000 concurrent calls, raw client vs the four built-in hooks.

The load test (``tests/clients/test_load.py``) proves every call gets its own answer and exact
usage; how long tokenmw holds the loop is a timing, so it is measured here and printed, never
asserted in a test. Same mix as the test: chat and Responses, a third streamed, some with a long
shared document. The server runs in a child process (its threads would otherwise share the
client's GIL). Two figures per mode:

- the longest single step of the event loop (one callback or task step, timed by ``Steps``):
  what one call's client or tokenmw work holds the loop for. Target: tokenmw adds no step over
  5 ms (compare the two modes' counts of steps over 5 ms).
- how late a 1 ms ticker wakes (``bench_counting._with_ticker``): with 1,000 calls ready at once
  this is mostly the queue of ready tasks, and it is large for the raw client too.

    python benchmarks/bench_load.py            # TOKENMW_BENCH_CALLS=1000, 3 rounds
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import time
from typing import Any

import httpx2
import openai
from bench_counting import _with_ticker

import tokenmw
from tokenmw.server import server_process

CALLS = int(os.environ.get("TOKENMW_BENCH_CALLS", "1000"))
ROUNDS = int(os.environ.get("TOKENMW_BENCH_ROUNDS", "3"))
MODEL = "gpt-4o-mini"
DOC = "\n".join(
    f"Section {i}: the quarterly report lists revenue, costs and risks in detail." for i in range(60)
)


class Steps:
    """Times every callback the event loop runs (each task step is one), without debug mode.

    asyncio's debug mode reports slow callbacks too, but its own bookkeeping (a traceback per
    handle and task) made the raw client's steps ten times longer here; this wraps
    ``Handle._run``, the one place the loop runs a callback, and costs well under a microsecond.
    """

    def __init__(self) -> None:
        self.seconds: list[float] = []
        """Wall time of each step: includes the OS preempting the thread and waits for the GIL."""
        self.cpu_seconds: list[float] = []
        """CPU time of each step: the work itself, on a shared machine the steadier figure."""
        self._run = asyncio.events.Handle._run

    def __enter__(self) -> Steps:
        run, seconds, cpu_seconds = self._run, self.seconds, self.cpu_seconds
        clock, cpu = time.perf_counter, time.thread_time

        def timed(handle: asyncio.events.Handle) -> None:
            start, start_cpu = clock(), cpu()
            run(handle)
            seconds.append(clock() - start)
            cpu_seconds.append(cpu() - start_cpu)

        asyncio.events.Handle._run = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.events.Handle._run = self._run  # type: ignore[method-assign]


def request(i: int, run: int) -> tuple[str, dict[str, Any]]:
    question = f"Run {run}, question {i}: what does line {i} of the report say?"
    stream = i % 3 == 0
    if i % 2 == 0:
        messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
        if i % 4 == 0:
            messages.insert(0, {"role": "system", "content": DOC})
        return "chat", {"model": MODEL, "messages": messages, "stream": stream}
    extra = {"instructions": DOC} if i % 5 == 0 else {}
    return "responses", {"model": MODEL, "input": question, "stream": stream, **extra}


async def one(client: openai.AsyncOpenAI, i: int, run: int) -> None:
    operation, kwargs = request(i, run)
    create = client.chat.completions.create if operation == "chat" else client.responses.create
    result: Any = await create(**kwargs)
    if kwargs["stream"]:
        async for _ in result:
            pass


async def round_(base_url: str, wrapped: bool, run: int, calls: int = CALLS) -> tuple[float, float]:
    limits = httpx2.Limits(max_connections=64, max_keepalive_connections=64)
    raw = openai.AsyncOpenAI(
        api_key="k",
        base_url=base_url,
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(limits=limits),
    )
    hooks = [
        tokenmw.Compress(),
        tokenmw.Enhance(max_words=40),
        tokenmw.LimitResponse(max_tokens=60),
        tokenmw.CountTokens(),
    ]
    client = tokenmw.Middleware(hooks).wrap(raw) if wrapped else raw
    try:
        return await _with_ticker(lambda: asyncio.gather(*(one(client, i, run) for i in range(calls))))
    finally:
        await raw.close()


def main() -> None:
    print(
        f"bench_load: {CALLS} concurrent calls x {ROUNDS} rounds, "
        f"{platform.machine()}, {os.cpu_count()} cores"
    )
    results: dict[str, list[tuple[float, float, float, int, float, int]]] = {"raw": [], "tokenmw": []}
    with server_process(reply_words=40) as base_url:
        # Warm-up, not measured: first-call imports (the client's types), encodings, compiled rules.
        for name in ("raw", "tokenmw"):
            asyncio.run(round_(base_url, name == "tokenmw", -1, calls=60))
        for run in range(ROUNDS):
            for name in ("raw", "tokenmw") if run % 2 == 0 else ("tokenmw", "raw"):
                with Steps() as steps:
                    wall, late = asyncio.run(round_(base_url, name == "tokenmw", run))
                longest = max(steps.seconds, default=0.0) * 1e3
                over = sum(1 for s in steps.seconds if s > 0.005)
                longest_cpu = max(steps.cpu_seconds, default=0.0) * 1e3
                over_cpu = sum(1 for s in steps.cpu_seconds if s > 0.005)
                results[name].append((wall, late, longest, over, longest_cpu, over_cpu))
    print(
        f"{'mode':<8} {'wall ms':>8} {'ratio':>6} {'longest step ms':>16} {'steps > 5 ms':>13} "
        f"{'longest step CPU ms':>20} {'CPU steps > 5 ms':>17} {'ticker late ms':>15}"
        f"   (medians of {ROUNDS} rounds)"
    )
    raw_wall = statistics.median(r[0] for r in results["raw"])
    for name, rows in results.items():
        wall, late, longest, over, longest_cpu, over_cpu = (
            statistics.median(r[k] for r in rows) for k in range(6)
        )
        print(
            f"{name:<8} {wall:>8.0f} {wall / raw_wall:>6.2f} {longest:>16.1f} {over:>13.0f} "
            f"{longest_cpu:>20.1f} {over_cpu:>17.0f} {late:>15.0f}"
        )


if __name__ == "__main__":
    main()
