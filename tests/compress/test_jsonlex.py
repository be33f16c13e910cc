"""Bracket runs that are not JSON are looked at once, not once per bracket (found by bad input:
40 KB of ``[`` took Compress 36 s, ``[`` lines deeper than the parser's limit minutes)."""

from __future__ import annotations

from typing import Any

import pytest

from tokenmw._compress import jsonlex
from tokenmw._compress.text import clear_cache, compress_text

PATHOLOGICAL = {
    "brackets-in-prose": "see " + "[" * 3000 + "]" * 3000,
    "open-lines": "[\n" * 3000,
    "balanced-lines-deeper-than-the-parser": "[\n" * 1500 + "]\n" * 1500,
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
@pytest.mark.parametrize("level", ["safe", "aggressive"])
def test_a_bracket_run_is_lexed_a_bounded_number_of_times(
    text: str, level: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    stretch = jsonlex._stretch

    def counted(segment: str, start: int) -> tuple[int, bool]:
        nonlocal calls
        calls += 1
        return stretch(segment, start)

    monkeypatch.setattr(jsonlex, "_stretch", counted)
    clear_cache()
    result = compress_text(text, level)
    assert calls <= 4  # was one per bracket (3,000)
    if level == "safe":  # (aggressive may mark the repeated run)
        assert result.text.replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")


def test_json_inside_prose_is_still_compacted_after_a_run_with_nothing_to_compact() -> None:
    text = 'Brackets [[[ ]]] and then Observation: {"temp": 19.4, "unit": "C"} done.'
    assert 'Observation: {"temp":19.4,"unit":"C"} done.' in compress_text(text, "safe").text
