"""Reversible compression: the per-process store of elided originals, and the pass that fills it.

An aggressive elision normally loses its text. With reversible compression on, ``elide`` names the
original with a content-derived reference (``ref=<id>``: the same original always gets the same id,
so a marker in an old turn, re-sent every turn, never changes and prefix caches hold) and keeps it
here, so a model that needs it can ask for it back (``hooks/compress.py`` offers the tool).

The store is bounded in entries and characters, least recently used first out: a ref may outlive
its original (a long-lived process, a restarted one), and the expand tool then answers honestly that
it is gone. Everything here is keyed by content; nothing depends on call order or the clock.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = [
    "MAX_CHARS",
    "MAX_ENTRIES",
    "active",
    "clear",
    "collecting",
    "get",
    "note",
    "put",
    "ref_for",
    "restoring",
    "seen",
]

MAX_ENTRIES = 4096
MAX_CHARS = 32_000_000
REF_BYTES = 5
"""10 hex digits: short in the prompt, and no collision in a store this size (40 bits)."""

_store: OrderedDict[str, str] = OrderedDict()
_held = 0
_lock = threading.Lock()


def _reset_lock() -> None:  # a child forked while another thread held the lock must not hang
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock)


def ref_for(original: str) -> str:
    """The reference of ``original``: a pure function of its content."""
    data = original.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=REF_BYTES).hexdigest()


def put(ref: str, original: str) -> None:
    """Keep ``original`` under ``ref`` (refreshing it if kept already); evicts the least recently
    used beyond the bounds. An original larger than an eighth of the bound is not kept."""
    global _held
    size = len(original)
    if size > MAX_CHARS // 8:
        return
    with _lock:
        if ref in _store:
            _store.move_to_end(ref)
            return
        _store[ref] = original
        _held += size
        while len(_store) > MAX_ENTRIES or _held > MAX_CHARS:
            _, dropped = _store.popitem(last=False)
            _held -= len(dropped)


def get(ref: str) -> str | None:
    """The original kept under ``ref``, or ``None`` when it is not (never was, or evicted)."""
    with _lock:
        found = _store.get(ref)
        if found is not None:
            _store.move_to_end(ref)
        return found


def clear() -> None:
    """Forget every original (tests, benchmarks)."""
    global _held
    with _lock:
        _store.clear()
        _held = 0


# -- one request's compression pass ------------------------------------------------------------------


@dataclass(slots=True)
class _Pass:
    found: list[tuple[str, str]] = field(default_factory=list)
    """(ref, original) of every elision in the request, from fresh elisions and cached texts."""
    restore: Callable[[str], str] | None = None
    """Turns placeholders (protected code, JSON, URLs) back into text, for an original elided from
    masked text: what is stored and hashed is what the caller wrote."""


_pass: ContextVar[_Pass | None] = ContextVar("tokenmw_reversible", default=None)


@contextmanager
def collecting() -> Iterator[list[tuple[str, str]]]:
    """Compress reversibly inside this block; yields the (ref, original) pairs of every elision
    in what was compressed (the hook offers the expand tool when there is one)."""
    current = _Pass()
    token = _pass.set(current)
    try:
        yield current.found
    finally:
        _pass.reset(token)


def active() -> bool:
    """Whether compression is reversible here (then cached results are kept apart)."""
    return _pass.get() is not None


@contextmanager
def restoring(restore: Callable[[str], str]) -> Iterator[None]:
    """Within one text's rewrite: how to turn its placeholders back into text."""
    current = _pass.get()
    if current is None:
        yield
        return
    previous, current.restore = current.restore, restore
    try:
        yield
    finally:
        current.restore = previous


def note(original: str) -> str | None:
    """The ref for ``original``, now elided (stored and noted for the request); ``None`` when
    compression is not reversible here."""
    current = _pass.get()
    if current is None:
        return None
    full = current.restore(original) if current.restore is not None else original
    ref = ref_for(full)
    put(ref, full)
    current.found.append((ref, full))
    return ref


def seen(pairs: tuple[tuple[str, str], ...]) -> None:
    """A cached text's elisions: kept in the store again (it may have evicted them) and noted."""
    current = _pass.get()
    if current is None or not pairs:
        return
    for ref, original in pairs:
        put(ref, original)
    current.found.extend(pairs)
