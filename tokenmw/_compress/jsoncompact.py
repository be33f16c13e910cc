"""Compact JSON by parsing and dumping it, never by editing its text.

Pretty-printed JSON (tool outputs, API responses pasted into prompts) spends a token on nearly every
line of indentation. Dumping the parsed value with no spaces keeps every key, value and order; a
value is only rewritten when the round trip is exact. NaN/Infinity, duplicate keys, floats that would
lose digits and lone surrogates are left as written (still protected from the prose rules).
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["JSON_AT_START", "JSON_START", "compact", "find_json", "parse_exact"]

# Blank for our purpose includes what the prose rules delete or turn into spaces, so that a JSON
# block is found the same way before and after them (idempotence).
_BLANK = "[ \t\r\u00a0\u2000-\u200b\u202f\u2060\ufeff\u00ad]"
JSON_START = re.compile(rf"\n{_BLANK}*[\[{{]")
"""A line opening with ``{`` or ``[`` (after the first): where a JSON block may start. Starting
with a literal newline lets the regex engine jump from line to line."""
JSON_AT_START = re.compile(rf"{_BLANK}*[\[{{]")
"""The same at the start of a text (``match`` only)."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_LINE_TAIL_BLANK = re.compile(rf"{_BLANK}*(?:\n|\Z)")


class _Unsafe(Exception):
    """The value would not survive a dump unchanged."""


def _strict_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _Unsafe(literal)
    # Up to 15 significant digits always survive float -> repr; longer literals and exponents may
    # not (3.14159265358979323846, 1e-400), so compare exactly.
    if len(literal) > 16 or "e" in literal or "E" in literal:
        try:
            if Decimal(literal) != Decimal(repr(value)):
                raise _Unsafe(literal)
        except InvalidOperation as e:
            raise _Unsafe(literal) from e
    return value


def _reject_constant(name: str) -> Any:
    raise _Unsafe(name)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Unsafe("duplicate key")
    return obj


_STRICT = json.JSONDecoder(
    parse_float=_strict_float, parse_constant=_reject_constant, object_pairs_hook=_unique_keys
)
_LENIENT = json.JSONDecoder()
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False)


def compact(raw: str) -> tuple[Any, str] | None:
    """``(value, compact_text)`` for a JSON text that round-trips exactly, else ``None``."""
    try:
        value = _STRICT.decode(raw)
    except (_Unsafe, ValueError, RecursionError):
        return None
    return _dump(value)


def parse_exact(text: str) -> Any:
    """The value of a JSON text under the same strict rules, or a sentinel equal to nothing."""
    try:
        return _STRICT.decode(text)
    except (_Unsafe, ValueError, RecursionError):
        return _NOT_JSON


_NOT_JSON = object()


def _dump(value: Any) -> tuple[Any, str] | None:
    try:
        text = _ENCODER.encode(value)
    except (ValueError, RecursionError):
        return None
    if not text.isascii() and _SURROGATE.search(text):
        return None  # "\ud800" is fine escaped, but not as a raw character in a UTF-8 request
    return value, text


def find_json(text: str, start: int) -> tuple[int, tuple[Any, str] | None] | None:
    """The JSON object or array starting at ``text[start]``, if it fills the rest of its line.

    Returns ``(end, (value, compact) or None)``: ``None`` in the second place means it is JSON
    but must be kept as written.
    """
    try:
        value, end = _STRICT.raw_decode(text, start)
        result = _dump(value)
    except _Unsafe:
        try:
            _, end = _LENIENT.raw_decode(text, start)
        except (ValueError, RecursionError):
            return None
        result = None
    except (ValueError, RecursionError):
        return None
    if not _LINE_TAIL_BLANK.match(text, end):
        return None
    return end, result
