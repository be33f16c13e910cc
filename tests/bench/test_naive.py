"""The naive optimizer does the hooks' work with the seed system's anti-patterns; these check that it
does the work (so the benchmark compares like with like) and keeps the anti-patterns it claims."""

from __future__ import annotations

import re

from tokenmw._bench.naive import NaiveOptimizer, _compile, naive_log
from tokenmw._bench.seed import agent_turns
from tokenmw._tokens.encodings import encoding_for


async def test_prepares_what_the_hooks_would() -> None:
    logger, stream = naive_log()
    optimizer = NaiveOptimizer(logger, max_words=150, max_tokens=400)
    messages = agent_turns(1, 3, follow_ups=True)[-1]
    request = await optimizer.prepare("gpt-4o-mini", messages)
    sent = request["messages"]
    assert request["max_tokens"] == 400
    assert sent[0]["content"].endswith("Answer in at most 150 words.")
    assert optimizer.count(sent) < optimizer.count(messages)  # compressed
    tool = next(m["content"] for m in sent if m["content"].startswith("Tool result (step 1)"))
    assert "\n  " not in tool and '":' in tool  # the pretty-printed JSON squeezed
    assert messages[0]["content"].count("Answer in at most") == 0  # the caller's list untouched
    assert "optimizer: sending" in stream.getvalue()  # the debug log was formatted and written


async def test_counts_like_the_shared_encoding_but_with_its_own() -> None:
    logger, _ = naive_log()
    first, second = NaiveOptimizer(logger), NaiveOptimizer(logger)
    assert first.encoding is not second.encoding is not encoding_for("o200k_base")
    text = agent_turns(0)[-1][-1]["content"]
    assert first.encoding.encode(text) == encoding_for("o200k_base").encode(text)


def test_regexes_bypass_the_cache() -> None:
    pattern = r"naive-[a-z]+"
    assert _compile(pattern) is not _compile(pattern)
    assert re.compile(pattern) is re.compile(pattern)  # what it bypasses
