"""Count a text at most once per process: a bounded, content-keyed cache of token counts.

Agent loops re-send their whole history every turn, so nearly every text a call counts was counted
before. A key is the string's hash mixed with its length: CPython caches a string's hash on the
object, so a repeated lookup of the same string costs a dict probe, and the cache holds no text
(an entry is ~100 bytes whatever the text's size). A collision among 200k entries kept is ~1e-9
likely and would cost a slightly wrong count, never an error.

Async counting keeps the event loop free: uncounted text over ``INLINE_ENCODE_LIMIT`` is encoded
in a small worker pool (tiktoken releases the GIL, so agents' encodes run in parallel), and a text
over ``INLINE_HASH_LIMIT`` is not even hashed on the loop. Concurrent calls that miss on the same
text (agents fanned out over one shared document) wait for one encode instead of each doing it.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import repeat
from typing import TypeVar

import tiktoken

from tokenmw._tokens.lines import LINE_SPLIT_MIN_CHARS, line_segments, splits_at_lines

__all__ = ["INLINE_ENCODE_LIMIT", "INLINE_HASH_LIMIT", "TokenCache", "cache_for", "in_worker"]

INLINE_ENCODE_LIMIT = 16_384
"""Characters of uncounted text one call encodes on the event loop; more goes to the worker pool.

Measured on the 2-core dev machine (``benchmarks/bench_counting.py`` table 3, several runs): an
inline encode runs at 20-33 MB/s, so 16 KB holds the loop 0.5-0.9 ms. The same encode through the
pool costs the call 0.4-0.6 ms more (a 0.05-0.07 ms hop, and the encode itself runs slower on the
other core), and 0.07-0.1 ms more at 1-2 KB. At 16 KB every inline stall stays under ~1 ms (the
loop's budget is 5 ms) while an agent turn's new message (a few KB) never pays the hop.

Batching the misses of concurrent calls into one hop, or into one ``encode_ordinary_batch``, was
measured against one hop per call (table 4, 50 calls x 110k tokens): no faster, and the loop
stalled 20-140 ms instead of ~5 ms, so it is not done.
"""

INLINE_HASH_LIMIT = 262_144
"""A longer text is looked up in the worker: hashing it (~0.5 ns/byte, the first time a string
object is hashed) would block the loop about as long as a hop costs."""

MAX_ENTRIES = 200_000

MAX_LINE_ENTRIES = 100_000
"""Counts of lines of long texts (``_tokens/lines.py``) kept, beside the texts' own."""

_LINE_LEARN_EVERY = 4
"""One long text in this many whose lines looked up were never seen is counted by lines anyway."""
_LINE_LEARN_CHARS = 4
"""A line seen before that is shorter is encoded with the text's new lines, never on its own."""

_NO_SPECIAL: frozenset[str] = frozenset()


def _key(text: str) -> int:
    return hash(text) ^ (len(text) << 32)


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    # Our own pool, one thread fewer than cores: encode threads that outnumber the free cores take
    # CPU time slices from the event-loop thread (stalls in 4 ms scheduler ticks, benchmark table
    # 4). Lowering their OS priority instead was measured far worse: a de-prioritised thread
    # holding the GIL starves the loop (priority inversion).
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                workers = max(1, min((os.cpu_count() or 2) - 1, 8))
                _executor = ThreadPoolExecutor(workers, thread_name_prefix="tokenmw-count")
    return _executor


T = TypeVar("T")


async def in_worker(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in the worker pool that encodes large texts, in the caller's context
    (context variables seen as on the loop): for other work too large to do on the event loop
    (compressing a long new text). Pure-Python work still holds the GIL, but the interpreter
    hands it back to the loop thread every switch interval, so the loop keeps running."""
    ctx = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_pool(), ctx.run, fn, *args)


class TokenCache:
    """Token counts of texts already seen, for one encoding."""

    __slots__ = (
        "_by_lines", "_counts", "_inflight", "_line_counts", "_line_skips", "_lock", "encode_calls",
        "encoding", "max_entries",
    )  # fmt: skip

    def __init__(self, encoding: tiktoken.Encoding, max_entries: int = MAX_ENTRIES) -> None:
        self.encoding = encoding
        self.max_entries = max_entries
        self._counts: dict[int, int] = {}
        # 64-bit hashes only: line keys are bare string hashes (a 32-bit one would collide).
        self._by_lines = splits_at_lines(encoding) and sys.hash_info.width >= 64
        self._line_counts: dict[int, int] = {}
        """Line hash -> tokens, or -1 for a line seen once (``_count_lines``)."""
        self._line_skips = 0
        self._inflight: dict[int, Future[int]] = {}
        self._lock = threading.Lock()
        self.encode_calls = 0
        """Texts counted because the cache did not have them (each once: whole, or by its lines,
        when only some of them may be encoded): tests and benchmarks read it."""

    def __len__(self) -> int:
        return len(self._counts)

    @property
    def lines_held(self) -> int:
        """Lines of long texts noted or counted (``_count_lines``), bounded by ``MAX_LINE_ENTRIES``."""
        return len(self._line_counts)

    def get(self, text: str) -> int | None:
        """The cached count, or ``None`` when the text was not counted yet."""
        return self._counts.get(_key(text))

    def unseen_chars(self, texts: Sequence[str]) -> int:
        """Characters of ``texts`` never counted (a text too long to hash inline counts as unseen):
        how much new text the hooks of a call will work on."""
        counts = self._counts
        unseen = 0
        for text in texts:
            if len(text) > INLINE_HASH_LIMIT or counts.get(_key(text)) is None:
                unseen += len(text)
        return unseen

    def count(self, text: str) -> int:
        """Tokens in ``text``, encoding it only the first time it is seen in this process."""
        key = _key(text)
        n = self._counts.get(key)
        if n is None:
            n = self._store(key, self._encode(text))
        return n

    def count_all(self, texts: Iterable[str]) -> int:
        """Sum of the counts of ``texts`` (inline; for sync callers)."""
        counts = self._counts
        total = 0
        for text in texts:
            n = counts.get(_key(text))
            total += n if n is not None else self.count(text)
        return total

    async def count_all_async(self, texts: Sequence[str]) -> int:
        """Sum of the counts, without blocking the event loop on large uncounted text."""
        counts = self._counts
        total = 0
        missing: list[tuple[int | None, str]] | None = None
        missing_chars = 0
        for text in texts:
            size = len(text)
            if size > INLINE_HASH_LIMIT:
                key: int | None = None  # hashed in the worker
                n = None
            else:
                key = hash(text) ^ (size << 32)  # _key, inlined: this loop runs per text per count
                n = counts.get(key)
            if n is None:
                if missing is None:
                    missing = []
                missing.append((key, text))
                missing_chars += size
            else:
                total += n
        if missing is None:
            return total
        if missing_chars <= INLINE_ENCODE_LIMIT:
            for key, text in missing:
                key = key if key is not None else _key(text)
                n = counts.get(key)  # an earlier duplicate in this same request
                total += n if n is not None else self._store(key, self._encode(text))
            return total
        loop = asyncio.get_running_loop()
        mine, theirs = await loop.run_in_executor(_pool(), self._count_claiming, missing)
        total += mine
        for future in theirs:
            total += await asyncio.wrap_future(future)
        return total

    def _count_claiming(self, missing: list[tuple[int | None, str]]) -> tuple[int, list[Future[int]]]:
        """In a worker: count ``missing``; a text another call is encoding right now is left to
        it (its future is returned, to be awaited on the loop, never blocking a worker)."""
        total = 0
        theirs: list[Future[int]] = []
        counts = self._counts
        for key, text in missing:
            if key is None:
                key = _key(text)
                # Hashing a long text holds the GIL (~0.2 ms per 500 KB); when many calls queue
                # here with the same text, back-to-back hashes would starve the event loop, so
                # give the GIL away after each one.
                time.sleep(0)
            n = counts.get(key)
            if n is not None:
                total += n
                continue
            with self._lock:
                future = self._inflight.get(key)
                if future is not None:
                    theirs.append(future)
                    continue
                future = self._inflight[key] = Future()
            try:
                n = counts.get(key)
                if n is None:
                    n = self._store(key, _encode_len_in_worker(self.encoding, text))
                future.set_result(n)
            except BaseException as error:
                future.set_exception(error)
                raise
            finally:
                with self._lock:
                    del self._inflight[key]
            total += n
        return total, theirs

    def _encode(self, text: str) -> int:
        """Tokens in a text not counted before (on the event loop, at most
        ``INLINE_ENCODE_LIMIT`` characters a call; any size for sync callers). A long one is
        counted by its lines (``_tokens/lines.py``), so that only lines never seen are encoded,
        when one of a few of its lines was seen before (``_worth_lines``). Otherwise (a log, a new
        kind of document: looking its lines up would cost more than the encode they save) one
        such text in ``_LINE_LEARN_EVERY`` is still counted by lines, which notes its lines for
        the texts that repeat them. The worker path encodes whole texts: tiktoken lets the GIL
        go, a Python loop over lines would not."""
        if not self._by_lines or len(text) < LINE_SPLIT_MIN_CHARS or "\n" not in text:
            return _encode_len(self.encoding, text)
        if not self._worth_lines(text):
            self._line_skips += 1
            if self._line_skips % _LINE_LEARN_EVERY != 1:
                return _encode_len(self.encoding, text)
        return self._count_lines(text)

    def _worth_lines(self, text: str) -> bool:
        """Whether one of a few lines spread over ``text`` (its first, and the first to start
        after each quarter of it) was seen before: then its lines are worth looking up."""
        seen = self._line_counts
        size = len(text)
        start = 0
        for offset in (0, size // 4, size // 2, size * 3 // 4):
            if offset:
                start = text.find("\n", offset) + 1
                if not start:
                    return False
            end = text.find("\n", start) + 1
            if not end:
                return False
            if hash(text[start:end]) in seen:
                return True
        return False

    def _count_lines(self, text: str) -> int:
        """Tokens in ``text``, as the sum of its lines' counts."""
        # A line seen for the first time is only noted (-1) and encoded with the text's other new
        # lines in one go: every junction of those is a break that ends a piece too (each but the
        # last ends in one, none but the first starts the text), so their count is the sum of
        # theirs. A text of new lines costs one encode, not one per line. A line seen a second
        # time is encoded alone and its count kept, unless it is shorter than
        # ``_LINE_LEARN_CHARS`` (an encode call of its own would cost several times its share of
        # the joined one): it is encoded with the new lines, every time. A line that comes up
        # twice in a text it is new in is encoded in the joined text twice.
        encoding = self.encoding
        segments = line_segments(text)
        if len(segments) > MAX_LINE_ENTRIES // 4:
            return _encode_len(encoding, text)  # more lines than the cache would keep
        seen = self._line_counts
        keys = [*map(hash, segments)]  # 64-bit string hashes: a collision among 100k is ~1e-14 likely
        found = [*map(seen.get, keys)]
        if found.count(None) == len(found):  # nothing seen: one encode, no loop in Python
            self._note_lines(zip(keys, repeat(-1)), len(keys))
            return _encode_len(encoding, text)
        total = 0
        joined: list[str] = []
        learned: dict[int, int] = {}
        for segment, key, n in zip(segments, keys, found, strict=True):
            if n is not None and n >= 0:
                total += n
            elif n is None or len(segment) < _LINE_LEARN_CHARS:
                if n is None:
                    learned[key] = -1
                joined.append(segment)
            else:
                n = learned.get(key, -1)  # counted already if it came up earlier in this text
                if n < 0:
                    learned[key] = n = _encode_len(encoding, segment)
                total += n
        if learned:
            self._note_lines(learned.items(), len(learned))
        return total + _encode_len(encoding, "".join(joined)) if joined else total

    def _note_lines(self, entries: Iterable[tuple[int, int]], count: int) -> None:
        """Keep ``count`` line entries, the oldest dropped first to stay under
        ``MAX_LINE_ENTRIES`` (changed under the lock, as the text cache is)."""
        seen = self._line_counts
        with self._lock:
            over = len(seen) + count - MAX_LINE_ENTRIES
            if over > 0:
                for old in list(seen)[: max(over, MAX_LINE_ENTRIES // 4)]:
                    del seen[old]
            seen.update(entries)

    def _store(self, key: int, n: int) -> int:
        with self._lock:
            self.encode_calls += 1
            if len(self._counts) >= self.max_entries:
                # Drop the oldest quarter (dicts keep insertion order): amortised O(1) and no
                # bookkeeping on hits, which are the common case.
                for old in list(self._counts)[: len(self._counts) // 4]:
                    self._counts.pop(old, None)
            self._counts[key] = n
        return n

    def clear(self) -> None:
        """Forget every count (tests, benchmarks)."""
        with self._lock:
            self._counts.clear()
            self._line_counts.clear()
            self._line_skips = 0
            self.encode_calls = 0


def _encode_len(encoding: tiktoken.Encoding, text: str) -> int:
    # encode_ordinary: user text containing "<|endoftext|>" is plain text, never an error; tiktoken
    # itself replaces lone surrogates (as the API's JSON decoding does).
    return len(encoding.encode_ordinary(text))


def _encode_len_in_worker(encoding: tiktoken.Encoding, text: str) -> int:
    # tiktoken releases the GIL while it encodes but holds it to build the list of token ids
    # (~1.3 ms per 100k tokens), stalling the event loop meanwhile. Its token buffer (what its own
    # encode_to_numpy reads; allowed_special empty = encode_ordinary) skips the list.
    try:
        buffer = encoding._core_bpe.encode_to_tiktoken_buffer(text, _NO_SPECIAL)
        return memoryview(buffer).nbytes // 4
    except (AttributeError, TypeError, ValueError, UnicodeEncodeError):
        return _encode_len(encoding, text)


_caches: dict[str, TokenCache] = {}
_caches_lock = threading.Lock()


def cache_for(encoding: tiktoken.Encoding) -> TokenCache:
    """The process-wide cache for an encoding."""
    cache = _caches.get(encoding.name)
    if cache is None:
        with _caches_lock:
            cache = _caches.get(encoding.name)
            if cache is None:
                cache = _caches[encoding.name] = TokenCache(encoding)
    return cache


# A forked child has none of the parent's threads: a pool without its workers, or a lock one of
# them held, would hang the child's first call (gunicorn --preload, multiprocessing, celery).
def _reset_in_child() -> None:
    global _executor, _executor_lock, _caches_lock
    _executor = None
    _executor_lock = threading.Lock()
    _caches_lock = threading.Lock()
    for cache in _caches.values():
        cache._lock = threading.Lock()
        cache._inflight = {}  # encodes the parent's threads were doing: never finished here


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
