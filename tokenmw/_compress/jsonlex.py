r"""Compact JSON that does not parse: cut mid-document, or written inside a line of prose.

Agents cut long tool outputs at a character count (``json.dumps(result, indent=2)[:5000]``), so the
document never closes and a strict parse fails; ReAct prompts write ``Observation: {"temp": 19.4, …}``
on one line. Both go out pretty-printed or spaced unless compacted at the token level: this module
finds a run of JSON tokens (strings, numbers, literals, punctuation) and deletes the whitespace
between them. Nothing inside a string changes and no token is added, dropped or reordered; the
check after the rewrite (``same_tokens``) verifies that by an independent route, and a stretch that
fails it is sent as written.

Only whitespace goes, so the result is lossless for any reader, and the model reads compact JSON as
well as pretty JSON. A complete document ends the stretch (JSON Lines keep their line breaks); a
string cut by the truncation at the end of a line is kept as the last token.
"""

from __future__ import annotations

import re

from .jsoncompact import _DELETE_WHITESPACE, _rejoin_escaped

__all__ = ["Lexed", "embedded_blocks", "lex_at", "lex_stretch", "same_tokens"]

# Unrolled: ~3x faster than ``(?:[^"\\]|\\.)*`` on long outputs (and no 3.11-only syntax).
_STRING_BODY = r'[^"\\\n]*(?:\\.[^"\\\n]*)*'
_LITERAL = r"-?\d[\d.eE+\-]*|true|false|null"
# One C-level match finds the whole stretch of tokens, whitespace between them included: runs of
# whitespace and punctuation, each followed by a string or literal, then the punctuation after the
# last of those. The same end as repeating "whitespace, then a token" (``(?:\s*token)+``: a run
# holds no character a string or literal starts with, so backing off it finds none), with one
# repetition per string or literal instead of one per token (~15% faster). An empty match: no token.
_STRETCH = re.compile(rf'(?:[ \t\r\n{{}}\[\],:]*(?:"{_STRING_BODY}"|{_LITERAL}))*(?:[ \t\r\n]*[{{}}\[\],:])*')
# A string the cut left open: a quote, then the rest of the line.
_OPEN_STRING = re.compile(rf'[ \t\r\n]*"{_STRING_BODY}(?=\n|\Z)')
_BRACKET = re.compile(r"[\[\]{}]")
# Where JSON starts inside a line of prose: an object with a key, an array of objects, strings or
# arrays. A lone ``[`` or ``{`` in prose ("[1]", "{x}") is not taken for JSON.
# Two patterns, each opening with one literal character the regex engine can skip ahead to (a
# two-character literal it looks for one character at a time, ~3x slower); only starts are used.
_EMBEDDED_STARTS = (re.compile(r'\{(?=")'), re.compile(r'\[[ \t]*[{\["]'))
# Tokens for the independent check: strings (perhaps left open by the cut), punctuation, and any
# other run of non-space characters.
_CHECK_TOKEN = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"?|[{}\[\],:]|[^\s"{}\[\],:]+')
# The same tokens, matched with the whitespace before them and the punctuation right after them
# (``"id":``, ``},``), as the group: every non-space character starts a token, so what lies between
# two is whitespace only, and each punctuation character is a token of its own. Half the matches
# and no failed attempt per character of indentation: ~2x faster than ``_CHECK_TOKEN.findall``.
_CHECK_UNIT = re.compile(rf"\s*((?:{_CHECK_TOKEN.pattern})[{{}}\[\],:]*)")
# No token holds a line break, so units joined by one are one per line; a unit ends with a bare
# token (a number, literal or other run) exactly when it holds none of ``"{}[],:`` (a bare token
# holds none, and any other token starts with one), and starts with one exactly when it does not
# start with one of them: two bare tokens in a row are such a pair of lines.
_BARE_PAIR = re.compile(r'\n[^"{}\[\],:\n]+\n[^"{}\[\],:\n]')


class Lexed:
    """Stands for the value of a token-level compaction in the list the checks go through: the
    text as written, to compare token streams with."""

    __slots__ = ("closed", "raw")

    def __init__(self, raw: str, closed: bool = False) -> None:
        self.raw = raw
        self.closed = closed
        """Whether the stretch is a whole document (its first bracket closes)."""


def _compact(raw: str) -> str:
    """``raw`` without whitespace outside strings (split at the quotes, as ``jsoncompact`` does)."""
    return _compact_parts(_split_strings(raw, 0, len(raw)))


def _compact_parts(parts: list[str]) -> str:
    """``_compact`` of the text split at its quotes as ``parts`` (escaped quotes rejoined; the
    list is changed in place)."""
    parts[::2] = "\0".join(parts[::2]).translate(_DELETE_WHITESPACE).split("\0")
    return '"'.join(parts)


def _stretch(text: str, start: int) -> tuple[int, bool, list[str] | None]:
    """The end of the JSON tokens starting at ``text[start]`` (a bracket), stopping after the
    bracket that closes the first one, or ``start`` when there is nothing to compact; whether
    that bracket was found (a whole document, not one cut short); and, when at hand, the stretch
    split at its quotes as ``_split_strings`` splits it (``None``: split it again)."""
    m = _STRETCH.match(text, start)
    end = start if m is None else m.end()
    if end == start:  # not a token there
        return start, False, None
    # Brackets outside strings are the document's. More openings than closings: it never closes
    # (cut), no need to walk them; else walk them in the stretch with strings blanked out.
    parts = _split_strings(text, start, end)
    # The parts outside strings, counted: the same as counting the stretch and taking away what
    # the strings hold, with half the characters to count.
    outside = "\0".join(parts[::2])
    opens = outside.count("{") + outside.count("[")
    closes = outside.count("}") + outside.count("]")
    if opens <= closes:
        blanked = parts.copy()
        if parts[1::2]:
            blanked[1::2] = "\0".join(parts[1::2]).translate(_NO_BRACKETS).split("\0")
        skeleton = '"'.join(blanked)
        depth = 0
        for b in _BRACKET.finditer(skeleton):
            depth += 1 if b.group() in "[{" else -1
            if depth == 0:
                return start + b.end(), True, None
    tail = _OPEN_STRING.match(text, end)
    if tail is not None:
        # Whitespace, a quote and the rest of the line: one more part after the last (which is
        # outside strings: the stretch ends with a token, never with a backslash), unless the
        # string holds an escape (then split it all again).
        rest = text[end : tail.end()]
        if "\\" in rest:
            return tail.end(), False, None
        space, body = rest.split('"')
        parts[-1] += space
        parts.append(body)
        end = tail.end()
    return end, False, parts


_NO_BRACKETS = str.maketrans("[]{}", "    ")


def _split_strings(text: str, start: int, end: int) -> list[str]:
    """``text[start:end]`` split at its quotes, escaped ones rejoined (the backslash looked for
    first: one character is a much faster search)."""
    parts = text[start:end].split('"')
    if text.find("\\", start, end) < 0:
        return parts
    return _rejoin_escaped(parts) if '\\"' in text[start:end] else parts


def lex_at(segment: str, start: int) -> tuple[int, tuple[Lexed, str]] | None:
    """``(end, (Lexed(raw), compact))`` for the stretch of JSON tokens starting at the bracket
    ``segment[start]``, when compacting it removes whitespace; else ``None``."""
    end, found = lex_stretch(segment, start)
    return None if found is None else (end, found)


def lex_stretch(segment: str, start: int) -> tuple[int, tuple[Lexed, str] | None]:
    """``lex_at``, with the end of the stretch looked at even when there is nothing to compact:
    a later start inside that stretch lexes a part of it, with nothing to compact either, so a
    caller skips to the end (else ``[[[[...]]]]`` re-lexes the rest at every bracket: 40 KB of
    brackets took 36 s)."""
    end, closed, parts = _stretch(segment, start)
    if end <= start:
        return start, None
    raw = segment[start:end]
    compact = _compact(raw) if parts is None else _compact_parts(parts)
    if compact == raw or (":" not in raw and "," not in raw):
        return end, None
    return end, (Lexed(raw, closed), compact)


def embedded_blocks(
    segment: str, taken: list[tuple[int, int, object]]
) -> list[tuple[int, int, tuple[Lexed, str]]]:
    """``(start, end, (Lexed(raw), compact))`` of each stretch of JSON tokens starting inside a
    line of prose (``Observation: {"temp": 19.4}``), outside the ``taken`` spans (JSON found from
    line starts)."""
    if "[" not in segment and '{"' not in segment:  # the one-character search first: faster
        return []
    out: list[tuple[int, int, tuple[Lexed, str]]] = []
    pos = 0
    starts = sorted(m.start() for pattern in _EMBEDDED_STARTS for m in pattern.finditer(segment))
    for start in starts:
        if start < pos or any(s <= start < e for s, e, _ in taken):
            continue
        line = segment.rfind("\n", 0, start) + 1
        if not segment[line:start].strip(" \t") or "`" in segment[line:start]:
            continue  # a line start (already looked at), or inside inline code (never rewritten)
        end, found = lex_stretch(segment, start)
        if found is None:
            pos = max(pos, end)  # nothing to compact anywhere in this stretch (``lex_stretch``)
            continue
        if any(start < e and s < end for s, e, _ in taken):
            continue
        out.append((start, end, found))
        pos = end
    return out


def same_tokens(raw: str, compact: str) -> bool:
    """Whether ``compact`` is exactly the JSON tokens of ``raw``, in order, with nothing between
    them: the check run on every token-level compaction, by another route (a regex tokenizer)
    than the quote split that compacted it. Two bare tokens in a row (``1 2``) would run
    together into one (``12``): that fails too."""
    # Trailing whitespace would cost ``_CHECK_UNIT`` a retry per character (quadratic): the plain
    # tokens then, which join the same way.
    units = (_CHECK_TOKEN if raw[-1:].isspace() else _CHECK_UNIT).findall(raw)
    if "".join(units) != compact:
        return False
    return _BARE_PAIR.search("\n" + "\n".join(units)) is None
