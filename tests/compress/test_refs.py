"""Reversible markers and the store of originals: content-addressed, deterministic, bounded."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tokenmw._compress import clear_cache, compress_chat, compress_text, refs

DATA = Path(__file__).resolve().parent.parent / "data"
MARKER = re.compile(r"\[[^\[\]\n]* ref=([a-z2-7]{8})\]")


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    clear_cache()
    refs.clear()
    yield
    clear_cache()
    refs.clear()
    refs.MAX_ENTRIES, refs.MAX_CHARS = 4096, 32_000_000


def log(n: int = 60, seed: int = 0) -> str:
    return "\n".join(
        f"2025-01-0{seed + 1} 10:00:{i:02d} INFO request {7000 + i} took {i * 3} ms" for i in range(n)
    )


def test_every_marker_carries_a_ref_that_resolves_to_what_it_replaced() -> None:
    result = compress_text(log(), "aggressive", tool=True, reversible=True)
    plain = compress_text(log(), "aggressive", tool=True)
    found = MARKER.findall(result.text)
    assert found and list(found) == list(result.refs)
    assert [refs.get(ref) for ref in found] == list(result.elided)
    assert MARKER.sub(lambda m: m.group(0).replace(f" ref={m.group(1)}", ""), result.text) == plain.text
    assert "ref=" not in plain.text and plain.refs == ()


def test_refs_are_a_pure_function_of_the_original() -> None:
    first = compress_text(log(), "aggressive", tool=True, reversible=True)
    clear_cache()
    refs.clear()  # a new process, in effect
    again = compress_text(log(), "aggressive", tool=True, reversible=True)
    assert again.text == first.text
    assert refs.ref_for("x") == refs.ref_for("x") != refs.ref_for("y")
    assert re.fullmatch(r"[a-z2-7]{8}", refs.ref_for("anything"))


def test_a_cached_result_brings_evicted_originals_back() -> None:
    result = compress_text(log(), "aggressive", tool=True, reversible=True)
    refs.clear()  # the store let them go; the compressed-text cache still has the result
    hit = compress_text(log(), "aggressive", tool=True, reversible=True)
    assert hit is result
    assert all(refs.get(ref) is not None for ref in hit.refs)


def test_the_store_is_bounded_in_entries_and_characters() -> None:
    refs.MAX_ENTRIES = 3
    made = [refs.put(f"original {i}") for i in range(5)]
    assert refs.stats()[0] == 3
    assert refs.get(made[0]) is None and refs.get(made[4]) == "original 4"
    refs.clear()
    refs.MAX_ENTRIES, refs.MAX_CHARS = 100, 25
    a, b = refs.put("a" * 10), refs.put("b" * 10)
    refs.get(a)  # recently used: stays
    c = refs.put("c" * 10)
    assert refs.stats() == (2, 20)
    assert refs.get(b) is None and refs.get(a) and refs.get(c)
    too_big = refs.put("d" * 26)
    assert refs.get(too_big) is None  # never kept: its ref answers "no longer available"


@pytest.mark.parametrize("path", sorted(DATA.glob("*.json")), ids=lambda p: p.stem)
def test_corpus_reversible_is_deterministic_idempotent_and_resolves(path: Path) -> None:
    body = json.loads(path.read_text(encoding="utf-8"))
    if "messages" not in body:
        pytest.skip("chat requests only")
    out, report = compress_chat(body["messages"], "aggressive", reversible=True)
    text = json.dumps(out, ensure_ascii=False)
    found = MARKER.findall(text)
    assert len(set(found)) <= report.refs
    for ref in found:
        assert refs.get(ref) is not None
    clear_cache()
    again, _ = compress_chat(body["messages"], "aggressive", reversible=True)
    assert again == out  # the same bytes in every turn: prefix caches are kept
    twice, _ = compress_chat(out, "aggressive", reversible=True)
    assert twice == out  # idempotent, markers included
    plain, plain_report = compress_chat(body["messages"], "aggressive")
    assert MARKER.sub(lambda m: m.group(0).replace(f" ref={m.group(1)}", ""), text) == json.dumps(
        plain, ensure_ascii=False
    )
    assert plain_report.refs == 0
