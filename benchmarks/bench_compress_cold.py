"""CPU per 1,000 characters of text the compression engine has not seen before (caches cleared).

Three workloads, each timed with ``time.process_time`` after clearing every cache:

- ``bench``: the walk of ``tokenmw bench``'s requests (``workload``), turn by turn as the agents
  send them, so each turn costs its new messages only (the remembered prefixes of ``history``);
  divided by the characters of the texts not seen before in that run;
- ``corpus-safe`` / ``corpus-aggr``: ``compress_text`` on every distinct text of ``tests/data``.

Each process reports the least of three runs; the medians over ``--repeats`` processes are printed.
``--compare DIR``: also run the engine exported to ``DIR`` (``git archive HEAD tokenmw | tar -x -C
DIR``) in alternating subprocesses, and print the medians side by side with their ratio.

Run: ``python benchmarks/bench_compress_cold.py [--repeats 7] [--compare /tmp/orig]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def _corpus_texts() -> list[str]:
    """Every distinct text of ``tests/data`` the engine reads (what ``Compress`` hands it)."""
    from tokenmw.hooks.compress import _texts

    paths = sorted(DATA.glob("*.json"))
    return list(dict.fromkeys(t for p in paths for t in _texts(json.loads(p.read_text(encoding="utf-8")))))


def measure() -> dict[str, float]:
    """µs of CPU per 1,000 new characters for each workload (one run of each)."""
    from tokenmw._bench.run import BenchSettings, workload
    from tokenmw._compress import clear_cache, compress_chat, compress_text
    from tokenmw.hooks.compress import _texts

    results: dict[str, float] = {}
    conversations = workload(BenchSettings(), 0) + workload(BenchSettings(), 24)
    seen: set[str] = set()
    new_chars = 0
    for conversation in conversations:
        for messages in conversation:
            for text in _texts({"messages": messages}):
                if text not in seen:
                    seen.add(text)
                    new_chars += len(text)
    clear_cache()
    start = time.process_time()
    for conversation in conversations:
        for messages in conversation:
            compress_chat(messages, "safe")
    results["bench"] = (time.process_time() - start) * 1e9 / new_chars
    texts = _corpus_texts()
    chars = sum(map(len, texts))
    for level, name in (("safe", "corpus-safe"), ("aggressive", "corpus-aggr")):
        clear_cache()
        start = time.process_time()
        for text in texts:
            compress_text(text, level)  # type: ignore[arg-type]
        results[name] = (time.process_time() - start) * 1e9 / chars
    clear_cache()
    return results


def _child(path: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": path, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run(
        [sys.executable, __file__, "--child"], env=env, cwd=path, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--compare", help="a directory holding another tokenmw package")
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        # The least of three runs: on a shared machine, the other processes only ever add time.
        runs = [measure() for _ in range(3)]
        print(json.dumps({name: min(run[name] for run in runs) for name in runs[0]}))
        return
    paths = {"this": str(ROOT)}
    if args.compare:
        paths = {"other": args.compare, **paths}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, path in paths.items():  # alternating, so drift hits both alike
            runs[name].append(_child(path))
    print(f"µs CPU per 1,000 new characters (median of {args.repeats} processes, each the least of 3 runs)")
    for workload in runs["this"][0]:
        medians = {name: statistics.median(r[workload] for r in rs) for name, rs in runs.items()}
        line = "  ".join(f"{name} {value:7.1f}" for name, value in medians.items())
        ratio = f"  ratio {medians['other'] / medians['this']:.2f}x" if "other" in medians else ""
        print(f"{workload:12s} {line}{ratio}")


if __name__ == "__main__":
    main()
