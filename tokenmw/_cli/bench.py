"""``tokenmw bench``: reproduce the seed's slowdown (naive token optimization) and its cure (tokenmw).

Runs the seed scenario (``tokenmw._bench``) against the embedded server in a child process that
answers with a base latency plus time per output token, and with at most N words when the prompt
asks for at most N words (a model of how instruction-following models shorten their answers, not
a measurement of one). Prints one table row per mode and the per-hook breakdown from the spans.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["run_bench_cli"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenmw bench",
        description="The seed scenario (agents running concurrent multi-turn tool-using conversations) "
        "in three modes, interleaved: the raw client, naive token optimization, and tokenmw.",
    )
    parser.add_argument("--agents", type=_positive, default=24, help="concurrent agents (default: 24)")
    parser.add_argument("--turns", type=_positive, default=5, help="calls per agent (default: 5)")
    parser.add_argument(
        "--latency-ms", type=_non_negative, default=800.0, help="server: ms before any answer (default: 800)"
    )
    parser.add_argument(
        "--ms-per-token", type=_non_negative, default=10.0, help="server: ms per output token (default: 10)"
    )
    parser.add_argument("--rounds", type=_positive, default=3, help="rounds of the three modes (default: 3)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def run_bench_cli(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tokenmw bench``."""
    args = _parser().parse_args(argv)
    from tokenmw._bench.scenario import MODES, BenchConfig, run_bench
    from tokenmw.server import server_process

    config = BenchConfig(
        agents=args.agents,
        turns=args.turns,
        latency_ms=args.latency_ms,
        ms_per_token=args.ms_per_token,
        rounds=args.rounds,
    )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(
        f"tokenmw bench: {config.agents} agents x {config.turns} turns = {config.agents * config.turns} "
        f"calls per mode and round; server latency {config.latency_ms:g} ms + {config.ms_per_token:g} ms "
        f"per output token; {config.rounds} rounds of raw, naive, tokenmw\nmachine: {machine}",
        flush=True,
    )

    def progress(line: str) -> None:
        if not args.quiet:
            print(f"  {line}", file=sys.stderr, flush=True)

    with server_process(
        latency=config.latency_ms / 1000,
        reply_words=config.reply_words,
        latency_per_token=config.ms_per_token / 1000,
        follow_word_limit=True,
    ) as base_url:
        results = asyncio.run(run_bench(config, base_url, progress))
    raw = results["raw"]
    report = {name: results[name].to_json(raw) for name in MODES}
    print()
    print(_table(report))
    print()
    print(_hooks(report["tokenmw"]))
    if args.json is not None:
        document = {
            "machine": machine,
            "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
            "modes": report,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    failures = sum(r["failures"] for r in report.values())
    if failures:
        print(f"\n{failures} calls failed", file=sys.stderr)
    return 1 if failures else 0


def _table(report: dict[str, dict[str, Any]]) -> str:
    head = (
        f"{'mode':<9}{'wall':>9}{'vs raw':>8}{'input tok':>11}{'saved':>8}{'output tok':>12}{'saved':>8}"
        f"{'max stall':>11}{'p99 stall':>11}{'CPU/call':>10}"
    )
    lines = [head]
    for name, r in report.items():
        lines.append(
            f"{name:<9}{r['wall_s']:>8.2f}s{r['wall_ratio']:>7.3f}x{r['input_tokens']:>11,}"
            f"{_saved(r['input_saved_pct']):>8}{r['output_tokens']:>12,}{_saved(r['output_saved_pct']):>8}"
            f"{r['max_stall_ms']:>9.1f}ms{r['p99_stall_ms']:>9.2f}ms{r['cpu_us_per_call'] / 1000:>8.2f}ms"
        )
        cpu_stalls = f"{r['max_stall_cpu_ms']:>9.1f}ms{r['p99_stall_cpu_ms']:>9.2f}ms"
        lines.append(f"{'  by the CPU clock':<65}{cpu_stalls}")
    lines.append(
        "wall: median of the rounds; tokens: the server's counts over one round; stall: the longest "
        "event-loop callback (p99: of callbacks over 0.1 ms), by the wall clock, then by the loop "
        "thread's CPU clock (without the time the OS ran something else); CPU/call: this process"
    )
    return "\n".join(lines)


def _saved(pct: float | None) -> str:
    return "" if pct is None else f"{pct:.1f}%"


def _hooks(tokenmw: dict[str, Any]) -> str:
    per_call = tokenmw["hook_us_per_call"]
    longest = tokenmw["max_hook_ms"]
    lines = [
        "tokenmw: time in each hook, from its spans (the hook's own work)",
        f"  {'hook':<16}{'per call':>10}{'longest':>11}",
    ]
    for name, us in per_call.items():
        lines.append(f"  {name:<16}{us:>7.0f} µs{longest.get(name, 0.0):>8.1f} ms")
    lines.append(f"  {'all hooks':<16}{sum(per_call.values()):>7.0f} µs")
    return "\n".join(lines)
