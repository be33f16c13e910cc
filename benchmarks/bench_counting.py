"""Token counting speed, measured side by side in one run (a script, not a test).

    .venv/bin/python benchmarks/bench_counting.py [--quick]

Prints five tables:

1. A 2k-token, 10-message agent turn whose first nine messages were counted on earlier turns:
   tokenmw's warm count against ``litellm.token_counter``, ``tokencost`` and a plain
   ``encode_ordinary`` of every message. Targets: >= 7x faster than litellm, < 100 us.
2. A cold count (nothing cached, fresh strings) against one plain encode of every message.
   Target: <= 1.2x.
3. Inline encode vs a hop to the worker pool, by size of uncounted text: where
   ``INLINE_ENCODE_LIMIT`` comes from.
4. 50 tasks counting distinct 100k-token prompts at once: wall time and the event loop's longest
   stall (a ticker task), for tokenmw and for the alternatives it was measured against
   (``asyncio.to_thread`` per call, batching every call's misses into one hop or one
   ``encode_ordinary_batch``). Target stall: < 5 ms.

5. New text as agents send it, never counted before: each agent's tool outputs and turns of the
   seed loop (``tokenmw bench``'s workload) as they arrive, every text of ``tests/data`` once, and
   its tool outputs alone, counted whole against counted by lines (``_tokens/lines.py``), in
   alternating passes over fresh caches. Exact either way (checked here against ``encode_ordinary``).

Machines are noisy (and the dev machine is shared): read the ratios, not the absolute numbers.
Table 4 prints the stall of an idle loop over the same time as a noise floor; each row is the
median of three runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tokenmw._core.call import Call
from tokenmw._tokens import count_cache as _text_cache
from tokenmw._tokens.count_cache import INLINE_ENCODE_LIMIT, cache_for
from tokenmw._tokens.counting import count_tokens, plan_request
from tokenmw._tokens.encodings import encoding_for

MODEL = "gpt-4o"
CORPUS = (
    "the agent calls a tool to read the file and then writes a patch for the failing test "
    "result status error path line function value config request response token cache "
    "def return import class self None True False 404 200 json http api user system"
)
WORDS = CORPUS.split()


def _text(rng: random.Random, words: int) -> str:
    out = []
    for i in range(words):
        out.append(rng.choice(WORDS))
        if i % 17 == 16:
            out.append(".\n")
    return " ".join(out)


def agent_history(rng: random.Random) -> list[dict[str, Any]]:
    """Nine earlier messages (~1.8k tokens) of an agent loop; the tenth is added per turn.

    Plain ``role``/``content`` messages, so that every counter compared can read them
    (``tokencost`` raises on ``tool_calls``)."""
    tool_output = json.dumps(
        {"status": "ok", "files": [f"src/module_{i}.py" for i in range(20)], "log": _text(rng, 150)}
    )
    return [
        {"role": "system", "content": _text(rng, 300)},
        {"role": "user", "content": _text(rng, 120)},
        {"role": "assistant", "content": _text(rng, 80)},
        {"role": "user", "content": tool_output},
        {"role": "assistant", "content": _text(rng, 100)},
        {"role": "user", "content": _text(rng, 250)},
        {"role": "assistant", "content": _text(rng, 120)},
        {"role": "user", "content": _text(rng, 200)},
        {"role": "assistant", "content": _text(rng, 150)},
    ]


def median_us(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def table(title: str, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


def full_encode(encoding: Any, messages: list[dict[str, Any]]) -> int:
    return sum(len(encoding.encode_ordinary(v)) for m in messages for v in m.values())


# -- 1. warm agent turn ----------------------------------------------------------------------------


def bench_warm(repeats: int) -> dict[str, float]:
    rng = random.Random(7)
    encoding = encoding_for(MODEL)
    history = agent_history(rng)
    turns = [[*history, {"role": "user", "content": _text(rng, 40)}] for _ in range(repeats * 2)]
    content_tokens = sum(len(encoding.encode_ordinary(m["content"])) for m in turns[0])
    count_tokens(history, MODEL)  # earlier turns counted these

    sync_turns = iter(turns[:repeats])  # each turn's last message is new: it is encoded
    warm_sync = median_us(lambda: count_tokens(next(sync_turns), MODEL), repeats)

    loop = asyncio.new_event_loop()
    async_turns = iter(turns[repeats:])

    async def one_async() -> int:
        return await Call({"model": MODEL, "messages": next(async_turns)}, "chat").input_tokens()

    warm_async = median_us(lambda: loop.run_until_complete(one_async()), repeats)
    loop.close()
    full = median_us(lambda: full_encode(encoding, turns[0]), repeats)

    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    started = time.perf_counter()
    import litellm  # benchmark only: tokenmw never imports litellm

    litellm_import = time.perf_counter() - started
    litellm.token_counter(model=MODEL, messages=turns[0])
    litellm_us = median_us(lambda: litellm.token_counter(model=MODEL, messages=turns[0]), repeats)

    ours = count_tokens(turns[0], MODEL)
    rows: list[tuple[Any, ...]] = [
        ("tokenmw warm, sync `count_tokens`", f"{warm_sync:.1f}", "1.0x", ours),
        (
            "tokenmw warm, async `Call.input_tokens`",
            f"{warm_async:.1f}",
            f"{warm_async / warm_sync:.1f}x",
            ours,
        ),
        ("plain `encode_ordinary` of every string", f"{full:.1f}", f"{full / warm_sync:.1f}x", "-"),
        (
            "`litellm.token_counter`",
            f"{litellm_us:.1f}",
            f"{litellm_us / warm_sync:.1f}x",
            litellm.token_counter(model=MODEL, messages=turns[0]),
        ),
    ]
    try:
        import tokencost
    except ImportError:
        rows.append(("`tokencost` (not installed: `pip install tokencost`)", "-", "-", "-"))
    else:
        tokencost.count_message_tokens(turns[0], MODEL)
        tokencost_us = median_us(lambda: tokencost.count_message_tokens(turns[0], MODEL), repeats)
        rows.append(
            (
                "`tokencost.count_message_tokens`",
                f"{tokencost_us:.1f}",
                f"{tokencost_us / warm_sync:.1f}x",
                tokencost.count_message_tokens(turns[0], MODEL),
            )
        )
    table(
        f"1. Warm count: 10-message agent turn, {content_tokens} content tokens, 9 messages seen before",
        ("counter", "median us", "vs tokenmw sync", "count"),
        rows,
    )
    print(f"\n(importing litellm took {litellm_import:.1f} s; tokenmw never imports it.)")
    return {"warm_sync": warm_sync, "warm_async": warm_async, "litellm": litellm_us}


# -- 2. cold count ---------------------------------------------------------------------------------


def bench_cold(repeats: int) -> dict[str, float]:
    rng = random.Random(11)
    encoding = encoding_for(MODEL)
    cache = cache_for(encoding)
    turn = [*agent_history(rng), {"role": "user", "content": _text(rng, 40)}]
    # New str objects every time: no cached hash, as for requests decoded from JSON.
    fresh = [json.loads(json.dumps(turn)) for _ in range(repeats * 2)]
    cold_turns, plain_turns = iter(fresh[:repeats]), iter(fresh[repeats:])

    def cold() -> int:
        messages = next(cold_turns)
        cache.clear()
        return count_tokens(messages, MODEL)

    cold_times, full_times = [], []
    for _ in range(repeats):  # interleaved, so both see the same machine state
        cold_times.append(median_us(cold, 1))
        full_times.append(median_us(lambda: full_encode(encoding, next(plain_turns)), 1))
    cold_us, full_us = statistics.median(cold_times), statistics.median(full_times)
    table(
        "2. Cold count (empty cache, fresh strings) vs one plain encode of every message",
        ("counter", "median us", "ratio"),
        [
            ("tokenmw cold `count_tokens`", f"{cold_us:.1f}", f"{cold_us / full_us:.2f}x"),
            ("plain `encode_ordinary` of every string", f"{full_us:.1f}", "1.00x"),
        ],
    )
    return {"cold": cold_us, "full": full_us}


# -- 3. inline vs worker -----------------------------------------------------------------------------


def bench_threshold(repeats: int) -> None:
    rng = random.Random(3)
    encoding = encoding_for(MODEL)
    pool = _text_cache._pool()
    loop = asyncio.new_event_loop()

    def in_pool(fn: Callable[[], Any]) -> Callable[[], Any]:
        return lambda: loop.run_until_complete(loop.run_in_executor(pool, fn))

    in_pool(lambda: None)()
    hop_us = median_us(in_pool(lambda: None), repeats * 4)
    rows = []
    for size in (1024, 2048, 4096, 8192, 16384, 32768, 65536):
        texts = iter([_text(rng, size // 4)[:size] for _ in range(repeats * 2)])
        inline_times, worker_times = [], []
        for _ in range(repeats):
            a, b = next(texts), next(texts)
            inline_times.append(median_us(lambda a=a: len(encoding.encode_ordinary(a)), 1))
            worker_times.append(median_us(in_pool(lambda b=b: len(encoding.encode_ordinary(b))), 1))
        inline, worker = statistics.median(inline_times), statistics.median(worker_times)
        rows.append(
            (
                f"{size // 1024} KB" + (" (limit)" if size == INLINE_ENCODE_LIMIT else ""),
                f"{inline:.0f}",
                f"{worker:.0f}",
                f"{worker - inline:+.0f}",
                f"{size / inline:.1f}",
            )
        )
    loop.close()
    table(
        f"3. Inline encode vs worker (an empty hop costs {hop_us:.0f} us); "
        f"INLINE_ENCODE_LIMIT = {INLINE_ENCODE_LIMIT} chars",
        ("uncounted text", "inline us (= loop stall)", "in worker us", "worker - inline", "MB/s inline"),
        rows,
    )


# -- 4. 50 concurrent 100k-token prompts -------------------------------------------------------------


TICK = 0.001


async def _with_ticker(work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(wall ms, the event loop's longest stall in ms) while ``work()`` runs.

    A ticker asks to wake every millisecond; a stall is how late it wakes. (A ticker spinning on
    ``sleep(0)`` would itself be CPU-bound and get preempted by the OS like any busy thread.)"""
    stop = False
    longest = 0.0

    async def ticker() -> None:
        nonlocal longest
        while not stop:
            start = time.perf_counter()
            await asyncio.sleep(TICK)
            longest = max(longest, time.perf_counter() - start - TICK)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(TICK * 2)
    start = time.perf_counter()
    await work()
    wall = time.perf_counter() - start
    stop = True
    await tick
    return wall * 1e3, longest * 1e3


def bench_concurrent(tasks: int, tokens: int, runs: int = 3) -> dict[str, float]:
    rng = random.Random(5)
    encoding = encoding_for(MODEL)
    cache = cache_for(encoding)
    base = _text(rng, tokens)
    n_tokens = len(encoding.encode_ordinary(base))
    tags = iter(range(10**9))

    def prompts() -> list[str]:
        # Distinct texts (a different first word), built before the ticker starts.
        run = next(tags)
        return [f"r{run}t{i} {base}" for i in range(tasks)]

    def tokenmw_calls(texts: list[str]) -> Awaitable[Any]:
        calls = [Call({"model": MODEL, "messages": [{"role": "user", "content": t}]}, "chat") for t in texts]
        return asyncio.gather(*(c.input_tokens() for c in calls))

    def to_thread_each(texts: list[str]) -> Awaitable[Any]:
        return asyncio.gather(
            *(asyncio.to_thread(lambda t=t: len(encoding.encode_ordinary(t))) for t in texts)
        )

    def one_hop(texts: list[str]) -> Awaitable[Any]:
        return asyncio.to_thread(lambda: [len(encoding.encode_ordinary(t)) for t in texts])

    def one_batch(texts: list[str]) -> Awaitable[Any]:
        return asyncio.to_thread(lambda: [len(t) for t in encoding.encode_ordinary_batch(texts)])

    def idle(texts: list[str]) -> Awaitable[Any]:
        return asyncio.sleep(0.5)

    one_per_core = ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="bench")
    own_pool = _text_cache._pool()

    def with_pool(pool: ThreadPoolExecutor, fn: Callable[[list[str]], Awaitable[Any]]) -> Any:
        def run(texts: list[str]) -> Awaitable[Any]:
            _text_cache._executor = pool
            return fn(texts)

        return run

    strategies: list[tuple[str, Callable[[list[str]], Awaitable[Any]], bool]] = [
        ("idle loop, 0.5 s (noise floor)", idle, False),
        (f"tokenmw: a hop per call, pool of {own_pool._max_workers} (cores - 1)", tokenmw_calls, False),
        (
            f"tokenmw with a pool of {one_per_core._max_workers} (one per core)",
            with_pool(one_per_core, tokenmw_calls),
            False,
        ),
        ("`asyncio.to_thread` per call (default pool)", to_thread_each, False),
        ("all misses in one hop, encoded one by one", one_hop, False),
        ("all misses in one `encode_ordinary_batch`", one_batch, False),
        ("tokenmw, all 50 calls share one prompt", tokenmw_calls, True),
    ]
    rows = []
    results: dict[str, float] = {}
    for name, work, shared in strategies:
        walls, stalls, encodes = [], [], []
        for _ in range(runs):
            texts = prompts()
            if shared:
                texts = [str(texts[0] + " ")[:-1] for _ in texts]  # equal text, distinct objects
            cache.clear()
            wall, stall = asyncio.run(_with_ticker(lambda texts=texts, work=work: work(texts)))
            _text_cache._executor = own_pool
            walls.append(wall)
            stalls.append(stall)
            encodes.append(cache.encode_calls)
        rows.append(
            (
                name,
                f"{statistics.median(walls):.0f}",
                f"{statistics.median(stalls):.2f}",
                f"{min(stalls):.2f}",
                statistics.median(encodes) if name.startswith("tokenmw") else "-",
            )
        )
        results[name] = statistics.median(stalls)
    one_per_core.shutdown()
    table(
        f"4. {tasks} tasks count {tasks} distinct prompts of {n_tokens} tokens at once (cold cache)",
        ("strategy", "wall ms", "longest loop stall ms (median)", "(best run)", "encodes"),
        rows,
    )
    return {"tokenmw": results[strategies[1][0]], "idle": results[strategies[0][0]]}


# -- 5. new text: whole vs by lines ----------------------------------------------------------------


def bench_new_text(passes: int) -> dict[str, float]:
    from tokenmw._bench.seed import agent_turns
    from tokenmw._tokens.count_cache import TokenCache

    encoding = encoding_for(MODEL)

    def new_texts(requests: list[dict[str, Any]]) -> list[str]:
        """What the counter counts of each request (``plan_request``), each text once, in order."""
        seen: dict[str, None] = {}
        for request in requests:
            operation = "responses" if "input" in request else "chat"
            seen.update(dict.fromkeys(plan_request(operation, request).texts))
        return list(seen)

    seed = new_texts(
        [
            {"model": MODEL, "messages": turn}
            for agent in range(48)
            for turn in agent_turns(agent, 5, follow_ups=True)
        ]
    )
    requests = [
        json.loads(path.read_text())
        for path in sorted(Path(__file__).resolve().parent.parent.joinpath("tests", "data").glob("*.json"))
    ]
    corpus = new_texts(requests)
    tool_outputs = new_texts(
        [
            {"model": MODEL, "messages": [m for m in r.get("messages", []) if m.get("role") == "tool"]}
            for r in requests
        ]
    )

    def run(texts: list[str], by_lines: bool) -> float:
        cache = TokenCache(encoding)
        cache._by_lines = by_lines
        copies = [json.loads(json.dumps(text)) for text in texts]  # fresh strings, no cached hash
        started = time.process_time()
        for text in copies:
            cache.count(text)
        return (time.process_time() - started) / len(texts) * 1e6

    for texts in (seed, corpus, tool_outputs):
        cache = TokenCache(encoding)
        assert all(cache.count(text) == len(encoding.encode_ordinary(text)) for text in texts)
    results: dict[str, float] = {}
    rows = []
    rows_in = (
        ("seed loop, 48 agents", seed),
        ("tests/data, every text", corpus),
        ("tests/data, tool outputs", tool_outputs),
    )
    for label, texts in rows_in:
        times: dict[bool, list[float]] = {False: [], True: []}
        for i in range(passes):
            for by_lines in (False, True) if i % 2 else (True, False):
                times[by_lines].append(run(texts, by_lines))
        whole, lines = statistics.median(times[False]), statistics.median(times[True])
        chars = sum(map(len, texts)) / len(texts)
        ratio = lines / whole
        rows.append((label, len(texts), f"{chars:.0f}", f"{whole:.1f}", f"{lines:.1f}", f"{ratio:.2f}x"))
        results[label] = ratio
    table(
        "5. New text, never counted: whole texts vs by lines (CPU per text, median of passes)",
        ("texts", "count", "avg chars", "whole us", "by lines us", "ratio"),
        rows,
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description="tokenmw counting benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller prompts (smoke run)")
    args = parser.parse_args()
    repeats = 50 if args.quick else 400
    encoding_for(MODEL)
    print(f"# tokenmw counting benchmark (python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    warm = bench_warm(repeats)
    cold = bench_cold(max(repeats // 4, 20))
    bench_threshold(max(repeats // 8, 10))
    stalls = bench_concurrent(50, 20_000 if args.quick else 100_000)
    bench_new_text(4 if args.quick else 16)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    speedup = warm["litellm"] / warm["warm_sync"]
    ratio = cold["cold"] / cold["full"]
    checks: list[tuple[str, bool]] = [
        (f"warm count {warm['warm_sync']:.1f} us (< 100 us)", warm["warm_sync"] < 100),
        (f"warm async count {warm['warm_async']:.1f} us (< 100 us)", warm["warm_async"] < 100),
        (f"vs litellm.token_counter {speedup:.1f}x (>= 7x)", speedup >= 7),
        (f"cold / full encode {ratio:.2f}x (<= 1.2x)", ratio <= 1.2),
        (
            f"longest loop stall {stalls['tokenmw']:.2f} ms (< 5 ms; idle floor {stalls['idle']:.2f} ms)",
            stalls["tokenmw"] < 5,
        ),
    ]
    print("\n## Targets\n")
    for text, met in checks:
        print(f"- {text}: {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
