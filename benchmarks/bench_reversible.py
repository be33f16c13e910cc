"""Reversible compression's trade, on the corpus in ``tests/data``: what the first request costs with
``Compress(level="aggressive", reversible=True)`` next to plain aggressive (refs in the markers and the
``tokenmw_expand`` tool definition cost tokens), and what one expansion costs when the model asks
for an original back (the follow-up request's input tokens, and one extra round trip).

Every figure is read from real calls: the real openai client, wrapped, against the embedded server
(in this process, loopback, no added latency). Input tokens are tokenmw's local count of each
request as sent (``mw.usage.input_tokens_sent``, which includes tool definitions); the server is
asked to act as a model that expands the first ref it sees (``x-tokenmw-expand-refs``) for the
expansion figures. Wall times are loopback medians: a real API adds its own latency (often 0.3–2 s)
once more per expansion, which dwarfs everything measured here.

Run: ``python benchmarks/bench_reversible.py``
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import openai

import tokenmw
from tokenmw._compress import clear_cache, refs
from tokenmw.server import EmbeddedServer

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
ROUNDS = int(os.environ.get("TOKENMW_BENCH_ROUNDS", "5"))
EXPAND = {"x-tokenmw-expand-refs": "1"}
MARKER_REF = re.compile(r" ref=[a-z2-7]{8}\]")  # a marker's ref, not the tool's description


def load() -> list[tuple[str, dict[str, Any], str]]:
    out = []
    for path in sorted(DATA.glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        out.append((path.stem, body, "responses" if "input" in body else "chat"))
    return out


def send(client: openai.OpenAI, body: dict[str, Any], operation: str) -> Any:
    if operation == "chat":
        return client.chat.completions.create(**body)
    return client.responses.create(**body)


def one(server: EmbeddedServer, base: openai.OpenAI, hook: tokenmw.Hook, body: dict[str, Any], operation: str,
        headers: dict[str, str] | None = None) -> tuple[tokenmw.Middleware, int, float]:  # fmt: skip
    """One call: the middleware (its usage), the requests the server saw, the wall time (ms)."""
    mw = tokenmw.Middleware([hook, tokenmw.CountTokens()])
    client = mw.wrap(base.with_options(default_headers=headers) if headers else base)
    server.reset()
    started = time.perf_counter()
    send(client, body, operation)
    return mw, len(server.requests), (time.perf_counter() - started) * 1000


def main() -> None:
    requests = load()
    aggressive = tokenmw.Compress(level="aggressive")
    reversible = tokenmw.Compress(level="aggressive", reversible=True)
    once = tokenmw.Compress(level="aggressive", reversible=True, max_expansions=1)  # one expansion
    rows = []
    with EmbeddedServer(port=0) as server:
        base = openai.OpenAI(api_key="bench", base_url=server.base_url, max_retries=0)
        for name, body, operation in requests:
            clear_cache()
            refs.clear()
            plain, _, _ = one(server, base, aggressive, body, operation)
            first, _, _ = one(server, base, reversible, body, operation)
            row: dict[str, Any] = {
                "name": name,
                "original": plain.usage.input_tokens_original,
                "aggressive": plain.usage.input_tokens_sent,
                "reversible": first.usage.input_tokens_sent,
                "refs": sum(len(MARKER_REF.findall(json.dumps(r.body))) for r in server.requests),
            }
            if row["refs"]:
                times_plain, times_expand = [], []
                for _ in range(ROUNDS):
                    times_plain.append(one(server, base, aggressive, body, operation, EXPAND)[2])
                    expanded, trips, ms = one(server, base, once, body, operation, EXPAND)
                    times_expand.append(ms)
                row["trips"] = trips
                row["expanded_total"] = expanded.usage.input_tokens_sent
                row["follow_up"] = expanded.usage.input_tokens_sent - first.usage.input_tokens_sent
                row["ms_plain"] = statistics.median(times_plain)
                row["ms_expand"] = statistics.median(times_expand)
            rows.append(row)
        base.close()

    machine = f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores"
    print(
        f"reversible compression on tests/data ({len(rows)} requests), {machine}; "
        f"loopback medians of {ROUNDS}"
    )
    print()
    head = f"{'request':<28} {'original':>8} {'aggr':>7} {'aggr+rev':>8} {'refs':>4}"
    print(head + f"  {'1 expansion: follow-up in':>26} {'trips':>5} {'ms aggr':>8} {'ms +exp':>8}")
    for r in rows:
        line = f"{r['name']:<28} {r['original']:>8} {r['aggressive']:>7} {r['reversible']:>8} {r['refs']:>4}"
        if r["refs"]:
            line += f"  {r['follow_up']:>26} {r['trips']:>5} {r['ms_plain']:>8.1f} {r['ms_expand']:>8.1f}"
        print(line)
    total = {k: sum(r[k] for r in rows) for k in ("original", "aggressive", "reversible")}
    print()
    original = total["original"]
    print(f"first request, whole corpus: original {original}, aggressive {total['aggressive']} "
          f"({pct(original, total['aggressive'])} saved), aggressive+reversible {total['reversible']} "
          f"({pct(original, total['reversible'])} saved)")  # fmt: skip
    with_refs = [r for r in rows if r["refs"]]
    if with_refs:
        extra = sum(r["reversible"] - r["aggressive"] for r in with_refs)
        follow = sum(r["follow_up"] for r in with_refs)
        print(f"requests with refs: {len(with_refs)}; refs + tool cost {extra} tokens on their first "
              f"requests ({extra / len(with_refs):.0f} each)")  # fmt: skip
        print(f"one expansion: +{follow / len(with_refs):.0f} input tokens per request on average (the "
              f"follow-up resends the prompt plus the original), and one extra round trip: "
              f"{statistics.median(r['ms_expand'] / r['ms_plain'] for r in with_refs):.2f}x the "
              "loopback wall time (on a real API, twice its latency)")  # fmt: skip


def pct(before: int, after: int) -> str:
    return f"{(before - after) / before:.1%}" if before else "n/a"


if __name__ == "__main__":
    main()
