"""The naive mode really has the anti-patterns it claims (else the benchmark proves nothing)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import tiktoken

from tokenmw._bench.naive import NaivePipeline
from tokenmw._bench.stalls import watch_stalls
from tokenmw._bench.workload import scenario_turns
from tokenmw._tokens.encodings import encoding_for


def test_each_optimizer_builds_its_own_tokenizer() -> None:
    first, second = NaivePipeline("o200k_base", 150, 400), NaivePipeline("o200k_base", 150, 400)
    shared = encoding_for("gpt-4o-mini")
    assert isinstance(first.counter.encoding, tiktoken.Encoding)
    assert first.counter.encoding is not second.counter.encoding
    assert first.counter.encoding is not shared


def test_a_call_counts_the_request_four_times_and_does_what_the_hooks_do() -> None:
    pipeline = NaivePipeline("o200k_base", 150, 400)
    counted: list[int] = []
    original = pipeline.limiter.count_messages

    def spy(messages: list[dict[str, Any]]) -> int:
        counted.append(len(messages))
        return original(messages)

    for step in (pipeline.compressor, pipeline.limiter, pipeline.counter):
        step.count_messages = spy  # type: ignore[method-assign]
    messages = scenario_turns(0, 2)[-1]
    prepared = pipeline.prepare({"model": "gpt-4o-mini", "messages": messages})
    assert len(counted) == 4
    assert prepared["max_tokens"] == 400
    assert prepared["messages"][0]["content"].endswith("Answer in at most 150 words.")
    assert len(str(prepared["messages"])) < len(str(messages))
    assert messages[0]["content"].count("Answer in at most") == 0  # the caller's request is untouched


def test_scenario_turns_grow_and_carry_user_notes_of_varied_length() -> None:
    turns = scenario_turns(2, 7)
    assert len(turns) == 7
    assert all(len(a) < len(b) for a, b in itertools.pairwise(turns))
    notes = {m["content"] for m in turns[-1] if m["role"] == "user" and not m["content"].startswith("Tool")}
    assert len({len(n) for n in notes}) >= 2


def test_watch_stalls_sees_a_blocking_callback_and_restores_the_loop() -> None:
    original = asyncio.events.Handle._run

    async def block() -> None:
        await asyncio.sleep(0)
        time.sleep(0.02)

    with watch_stalls() as stalls:
        asyncio.run(block())
    assert asyncio.events.Handle._run is original
    assert stalls.max_ms >= 20
    assert stalls.p99_ms >= 20
