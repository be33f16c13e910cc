"""``tokenmw bench``'s scenario: the same multi-agent workload in three modes, rounds interleaved.

Every round runs raw, naive, tokenmw in that order against one server, with fresh middleware and
optimizers; round ``r`` uses agents ``r * agents .. r * agents + agents - 1`` of the seed loop, so
the three modes of a round send identical requests while no round re-sends an earlier round's text
(tokenmw's process-wide token cache would otherwise get every later round for free).
"""

from __future__ import annotations

import asyncio
import gc
import io
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tokenmw._bench.measure import LoopMonitor, SpanRecorder, StepTimer, percentile, sdk_available
from tokenmw._bench.naive import NaiveOptimizer, naive_log
from tokenmw._bench.seed import agent_turns

__all__ = ["MODES", "BenchSettings", "ModeResult", "run_bench"]

MODES = ("raw", "naive", "tokenmw")


@dataclass(frozen=True)
class BenchSettings:
    agents: int = 24
    turns: int = 5
    latency_ms: float = 800.0
    """The server's base latency per call."""
    ms_per_token: float = 5.0
    """The server's time per output token, on top of the base."""
    rounds: int = 2
    reply_words: int = 220
    """Words in the server's answer when the prompt asks for no limit."""
    max_words: int = 150
    max_tokens: int = 400
    model: str = "gpt-4o-mini"


@dataclass
class ModeResult:
    """One mode over every round."""

    name: str
    walls: list[float] = field(default_factory=list)
    calls: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cpu_seconds: float = 0.0
    lags: list[float] = field(default_factory=list)
    longest_step: float = 0.0
    longest_step_cpu: float = 0.0
    steps_over_5ms: int = 0
    hook_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    """Time in each hook (tokenmw: from the spans; naive: its own step timers)."""
    spans: int = 0

    @property
    def wall(self) -> float:
        return statistics.median(self.walls) if self.walls else 0.0


class _Tally:
    def __init__(self) -> None:
        self.calls = 0
        self.failed = 0
        self.input_tokens = 0
        self.output_tokens = 0

    def add(self, response: Any) -> None:
        self.calls += 1
        if response.usage is not None:  # the server's own count of what it received and wrote
            self.input_tokens += response.usage.prompt_tokens
            self.output_tokens += response.usage.completion_tokens


Conversation = list[list[dict[str, Any]]]
"""One agent's requests, turn by turn (each the previous plus the new messages)."""
Agent = Callable[[Conversation, _Tally], Any]


def workload(settings: BenchSettings, first_agent: int) -> list[Conversation]:
    """Every agent's requests, built before the clock starts (making them is not the client's work,
    and would otherwise stall the loop in every mode alike)."""
    return [agent_turns(first_agent + a, settings.turns, follow_ups=True) for a in range(settings.agents)]


async def _run_agents(agent: Agent, conversations: list[Conversation], tally: _Tally) -> None:
    await asyncio.gather(*(agent(conversation, tally) for conversation in conversations))


def _raw_agent(client: Any, settings: BenchSettings) -> Agent:
    async def agent(conversation: Conversation, tally: _Tally) -> None:
        for messages in conversation:
            try:
                tally.add(await client.chat.completions.create(model=settings.model, messages=messages))
            except Exception:
                tally.failed += 1

    return agent


def _naive_agent(
    client: Any, settings: BenchSettings, steps: dict[str, float], log: Any
) -> Agent:
    async def agent(conversation: Conversation, tally: _Tally) -> None:
        optimizer = NaiveOptimizer(log, max_words=settings.max_words, max_tokens=settings.max_tokens)
        for messages in conversation:
            try:
                request = await optimizer.prepare(settings.model, messages)
                response = await client.chat.completions.create(**request)
                await optimizer.after(response)
                tally.add(response)
            except Exception:
                tally.failed += 1
        for step, seconds in optimizer.step_seconds.items():
            steps[step] += seconds

    return agent


def _middleware(settings: BenchSettings) -> Any:
    from tokenmw._clients.middleware import Middleware
    from tokenmw.hooks.compress import Compress
    from tokenmw.hooks.count_tokens import CountTokens
    from tokenmw.hooks.enhance import Enhance
    from tokenmw.hooks.limit_response import LimitResponse

    return Middleware(
        [
            Compress(),
            Enhance(max_words=settings.max_words),
            LimitResponse(max_tokens=settings.max_tokens),
            CountTokens(),
        ]
    )


async def _round(
    mode: str,
    raw: Any,
    settings: BenchSettings,
    first_agent: int,
    result: ModeResult,
    spans: SpanRecorder | None,
) -> None:
    tally = _Tally()
    steps: dict[str, float] = defaultdict(float)
    log_stream: io.StringIO | None = None
    mw = None
    if mode == "raw":
        agent = _raw_agent(raw, settings)
    elif mode == "naive":
        logger, log_stream = naive_log()
        agent = _naive_agent(raw, settings, steps, logger)
    else:
        mw = _middleware(settings)
        agent = _raw_agent(mw.wrap(raw), settings)
    conversations = workload(settings, first_agent)
    # Outside the timing: the naive mode leaves its tokenizers (millions of objects) behind, and a
    # full collection of them would otherwise land in whichever mode runs next.
    gc.collect()
    monitor = LoopMonitor()
    monitor.start()
    await asyncio.sleep(0)  # the monitor's first wake-up is scheduled before the clock starts
    with StepTimer() as steps_timer:
        cpu = time.process_time()
        start = time.perf_counter()
        await _run_agents(agent, conversations, tally)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
    await monitor.stop()
    result.longest_step = max(result.longest_step, steps_timer.longest)
    result.longest_step_cpu = max(result.longest_step_cpu, steps_timer.longest_cpu)
    result.steps_over_5ms += steps_timer.over_5ms
    result.walls.append(wall)
    result.calls += tally.calls
    result.failed += tally.failed
    result.input_tokens += tally.input_tokens
    result.output_tokens += tally.output_tokens
    result.cpu_seconds += cpu
    result.lags.extend(monitor.lags)
    for step, seconds in steps.items():
        result.hook_seconds[step] += seconds
    if mw is not None:
        if spans is not None:
            by_hook, count = spans.take()
            result.spans += count
        else:  # no SDK: the middleware's own timers
            by_hook = defaultdict(float)
            for (name, _phase), timing in mw.hook_times.snapshot().items():
                by_hook[name] += timing.seconds
        for name, seconds in by_hook.items():
            result.hook_seconds[name] += seconds
    if log_stream is not None:
        log_stream.close()


async def run_bench(
    settings: BenchSettings,
    base_url: str,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, ModeResult]:
    """Run every round against the server at ``base_url``; the results per mode."""
    from openai import AsyncOpenAI

    spans = SpanRecorder() if sdk_available() else None
    raw = AsyncOpenAI(api_key="bench", base_url=base_url, max_retries=0, timeout=600)
    results = {mode: ModeResult(mode) for mode in MODES}
    try:
        # Warm-up, outside the figures: connections, and tokenmw's one shared tokenizer (loaded
        # once per process, in a worker thread). The naive mode's tokenizers are per optimizer,
        # so they are built again in every timed round, as in the system this reproduces.
        # The raw warm-up opens one connection per agent; every mode then shares the pool.
        for mode in MODES:
            agents = settings.agents if mode == "raw" else min(2, settings.agents)
            warm = BenchSettings(agents=agents, turns=1, model=settings.model)
            await _round(mode, raw, warm, 10_000, ModeResult(mode), spans)
        for index in range(settings.rounds):
            for mode in MODES:
                await _round(mode, raw, settings, index * settings.agents, results[mode], spans)
                if progress is not None:
                    wall = results[mode].walls[-1]
                    progress(f"round {index + 1}/{settings.rounds}: {mode:<8} {wall:7.2f} s")
    finally:
        await raw.close()
    return results


def summary(results: dict[str, ModeResult]) -> dict[str, dict[str, Any]]:
    """The figures per mode, as ``--json`` writes them."""
    raw = results["raw"]
    out: dict[str, dict[str, Any]] = {}
    for name, r in results.items():
        calls = max(r.calls, 1)
        out[name] = {
            "wall_s": round(r.wall, 4),
            "walls_s": [round(w, 4) for w in r.walls],
            "wall_ratio": round(r.wall / raw.wall, 4) if raw.wall else None,
            "calls": r.calls,
            "failed_calls": r.failed,
            "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens,
            "input_saved_pct": _saved(r.input_tokens, raw.input_tokens),
            "output_saved_pct": _saved(r.output_tokens, raw.output_tokens),
            "cpu_us_per_call": round(r.cpu_seconds / calls * 1e6, 1),
            "max_stall_ms": round(max(r.lags, default=0.0) * 1e3, 3),
            "p99_stall_ms": round(percentile(r.lags, 0.99) * 1e3, 3),
            "longest_step_ms": round(r.longest_step * 1e3, 3),
            "longest_step_cpu_ms": round(r.longest_step_cpu * 1e3, 3),
            "steps_over_5ms": r.steps_over_5ms,
            "hooks_us_per_call": {k: round(v / calls * 1e6, 1) for k, v in sorted(r.hook_seconds.items())},
            "spans": r.spans,
        }
    return out


def _saved(tokens: int, raw: int) -> float | None:
    return round((raw - tokens) / raw * 100, 2) if raw else None
