"""Replace exact repeats of long texts and blocks with a marker naming the first copy.

Agent loops re-send the same tool output (a file read twice, a status polled until it changes) and
RAG retrieves the same chunk for several questions. References only ever point back to something
earlier in the request, so appending turns never changes how an earlier turn reads.
"""

from __future__ import annotations

from tokenmw._compress.text import BLOCK_SEPARATOR, Compressed

__all__ = ["MIN_DUPLICATE_CHARS", "Deduper"]

MIN_DUPLICATE_CHARS = 256
"""Shorter repeats stay: a marker costs ~15 tokens."""


class Deduper:
    """Remembers the long texts and blocks of one request, in order, and replaces later repeats."""

    __slots__ = ("_seen", "kind", "replaced")

    def __init__(self, kind: str = "message") -> None:
        self.kind = kind
        """What a numbered place is called in markers ("message 3", "input item 3")."""
        self._seen: dict[str, tuple[str | int, bool]] = {}
        """Each long text or block seen: where it first was, and whether it was a whole text."""
        self.replaced = 0
        """Texts and blocks replaced by a marker."""

    def apply(self, compressed: Compressed, where: str | int) -> str:
        """The text of ``compressed`` with repeats of earlier content replaced; ``where`` is the
        place this text is at (a number: the 1-based index of a ``kind``), named by later markers.
        Several texts (the text parts of one message) may share a place."""
        text = compressed.text
        pieces = compressed.pieces
        if len(text) < MIN_DUPLICATE_CHARS and len(pieces) == 1:
            return text
        seen = self._seen
        if len(text) >= MIN_DUPLICATE_CHARS:
            first = seen.get(text)
            if first is not None:
                self.replaced += 1
                return self._whole_marker(*first, where)
            seen[text] = (where, True)
        if len(pieces) == 1:
            return text
        new: list[str] | None = None
        for i, piece in enumerate(pieces):
            if len(piece) < MIN_DUPLICATE_CHARS:
                continue
            first = seen.get(piece)
            if first is None:
                seen[piece] = (where, False)
                continue
            if new is None:
                new = list(pieces)
            self.replaced += 1
            new[i] = (
                f"[block identical to one above in {self._here(where)}; omitted]"
                if first[0] == where
                else f"[block identical to one in {self._name(first[0])} above; omitted]"
            )
        return text if new is None else BLOCK_SEPARATOR.join(new)

    def _whole_marker(self, first: str | int, whole: bool, where: str | int) -> str:
        """The marker for a whole text repeating a text (``whole``) or a block seen at ``first``."""
        if first == where:
            what = "a part" if whole else "a block"
            return f"[identical to {what} above in {self._here(where)}; omitted]"
        if whole:
            return f"[identical to {self._name(first)} above; omitted]"
        return f"[identical to a block in {self._name(first)} above; omitted]"

    def _name(self, where: str | int) -> str:
        return where if isinstance(where, str) else f"{self.kind} {where}"

    def _here(self, where: str | int) -> str:
        return where if isinstance(where, str) else f"this {self.kind}"
