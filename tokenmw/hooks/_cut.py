"""Cutting generated text to a token budget: whole texts, and streams one delta at a time.

A whole text is encoded once, the first ``limit`` tokens decoded, and the cut moved back to a
sentence or word boundary. A stream cannot afford to re-encode what it has so far on every delta,
so ``StreamBudget`` counts incrementally and exactly, using two facts about tiktoken:

* a token is at least one byte, so text of ``b`` UTF-8 bytes has at most ``b`` tokens: while the
  bytes fit, nothing is encoded at all;
* tiktoken splits text with a regex before BPE, and it always starts a new piece at a space
  followed by a letter (every OpenAI encoding's pattern has ``[^\\r\\n\\p{L}\\p{N}]?\\p{L}+`` or
  its like, and no piece before it can take that space). So ``tokens(a + b) == tokens(a) +
  tokens(b)`` whenever ``b`` starts with a space and a letter: the text up to such a point can be
  counted once and never again (``tests/test_limit_response.py`` checks this property).

Each byte is therefore encoded about once over a whole stream, and near the limit only the last
word or two is encoded per delta, which keeps the count exact where it decides something.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken

__all__ = ["StreamBudget", "cut_text", "word_cut"]

# A sentence ends at . ! ? (or their CJK forms, or an ellipsis) before whitespace or the end; a
# line break ends a paragraph or a list item. The cut goes right after either.
_SENTENCE_END = re.compile(r"[.!?…。！？](?=\s|$)|\n")

SENTENCE_KEEP = 0.8
"""A sentence boundary is preferred when the text up to it keeps at least this share of what fits;
otherwise the cut goes at the last word boundary (losing up to a fifth of the budget to end on a
full sentence is worth it, losing more is not)."""

MAX_WORD = 40
"""A run of this many characters without a word boundary (an unspaced script, a long URL) is cut
at the token boundary rather than dropped whole."""


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _decoded_prefix(encoding: tiktoken.Encoding, tokens: list[int]) -> str:
    # A token prefix can end inside a multi-byte character; drop that partial character.
    return encoding.decode_bytes(tokens).decode("utf-8", "ignore")


def _unspaced(ch: str) -> bool:
    """Whether ``ch`` belongs to a script written without spaces (CJK, kana, Thai) or is an emoji
    (replies made of emoji have no spaces either), where a word may end after any character."""
    return (
        "\u3000" <= ch <= "\u9fff"
        or "\uf900" <= ch <= "\uffef"
        or "\u0e00" <= ch <= "\u0e7f"
        or "\U0001f300" <= ch <= "\U0001faff"
        or "\u2600" <= ch <= "\u27bf"
    )


def _joins(ch: str) -> bool:
    """Whether ``ch`` belongs to the character before it: a zero-width joiner, a variation
    selector, a skin-tone modifier (an emoji cut before one loses its tone or its sequence)."""
    return ch == "\u200d" or "\ufe00" <= ch <= "\ufe0f" or "\U0001f3fb" <= ch <= "\U0001f3ff"


def word_cut(text: str, end: int, start: int = 0) -> int:
    """The largest cut ``i`` in ``[start, end]`` on a word boundary of ``text``: before whitespace,
    or after a character of a script written without spaces. ``end`` itself when the run between
    ``start`` and ``end`` has no boundary but is too long to be a word (a URL, a hash); else
    ``start``."""
    i = end
    while i > start:
        if i >= len(text) or text[i].isspace() or (_unspaced(text[i - 1]) and not _joins(text[i])):
            return i
        i -= 1
    return end if end - start >= MAX_WORD else start


def _sentence_cut(text: str, end: int) -> int | None:
    """Where the last sentence in ``text[:end]`` ends, if that keeps enough of it. ``text`` is
    the whole text, so "3.14" cut after "3." is not taken for a sentence end."""
    last = None
    for match in _SENTENCE_END.finditer(text, int(end * SENTENCE_KEEP), end + 1):
        if match.end() <= end:
            last = match.end()
    return last


def cut_text(encoding: tiktoken.Encoding, text: str, limit: int) -> tuple[str | None, int]:
    """``(cut, tokens)``: ``text`` cut to at most ``limit`` tokens at a sentence or word boundary
    (``None`` when it already fits) and the token count of ``text`` as given."""
    if _utf8_len(text) <= limit:
        return None, len(encoding.encode_ordinary(text)) if text else 0
    tokens = encoding.encode_ordinary(text)
    if len(tokens) <= limit:
        return None, len(tokens)
    fits = _decoded_prefix(encoding, tokens[: max(limit, 0)])
    end = _sentence_cut(text, len(fits))
    if end is None:
        end = _prefix_cut(text, len(fits))
    cut = text[:end].rstrip()
    # Re-encoding a prefix may (rarely) take more tokens than the prefix of the encoding did.
    while cut and len(encoding.encode_ordinary(cut)) > limit:
        cut = text[: _prefix_cut(text, len(cut) - 1)].rstrip()
    return cut, len(tokens)


def _prefix_cut(text: str, end: int) -> int:
    """``word_cut`` for a whole text: with no word boundary before ``end`` at all (a reply that
    opens with a run of emoji or an unspaced script), the longest prefix that fits, never ``""``."""
    cut = word_cut(text, end)
    return cut if cut > 0 else end


def _commit_point(text: str) -> int:
    """The last index ``i >= 1`` where ``text[i:]`` starts with a space and a letter, or 0."""
    i = text.rfind(" ", 1, len(text) - 1)
    while i > 0:
        if text[i + 1].isalpha():
            return i
        i = text.rfind(" ", 1, i)
    return 0


class StreamBudget:
    """The exact token count of a text that arrives in pieces, against a limit.

    ``add(delta)`` returns ``None`` while the text fits; when ``delta`` would take it over the limit
    it returns how many of ``delta``'s characters still fit (cut at a word boundary, possibly 0),
    and the budget is spent: later deltas must not be shown.
    """

    __slots__ = ("_committed", "_encoding", "_parts", "_tail_bytes", "limit", "over")

    def __init__(self, encoding: tiktoken.Encoding, limit: int) -> None:
        self._encoding = encoding
        self.limit = limit
        self._committed = 0
        """Exact tokens of the text before ``_parts``, which always starts at a split point."""
        self._parts: list[str] = []
        self._tail_bytes = 0
        self.over: int | None = None
        """Once over the limit: the exact token count of everything received."""

    def add(self, delta: str) -> int | None:
        """Take ``delta``; ``None`` if the text still fits, else how much of ``delta`` may be shown."""
        self._parts.append(delta)
        self._tail_bytes += _utf8_len(delta)
        if self._committed + self._tail_bytes <= self.limit:
            return None  # tokens <= bytes
        count = self._encoding.encode_ordinary
        tail = "".join(self._parts)
        committed = self._committed
        point = _commit_point(tail)
        if point:
            committed += len(count(tail[:point]))
            rest = tail[point:]
            if committed + _utf8_len(rest) <= self.limit:
                self._commit(committed, rest)
                return None
        else:
            rest = tail
        total = committed + len(count(rest))
        if total <= self.limit:
            self._commit(committed, rest)
            return None
        self.over = total
        return self._fitting(tail[: len(tail) - len(delta)], delta)

    def _commit(self, committed: int, rest: str) -> None:
        self._committed = committed
        self._parts = [rest]
        self._tail_bytes = _utf8_len(rest)

    def _fitting(self, before: str, delta: str) -> int:
        """How many characters of ``delta`` fit after ``before`` (which fits), at a word boundary."""
        allowed = self.limit - self._committed
        count = self._encoding.encode_ordinary
        tail = before + delta
        fits = _decoded_prefix(self._encoding, count(tail)[:allowed])
        start = len(before)
        end = word_cut(tail, max(start, len(fits)), start)
        while end > start and len(count(tail[:end])) > allowed:
            end = word_cut(tail, end - 1, start)
        return end - start

    def total(self) -> int:
        """The exact token count of everything added (encodes only the part not yet counted)."""
        if self.over is not None:
            return self.over
        tail = "".join(self._parts)
        return self._committed + (len(self._encoding.encode_ordinary(tail)) if tail else 0)
