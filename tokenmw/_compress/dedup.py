"""Replace exact repeats of long texts and blocks with a marker naming the first copy.

Agent loops re-send the same tool output (a file read twice, a status polled until it changes) and
RAG retrieves the same chunk for several questions. References only ever point back to something
earlier in the request, so appending turns never changes how an earlier turn reads.
"""

from __future__ import annotations

from .text import BLOCK_SEPARATOR, Compressed

__all__ = ["MIN_DUPLICATE_CHARS", "Deduper"]

MIN_DUPLICATE_CHARS = 256
"""Shorter repeats stay: a marker costs ~15 tokens."""


class Deduper:
    """Remembers the long texts and blocks of one request, in order, and replaces later repeats."""

    __slots__ = ("_seen", "kind", "replaced")

    def __init__(self, kind: str = "message") -> None:
        self.kind = kind
        """What a numbered place is called in markers ("message 3", "input item 3")."""
        self._seen: dict[str, str | int] = {}
        self.replaced = 0
        """Texts and blocks replaced by a marker."""

    def apply(self, compressed: Compressed, where: str | int) -> str:
        """The text of ``compressed`` with repeats of earlier content replaced; ``where`` is the
        place this text is at (a number: the 1-based index of a ``kind``), named by later markers."""
        text = compressed.text
        pieces = compressed.pieces
        if len(text) < MIN_DUPLICATE_CHARS and len(pieces) == 1:
            return text
        seen = self._seen
        if len(text) >= MIN_DUPLICATE_CHARS:
            first = seen.get(text)
            if first is not None:
                self.replaced += 1
                return f"[identical to {self._name(first)} above; omitted]"
            seen[text] = where
        if len(pieces) == 1:
            return text
        new: list[str] | None = None
        for i, piece in enumerate(pieces):
            if len(piece) < MIN_DUPLICATE_CHARS:
                continue
            first = seen.get(piece)
            if first is None:
                seen[piece] = where
                continue
            if new is None:
                new = list(pieces)
            self.replaced += 1
            new[i] = (
                "[block identical to one above in this message; omitted]"
                if first == where
                else f"[block identical to one in {self._name(first)} above; omitted]"
            )
        return text if new is None else BLOCK_SEPARATOR.join(new)

    def _name(self, where: str | int) -> str:
        return where if isinstance(where, str) else f"{self.kind} {where}"
