"""The process-wide count cache: each text encoded once, large text off the event loop."""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tokenmw._core.call import Call
from tokenmw._tokens import count_cache as _text_cache
from tokenmw._tokens.count_cache import INLINE_ENCODE_LIMIT, INLINE_HASH_LIMIT, TokenCache, cache_for
from tokenmw._tokens.encodings import encoding_for

ENCODING = encoding_for("gpt-4o")


def fresh(words: int = 20) -> str:
    """Text no other test has counted (the cache is process-wide)."""
    tag = uuid.uuid4().hex
    return " ".join(f"{tag[i % 32]}word{i}" for i in range(words)) + f" {tag}"


def true_count(text: str) -> int:
    return len(ENCODING.encode_ordinary(text))


def test_cache_for_is_shared_per_encoding() -> None:
    assert cache_for(ENCODING) is cache_for(encoding_for("gpt-4o-mini"))
    assert cache_for(ENCODING) is not cache_for(encoding_for("gpt-4"))


def test_a_text_is_encoded_once() -> None:
    cache = TokenCache(ENCODING)
    text = fresh()
    assert cache.get(text) is None
    assert cache.count(text) == true_count(text)
    assert cache.count(text) == true_count(text)
    assert cache.count_all([text, text, text]) == 3 * true_count(text)
    assert cache.encode_calls == 1
    assert cache.get(text) == true_count(text)
    assert cache.count(str(text + " ")[:-1]) == true_count(text)  # equal content, other object
    assert cache.encode_calls == 1


def test_clear_forgets() -> None:
    cache = TokenCache(ENCODING)
    cache.count(fresh())
    cache.clear()
    assert len(cache) == 0
    assert cache.encode_calls == 0


def test_eviction_keeps_the_cache_bounded_and_counts_right() -> None:
    cache = TokenCache(ENCODING, max_entries=8)
    texts = [fresh(5) for _ in range(30)]
    assert cache.count_all(texts) == sum(true_count(t) for t in texts)
    assert len(cache) <= 8
    assert cache.count_all(texts) == sum(true_count(t) for t in texts)


async def test_async_counts_equal_sync_counts_on_both_paths() -> None:
    cache = TokenCache(ENCODING)
    small = [fresh(10) for _ in range(5)]
    medium = fresh(INLINE_ENCODE_LIMIT // 5)  # over the inline limit: worker
    huge = fresh(INLINE_HASH_LIMIT // 5)  # not even hashed on the loop
    assert len(medium) > INLINE_ENCODE_LIMIT and len(huge) > INLINE_HASH_LIMIT
    texts = [*small, medium, huge, medium]  # a duplicate too
    expected = sum(true_count(t) for t in texts)
    assert await cache.count_all_async(texts) == expected
    assert cache.encode_calls == len(small) + 2
    assert await cache.count_all_async(texts) == expected
    assert cache.encode_calls == len(small) + 2
    assert cache.count_all(texts) == expected


class _RecordingCache(TokenCache):
    """Notes which thread ran the worker part (instrumentation, not a stand-in)."""

    __slots__ = ("threads",)

    def __init__(self) -> None:
        super().__init__(ENCODING)
        self.threads: list[str] = []

    def _count_claiming(self, missing: Any) -> Any:
        self.threads.append(threading.current_thread().name)
        return super()._count_claiming(missing)


async def test_large_uncounted_text_is_encoded_off_the_event_loop() -> None:
    cache = _RecordingCache()
    small = fresh(50)
    assert await cache.count_all_async([small]) == true_count(small)
    assert cache.threads == []  # small text: inline
    big = fresh(INLINE_ENCODE_LIMIT // 4)
    assert await cache.count_all_async([big]) == true_count(big)
    assert len(cache.threads) == 1
    assert cache.threads[0].startswith("tokenmw-count")
    assert cache.threads[0] != threading.current_thread().name


async def test_concurrent_calls_missing_on_one_text_encode_it_once() -> None:
    cache = TokenCache(ENCODING)
    shared = fresh(INLINE_HASH_LIMIT // 5)
    copies = [str(shared + "x")[:-1] for _ in range(20)]  # equal text, distinct objects
    results = await asyncio.gather(*(cache.count_all_async([c]) for c in copies))
    assert results == [true_count(shared)] * 20
    assert cache.encode_calls == 1


def test_threads_counting_at_once_get_right_totals() -> None:
    cache = TokenCache(ENCODING)
    texts = [fresh(30) for _ in range(50)]
    expected = sum(true_count(t) for t in texts)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: cache.count_all(texts), range(32)))
    assert results == [expected] * 32
    assert len(cache) == 50
    assert 50 <= cache.encode_calls <= 50 * 8  # racing misses may both encode; never lost


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4"])
@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain words",
        "special <|endoftext|> and <|fim_prefix|> <|im_start|> syntax",
        "lone \ud800 surrogates \udfff here",
        "日本語のテキストと emoji 🎉 mixed",
        "x" * 50_000,
    ],
)
def test_worker_encode_equals_encode_ordinary(model: str, text: str) -> None:
    encoding = encoding_for(model)
    assert _text_cache._encode_len_in_worker(encoding, text) == _text_cache._encode_len(encoding, text)
    assert _text_cache._encode_len(encoding, text) == len(encoding.encode_ordinary(text))


async def test_agent_loop_encodes_only_new_messages() -> None:
    """100 turns, each re-sending the whole history: encodes grow with new messages only."""
    cache = cache_for(ENCODING)
    cache.count_all(["system", "user", "assistant"])  # roles: counted by whatever ran before
    system = {"role": "system", "content": fresh(200)}
    history: list[dict[str, Any]] = [system]
    seen: set[str] = set()
    expected_total = 0
    for turn in range(100):
        user = {"role": "user", "content": fresh(30)}
        history.append(user)
        new_texts = {m["content"] for m in history} - seen
        seen |= new_texts
        before = cache.encode_calls
        call = Call({"model": "gpt-4o", "messages": list(history)}, "chat")
        counted = await call.input_tokens()
        assert cache.encode_calls - before == len(new_texts), f"turn {turn}"
        # Asking again, or for the request as the caller made it, encodes nothing.
        call.snapshot_original()
        assert await call.input_tokens() == counted
        assert await call.original_input_tokens() == counted
        assert cache.encode_calls - before == len(new_texts)
        expected_total = (
            3 * len(history) + 3 + sum(true_count(m["role"]) + true_count(m["content"]) for m in history)
        )
        assert counted == expected_total
        reply = {"role": "assistant", "content": fresh(40)}
        history.append(reply)
    assert expected_total > 5000
