"""The seed scenario in three modes over the identical workload, interleaved round by round.

``raw`` is the unwrapped ``AsyncOpenAI``; ``naive`` the anti-patterns of ``naive.py``; ``tokenmw``
the four built-in hooks with the OpenTelemetry SDK on (a batch span processor and an in-memory
exporter, whose spans give the per-hook breakdown). The server runs in a child process, as a real
API does, so its work is not billed to the client process whose CPU is measured. Every round runs
the modes in the same order over fresh copies of the same requests; before each tokenmw round the
process-wide caches (counts, compressed texts, request prefixes) are emptied, so no round is served
by the one before it — only the shared encoding, loaded once per process, stays (as in production).
"""

from __future__ import annotations

import asyncio
import copy
import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tokenmw._bench.naive import NaiveClient, NaivePipeline
from tokenmw._bench.stalls import watch_stalls
from tokenmw._bench.workload import scenario_turns

__all__ = ["MODES", "BenchConfig", "ModeResult", "run_bench"]

MODES = ("raw", "naive", "tokenmw")
_HOOK_NAME = "tokenmw.hook.name"


@dataclass(frozen=True)
class BenchConfig:
    agents: int = 24
    turns: int = 5
    latency_ms: float = 800.0
    """The server's wait before any answer."""
    ms_per_token: float = 10.0
    """The server's time per output token (100 tokens/s)."""
    rounds: int = 3
    reply_words: int = 220
    """Words of an answer when no word limit is asked for."""
    max_words: int = 150
    """``Enhance(max_words=...)``, and the naive enhancer's."""
    max_tokens: int = 400
    """``LimitResponse(max_tokens=...)``, and the naive limiter's."""
    model: str = "gpt-4o-mini"


@dataclass
class ModeResult:
    """One mode's figures over every round (tokens are the server's counts, per round)."""

    name: str
    walls: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    calls: int = 0
    """Calls completed in one round."""
    input_tokens: int = 0
    output_tokens: int = 0
    failures: int = 0
    max_stall_ms: float = 0.0
    p99_stall_ms: list[float] = field(default_factory=list)
    max_stall_cpu_ms: float = 0.0
    """The longest callback by the loop thread's CPU clock (without the machine's noise)."""
    p99_stall_cpu_ms: list[float] = field(default_factory=list)
    hook_seconds: dict[str, float] = field(default_factory=dict)
    """Per hook: the time its spans measured, summed over every round."""
    max_hook_ms: dict[str, float] = field(default_factory=dict)
    """Per hook: its longest span, the longest the hook held the loop (phases run without awaiting)."""
    call_spans: int = 0

    @property
    def wall_s(self) -> float:
        return statistics.median(self.walls) if self.walls else 0.0

    @property
    def cpu_us_per_call(self) -> float:
        return statistics.median(self.cpu_seconds) / self.calls * 1e6 if self.calls else 0.0

    def hook_us_per_call(self) -> dict[str, float]:
        total_calls = self.calls * len(self.walls)
        if not total_calls:
            return {}
        return {name: s / total_calls * 1e6 for name, s in sorted(self.hook_seconds.items())}

    def to_json(self, raw: ModeResult) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 4),
            "wall_ratio": round(self.wall_s / raw.wall_s, 4) if raw.wall_s else None,
            "walls_s": [round(w, 4) for w in self.walls],
            "calls": self.calls,
            "failures": self.failures,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "input_saved_pct": _saved(self.input_tokens, raw.input_tokens),
            "output_saved_pct": _saved(self.output_tokens, raw.output_tokens),
            "cpu_us_per_call": round(self.cpu_us_per_call, 1),
            "max_stall_ms": round(self.max_stall_ms, 3),
            "p99_stall_ms": _median(self.p99_stall_ms),
            "max_stall_cpu_ms": round(self.max_stall_cpu_ms, 3),
            "p99_stall_cpu_ms": _median(self.p99_stall_cpu_ms),
            "hook_us_per_call": {k: round(v, 1) for k, v in self.hook_us_per_call().items()},
            "max_hook_ms": {k: round(v, 3) for k, v in sorted(self.max_hook_ms.items())},
            "call_spans": self.call_spans,
        }


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else 0.0


def _saved(tokens: int, raw: int) -> float | None:
    return round(100 * (1 - tokens / raw), 2) if raw else None


class _Telemetry:
    """The OpenTelemetry SDK as a user would set it up, exporting to memory."""

    def __init__(self) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):  # an SDK is set already: add our exporter to it
            self.provider = current
        else:
            self.provider = TracerProvider()
            trace.set_tracer_provider(self.provider)
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))

    def collect(self, result: ModeResult) -> None:
        """Add the finished spans' per-hook time to ``result`` and forget them."""
        self.provider.force_flush()
        for span in self.exporter.get_finished_spans():
            attributes = span.attributes or {}
            name = attributes.get(_HOOK_NAME)
            if span.end_time is None or span.start_time is None:
                continue
            if name is None:
                result.call_spans += 1
                continue
            seconds = (span.end_time - span.start_time) / 1e9
            key = str(name)
            result.hook_seconds[key] = result.hook_seconds.get(key, 0.0) + seconds
            result.max_hook_ms[key] = max(result.max_hook_ms.get(key, 0.0), seconds * 1e3)
        self.exporter.clear()


def _middleware(config: BenchConfig) -> Any:
    import tokenmw

    return tokenmw.Middleware(
        [
            tokenmw.Compress(),
            tokenmw.Enhance(max_words=config.max_words),
            tokenmw.LimitResponse(max_tokens=config.max_tokens),
            tokenmw.CountTokens(),
        ]
    )


def _clear_caches(config: BenchConfig) -> None:
    from tokenmw._compress import clear_cache
    from tokenmw._tokens.count_cache import cache_for
    from tokenmw._tokens.encodings import encoding_for

    clear_cache()
    cache_for(encoding_for(config.model)).clear()


async def _agent(client: Any, model: str, turns: list[list[dict[str, Any]]], tally: list[int]) -> None:
    """One agent's conversation, turn after turn (each request the whole history so far)."""
    for messages in turns:
        try:
            response = await client.chat.completions.create(model=model, messages=messages)
        except Exception:
            tally[3] += 1
            continue
        tally[0] += 1
        if response.usage is not None:
            tally[1] += response.usage.prompt_tokens
            tally[2] += response.usage.completion_tokens


async def _round(
    name: str, make_client: Callable[[int], Any], config: BenchConfig, workload: list[Any], result: ModeResult
) -> None:
    requests = copy.deepcopy(workload)  # a hook that changed a request in place would change the next mode's
    # The naive mode leaves ~70 tokenizers (millions of objects) behind: collected here, not by a
    # collection that would stop the next mode's loop for seconds.
    gc.collect()
    tally = [0, 0, 0, 0]  # calls, input tokens, output tokens, failures

    async def agent(index: int) -> None:
        # The client (the naive pipeline, with its tokenizers) is made inside the agent, on the loop,
        # where an agent framework makes it.
        await _agent(make_client(index), config.model, requests[index], tally)

    with watch_stalls() as stalls:
        cpu = time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(agent(i) for i in range(config.agents)))
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
    result.walls.append(wall)
    result.cpu_seconds.append(cpu)
    result.calls, result.input_tokens, result.output_tokens = tally[0], tally[1], tally[2]
    result.failures += tally[3]
    result.max_stall_ms = max(result.max_stall_ms, stalls.max_ms)
    result.p99_stall_ms.append(stalls.p99_ms)
    result.max_stall_cpu_ms = max(result.max_stall_cpu_ms, stalls.max_cpu_ms)
    result.p99_stall_cpu_ms.append(stalls.p99_cpu_ms)


async def run_bench(
    config: BenchConfig, base_url: str, progress: Callable[[str], None] | None = None
) -> dict[str, ModeResult]:
    """Run every mode ``config.rounds`` times, interleaved, against the server at ``base_url``."""
    from openai import AsyncOpenAI

    telemetry = _Telemetry()
    workload = [scenario_turns(agent, config.turns) for agent in range(config.agents)]
    raw = AsyncOpenAI(api_key="bench", base_url=base_url, max_retries=0, timeout=600)
    encoding_name = _encoding_name(config.model)

    def naive(index: int) -> Any:
        return NaiveClient(raw, NaivePipeline(encoding_name, config.max_words, config.max_tokens))

    mw: list[Any] = []

    def wrapped(index: int) -> Any:
        return mw[0]

    clients: dict[str, Callable[[int], Any]] = {"raw": lambda i: raw, "naive": naive, "tokenmw": wrapped}
    results = {name: ModeResult(name) for name in MODES}

    # Warm-up, outside the timings: connections open, the shared encoding loads (once per process).
    warm = _middleware(config).wrap(raw)
    await asyncio.gather(*(_agent(c, config.model, workload[0][:1], [0, 0, 0, 0]) for c in (raw, warm)))
    telemetry.collect(ModeResult("warm-up"))

    for round_ in range(config.rounds):
        for name in MODES:
            if name == "tokenmw":
                _clear_caches(config)
                mw[:] = [_middleware(config).wrap(raw)]
            await _round(name, clients[name], config, workload, results[name])
            if name == "tokenmw":
                telemetry.collect(results[name])
            if progress is not None:
                progress(f"round {round_ + 1}/{config.rounds} {name}: {results[name].walls[-1]:.2f} s")
    await raw.close()
    return results


def _encoding_name(model: str) -> str:
    from tokenmw._tokens.encodings import encoding_for

    return encoding_for(model).name
