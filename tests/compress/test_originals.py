"""The store of elided originals: content-addressed, bounded, deterministic markers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tokenmw._compress import compress_chat, originals


@pytest.fixture(autouse=True)
def small_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    originals.clear()
    yield
    originals.clear()


def tool_log(tag: str) -> list[dict[str, str]]:
    text = "\n".join(f"{tag} 12:00:{i % 60:02d} INFO item {i} took {i * 3} ms" for i in range(600))
    return [{"role": "user", "content": "look"}, {"role": "tool", "tool_call_id": "c", "content": text}]


def test_same_original_same_ref_and_the_original_is_kept() -> None:
    with originals.collecting() as found:
        first, _ = compress_chat(tool_log("a"), "aggressive")
    with originals.collecting() as again:
        second, _ = compress_chat(tool_log("a"), "aggressive")
    assert first == second  # byte-identical markers: earlier turns compress the same
    assert found == again and len(found) == 1
    ref, original = found[0]
    assert f"ref={ref}]" in first[1]["content"]
    assert originals.get(ref) == original
    assert original in tool_log("a")[1]["content"]
    assert ref == originals.ref_for(original)


def test_plain_aggressive_markers_carry_no_ref() -> None:
    plain, _ = compress_chat(tool_log("b"), "aggressive")
    assert "ref=" not in plain[1]["content"]
    with originals.collecting():
        reversible, _ = compress_chat(tool_log("b"), "aggressive")
    assert "ref=" in reversible[1]["content"]
    again, _ = compress_chat(tool_log("b"), "aggressive")
    assert again == plain  # the two kinds of result are cached apart


def test_a_cached_text_puts_its_originals_back() -> None:
    with originals.collecting() as found:
        compress_chat(tool_log("c"), "aggressive")
    originals.clear()
    with originals.collecting() as again:
        compress_chat(tool_log("c"), "aggressive")  # the compressed text is cached
    assert again == found
    assert originals.get(found[0][0]) == found[0][1]


def test_bounded_in_entries_and_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(originals, "MAX_ENTRIES", 3)
    monkeypatch.setattr(originals, "MAX_CHARS", 800)
    for n in range(5):
        originals.put(f"r{n}", "x" * 10)
    assert [originals.get(f"r{n}") for n in range(5)] == [None, None, "x" * 10, "x" * 10, "x" * 10]
    originals.get("r2")  # used: the least recently used goes first
    originals.put("big", "y" * 90)
    assert originals.get("r3") is None and originals.get("r2") == "x" * 10
    originals.put("huge", "z" * 200)  # over an eighth of the bound: never kept
    assert originals.get("huge") is None
    originals.clear()
    for n in range(9):
        originals.put(f"s{n}", "w" * 95)  # 9 * 95 > 800 characters
    kept = [n for n in range(9) if originals.get(f"s{n}") is not None]
    assert len(kept) <= 3 and kept[-1] == 8
