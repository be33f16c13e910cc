"""Remember how each request prefix compressed, so an agent turn only costs its new message.

An agent re-sends its whole history every turn. Each text compresses the same way wherever it
appears (``text``'s cache), but repeats are found against everything before it, so the index of
earlier lines and blocks is state. It is kept per prefix: a step is "this text, at this place, after
that step", holding the text as sent and the index after it. The next turn finds the steps of its
history in the cache (a dictionary lookup per message) and only indexes its new messages.

The index is append-only, so a step extends its parent's index in place when nobody extended it
since (the usual agent loop); a second continuation of the same prefix (another agent sharing the
system prompt, a retried turn that changed its last message) copies the index as the parent left it.
"""

from __future__ import annotations

import itertools
import os
import threading

from .dedup import Deduper
from .lines import LineIndex
from .text import Compressed

__all__ = ["Step", "clear_history", "known_step", "next_step", "remembered", "root"]


class _Index:
    """Everything repeats are found against: whole texts and blocks, and lines."""

    __slots__ = ("deduper", "lines")

    def __init__(self, deduper: Deduper, lines: LineIndex) -> None:
        self.deduper = deduper
        self.lines = lines


class Step:
    """One text of a request as sent, after the steps before it (never changed once made)."""

    __slots__ = (
        "duplicates", "fallback", "firsts", "index", "refs", "seen", "serial", "tables", "text",
        "texts", "truncated",
    )  # fmt: skip

    def __init__(
        self,
        serial: int,
        text: str,
        duplicates: int,
        index: _Index | None,
        seen: int,
        firsts: int,
        texts: int,
        compressed: Compressed | None = None,
    ) -> None:
        # A plain class: a frozen dataclass costs ~1.5 µs more per message in every request.
        self.serial = serial
        self.text = text
        self.duplicates = duplicates
        self.index = index
        self.seen = seen
        self.firsts = firsts
        self.texts = texts
        """Sizes of the index after this step: what a continuation copies when it must."""
        # What the text compressor reported, so a request that finds this step again needs no
        # text-cache look-up (``known_step``); not the whole result, which holds the text twice.
        self.fallback = compressed.fallback if compressed is not None else None
        self.truncated = compressed.truncated if compressed is not None else False
        self.tables = compressed.tables if compressed is not None else 0
        self.refs = compressed.refs if compressed is not None else ()


_serials = itertools.count(1)
_roots: dict[str, Step] = {}
_steps: dict[tuple[int, str | int, bool, str], Step] = {}
_sources: set[str] = set()
"""The texts some remembered step is for (the same objects as in ``_steps``' keys)."""
_held_chars = 0
_lock = threading.Lock()

MAX_STEPS = 16_384
MAX_CHARS = 64_000_000


def root(kind: str, level: str) -> Step:
    """The step before the first text of a request at ``level`` whose places are called ``kind``."""
    key = f"{kind}/{level}"
    found = _roots.get(key)
    if found is None:
        with _lock:
            found = _roots.setdefault(key, Step(next(_serials), "", 0, None, 0, 0, 0))
    return found


def known_step(parent: Step, where: str | int, tool: bool, source: str) -> Step | None:
    """The step for ``source`` at place ``where`` after ``parent`` if this prefix was seen before:
    one look-up instead of compressing the text (even from its cache) and finding the step."""
    return _steps.get((parent.serial, where, tool, source))


def remembered(text: str) -> bool:
    """Whether some request prefix ending in ``text`` is remembered: a request re-sending it finds
    its step with one look-up (``known_step``), whatever the text cache still holds."""
    return text in _sources


def next_step(
    parent: Step, compressed: Compressed, source: str, where: str | int, tool: bool, kind: str
) -> Step:
    """The step for ``source`` (compressed as ``compressed``) at place ``where`` after ``parent``;
    from the cache when this prefix was seen before."""
    key = (parent.serial, where, tool, source)
    found = _steps.get(key)
    if found is not None:
        return found
    with _lock:
        found = _steps.get(key)
        if found is not None:
            return found
        index = _extend(parent, kind)
        deduper, lines = index.deduper, index.lines
        before = deduper.replaced
        text = deduper.apply(compressed, where)
        duplicates = deduper.replaced - before
        # What the text compressor found is about the text as written; once a whole-text or
        # block marker replaced it, the text is looked at afresh.
        code = compressed.code if text is compressed.text else None
        text, replaced = lines.apply(text, where, kind, code)
        step = Step(
            next(_serials), text, duplicates + replaced, index,
            len(deduper._seen), len(lines.first), len(lines.texts), compressed,
        )  # fmt: skip
        _remember(key, step)
        return step


def _extend(parent: Step, kind: str) -> _Index:
    """The index to add to after ``parent``: its own when nobody added to it since, else a copy."""
    index = parent.index
    if index is None:
        return _Index(Deduper(kind), LineIndex())
    deduper, lines = index.deduper, index.lines
    if (len(deduper._seen), len(lines.first), len(lines.texts)) == (parent.seen, parent.firsts, parent.texts):
        return index
    copy = Deduper(kind)
    copy._seen = dict(itertools.islice(deduper._seen.items(), parent.seen))
    return _Index(copy, lines.copy(parent.firsts, parent.texts))


def _remember(key: tuple[int, str | int, bool, str], step: Step) -> None:
    global _held_chars
    size = len(key[3]) + (len(step.text) if step.text is not key[3] else 0)
    size += sum(len(original) for _, original in step.refs)  # reversible: the elided originals
    if len(_steps) >= MAX_STEPS or _held_chars + size > MAX_CHARS:
        _steps.clear()  # whole histories age together; the next turn rebuilds its own
        _sources.clear()
        _held_chars = 0
    _steps[key] = step
    _sources.add(key[3])
    _held_chars += size


def clear_history() -> None:
    """Forget every remembered prefix (tests, benchmarks)."""
    global _held_chars
    with _lock:
        _steps.clear()
        _sources.clear()
        _held_chars = 0


# A forked child has none of the parent's threads: a pool without its workers, or a lock one of
# them held, would hang the child's first call (gunicorn --preload, multiprocessing, celery).
def _reset_in_child() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
