"""Whitespace in prose that the model does not need: each rule is idempotent and keeps indentation.

Runs on text whose code, JSON and URLs are already placeholders, so "prose" here is all that is left.
"""

from __future__ import annotations

import re

__all__ = ["has_odd_chars", "normalize_prose"]

# Invisible characters (zero-width space, word joiner, BOM, soft hyphen). ZWJ/ZWNJ stay: they carry
# meaning in emoji sequences and in Persian and Indic scripts.
_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u00ad]")
_ODD_SPACE = re.compile("[\u00a0\u2000-\u200a\u202f]")
# The same characters in UTF-8: a bytes regex scans ~5x faster than a str one.
_ODD_UTF8 = re.compile(rb"\xc2[\xa0\xad]|\xe2\x80[\x80-\x8b\xaf]|\xe2\x81\xa0|\xef\xbb\xbf")
_CRLF = re.compile(r"\r\n")
# A run of two or more spaces after anything but a line start, a tab or a space: the start of a
# run inside a line (a run at a line start or after a tab is indentation or alignment, kept). The
# two spaces first let the engine skip to candidates (the character before them is looked at
# after), and a plain replacement keeps the work in C.
_INNER_SPACES = re.compile(r"  (?<=[^\n\t ]  ) *")
_BLANK_RUN = re.compile(r"\n(?:[ \t]*\n){2,}")
_LEADING_BLANK = re.compile(r"\A(?:[ \t]*\n)+")
# A markdown table delimiter row with two or more cells: | :---- | ----: |
_TABLE_RULE = re.compile(r"([ \t]*)(\|?)[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)+(\|?)[ \t]*")
_RULE_CELL = re.compile(r"[ \t]*(:?)-+(:?)[ \t]*")


def has_odd_chars(utf8: bytes) -> bool:
    """Whether a text (given UTF-8 encoded) holds a character the invisible/odd-space rules change."""
    # Each starts with one of three lead bytes: three memchr scans rule most texts out in ~0.5 µs
    # (the regex takes ~3 ns a byte).
    if b"\xc2" not in utf8 and b"\xe2" not in utf8 and b"\xef" not in utf8:
        return False
    return _ODD_UTF8.search(utf8) is not None


def _short_rule(m: re.Match[str]) -> str:
    indent, lead, trail = m.group(1), m.group(2), m.group(3)
    body = m.group(0)[len(indent) :].strip(" \t")
    if lead:
        body = body[1:]
    if trail and body.endswith("|"):
        body = body[:-1]
    cells = [_RULE_CELL.sub(_short_cell, cell) for cell in body.split("|")]
    return f"{indent}{lead}{'|'.join(cells)}{trail}"


def _short_cell(m: re.Match[str]) -> str:
    # ``r"\1---\2"`` as a function: a template is expanded in Python for every match (~2x slower).
    return f"{m.group(1)}---{m.group(2)}"


def _short_table_rules(text: str) -> str:
    """Shrink markdown table delimiter rows, visiting only lines that hold ``---``."""
    out: list[str] = []
    pos = 0
    i = text.find("---")
    while i >= 0:
        start = text.rfind("\n", 0, i) + 1
        end = text.find("\n", i)
        if end < 0:
            end = len(text)
        m = _TABLE_RULE.fullmatch(text, start, end)
        if m is not None:
            out.append(text[pos:start])
            out.append(_short_rule(m))
            pos = end
        i = text.find("---", end)
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def normalize_prose(text: str, odd_chars: bool = True) -> str:
    """Drop invisible characters, trailing spaces, runs of spaces inside lines, extra blank lines and
    markdown table padding; leading indentation and tabs are kept.

    ``odd_chars``: whether the text may hold invisible or odd space characters (``has_odd_chars``).
    Each rule first checks with a plain substring search whether it can apply at all.
    """
    if odd_chars:
        text = _INVISIBLE.sub("", text)
        text = _ODD_SPACE.sub(" ", text)
    # A two-character search scans the whole text (~1 ns a character) when it finds nothing; a
    # one-character one first (~50x faster) rules out the rarer ones.
    if "\r" in text and "\r\n" in text:
        text = _CRLF.sub("\n", text)
    if "  " in text:
        text = _INNER_SPACES.sub(" ", text)
    if " \n" in text or ("\t" in text and "\t\n" in text):
        # Line by line beats a multiline regex here: the regex engine tries every position.
        text = "\n".join([line.rstrip(" \t") for line in text.split("\n")])
    if "\n\n\n" in text:
        text = _BLANK_RUN.sub("\n\n", text)
    if text[:1] == "\n":
        text = _LEADING_BLANK.sub("", text)
    if "---" in text and "|" in text:
        text = _short_table_rules(text)
    return text.rstrip(" \t\n")
