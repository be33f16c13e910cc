"""Counting a long new text line by line, exactly: the lines an agent's tool outputs share.

An agent turn's new text is mostly a tool output: pretty-printed JSON, a log, a listing. When the
agent calls a tool again, most of its lines were seen before, in other outputs (``"status":
"delayed",``, ``},``, a log's fixed prefix), but the text as a whole is new, so the text cache
misses and tiktoken encodes all of it (~60 ns a character for JSON). Counting its lines through a
cache of their own (``TokenCache._count_lines``) encodes only the lines not counted before
(``benchmarks/bench_counting.py`` table 5: the seed loop's new text 0.66x the CPU of whole
encodes; the corpus of ``tests/data``, whose tool outputs share few lines, 1.03-1.08x).

Why the sum of the lines' counts is the text's count: tiktoken splits a text into pieces with its
encoding's pattern and encodes each piece on its own, so a text cut where a piece ends counts as
the sum of its parts. For the cl100k and o200k patterns a piece ends after a newline when the next
line does not start with a slash (o200k's punctuation piece takes ``[\\r\\n/]*``) and its leading
whitespace holds no ``\\r`` and is followed by something else (a run of whitespace with a second
line break in it is one piece, ``\\s*[\\r\\n]``). Lines that break a rule are joined to the line
before. The proof is by the pattern, so it holds only for the patterns vetted here; any other
encoding counts whole texts (``splits_at_lines``). ``tests/tokens/test_lines.py`` checks the sums
against whole-text encodes on the corpus, on generated text, and on every Unicode whitespace.
"""

from __future__ import annotations

import re

import tiktoken

__all__ = ["LINE_SPLIT_MIN_CHARS", "line_segments", "splits_at_lines"]

LINE_SPLIT_MIN_CHARS = 2_048
"""Shorter texts are encoded whole: looking up their first lines (to tell whether the text's lines
are worth looking up) would cost a few percent of their encode, and a few lines save little."""

_CL100K = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|"""
    r"""\s*[\r\n]|\s+(?!\S)|\s"""
)
_CL100K_BEFORE_0_8 = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)
_O200K = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
VETTED_PATTERNS = frozenset({_CL100K, _CL100K_BEFORE_0_8, _O200K})
"""The pieces patterns the line rule above was proven for (cl100k_base as tiktoken 0.8+ and earlier
write it, o200k_base and o200k_harmony)."""


def splits_at_lines(encoding: tiktoken.Encoding) -> bool:
    """Whether ``encoding``'s count of a text is the sum of its ``line_segments``' counts."""
    # tiktoken 0.5–0.14 (checked): the pattern is kept as ``_pat_str``; used only here, and
    # tests/tokens/test_lines.py fails if the built-in encodings stop exposing it. Without it,
    # texts are counted whole: slower, never wrong.
    return getattr(encoding, "_pat_str", None) in VETTED_PATTERNS


def line_segments(text: str) -> list[str]:
    """``text`` cut after the line breaks where a piece of the vetted patterns always ends; joined
    back, the segments are ``text``."""
    if _UNSAFE_BREAK.search(text) is None:  # the common case: every break ends a piece
        lines = text.split("\n")
        last = lines.pop()
        segments = [line + "\n" for line in lines]
        if last:
            segments.append(last)
        return segments
    return [segment for segment in _SEGMENT.findall(text) if segment]


_UNSAFE_BREAK = re.compile(r"\n(?:/|[^\S\r\n]*[\r\n]|[^\S\r\n]+\Z)")
r"""A break after which a piece may go on: a slash right after it, or whitespace that reaches
another break (a blank line, a ``\r``) or the end of the text (``\s++$`` takes it whole).
Python's ``\s`` is a superset of tiktoken's (``\x1c``-``\x1f`` besides): more breaks are held,
never fewer."""

_SEGMENT = re.compile(r"[^\n]*(?:\n(?!(?!/)[^\S\r\n]*\S)[^\n]*)*(?:\n|\Z)")
r"""One segment: lines up to a break followed by optional whitespace (no ``\r``) and then
something that is neither whitespace nor a slash."""
