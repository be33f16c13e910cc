"""``tokenmw bench``: reproduce the slowdown naive token optimization causes, and tokenmw's cure.

The seed system saved 15.8% of its tokens and doubled its runtime (106 s -> 215 s). This runs its
kind of workload (24 agents, tool-using, re-sending a growing history) three ways over the same
requests, against the embedded server in its own process (so its work is not billed to the client
process whose CPU and loop are measured): the raw client, the naive optimizer
(``tokenmw._bench.naive``), and the four built-in hooks with the OpenTelemetry SDK on.
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
        description="The seed-like multi-agent workload in three modes (raw client, naive optimizer, "
        "tokenmw), interleaved per round, on the embedded server.",
    )
    parser.add_argument("--agents", type=_positive, default=24, help="concurrent agents (default: 24)")
    parser.add_argument("--turns", type=_positive, default=5, help="calls per agent (default: 5)")
    parser.add_argument(
        "--latency-ms", type=float, default=800.0, help="server: base latency per call (default: 800)"
    )
    parser.add_argument(
        "--ms-per-token", type=float, default=5.0, help="server: time per output token (default: 5)"
    )
    parser.add_argument(
        "--rounds", type=_positive, default=2, help="rounds of raw, naive, tokenmw (default: 2)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text}")
    return value


def run_bench_cli(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tokenmw bench``."""
    args = _parser().parse_args(argv)
    if args.latency_ms < 0 or args.ms_per_token < 0:
        print("tokenmw bench: latencies must be >= 0", file=sys.stderr)
        return 2
    from tokenmw._bench.run import BenchSettings, run_bench, summary
    from tokenmw.server import server_process

    settings = BenchSettings(
        agents=args.agents,
        turns=args.turns,
        latency_ms=args.latency_ms,
        ms_per_token=args.ms_per_token,
        rounds=args.rounds,
    )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    calls = settings.agents * settings.turns
    print(
        f"tokenmw bench: {settings.agents} agents x {settings.turns} turns = {calls} calls per mode and "
        "round, "
        f"{settings.rounds} round(s) of raw, naive, tokenmw\n"
        f"server: its own process, {settings.latency_ms:g} ms + {settings.ms_per_token:g} ms per output "
        f"token, {settings.reply_words}-word answers, shorter when the prompt asks for a word limit "
        f"(a model of instruction following)\nmachine: {machine}\n",
        flush=True,
    )
    with server_process(
        latency=settings.latency_ms / 1000,
        reply_words=settings.reply_words,
        latency_per_token=settings.ms_per_token / 1000,
        follow_word_limit=True,
    ) as base_url:
        results = asyncio.run(run_bench(settings, base_url, progress=lambda line: print(line, flush=True)))
    figures = summary(results)
    print()
    print(format_table(figures))
    if args.json:
        document = {"machine": machine, "settings": vars(settings) | {}, "modes": figures}
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0 if all(f["failed_calls"] == 0 for f in figures.values()) else 1


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:+.1f}%"


def format_table(figures: dict[str, dict[str, Any]]) -> str:
    """The side-by-side table of the three modes, then each mode's breakdown per hook or step."""
    modes = list(figures)
    rows: list[tuple[str, ...]] = [
        ("", *modes),
        ("calls (failed)", *(f"{f['calls']} ({f['failed_calls']})" for f in figures.values())),
        ("wall time (median)", *(f"{f['wall_s']:.2f} s" for f in figures.values())),
        ("  vs raw", *(f"{f['wall_ratio']:.3f}x" for f in figures.values())),
        ("input tokens (server)", *(f"{f['input_tokens']:,}" for f in figures.values())),
        ("  saved vs raw", *(_pct(f["input_saved_pct"]) for f in figures.values())),
        ("output tokens (server)", *(f"{f['output_tokens']:,}" for f in figures.values())),
        ("  saved vs raw", *(_pct(f["output_saved_pct"]) for f in figures.values())),
        ("loop lag, longest",  *(f"{f['max_stall_ms']:.1f} ms" for f in figures.values())),
        ("loop lag, p99", *(f"{f['p99_stall_ms']:.2f} ms" for f in figures.values())),
        ("longest loop step, wall", *(f"{f['longest_step_ms']:.1f} ms" for f in figures.values())),
        ("longest loop step, CPU", *(f"{f['longest_step_cpu_ms']:.1f} ms" for f in figures.values())),
        ("steps over 5 ms CPU", *(f"{f['steps_over_5ms']}" for f in figures.values())),
        ("process CPU per call", *(f"{f['cpu_us_per_call'] / 1000:.2f} ms" for f in figures.values())),
    ]
    lines = [f"{row[0]:<24}" + "".join(f"{cell:>16}" for cell in row[1:]) for row in rows]
    for name in ("naive", "tokenmw"):
        hooks = figures.get(name, {}).get("hooks_us_per_call") or {}
        if not hooks:
            continue
        source = "its step timers" if name == "naive" else "hook spans, tokenmw.hook.name"
        lines += ["", f"{name}: time per call in each step ({source})"]
        for hook, micros in hooks.items():
            lines.append(f"  {hook:<18}{micros:>10.0f} µs")
        lines.append(f"  {'all':<18}{sum(hooks.values()):>10.0f} µs")
    return "\n".join(lines)
