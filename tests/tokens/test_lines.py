"""Counting long texts by their lines (``_tokens/lines.py``): exact, and cheaper when lines repeat.

Every count here is checked against tiktoken's own encode of the whole text, never against the
line sums themselves.
"""

from __future__ import annotations

import json
import random
import sys
import types
from pathlib import Path

import pytest
import regex
import tiktoken

from tokenmw._bench.seed import agent_turns
from tokenmw._tokens import count_cache
from tokenmw._tokens.count_cache import TokenCache
from tokenmw._tokens.counting import plan_request
from tokenmw._tokens.encodings import encoding_for
from tokenmw._tokens.lines import LINE_SPLIT_MIN_CHARS, VETTED_PATTERNS, line_segments, splits_at_lines

ENCODINGS = [encoding_for("gpt-4o"), encoding_for("gpt-4")]  # o200k_base, cl100k_base
DATA = Path(__file__).parents[1] / "data"

# Pieces that meet at line breaks in every way the patterns treat differently: breaks after
# punctuation, spaces and letters; blank lines; CR; slashes; marks; every kind of whitespace.
_ALPHABET = [
    "\n", "\n", "\n", "\r", " ", "  ", "\t", "/", "a", "Bc", "12", "{", "}", ",", '"', "é", "\u0301",
    "\u2028", "\x85", "\x0b", "\x1c", "'s", "\u3000", "x", "ID", "?\n", "//", "\r\n",
]  # fmt: skip


def generated(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(_ALPHABET) for _ in range(rng.randint(1, 48))) for _ in range(count)]


def corpus_texts() -> list[str]:
    """Every text the counter counts in the corpus requests (``plan_request``), in file order."""
    texts: list[str] = []
    for path in sorted(DATA.glob("*.json")):
        request = json.loads(path.read_text())
        texts.extend(plan_request("responses" if "input" in request else "chat", request).texts)
    return texts


def by_parts(encoding: tiktoken.Encoding, parts: list[str]) -> int:
    return sum(len(encoding.encode_ordinary(part)) for part in parts)


@pytest.mark.parametrize("encoding", ENCODINGS, ids=lambda e: e.name)
def test_built_in_encodings_are_vetted(encoding: tiktoken.Encoding) -> None:
    # Fails if tiktoken renames its pattern attribute or changes these patterns: the line rule
    # must then be proven again for the new pattern (texts would be counted whole meanwhile).
    assert encoding._pat_str in VETTED_PATTERNS
    assert splits_at_lines(encoding)


def test_other_patterns_count_whole_texts() -> None:
    # r50k's pattern joins a break with the next line's indentation (``\s+(?!\S)``), so a sum
    # of lines would be wrong there; such an encoding never counts by lines.
    r50k_pattern = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
    encoding = tiktoken.Encoding(
        name="bytes_r50k_pattern",
        pat_str=r50k_pattern,
        mergeable_ranks={bytes([i]): i for i in range(256)},
        special_tokens={},
    )
    assert not splits_at_lines(encoding)
    text = '{\n    "a": 1,\n    "b": 2\n}\n' * 60
    assert TokenCache(encoding).count(text) == len(encoding.encode_ordinary(text))


@pytest.mark.parametrize("encoding", ENCODINGS, ids=lambda e: e.name)
def test_line_sums_equal_whole_counts_on_generated_text(encoding: tiktoken.Encoding) -> None:
    texts = generated(6000)
    for text in texts:
        segments = line_segments(text)
        assert "".join(segments) == text
        assert all(segments)
        assert by_parts(encoding, segments) == len(encoding.encode_ordinary(text)), repr(text)


@pytest.mark.parametrize("encoding", ENCODINGS, ids=lambda e: e.name)
def test_the_generator_finds_breaks_that_are_not_piece_ends(encoding: tiktoken.Encoding) -> None:
    # The generated texts above would catch a rule that cuts at every line break.
    wrong = 0
    for text in generated(2000):
        every_break = [line + "\n" for line in text.split("\n")]
        every_break[-1] = every_break[-1][:-1]
        wrong += by_parts(encoding, every_break) != len(encoding.encode_ordinary(text))
    assert wrong > 100


@pytest.mark.parametrize("encoding", ENCODINGS, ids=lambda e: e.name)
def test_every_unicode_whitespace_at_a_line_start(encoding: tiktoken.Encoding) -> None:
    spaces = [c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace() or regex.fullmatch(r"\s", c)]
    assert len(spaces) >= 25
    for c in spaces:
        for text in (
            f"a\n{c}\nb", f"a,\n{c}b", f"x\n{c}{c}\n/y", f"x\n{c}", f"{c}\n{c}z\n", f"k:\n {c}\r\n v",
        ):  # fmt: skip
            assert by_parts(encoding, line_segments(text)) == len(encoding.encode_ordinary(text)), repr(text)


@pytest.mark.parametrize("encoding", ENCODINGS, ids=lambda e: e.name)
def test_cache_counts_the_corpus_and_agent_outputs_exactly(encoding: tiktoken.Encoding) -> None:
    seed = [m["content"] for a in range(6) for m in agent_turns(a, 5, follow_ups=True)[-1]]
    texts = corpus_texts() + seed
    assert sum(len(t) >= LINE_SPLIT_MIN_CHARS and "\n" in t for t in texts) > 40
    cache = TokenCache(encoding)
    for text in texts:
        assert cache.count(text) == len(encoding.encode_ordinary(text))
    assert cache.lines_held > 1000
    # The same texts again through a cache that knows only their lines (not the texts): the long
    # ones go by lines now, lines looked up and new ones joined.
    again = _Recording(encoding)
    again._line_counts = dict(cache._line_counts)
    for text in reversed(texts):
        assert again.count(text) == len(encoding.encode_ordinary(text))
    assert len(again.by_lines) > 40


def test_a_new_text_encodes_only_its_new_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    encoding = ENCODINGS[0]
    outputs = [m["content"] for m in agent_turns(0, 5)[-1] if m["content"].startswith("Tool result")]
    first, second = outputs[0], outputs[2]  # two searches of the same orders, the second shorter
    assert first != second and len(second) > LINE_SPLIT_MIN_CHARS
    encoded: list[str] = []

    def recording(enc: tiktoken.Encoding, text: str) -> int:
        encoded.append(text)
        return len(enc.encode_ordinary(text))

    monkeypatch.setattr(count_cache, "_encode_len", recording)
    cache = TokenCache(encoding)
    cache.count(first)
    assert encoded == [first]  # all lines new (some twice in it): one encode of the whole text
    encoded.clear()
    assert cache.count(second) == len(encoding.encode_ordinary(second))
    assert sum(map(len, encoded)) < len(second) * 0.6
    encoded.clear()
    third = second.replace("(step 3)", "(step 9)")
    assert cache.count(third) == len(encoding.encode_ordinary(third))
    # Its one new line, with the short lines (encoded with the new ones, never alone), and the
    # longer lines seen once before (in ``second``), each on its own now.
    *alone, joined = encoded
    assert joined.startswith("Tool result (step 9):\n")
    assert all(len(line) < 8 for line in joined.split("\n")[1:])
    assert alone and all(len(line) >= 8 for line in alone)
    assert sum(map(len, encoded)) < 150
    encoded.clear()
    fourth = third.replace("(step 9)", "(step 10)")
    assert cache.count(fourth) == len(encoding.encode_ordinary(fourth))
    assert len(encoded) == 1 and encoded[0].startswith("Tool result (step 10):\n")
    assert len(encoded[0]) < 100


class _Recording(TokenCache):
    __slots__ = ("by_lines",)

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        super().__init__(encoding)
        self.by_lines: list[str] = []

    def _count_lines(self, text: str) -> int:
        self.by_lines.append(text)
        return super()._count_lines(text)


def test_lines_that_never_repeat_stop_being_looked_up() -> None:
    encoding = ENCODINGS[0]
    cache = _Recording(encoding)
    by_lines = cache.by_lines

    def log(i: int) -> str:  # every line new: a timestamp and a request id
        stamp = f"2026-12-04T20:{i % 60:02d}"
        return "".join(f"{stamp}:{j:02d}.{i * 997 + j:06d}Z GET /v1/orders/{i}-{j} 200\n" for j in range(40))

    for i in range(80):
        assert cache.count(log(i)) == len(encoding.encode_ordinary(log(i)))
    assert 12 <= len(by_lines) <= 30  # the first of every four
    by_lines.clear()
    # Repeating lines come back: the probes see them and lines are looked up again.
    last_turns = [agent_turns(a, 5)[-1] for a in range(8)]
    json_outputs = [m["content"] for turn in last_turns for m in turn if m["content"].startswith("Tool")]
    for text in json_outputs:
        assert cache.count(text) == len(encoding.encode_ordinary(text))
    assert len(by_lines) > len(json_outputs) // 2


def test_a_text_whose_own_first_line_is_new_is_still_counted_by_lines() -> None:
    # Agents' system prompts and tool outputs open with their own line (a name, a step number)
    # over a body other texts share: the lines looked up are spread over the text.
    encoding = ENCODINGS[0]
    cache = _Recording(encoding)
    body = corpus_texts()
    shared = max((t for t in body if t.count("\n") > 40), key=len)
    texts = [f"You are OrderOps-{i}, an operations assistant.\n{shared}" for i in range(12)]
    for text in texts:
        assert cache.count(text) == len(encoding.encode_ordinary(text))
    assert cache.by_lines == texts  # the first as the first of four unseen, the rest by their body


def _json_output(i: int) -> str:
    row = '    {{\n      "id": "ORD-{}-{}",\n      "status": "delayed"\n    }}'
    rows = ",\n".join(row.format(i, j) for j in range(60))
    return f"Tool result (step {i}):\n[\n{rows}\n]"


def test_the_line_cache_stays_under_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(count_cache, "MAX_LINE_ENTRIES", 1_200)
    encoding = ENCODINGS[0]
    cache = TokenCache(encoding)
    for i in range(40):  # 241 lines each, 61 of them new
        assert cache.count(_json_output(i)) == len(encoding.encode_ordinary(_json_output(i)))
        assert cache.lines_held <= 1_200
    assert cache.lines_held > 600
    # A text of more lines than a quarter of the bound is counted whole, its lines not kept.
    held = cache.lines_held
    many = "".join(f"row {i}\n" for i in range(1_000))
    assert cache.count(many) == len(encoding.encode_ordinary(many))
    assert cache.lines_held == held
    cache.clear()
    assert cache.lines_held == 0 and len(cache) == 0


async def test_async_counts_go_by_lines_on_the_loop() -> None:
    encoding = ENCODINGS[0]
    cache = _Recording(encoding)
    texts = [_json_output(i) for i in range(4)]  # 12 KB: counted on the loop
    total = await cache.count_all_async(texts)
    assert total == sum(len(encoding.encode_ordinary(t)) for t in texts)
    assert cache.by_lines  # the first of the unseen ones, then every one (their lines repeat)
    assert cache.by_lines == texts


def test_32_bit_builds_count_whole_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Line keys are bare string hashes: 32 bits would collide among 100k lines.
    monkeypatch.setattr(count_cache, "sys", types.SimpleNamespace(hash_info=types.SimpleNamespace(width=32)))
    cache = _Recording(ENCODINGS[0])
    text = _json_output(1)
    assert cache.count(text) == len(ENCODINGS[0].encode_ordinary(text))
    assert cache.by_lines == [] and cache.lines_held == 0
