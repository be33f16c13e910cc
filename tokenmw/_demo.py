"""``tokenmw demo``: a multi-agent workload run twice, with a raw client and through tokenmw.

The workload is shaped like the system that motivated tokenmw: many agents in parallel, each
re-sending a growing history (a long shared system prompt, earlier answers, tool outputs that come
back again and again). Both runs make the same calls against the same server, one after the other;
the table shows what the middleware saved and what it cost in time, per hook.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

__all__ = ["run_demo_cli"]

SYSTEM_PROMPT = """You are a research agent in a team of analysts.   Follow these rules:

1.  Read the task and the tool results carefully before you answer.
2.  Cite the source of every number you use.      Never invent data.
3.  When a tool result is long, summarise it;   do not repeat it back.
4.  Prefer short, direct answers.   Use bullet points for lists.


Tools you may call:
- `search(query: str) -> list[Result]`: web search, top 5 results.
- `fetch(url: str) -> str`: the text of a page.
- `sql(query: str) -> list[Row]`: read-only access to the sales warehouse.

Output format:
| field    | meaning                          |
|----------|----------------------------------|
| answer   | the answer, at most a paragraph  |
| sources  | URLs or table names you used      |
| caveats  | what you could not verify         |
"""

TOOL_OUTPUT = {
    "status": "ok",
    "rows": [
        {"region": "EMEA", "quarter": "2026-Q3", "revenue": 1284000.5, "units": 9120},
        {"region": "APAC", "quarter": "2026-Q3", "revenue": 981220.0, "units": 7311},
        {"region": "AMER", "quarter": "2026-Q3", "revenue": 1710450.25, "units": 11804},
    ],
    "source": "https://warehouse.example.com/sales/q3?format=json",
    "generated_at": "2026-10-01T08:00:00Z",
}

LOG_OUTPUT = "\n".join(
    [f"2026-10-01 08:00:{s:02d} INFO  worker-3   heartbeat ok    queue=0" for s in range(12)]
    + ["2026-10-01 08:00:12 WARN  worker-3   slow query   took=2.31s   table=sales"]
)

TASKS = [
    "Compare Q3 revenue across regions and explain the largest gap.",
    "Which region grew fastest in units, and is the growth consistent?",
    "Draft three questions the sales team should answer before Q4 planning.",
    "Is the slow query in the logs a risk for the Q4 dashboard?",
]


def agent_turns(agent: int, turns: int) -> list[dict[str, Any]]:
    """The user/tool messages agent ``agent`` adds at each turn (its history grows with them)."""
    task = TASKS[agent % len(TASKS)]
    steps: list[dict[str, Any]] = [{"role": "user", "content": f"Agent {agent}: {task}"}]
    for turn in range(1, turns):
        tool = TOOL_OUTPUT if turn % 2 else {"log": LOG_OUTPUT, "lines": 13}
        steps.append(
            {
                "role": "user",
                "content": "Tool result (the same query as before, re-sent by the loop):\n"
                + json.dumps(tool, indent=2)
                + f"\n\nContinue with step {turn + 1} of the task.",
            }
        )
    return steps


async def run_agent(client: Any, model: str, agent: int, turns: int, extra: dict[str, Any]) -> int:
    """One agent: ``turns`` calls, each re-sending the whole history; returns calls made."""
    history: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}]
    for message in agent_turns(agent, turns):
        history.append(message)
        response = await client.chat.completions.create(model=model, messages=list(history), **extra)
        history.append({"role": "assistant", "content": response.choices[0].message.content or ""})
    return turns


async def run_workload(client: Any, model: str, agents: int, turns: int, extra: dict[str, Any]) -> float:
    """Run every agent concurrently; returns the wall time in seconds."""
    start = time.perf_counter()
    await asyncio.gather(*(run_agent(client, model, a, turns, extra) for a in range(agents)))
    return time.perf_counter() - start


class HookTimes:
    """A span processor that sums the duration of each hook phase (no export, no text)."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: Any) -> None:
        attrs = span.attributes or {}
        name = attrs.get("tokenmw.hook.name")
        if name is not None and span.end_time and span.start_time:
            entry = self.totals[(str(name), str(attrs.get("tokenmw.hook.phase", "")))]
            entry[0] += 1
            entry[1] += span.end_time - span.start_time

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _install_tracing(hook_times: HookTimes) -> bool:
    """Use the OpenTelemetry SDK to time hooks (and export over OTLP when configured)."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return False
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(hook_times)  # type: ignore[arg-type]
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return True


def build_middleware(max_words: int, max_tokens: int) -> Any:
    import tokenmw

    return tokenmw.Middleware(
        [
            tokenmw.Compress(),
            tokenmw.Enhance(max_words=max_words),
            tokenmw.LimitResponse(max_tokens=max_tokens),
            tokenmw.CountTokens(),
        ]
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenmw demo",
        description="Run a multi-agent workload with a raw client and through tokenmw, and compare. "
        "Uses the embedded server unless OPENAI_API_KEY is set (then OPENAI_BASE_URL or the API).",
    )
    parser.add_argument("--agents", type=int, default=24)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--latency", type=float, default=0.05, help="embedded server: seconds per call")
    parser.add_argument("--reply-words", type=int, default=220, help="embedded server: words per reply")
    parser.add_argument("--max-words", type=int, default=150, help="Enhance(max_words=...)")
    parser.add_argument("--max-tokens", type=int, default=200, help="LimitResponse(max_tokens=...)")
    return parser


def run_demo_cli(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tokenmw demo``."""
    args = _parser().parse_args(argv)
    return asyncio.run(_demo(args))


async def _demo(args: argparse.Namespace) -> int:
    from openai import AsyncOpenAI

    from .server import EmbeddedServer

    hook_times = HookTimes()
    tracing = _install_tracing(hook_times)
    real_api = bool(os.environ.get("OPENAI_API_KEY"))
    with ExitStack() as stack:
        if real_api:
            raw = AsyncOpenAI()
            where = f"{raw.base_url} (model {args.model})"
        else:
            server = stack.enter_context(
                EmbeddedServer(port=0, latency=args.latency, reply_words=args.reply_words)
            )
            raw = AsyncOpenAI(api_key="demo", base_url=server.base_url, max_retries=0)
            where = f"the embedded server at {server.base_url} (latency {args.latency * 1000:.0f} ms/call)"
        calls = args.agents * args.turns
        print(f"tokenmw demo: {args.agents} agents x {args.turns} turns = {calls} calls per run, on {where}")
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")

        # Warm-up outside the timings: connections and the tokenizer load happen once per process.
        await run_workload(raw, args.model, 2, 1, {})
        await run_workload(build_middleware(args.max_words, args.max_tokens).wrap(raw), args.model, 2, 1, {})
        hook_times.totals.clear()
        mw = build_middleware(args.max_words, args.max_tokens)
        client = mw.wrap(raw)

        raw_usage = _UsageTally()
        raw_tallying = _TallyingClient(raw, raw_usage)
        raw_time = await run_workload(raw_tallying, args.model, args.agents, args.turns, {})
        mw_time = await run_workload(client, args.model, args.agents, args.turns, {})

    _print_report(args, raw_time, mw_time, raw_usage, mw.usage, hook_times if tracing else None)
    return 0


class _UsageTally:
    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0


class _TallyingClient:
    """The raw client's ``chat.completions.create``, adding up the usage the API reports."""

    def __init__(self, client: Any, tally: _UsageTally) -> None:
        self.chat = self
        self.completions = self
        self._client = client
        self._tally = tally

    async def create(self, **kwargs: Any) -> Any:
        response = await self._client.chat.completions.create(**kwargs)
        if response.usage is not None:
            self._tally.input_tokens += response.usage.prompt_tokens
            self._tally.output_tokens += response.usage.completion_tokens
        return response


def _pct(new: float, old: float) -> str:
    return f"{(new - old) / old * 100:+.1f}%" if old else "n/a"


def _print_report(
    args: argparse.Namespace,
    raw_time: float,
    mw_time: float,
    raw: _UsageTally,
    usage: Any,
    hook_times: HookTimes | None,
) -> None:
    calls = args.agents * args.turns
    rows = [
        ("calls", f"{calls}", f"{usage.calls}", ""),
        ("wall time", f"{raw_time:.2f} s", f"{mw_time:.2f} s", _pct(mw_time, raw_time)),
        (
            "input tokens (API)",
            f"{raw.input_tokens:,}",
            f"{usage.input_tokens_reported:,}",
            _pct(usage.input_tokens_reported, raw.input_tokens),
        ),
        (
            "output tokens (API)",
            f"{raw.output_tokens:,}",
            f"{usage.output_tokens:,}",
            _pct(usage.output_tokens, raw.output_tokens),
        ),
    ]
    print(f"{'':<22}{'raw client':>14}{'with tokenmw':>16}{'change':>10}")
    for label, a, b, change in rows:
        print(f"{label:<22}{a:>14}{b:>16}{change:>10}")
    print(
        f"\ninput tokens counted locally: {usage.input_tokens_original:,} as the agents wrote them, "
        f"{usage.input_tokens_sent:,} as sent ({usage.input_tokens_saved:,} saved by the hooks)"
    )
    if hook_times is None:
        print("\n(per-hook times need the OpenTelemetry SDK: pip install 'tokenmw[otel]')")
        return
    print(f"\ntime spent in each hook over {calls} calls (own work, model call excluded):")
    print(f"{'hook':<16}{'phase':<10}{'runs':>7}{'total':>11}{'per call':>11}")
    total_ns = 0
    for (name, phase), (runs, ns) in sorted(hook_times.totals.items()):
        total_ns += ns
        print(f"{name:<16}{phase:<10}{runs:>7}{ns / 1e6:>9.1f}ms{ns / 1e3 / max(calls, 1):>9.0f}µs")
    print(
        f"{'all hooks':<33}{total_ns / 1e6:>9.1f}ms{total_ns / 1e3 / max(calls, 1):>9.0f}µs"
        f"   ({total_ns / 1e9 / mw_time * 100:.2f}% of the run's wall time; agents run concurrently)"
    )
