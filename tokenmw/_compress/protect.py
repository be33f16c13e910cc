"""Regions compression must leave alone, and the placeholders that stand in for them.

Every rewrite in the pipeline works on prose only. Protected regions are swapped for one
private-use character each before any rule runs and swapped back at the end, so no rule can reach
into them however it is written: fenced code, markdown indented code and unfenced source always;
inline code, JSON, quoted strings and URLs whenever a rule of the run could touch them. One
character per region keeps line structure intact (a fenced block becomes one "word" on one line)
and can never be split by a rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from .whitespace import has_odd_chars

__all__ = [
    "PLACEHOLDER_BASE",
    "Regions",
    "fence_spans",
    "has_fence_marks",
    "has_placeholder_chars",
    "indented_code_spans",
    "inline_code_spans",
    "quoted_spans",
    "url_spans",
]

PLACEHOLDER_BASE = 0xE000
"""The Private Use Area of the BMP (U+E000-U+F8FF): in the BMP so a masked text keeps two bytes per
character; a text that already holds one of these is left alone."""
MAX_REGIONS = 0xF900 - 0xE000

_PLACEHOLDER = re.compile("[\ue000-\uf8ff]")

# CommonMark fences: a run of 3+ backticks or tildes opening a line (any indent, so fences inside
# list items count); a backtick fence's info string may not contain a backtick.
_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})([^\n]*)", re.M)
_FENCE_CLOSE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*$", re.M)
# The same from the line break before a fence line: found by jumping from line break to line
# break, where a search for ``^`` tries (and fails) at every character (~5x slower).
_FENCE_OPEN_AFTER_BREAK = re.compile(r"\n[ \t]*(?:`{3,}|~{3,})")
_FENCE_CLOSE_AFTER_BREAK = re.compile(r"\n[ \t]*(?:`{3,}|~{3,})[ \t]*$", re.M)

# Inline code on one line: a backtick run closed by a run of the same length.
# Starts with a literal backtick so the regex engine can skip ahead to candidates.
_INLINE_CODE = re.compile(r"`(?<!``)(`*)(?!`)[^\n\ue000-\uf8ff]*?(?<!`)`\1(?!`)")

# Markdown indented code: lines indented by 4 spaces or a tab after a blank line (or at the start),
# with the blank lines between them. A list item's indented paragraph matches too: erring towards
# code only costs savings.
_INDENTED_LINES = r"(?: {4}|\t)[ \t]*\S[^\n]*(?:\n(?:[ \t]*\n)*(?: {4}|\t)[ \t]*\S[^\n]*)*"
_INDENTED_BLOCK = re.compile(rf"\n[ \t]*\n({_INDENTED_LINES})")
_INDENTED_AT_START = re.compile(rf"(?:[ \t]*\n)*({_INDENTED_LINES})")

# A quoted string on one line, escapes included; never across a placeholder (so regions never nest).
# Placeholders (regions protected before, inline code) may sit inside a string: they are part of
# it for pairing quotes, and the string is then protected around them (``_pieces``).
_STRING_BODY = r"(?:[^{q}\\\n]|\\[^\n\ue000-\uf8ff])*"
_DOUBLE_QUOTED = re.compile('"' + _STRING_BODY.format(q='"') + '"')
_QUOTED = re.compile(f"{_DOUBLE_QUOTED.pattern}|'{_STRING_BODY.format(q=chr(39))}'")
# A quote, then two spaces before the next quote or line end: every quoted string holding a run of
# spaces shows one (from its opening quote or an escaped one inside), so only such lines are read.
# Odd characters (non-breaking and zero-width spaces, what the prose rules delete or turn into
# spaces) count like a run: inside quotes they are part of the exact string.
_ODD = "\u00a0\u00ad\u2000-\u200b\u202f\u2060\ufeff"
_QUOTE_THEN_RUN = re.compile(f"[\"'][^\\n\"']*(?:  |[{_ODD}])")
_CHANGEABLE = re.compile(f"  |[{_ODD}]")

# Found from their "://" (a plain string search) and grown to the first space, quote or bracket.
_URL_SCHEMES = ("https", "http", "ftp", "wss", "ws", "file")
_URL_REST = re.compile(r"[^\s<>\"'`\ue000-\uf8ff]+")


def has_placeholder_chars(text: str, utf8: bytes | None = None) -> bool:
    """Whether ``text`` already holds characters we use as placeholders (then we leave it alone).

    ``utf8``: the text encoded, if at hand; its lead bytes rule most texts out without a regex.
    """
    if text.isascii():
        return False
    if utf8 is not None and b"\xee" not in utf8 and b"\xef" not in utf8:
        return False
    return _PLACEHOLDER.search(text) is not None


def has_fence_marks(text: str) -> bool:
    """Whether ``text`` holds a run of three backticks or tildes (a fence, perhaps). One-character
    searches first: memchr takes ~0.1 µs on 5 KB, a three-character search ~5 µs."""
    return ("`" in text and "```" in text) or ("~" in text and "~~~" in text)


def fence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each fenced code block, fences included; an unclosed one runs to the end."""
    if not has_fence_marks(text):
        return []
    spans: list[tuple[int, int]] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _line_search(_FENCE_OPEN, _FENCE_OPEN_AFTER_BREAK, text, pos)
        if m is None:
            break
        marker = m.group(1)
        if marker[0] == "`" and "`" in m.group(2):
            pos = m.end()  # ```x``` on one line is inline code, not a fence
            continue
        start = m.start()
        end = n
        close_from = m.end()
        while True:
            c = _line_search(_FENCE_CLOSE, _FENCE_CLOSE_AFTER_BREAK, text, close_from)
            if c is None:
                break
            closing = c.group(1)
            if closing[0] == marker[0] and len(closing) >= len(marker) and c.start() > m.end():
                end = c.end()
                break
            close_from = c.end() + 1
            if close_from > n:
                break
        spans.append((start, end))
        pos = end
    return spans


def _line_search(
    at_line: re.Pattern[str], after_break: re.Pattern[str], text: str, pos: int
) -> re.Match[str] | None:
    """``at_line.search(text, pos)`` for a pattern opening with ``^`` (multiline), found with
    ``after_break``: the same line pattern after a line break (where it holds, ``at_line`` does)."""
    if pos == 0 or text[pos - 1 : pos] == "\n":
        m = at_line.match(text, pos)
        if m is not None:
            return m
    hit = after_break.search(text, pos)
    return None if hit is None else at_line.match(text, hit.start() + 1)


def inline_code_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each inline code span."""
    if "`" not in text:
        return []
    return [m.span() for m in _INLINE_CODE.finditer(text)]


def url_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each URL."""
    spans: list[tuple[int, int]] = []
    i = text.find("://")
    while i >= 0:
        end = i + 3
        for scheme in _URL_SCHEMES:
            if text.startswith(scheme, i - len(scheme)):
                m = _URL_REST.match(text, end)
                if m is not None:
                    spans.append((i - len(scheme), m.end()))
                    end = m.end()
                break
        i = text.find("://", end)
    return spans


def indented_code_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each markdown indented code block: its lines, without the line end."""
    spans: list[tuple[int, int]] = []
    m = _INDENTED_AT_START.match(text)
    if m is not None:
        spans.append(m.span(1))
    if "\n    " not in text and "\n\t" not in text:
        return spans
    pos = spans[-1][1] if spans else 0
    while True:
        m = _INDENTED_BLOCK.search(text, pos)
        if m is None:
            return spans
        spans.append(m.span(1))
        pos = m.end()


def quoted_spans(text: str, is_code_line: Callable[[str, int], bool]) -> list[tuple[int, int]]:
    """``(start, end)`` of each quoted string holding two spaces in a row or an odd space (the
    string a rule could change): every double-quoted one (a user quoting an exact string), and
    single-quoted ones on lines ``is_code_line`` accepts (elsewhere a quote is an apostrophe)."""
    spans: list[tuple[int, int]] = []
    if '"' not in text and "'" not in text:
        return spans
    odd = not text.isascii() and has_odd_chars(text.encode("utf-8", "surrogatepass"))
    for line, end in _lines_with_quote_then_run(text) if odd else _lines_with_quote_then_spaces(text):
        for m in _QUOTED.finditer(text, line, end):
            start, stop = m.span()
            if text[start] == '"' or is_code_line(text, line):
                if _CHANGEABLE.search(m.group()) is not None:
                    spans.extend(_pieces(text, start, stop))
                continue
            # An apostrophe paired with a later one: the double-quoted strings between them count.
            for d in _DOUBLE_QUOTED.finditer(text, start, stop):
                if _CHANGEABLE.search(d.group()) is not None:
                    spans.extend(_pieces(text, *d.span()))
    return spans


def _lines_with_quote_then_run(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each line where a quote is followed by two spaces or an odd space
    before the next quote (``_QUOTE_THEN_RUN``); quoted strings never span lines."""
    pos = 0
    while (hit := _QUOTE_THEN_RUN.search(text, pos)) is not None:
        pos = text.find("\n", hit.end())
        if pos < 0:
            pos = len(text)
        yield text.rfind("\n", 0, hit.start()) + 1, pos


def _lines_with_quote_then_spaces(text: str) -> Iterator[tuple[int, int]]:
    """The same lines in a text without odd spaces: those where two spaces follow a quote. Found
    from the runs of spaces, fewer than quotes in prose and JSON (a regex from each quote backs
    off over every space to the next quote)."""
    n = len(text)
    pos = 0
    while (run := text.find("  ", pos)) >= 0:
        line = text.rfind("\n", 0, run) + 1
        end = text.find("\n", run)
        if end < 0:
            end = n
        if text.find('"', line, run) >= 0 or text.find("'", line, run) >= 0:
            yield line, end
            pos = end
            continue
        # No quote before this run on its line: a later run there counts only after a quote.
        quote = min((q for q in (text.find('"', run, end), text.find("'", run, end)) if q >= 0), default=-1)
        pos = end if quote < 0 else quote + 1


def _pieces(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """``text[start:end]`` as spans to protect: whole, or, around the placeholders inside it (a
    region cannot hold another), the stretches between them that a rule could change."""
    holes = [m.start() for m in _PLACEHOLDER.finditer(text, start, end)]
    if not holes:
        return [(start, end)]
    spans = []
    for a, b in zip([start, *(h + 1 for h in holes)], [*holes, end], strict=True):
        if b > a and _CHANGEABLE.search(text, a, b) is not None:
            spans.append((a, b))
    return spans


class Regions:
    """The protected regions of one text: placeholder ``i`` stands for ``self.texts[i]``."""

    __slots__ = ("restored", "texts")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.restored: list[int] = []
        """Placeholders put back so far, in order: each must come back exactly once."""

    def add(self, text: str) -> str:
        """Keep ``text`` aside and return its placeholder."""
        i = len(self.texts)
        if i >= MAX_REGIONS:
            raise OverflowError("too many protected regions")
        self.texts.append(text)
        return chr(PLACEHOLDER_BASE + i)

    def replace_spans(self, text: str, spans: list[tuple[int, int]]) -> str:
        """``text`` with each of the (sorted, disjoint) ``spans`` replaced by a placeholder."""
        if not spans:
            return text
        out: list[str] = []
        pos = 0
        for start, end in spans:
            out.append(text[pos:start])
            out.append(self.add(text[start:end]))
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def protect(self, text: str, find: Callable[[str], list[tuple[int, int]]]) -> str:
        """Replace what ``find`` finds in ``text`` by placeholders."""
        return self.replace_spans(text, find(text))

    def restore(self, text: str) -> str:
        """Put every region in ``text`` back, noting which in ``restored``."""
        if not self.texts:
            return text
        texts = self.texts
        restored = self.restored

        def put_back(m: re.Match[str]) -> str:
            i = ord(m.group()) - PLACEHOLDER_BASE
            restored.append(i)
            return texts[i]

        return _PLACEHOLDER.sub(put_back, text)

    def all_restored_once(self) -> bool:
        """Whether every region came back exactly once (none lost or repeated by a rule)."""
        return len(self.restored) == len(self.texts) == len(set(self.restored))
