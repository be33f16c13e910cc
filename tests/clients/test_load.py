"""Load: 1,000 concurrent calls on one wrapped AsyncOpenAI, 16 threads on one wrapped OpenAI.

Every call must get its own answer (the response id the server gave *its* request, the reply text
for *its* seed), ``mw.usage`` must equal what the server billed (its own count, so a local count
stored in the API's place fails), and tokenmw's caches must stay within their bounds (lowered here
so that the load overflows them). Loopback only; bounded in time by a hang guard, never asserted
on speed (the event-loop stall figure is ``benchmarks/bench_load.py``'s).
"""

from __future__ import annotations

import asyncio
import resource
import threading
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from tokenmw import Compress, CountTokens, Enhance, LimitResponse, Middleware
from tokenmw._compress import text as compress_text
from tokenmw._tokens.count_cache import TokenCache, cache_for
from tokenmw._tokens.counting import count_request
from tokenmw._tokens.encodings import encoding_for
from tokenmw.server import EmbeddedServer
from tokenmw.server._reply import reply_text
from tokenmw.telemetry import _spans as tel

from .._billed import billed

MODEL = "gpt-4o-mini"
WORDS = 12
"""Replies shorter than LimitResponse's cap, so each caller's text is its seed's whole reply."""
CALLS = 1000
THREADS = 16
CALLS_PER_THREAD = 20
HANG_GUARD_S = 300
TOKEN_CACHE_BOUND = 300
COMPRESS_CACHE_BOUND = 200
SHARED_DOC = "\n".join(
    f"Section {i}: the quarterly report lists revenue, costs and risks in detail." for i in range(60)
)


@pytest.fixture
def load_server() -> Iterator[EmbeddedServer]:
    # Its own server: the shared one keeps 1,000 records, fewer than this test makes.
    with EmbeddedServer(port=0, reply_words=WORDS, max_records=4 * CALLS) as server:
        assert server.base_url.startswith("http://127.0.0.1:")  # loopback only
        yield server


@pytest.fixture
def small_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[TokenCache]:
    """Cache bounds low enough for this load to overflow them."""
    cache = cache_for(encoding_for(MODEL))
    monkeypatch.setattr(cache, "max_entries", TOKEN_CACHE_BOUND)
    monkeypatch.setattr(compress_text, "MAX_ENTRIES", COMPRESS_CACHE_BOUND)
    yield cache


def middleware() -> Middleware:
    return Middleware([Compress(), Enhance(max_words=40), LimitResponse(max_tokens=60), CountTokens()])


def seed(i: int) -> str:
    return f"call-{i}"


def request_for(i: int) -> tuple[str, dict[str, Any]]:
    """Call ``i``: chat or Responses, a third streamed, some with the long shared document."""
    question = f"Question {seed(i)}: what does line {i} of the report say?"
    stream = i % 3 == 0
    headers = {"x-tokenmw-seed": seed(i)}
    if i % 2 == 0:
        messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
        if i % 4 == 0:
            messages.insert(0, {"role": "system", "content": SHARED_DOC})
        request: dict[str, Any] = {"model": MODEL, "messages": messages, "extra_headers": headers}
        if stream:
            request["stream"] = True
            if i % 4 == 0:
                request["stream_options"] = {"include_usage": True}
        return "chat", request
    request = {"model": MODEL, "input": question, "extra_headers": headers}
    if i % 5 == 0:
        request["instructions"] = SHARED_DOC
    if stream:
        request["stream"] = True
    return "responses", request


def check_answers(server: EmbeddedServer, answers: dict[int, tuple[str, str]], mw: Middleware) -> None:
    """Each call got the answer the server made for its own request; usage is what was billed."""
    by_seed = {r.headers.get("x-tokenmw-seed"): r for r in server.requests}
    assert len(server.requests) == len(answers)  # nothing sent twice, nothing dropped
    for i, (response_id, text) in answers.items():
        record = by_seed[seed(i)]
        assert record.billed is not None
        assert record.billed.response_id == response_id, i
        assert text == reply_text(WORDS, seed(i)), i
        assert seed(i) in str(record.body)
    totals = billed(server.requests)
    assert mw.usage.calls == len(answers)
    assert mw.usage.input_tokens_reported == totals.input_tokens_reported
    assert mw.usage.output_tokens == totals.output_tokens  # reported, or counted locally on streams
    sent = sum(
        count_request("chat" if "messages" in r.body else "responses", r.body)[0] for r in server.requests
    )
    assert mw.usage.input_tokens_sent == sent
    assert mw.usage.input_tokens_reported != sum(
        count_request("chat" if "messages" in r.body else "responses", r.body)[0]
        for r in server.requests
        if r.billed is not None and r.billed.reported
    )


def check_bounds(cache: TokenCache, label: str) -> None:
    held = sum(len(c) for c in compress_text._caches.values())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\n{label}: token cache {len(cache)} entries (bound {TOKEN_CACHE_BOUND}), compress caches "
        f"{held} entries (bound {COMPRESS_CACHE_BOUND} each) holding {compress_text._held_chars} chars "
        f"(bound {compress_text.MAX_CHARS}), peak RSS {rss_mb:.0f} MB"
    )
    assert len(cache) <= TOKEN_CACHE_BOUND
    assert all(len(c) <= COMPRESS_CACHE_BOUND for c in compress_text._caches.values())
    assert compress_text._held_chars <= compress_text.MAX_CHARS
    assert tel._calls == {} and tel._hooks == {}  # no span left open


async def one_async(client: openai.AsyncOpenAI, i: int) -> tuple[int, tuple[str, str]]:
    operation, request = request_for(i)
    if operation == "chat":
        result = await client.chat.completions.create(**request)
        if request.get("stream"):
            chunks = [c async for c in result]
            return i, (chunks[0].id, "".join(c.choices[0].delta.content or "" for c in chunks if c.choices))
        return i, (result.id, result.choices[0].message.content or "")
    result = await client.responses.create(**request)
    if request.get("stream"):
        events = [e async for e in result]
        return i, (events[-1].response.id, events[-1].response.output_text)
    return i, (result.id, result.output_text)


def one_sync(client: openai.OpenAI, i: int) -> tuple[str, str]:
    operation, request = request_for(i)
    if operation == "chat":
        result = client.chat.completions.create(**request)
        if request.get("stream"):
            chunks = list(result)
            return chunks[0].id, "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return result.id, result.choices[0].message.content or ""
    result = client.responses.create(**request)
    if request.get("stream"):
        events = list(result)
        return events[-1].response.id, events[-1].response.output_text
    return result.id, result.output_text


async def test_thousand_concurrent_async_calls(load_server: EmbeddedServer, small_caches: TokenCache) -> None:
    mw = middleware()
    limits = httpx2.Limits(max_connections=64, max_keepalive_connections=64)
    raw = openai.AsyncOpenAI(
        api_key="k",
        base_url=load_server.base_url,
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(limits=limits),
    )
    client = mw.wrap(raw)
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(one_async(client, i) for i in range(CALLS))), HANG_GUARD_S
        )
    finally:
        await raw.close()
    answers = dict(results)
    assert len(answers) == CALLS
    assert sum(1 for r in load_server.streams if r.completed) == len(range(0, CALLS, 3))
    check_answers(load_server, answers, mw)
    check_bounds(small_caches, f"{CALLS} async calls")


def test_sixteen_threads_share_one_sync_client(load_server: EmbeddedServer, small_caches: TokenCache) -> None:
    mw = middleware()
    raw = openai.OpenAI(api_key="k", base_url=load_server.base_url, max_retries=0)
    client = mw.wrap(raw)
    answers: dict[int, tuple[str, str]] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def work(t: int) -> None:
        start.wait()
        for k in range(CALLS_PER_THREAD):
            i = t * CALLS_PER_THREAD + k
            try:
                answer = one_sync(client, i)
            except BaseException as exc:  # reported below, with the call that failed
                with lock:
                    errors.append(exc)
                return
            with lock:
                answers[i] = answer

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_GUARD_S)
    raw.close()
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    assert errors == []
    assert len(answers) == THREADS * CALLS_PER_THREAD
    check_answers(load_server, answers, mw)
    check_bounds(small_caches, f"{THREADS} threads x {CALLS_PER_THREAD} sync calls")
