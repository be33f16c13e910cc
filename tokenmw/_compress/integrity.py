"""The checks run after every compression; a text that fails one is sent as it was.

Code, inline code, JSON and URLs are protected by construction (placeholders); the checks verify the
construction held rather than trust it: fenced blocks are found again in the result and compared
byte for byte, every placeholder must come back exactly once, every rewritten JSON block must parse
back to the original value, and the prose must keep its digits.
"""

from __future__ import annotations

import re
from typing import Any

from .jsoncompact import parse_exact
from .jsonlex import Lexed, same_tokens
from .protect import Regions, fence_spans, has_fence_marks
from .tables import Table, parse

__all__ = ["check"]

_NOT_DIGITS = bytes(b for b in range(256) if not 0x30 <= b <= 0x39)
# A "number" for the aggressive check: a run starting with a digit, with its word/decimal tail.
_NUMBER = re.compile(r"\d[\w.,:]*")
# The same on ASCII text, where ``\d`` and ``\w`` are the ASCII classes (~30% faster).
_ASCII_NUMBER = re.compile(r"\d[\w.,:]*", re.ASCII)


def check(
    original: str,
    result: str,
    masked: str,
    rewritten: str,
    regions: Regions,
    json_values: list[tuple[Any, str]],
    *,
    drops_lines: bool,
    fences: list[str] | None = None,
    elided: list[str] | None = None,
) -> str | None:
    """The first guarantee ``result`` breaks, or ``None``.

    ``masked``/``rewritten`` are the prose with placeholders before and after the rules. Safe rules
    only touch whitespace, so every digit must still be there, as often; rules that drop repeated
    lines (``drops_lines``) must keep every distinct number that is not inside an ``elided`` text
    (each replaced by a marker). ``fences``: the fenced blocks as they must come out, when a rule
    rewrote some (aggressive log fences); else those of ``original``, byte for byte.
    """
    if has_fence_marks(original) and (_fences(original) if fences is None else fences) != _fences(result):
        return "code block"
    if not regions.all_restored_once():
        return "protected region"
    for value, text in json_values:
        if isinstance(value, Lexed):
            if not same_tokens(value.raw, text):
                return "json"
        elif isinstance(value, Table):
            try:
                if parse(text) != value.value:
                    return "json"
            except (ValueError, TypeError):
                return "json"
        elif parse_exact(text) != value:
            return "json"
    if rewritten == masked:  # no rule touched the prose (JSON compaction only): nothing lost
        return None
    if drops_lines:
        # No number spans a line break, and a line the rules left as it was keeps its numbers:
        # only the other lines are read, and the result only when one of theirs may be gone.
        kept = set(rewritten.split("\n"))
        numbers = _numbers("\n".join([line for line in masked.split("\n") if line not in kept]))
        if numbers and elided:
            numbers -= _numbers("\n".join(elided))
        if numbers and not numbers <= _numbers(rewritten):
            return "number"
    elif _digits(masked) != _digits(rewritten):
        return "number"
    return None


def _numbers(text: str) -> set[str]:
    """The distinct numbers of ``text`` (``_NUMBER``)."""
    return set((_ASCII_NUMBER if text.isascii() else _NUMBER).findall(text))


def _fences(text: str) -> list[str]:
    return [text[s:e] for s, e in fence_spans(text)]


def _digits(text: str) -> bytes:
    """The digits of ``text`` in order (bytes operations: ~10x faster than a regex on str)."""
    return text.encode("utf-8", "surrogatepass").translate(None, _NOT_DIGITS)
