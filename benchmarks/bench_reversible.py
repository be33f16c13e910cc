"""Reversible compression on the corpus in ``tests/data``: what it costs on the first request, and
what one expansion costs when the model asks for an original back.

For every request: input tokens as written, with ``Compress(level="aggressive")`` and with
``Compress(level="aggressive", reversible=True)`` (its markers carry ``ref=<id>`` and the request
gains the ``tokenmw_expand`` tool, both counted), and the number of refs. Then, for the requests
with a ref, one expansion through the real openai client against the embedded server whose model
calls ``tokenmw_expand`` (``x-tokenmw-answer: expand``, ``max_expansions=1``): the input tokens the
follow-up adds (the model's call and the original), the output tokens of the expand call, and the
wall time of the call next to the same call without an expansion (one extra loopback round trip;
quoted as a ratio, machines are noisy).

Run: ``python benchmarks/bench_reversible.py``
"""

from __future__ import annotations

import asyncio
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
from tokenmw import Call
from tokenmw._tokens.counting import count_request
from tokenmw.hooks.compress import Compress
from tokenmw.server import EmbeddedServer

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
REF = re.compile(r"ref=([A-Za-z0-9_-]+)\]")
ROUNDS = 30


def load() -> list[tuple[str, dict[str, Any], str]]:
    out = []
    for path in sorted(DATA.glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        out.append((path.stem, body, "responses" if "input" in body else "chat"))
    return out


def first_request(
    hook: Compress, body: dict[str, Any], operation: str, loop: asyncio.AbstractEventLoop
) -> dict[str, Any]:
    call = Call(dict(body), operation)  # type: ignore[arg-type]
    loop.run_until_complete(hook.before(call))
    return call.request


def tokens(operation: str, request: dict[str, Any]) -> int:
    return count_request(operation, request)[0]


def send(client: Any, operation: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    args = {k: v for k, v in body.items() if k != "stream"}
    if operation == "chat":
        client.chat.completions.create(**args, extra_headers=headers)
    else:
        client.responses.create(**args, extra_headers=headers)


def main() -> None:
    loop = asyncio.new_event_loop()
    plain = Compress(level="aggressive", min_tokens=0)
    reversible = Compress(level="aggressive", min_tokens=0, reversible=True)
    rows = []
    for name, body, operation in load():
        original = tokens(operation, body)
        aggressive = tokens(operation, first_request(plain, body, operation, loop))
        rev_request = first_request(reversible, body, operation, loop)
        refs = len(REF.findall(json.dumps(rev_request.get("messages") or rev_request.get("input"))))
        rows.append((name, operation, original, aggressive, tokens(operation, rev_request), refs, body))

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("\nFirst request: input tokens (o200k/cl100k as the model), the tool definition included\n")
    print(f"{'request':32} {'original':>9} {'aggressive':>11} {'+reversible':>12} {'refs':>5}")
    total = [0, 0, 0]
    for name, _, original, aggressive, rev, refs, _ in rows:
        total[0] += original
        total[1] += aggressive
        total[2] += rev
        print(f"{name:32} {original:9,} {aggressive:11,} {rev:12,} {refs:5}")
    saved_plain = 1 - total[1] / total[0]
    saved_rev = 1 - total[2] / total[0]
    print(f"{'total':32} {total[0]:9,} {total[1]:11,} {total[2]:12,}")
    print(
        f"\nsaved on the first request: aggressive {saved_plain:.1%}, aggressive+reversible {saved_rev:.1%}"
        f" ({total[2] - total[1]:,} tokens more over the corpus: refs in the markers and the tool)"
    )

    with_refs = [row for row in rows if row[5]]
    if not with_refs:
        print("\nno request of the corpus has an elision: no expansion to measure")
        return
    print(f"\nOne expansion (embedded server, the model asks for the first ref; {ROUNDS} rounds each)\n")
    print(f"{'request':32} {'+input':>8} {'+output':>8} {'wall':>8} {'wall+exp':>9} {'ratio':>6}")
    with EmbeddedServer(port=0) as server:
        client_plain = openai.OpenAI(api_key="k", base_url=server.base_url, max_retries=0)
        for name, operation, _, _, _, _, body in with_refs:
            mw = tokenmw.Middleware(
                [
                    Compress(level="aggressive", min_tokens=0, reversible=True, max_expansions=1),
                    tokenmw.CountTokens(),
                ]
            )
            client = mw.wrap(openai.OpenAI(api_key="k", base_url=server.base_url, max_retries=0))
            server.reset()
            send(client, operation, body, {"x-tokenmw-answer": "expand"})
            bodies = [r.body for r in server.requests if r.path.startswith("/v1/")]
            # The follow-up without the tool (withdrawn at the limit) compared with the tool kept:
            # what the expansion itself adds.
            follow_up = {**bodies[1], "tools": bodies[0]["tools"]}
            added_in = tokens(operation, follow_up) - tokens(operation, bodies[0])
            expand_out = mw.usage.output_tokens
            mw_text = tokenmw.Middleware([Compress(level="aggressive", min_tokens=0, reversible=True)])
            client_text = mw_text.wrap(client_plain)
            send(client_text, operation, body, {})
            expand_out -= mw_text.usage.output_tokens or 0
            runs: dict[str, list[float]] = {"text": [], "expand": []}
            plans = (("text", client_text, {}), ("expand", client, {"x-tokenmw-answer": "expand"}))
            for _ in range(2):  # warm: connections open, caches filled
                for _, c, headers in plans:
                    send(c, operation, body, headers)
            for _ in range(ROUNDS):  # interleaved, so a noisy neighbour hits both alike
                for label, c, headers in plans:
                    started = time.perf_counter()
                    send(c, operation, body, headers)
                    runs[label].append(time.perf_counter() - started)
            walls = {label: statistics.median(times) for label, times in runs.items()}
            ratio = walls["expand"] / walls["text"]
            print(
                f"{name:32} {added_in:8,} {expand_out:8,} {walls['text'] * 1e3:6.1f}ms"
                f" {walls['expand'] * 1e3:7.1f}ms {ratio:5.2f}x"
            )
        client_plain.close()
    print(
        "\n+input: tokens the follow-up request adds (the model's expand call and the original);"
        "\n+output: tokens of the expand call the model wrote; wall: median of one call without and"
        "\nwith the expansion (one extra round trip to a loopback server that answers at once: the"
        "\nratio is the floor; against a real API add one model latency)."
    )


if __name__ == "__main__":
    main()
