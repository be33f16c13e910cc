"""The originals of reversible elisions: a per-process store, content-addressed and bounded.

A ref is derived from the original alone (blake2b, 40 bits, base32 lower case: 8 characters of
``a-z2-7``, no ``_`` or ``-`` that markdown rules could read as emphasis). So the same original gets
the same ref in every turn and every process, a marker sent in an old turn still resolves while the
store holds it, and the prefix the provider caches does not change. The store keeps the most
recently used originals, at most ``MAX_ENTRIES`` of them and ``MAX_CHARS`` characters in all; an
original that no longer fits (or a process restart) makes its ref unknown, which the expand tool
reports honestly instead of failing the call.
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from hashlib import blake2b

__all__ = ["MAX_CHARS", "MAX_ENTRIES", "clear", "get", "keep", "put", "ref_for", "stats"]

MAX_ENTRIES = 4096
MAX_CHARS = 32_000_000
"""Characters held over all originals (~32 MB of ASCII text)."""

_store: OrderedDict[str, str] = OrderedDict()
_held = 0
_lock = threading.Lock()


def ref_for(original: str) -> str:
    """The ref of ``original``: a pure function of its text."""
    digest = blake2b(original.encode("utf-8", "surrogatepass"), digest_size=5).digest()
    return base64.b32encode(digest).decode("ascii").lower()


def put(original: str) -> str:
    """Keep ``original`` (most recently used first to stay) and return its ref."""
    global _held
    ref = ref_for(original)
    size = len(original)
    with _lock:
        if ref in _store:
            _store.move_to_end(ref)
            return ref
        if size > MAX_CHARS:
            return ref  # never kept: its ref answers "no longer available"
        while _store and (len(_store) >= MAX_ENTRIES or _held + size > MAX_CHARS):
            _, dropped = _store.popitem(last=False)
            _held -= len(dropped)
        _store[ref] = original
        _held += size
    return ref


def keep(refs: tuple[str, ...], originals: tuple[str, ...]) -> None:
    """Make sure each of ``refs`` still resolves (a compressed text served from the cache made
    its markers long ago; the store may have let their originals go since)."""
    for ref, original in zip(refs, originals, strict=False):
        with _lock:
            if ref in _store:
                _store.move_to_end(ref)
                continue
        put(original)


def get(ref: str) -> str | None:
    """The original behind ``ref``, or ``None`` when it is not (or no longer) held."""
    with _lock:
        original = _store.get(ref)
        if original is not None:
            _store.move_to_end(ref)
        return original


def stats() -> tuple[int, int]:
    """``(entries, characters)`` held now."""
    with _lock:
        return len(_store), _held


def clear() -> None:
    """Forget every original (tests, benchmarks)."""
    global _held
    with _lock:
        _store.clear()
        _held = 0
