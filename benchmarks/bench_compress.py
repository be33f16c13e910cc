"""Compression side by side on the corpus in ``tests/data``: tokenmw's ``Compress`` (safe and
aggressive) next to ``prompt-compressor`` and ``promptminify``, in one run, printed as a table.

For each method: input-token reduction over the whole corpus and over the agent-loop requests,
milliseconds per request (cold: nothing cached), and what survived: fenced code blocks byte for
byte, JSON values equal after parsing, numbers and URLs still present. The peers compress strings,
so each is applied to every text the model reads in a request, as ``Compress`` is.

Run: ``python benchmarks/bench_compress.py`` (peers missing from the environment are reported as
such: ``pip install prompt-compressor promptminify``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests._fences import fenced_blocks  # the tests' engine-independent extractor
from tokenmw import Call
from tokenmw._compress import clear_cache, compress_chat, compress_text
from tokenmw._tokens.counting import count_request
from tokenmw._tokens.encodings import encoding_for
from tokenmw.hooks.compress import Compress

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
TEXT_PARTS = ("text", "input_text", "output_text")
_NUMBER = re.compile(r"\w*\d[\w.]*\w|\d")
_URL = re.compile(r"https?://[^\s\"'<>`)\]]+")

Request = tuple[str, dict[str, Any], str]  # (name, body, operation)


# -- applying a string compressor to every text of a request -----------------------------------------


def map_texts(body: dict[str, Any], operation: str, fn: Callable[[str], str]) -> dict[str, Any]:
    """The request with ``fn`` applied to every text the model reads (new objects, body untouched)."""

    def content(value: Any) -> Any:
        if isinstance(value, str):
            return fn(value)
        if isinstance(value, list):
            return [
                {**p, "text": fn(p["text"])}
                if isinstance(p, dict) and p.get("type") in TEXT_PARTS and isinstance(p.get("text"), str)
                else p
                for p in value
            ]
        return value

    out = dict(body)
    if operation == "chat":
        out["messages"] = [{**m, "content": content(m.get("content"))} for m in body["messages"]]
        return out
    if isinstance(body.get("instructions"), str):
        out["instructions"] = fn(body["instructions"])
    items = body.get("input")
    if isinstance(items, str):
        out["input"] = fn(items)
    elif isinstance(items, list):
        new = []
        for item in items:
            if item.get("type") == "function_call_output":
                item = {**item, "output": content(item.get("output"))}
            elif "content" in item:
                item = {**item, "content": content(item["content"])}
            new.append(item)
        out["input"] = new
    return out


def texts_of(body: dict[str, Any], operation: str) -> list[str]:
    found: list[str] = []
    map_texts(body, operation, lambda t: found.append(t) or t)
    return found


# -- the methods -------------------------------------------------------------------------------------


def tokenmw_method(level: str) -> Callable[[dict[str, Any], str], dict[str, Any]]:
    hook = Compress(level=level, min_tokens=0)  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()  # one loop: asyncio.run would add ~0.3 ms of loop setup per call

    def run(body: dict[str, Any], operation: str) -> dict[str, Any]:
        call = Call(dict(body), operation)  # type: ignore[arg-type]
        loop.run_until_complete(hook.before(call))
        return call.request

    return run


def peer_methods() -> tuple[dict[str, Callable[[dict[str, Any], str], dict[str, Any]]], list[str]]:
    methods: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {}
    notes: list[str] = []
    try:
        pc = importlib.import_module("prompt_compressor")
    except ImportError:
        notes.append("prompt-compressor: not installed (pip install prompt-compressor)")
    else:
        for level in ("none", "low"):
            methods[f"prompt-compressor {level}"] = _peer(lambda t, lv=level: pc.compress(t, lv).output)
    try:
        pm = importlib.import_module("promptmin")
    except ImportError:
        notes.append("promptminify: not installed (pip install promptminify)")
    else:
        for mode in ("lite", "aggressive"):
            methods[f"promptminify {mode}"] = _peer(lambda t, m=mode: pm.minify(t, mode=m)["minified"])
    return methods, notes


def _peer(fn: Callable[[str], str]) -> Callable[[dict[str, Any], str], dict[str, Any]]:
    return lambda body, operation: map_texts(body, operation, fn)


# -- integrity ---------------------------------------------------------------------------------------


def json_values(text: str, anywhere: bool = False) -> tuple[list[Any], str]:
    """JSON objects/arrays filling their lines (or, ``anywhere``, starting at any bracket) and the
    text without them."""
    decoder = json.JSONDecoder()
    values, rest, pos, i = [], [], 0, 0
    while True:
        starts = [j for j in (text.find("{", i), text.find("[", i)) if j >= 0]
        if not starts:
            break
        i = min(starts)
        line_start = text.rfind("\n", 0, i) + 1
        if anywhere or not text[line_start:i].strip():
            try:
                value, end = decoder.raw_decode(text, i)
            except ValueError:
                end = -1
            fills_line = anywhere or not text[end:].split("\n", 1)[0].strip()
            if end > 0 and isinstance(value, dict | list) and fills_line:
                values.append(value)
                rest.append(text[pos:i])
                pos = i = end
                continue
        i += 1
    rest.append(text[pos:])
    return values, "".join(rest)


def integrity(before: list[str], after: list[str]) -> dict[str, tuple[int, int]]:
    joined = "\n".join(after)
    blocks = [b for t in before for b in fenced_blocks(t)]
    originals, prose = [], []
    for t in before:
        values, rest = json_values(t)
        originals += values
        prose.append(rest)
    found = [v for t in after for v in json_values(t, anywhere=True)[0]]
    # JSON is checked by value above (compacting may unescape "\u00e1" in a URL or a number).
    numbers = {n for t in prose for n in _NUMBER.findall(t)}
    urls = {u for t in prose for u in _URL.findall(t)}
    return {
        "code": (sum(b in joined for b in blocks), len(blocks)),
        "json": (sum(v in found for v in originals), len(originals)),
        "numbers": (sum(n in joined for n in numbers), len(numbers)),
        "urls": (sum(u in joined for u in urls), len(urls)),
    }


# -- the run ---------------------------------------------------------------------------------------------


def load() -> list[Request]:
    requests = []
    for path in sorted(DATA.glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        requests.append((path.stem, body, "responses" if "input" in body else "chat"))
    return requests


def measure(
    method: Callable[[dict[str, Any], str], dict[str, Any]], requests: list[Request], cold: bool
) -> dict[str, Any]:
    tokens_before = tokens_after = loop_before = loop_after = 0
    times: list[float] = []
    checks: dict[str, list[int]] = {"code": [0, 0], "json": [0, 0], "numbers": [0, 0], "urls": [0, 0]}
    for name, body, operation in requests:
        if cold:
            clear_cache()
        start = time.perf_counter()
        out = method(body, operation)
        times.append(time.perf_counter() - start)
        before, after = count_request(operation, body)[0], count_request(operation, out)[0]
        tokens_before += before
        tokens_after += after
        if name.startswith(("agent_loop_", "responses_agent")):
            loop_before += before
            loop_after += after
        for key, (kept, total) in integrity(texts_of(body, operation), texts_of(out, operation)).items():
            checks[key][0] += kept
            checks[key][1] += total
    return {
        "saved": 1 - tokens_after / tokens_before,
        "saved_loops": 1 - loop_after / loop_before,
        "ms": 1000 * statistics.fmean(times),
        "ms_per_2k": 1000 * sum(times) / tokens_before * 2000,
        "checks": checks,
    }


def hook_timings(requests: list[Request]) -> tuple[float, float, float]:
    """Engine only (no token counting): ms per 2k tokens cold, µs per request and per text on a
    cache hit."""
    chats = [(b, count_request(op, b)[0]) for _, b, op in requests if op == "chat"]
    cold = 0.0
    for _ in range(5):
        for body, _ in chats:
            clear_cache()
            start = time.perf_counter()
            compress_chat(body["messages"], "safe")
            cold += time.perf_counter() - start
    per_2k = 1000 * cold / 5 / sum(n for _, n in chats) * 2000
    hits = []
    for body, _ in chats:
        compress_chat(body["messages"], "safe")
        start = time.perf_counter()
        for _ in range(200):
            compress_chat(body["messages"], "safe")
        hits.append((time.perf_counter() - start) / 200 * 1e6)
    system = chats[0][0]["messages"][0]["content"]
    compress_text(system)
    start = time.perf_counter()
    for _ in range(10_000):
        compress_text(system)
    text_hit = (time.perf_counter() - start) / 10_000 * 1e6
    return per_2k, statistics.median(hits), text_hit


def main() -> None:
    encoding_for("gpt-4o")
    encoding_for("gpt-4")  # promptminify loads tiktoken itself: have the files in tiktoken's cache
    requests = load()
    methods: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
        "tokenmw safe": tokenmw_method("safe"),
        "tokenmw aggressive": tokenmw_method("aggressive"),
    }
    peers, notes = peer_methods()
    methods.update(peers)
    for method in methods.values():  # warm up imports, tokenizers and dictionaries
        method(requests[0][1], requests[0][2])
    total_tokens = sum(count_request(op, b)[0] for _, b, op in requests)
    print(f"corpus: {len(requests)} requests, {total_tokens} input tokens (tests/data)\n")
    header = (
        f"{'method':<24} {'saved':>6} {'loops':>6} {'ms/req':>7} {'ms/2k tok':>9}"
        f"  {'code blocks':>11} {'JSON values':>11} {'numbers':>9} {'URLs':>7}"
    )
    print(header)
    print("-" * len(header))
    results = {}
    for label, method in methods.items():
        r = results[label] = measure(method, requests, cold=True)
        c = r["checks"]
        widths = (11, 11, 9, 7)
        cells = "  ".join(f"{k[0]:>{w - 4}}/{k[1]:<3}" for k, w in zip(c.values(), widths, strict=True))
        print(
            f"{label:<24} {100 * r['saved']:5.1f}% {100 * r['saved_loops']:5.1f}% {r['ms']:7.3f} "
            f"{r['ms_per_2k']:9.3f}  {cells}"
        )
    for note in notes:
        print(f"({note})")
    per_2k, hit, text_hit = hook_timings(requests)
    safe, aggressive = results["tokenmw safe"], results["tokenmw aggressive"]
    intact = all(kept == total for kept, total in safe["checks"].values())
    print(
        "\nsaved: whole corpus; loops: agent-loop requests only; ms: the whole hook (tokenmw) or the\n"
        "library over every text of the request (peers), nothing cached. Aggressive cuts the middle of\n"
        "huge tool outputs by design: the numbers it loses are in the 20 KB CI log.\n"
        "Targets (engine alone, no token counting):\n"
        f"  safe saves >= 15% on agent loops, every check intact: {100 * safe['saved_loops']:.1f}%, "
        f"{'intact' if intact else 'NOT intact'}\n"
        f"  cold < 0.5 ms per 2k-token request:                   {per_2k:.3f} ms\n"
        f"  cache hit < 10 us:                                    {text_hit:.2f} us per text, "
        f"{hit:.1f} us per whole request (median)\n"
        f"  aggressive saves >= 30%:                              {100 * aggressive['saved']:.1f}%"
    )


if __name__ == "__main__":
    main()
