"""The seed-like agent loop at the server: 24 agents x 5 turns, raw client vs the four built-in hooks.

Each agent re-sends its whole history every turn (a ~6.8 KB system prompt, then per turn a step and
a ~5 KB pretty-printed JSON tool output cut mid-document, ``benchmarks/_seed_loop.py``). The same
requests go through the real ``openai`` client to the embedded server three ways: raw, wrapped with
``Compress()`` + ``Enhance(max_words=150)`` + ``LimitResponse(max_tokens=400)`` + ``CountTokens()``
(Enhance's addition included), and the same with ``Compress(level="aggressive")``; and, for
reference, raw with the messages first passed through ``headroom.compress()`` when it is installed.
Input tokens are the server's count (``usage.prompt_tokens``).

Run: ``python benchmarks/bench_seed_loop.py``.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HEADROOM_BEACON", "off")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import openai
from _seed_loop import AGENTS, TURNS, agent_turns

import tokenmw
from tokenmw.server import EmbeddedServer

MODEL = "gpt-4o-mini"


def hooks(level: str) -> list[tokenmw.Hook]:
    return [
        tokenmw.Compress(level=level),  # type: ignore[arg-type]
        tokenmw.Enhance(max_words=150),
        tokenmw.LimitResponse(max_tokens=400),
        tokenmw.CountTokens(),
    ]


def run(client: Any, prepare: Any = None) -> int:
    """Input tokens the server counted over every turn of every agent."""
    total = 0
    for agent in range(AGENTS):
        for messages in agent_turns(agent):
            sent = prepare(messages) if prepare is not None else messages
            response = client.chat.completions.create(model=MODEL, messages=sent)
            total += response.usage.prompt_tokens
    return total


def main() -> None:
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"seed-like loop: {AGENTS} agents x {TURNS} turns, each turn re-sending the whole history\n")
    with EmbeddedServer(reply_words=40) as server:
        raw = openai.OpenAI(api_key="bench", base_url=server.base_url, max_retries=0)
        results = {"raw client": run(raw)}
        for level in ("safe", "aggressive"):
            wrapped = tokenmw.Middleware(hooks(level)).wrap(raw)
            results[f"four hooks, Compress {level}"] = run(wrapped)
        try:
            headroom = importlib.import_module("headroom")
        except ImportError:
            print("(headroom-ai not installed: pip install headroom-ai)")
        else:
            results["headroom compress(), raw client"] = run(
                raw, lambda m: headroom.compress(m, model=MODEL).messages
            )
    base = results["raw client"]
    print(f"{'variant':<34} {'input tokens':>12} {'vs raw':>8}")
    for label, tokens in results.items():
        print(f"{label:<34} {tokens:>12} {100 * (1 - tokens / base):7.1f}%")
    print("\nTarget: the four hooks >= 15.8% fewer input tokens than raw (Enhance's addition included).")


if __name__ == "__main__":
    main()
