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
import statistics
import time
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
        "Uses the embedded server unless OPENAI_API_KEY or OPENAI_BASE_URL is set.",
    )
    parser.add_argument("--agents", type=int, default=24)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--latency", type=float, default=0.05, help="embedded server: seconds per call")
    parser.add_argument("--reply-words", type=int, default=220, help="embedded server: words per reply")
    parser.add_argument("--max-words", type=int, default=150, help="Enhance(max_words=...)")
    parser.add_argument("--max-tokens", type=int, default=200, help="LimitResponse(max_tokens=...)")
    parser.add_argument("--rounds", type=int, default=3, help="raw/wrapped runs, alternating")
    return parser


def run_demo_cli(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tokenmw demo``."""
    args = _parser().parse_args(argv)
    return asyncio.run(_demo(args))


async def _demo(args: argparse.Namespace) -> int:
    from openai import AsyncOpenAI

    from tokenmw.server import server_process
    from tokenmw.telemetry import setup_from_env

    setup_from_env("tokenmw-demo")  # spans go to OTEL_EXPORTER_OTLP_ENDPOINT when it is set
    # A real endpoint when the caller names one: the API (key) or any compatible server (base URL,
    # which may need no key).
    real_api = bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))
    with ExitStack() as stack:
        if real_api:
            raw = AsyncOpenAI(api_key=os.environ.get("OPENAI_API_KEY") or "none")
            where = f"{raw.base_url} (model {args.model})"
        else:
            # The server runs in its own process, as a real API would: its work is not billed to
            # the client process whose time we compare.
            base_url = stack.enter_context(server_process(latency=args.latency, reply_words=args.reply_words))
            raw = AsyncOpenAI(api_key="demo", base_url=base_url, max_retries=0)
            where = f"the embedded server at {base_url} (latency {args.latency * 1000:.0f} ms/call)"
        calls = args.agents * args.turns
        print(f"tokenmw demo: {args.agents} agents x {args.turns} turns = {calls} calls per run, on {where}")
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()};"
            f" {args.rounds} rounds, raw and wrapped runs alternating\n"
        )

        # Warm-up outside the timings: connections and the tokenizer load happen once per process.
        await run_workload(raw, args.model, 2, 1, {})
        await run_workload(build_middleware(args.max_words, args.max_tokens).wrap(raw), args.model, 2, 1, {})

        raw_times: list[float] = []
        mw_times: list[float] = []
        for _ in range(args.rounds):
            raw_usage = _UsageTally()
            raw_times.append(
                await run_workload(_TallyingClient(raw, raw_usage), args.model, args.agents, args.turns, {})
            )
            mw = build_middleware(args.max_words, args.max_tokens)
            mw_times.append(await run_workload(mw.wrap(raw), args.model, args.agents, args.turns, {}))

    # Every round makes the same calls: the token figures are those of the last round.
    _print_report(args, statistics.median(raw_times), statistics.median(mw_times), raw_usage, mw)
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
    args: argparse.Namespace, raw_time: float, mw_time: float, raw: _UsageTally, mw: Any
) -> None:
    usage = mw.usage
    calls = args.agents * args.turns
    rows = [
        ("calls", f"{calls}", f"{usage.calls}", ""),
        ("wall time (median)", f"{raw_time:.2f} s", f"{mw_time:.2f} s", _pct(mw_time, raw_time)),
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
    cost = usage.cost_usd
    if cost is not None:
        from tokenmw._tokens.prices import price_source

        sources = sorted(filter(None, {price_source(m) for m in usage.by_model}))
        print(f"estimated cost of the wrapped run: ${cost:.4f} ({', '.join(sources)} price table)")
    print(f"\ntime spent in each hook over the last round's {calls} calls (the hook's own work):")
    print(f"{'hook':<16}{'phase':<14}{'runs':>7}{'total':>11}{'per call':>11}")
    times = mw.hook_times.snapshot()
    for (name, phase), t in sorted(times.items()):
        print(f"{name:<16}{phase:<14}{t.runs:>7}{t.seconds * 1e3:>9.1f}ms{t.seconds * 1e6 / calls:>9.0f}µs")
    total = mw.hook_times.total_seconds
    print(f"{'all hooks':<37}{total * 1e3:>9.1f}ms{total * 1e6 / calls:>9.0f}µs")
