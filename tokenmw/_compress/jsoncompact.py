r"""Compact JSON by deleting the whitespace between its tokens, once a strict parse has shown it is JSON.

Pretty-printed JSON (tool outputs, API responses pasted into prompts) spends a token on nearly every
line of indentation. Only whitespace outside string literals goes, and every number stays as written
(``1e-9``, ``2.50``): the model reads literals, and a re-serialisation would rewrite them. The one
rewrite inside strings is ``\u00e1`` to ``á`` (3 tokens to 1), as ``json.dumps(ensure_ascii=False)``
would, for every character but controls, ``"``, ``\`` and private-use ones; the string's value is the
same. What the parsed-value check run afterwards could not vouch for is left as written (still
protected from the prose rules): NaN/Infinity, duplicate keys, numbers with more digits than a float
holds, escaped surrogates.
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

_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_DELETE_WHITESPACE = str.maketrans("", "", " \t\n\r")
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)")  # left to right, so "\\u00e1" is not an escape
_LINE_TAIL_BLANK = re.compile(rf"{_BLANK}*(?:\n|\Z)")


class _Unsafe(Exception):
    """The value check after compaction could not vouch for this JSON text."""


def _strict_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _Unsafe(literal)
    # Two literals beyond a float's precision can parse to the same value, so the value check could
    # not tell them apart. Up to 15 significant digits always survive float -> repr; longer literals
    # and exponents may not (3.14159265358979323846, 1e-400), so compare exactly.
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


def compact(raw: str) -> tuple[Any, str] | None:
    """``(value, compact_text)`` for a JSON text that parses under the strict rules, else ``None``."""
    try:
        value = _STRICT.decode(raw)
    except (_Unsafe, ValueError, RecursionError):
        return None
    return _squeeze(value, raw)


def parse_exact(text: str) -> Any:
    """The value of a JSON text under the same strict rules, or a sentinel equal to nothing."""
    try:
        return _STRICT.decode(text)
    except (_Unsafe, ValueError, RecursionError):
        return _NOT_JSON


_NOT_JSON = object()


def _squeeze(value: Any, raw: str) -> tuple[Any, str] | None:
    """``raw`` (a JSON text whose value is ``value``) without whitespace between tokens."""
    if "\\u" in raw and _ESCAPED_SURROGATE.search(raw):
        return None
    # Split at the quotes (str methods: ~3x faster than a tokenising regex): the even pieces are
    # outside strings, the odd ones inside, once the pieces split at an escaped quote are rejoined.
    parts = raw.split('"')
    if '\\"' in raw:
        parts = _rejoin_escaped(parts)
    # Outside strings there is no NUL in valid JSON: one translate over all the pieces at once.
    parts[::2] = "\0".join(parts[::2]).translate(_DELETE_WHITESPACE).split("\0")
    if "\\u" in raw:
        parts[1::2] = [_ESCAPE.sub(_unescape, p) if "\\u" in p else p for p in parts[1::2]]
    return value, '"'.join(parts)


def _rejoin_escaped(parts: list[str]) -> list[str]:
    out = [parts[0]]
    for part in parts[1:]:
        last = out[-1]
        if last.endswith("\\") and (len(last) - len(last.rstrip("\\"))) % 2:
            out[-1] = f'{last}"{part}'  # an odd run of backslashes escapes the quote
        else:
            out.append(part)
    return out


def _unescape(m: re.Match[str]) -> str:
    # Controls, the two characters a JSON string must escape, private-use characters (our
    # placeholders) and the odd spaces the prose rules rewrite (``_KEPT_ESCAPED``: decoded, a later
    # pass over text where the JSON no longer stands on its own lines could turn them into spaces)
    # stay escaped; surrogates never get here (``_ESCAPED_SURROGATE``).
    code = m.group(1)
    if code is None:
        return m.group()
    n = int(code, 16)
    if n < 0x20 or 0x7F <= n <= 0x9F or n == 0x22 or n == 0x5C or 0xE000 <= n <= 0xF8FF or n in _KEPT_ESCAPED:
        return m.group()
    return chr(n)


_KEPT_ESCAPED = frozenset({0xA0, 0xAD, *range(0x2000, 0x200C), 0x202F, 0x2060, 0xFEFF})


def find_json(text: str, start: int) -> tuple[int, tuple[Any, str] | None] | None:
    """The JSON object or array starting at ``text[start]``, if it fills the rest of its line.

    Returns ``(end, (value, compact) or None)``: ``None`` in the second place means it is JSON
    but must be kept as written.
    """
    try:
        value, end = _STRICT.raw_decode(text, start)
        result = _squeeze(value, text[start:end])
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
