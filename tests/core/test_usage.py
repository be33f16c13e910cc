"""``mw.usage``: exact totals under concurrency, per-model breakdown, costs, reported usage."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

from tokenmw._core.call import CallUsage
from tokenmw._core.usage import ModelUsage, Usage
from tokenmw._tokens import prices as _prices


def call_usage(i: int = 1, *, reported: bool = True, estimated: bool = False) -> CallUsage:
    return CallUsage(
        input_tokens_original=100 + i,
        input_tokens_sent=80 + i,
        input_tokens_reported=(82 + i) if reported else None,
        output_tokens=10 + i,
        output_tokens_estimated=estimated,
        cached_input_tokens=i % 3,
        reasoning_tokens=i % 2,
    )


def expected_totals(n: int) -> dict[str, int]:
    return {
        "calls": n,
        "input_tokens_original": sum(100 + i for i in range(n)),
        "input_tokens_sent": sum(80 + i for i in range(n)),
        "input_tokens_saved": 20 * n,
        "input_tokens_reported": sum(82 + i for i in range(n)),
        "output_tokens": sum(10 + i for i in range(n)),
        "cached_input_tokens": sum(i % 3 for i in range(n)),
        "reasoning_tokens": sum(i % 2 for i in range(n)),
    }


def totals(u: ModelUsage) -> dict[str, int]:
    return {name: getattr(u, name) for name in expected_totals(0)}


def test_record_sums_every_field() -> None:
    usage = Usage()
    for i in range(5):
        usage.record("gpt-4o-mini", call_usage(i))
    assert totals(usage) == expected_totals(5)
    assert totals(usage.by_model["gpt-4o-mini"]) == expected_totals(5)


def test_exact_after_500_concurrent_records_from_threads() -> None:
    usage = Usage()
    barrier = threading.Barrier(16)

    def work(i: int) -> None:
        if i < 16:
            barrier.wait()  # start together
        usage.record("gpt-4o" if i % 2 else "gpt-4o-mini", call_usage(i))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(work, range(500)))
    assert totals(usage) == expected_totals(500)
    assert usage.by_model["gpt-4o"].calls + usage.by_model["gpt-4o-mini"].calls == 500
    per_model = [totals(m) for m in usage.by_model.values()]
    assert {k: sum(m[k] for m in per_model) for k in per_model[0]} == expected_totals(500)


async def test_exact_after_500_concurrent_records_from_asyncio() -> None:
    usage = Usage()

    async def one(i: int) -> None:
        await asyncio.sleep(0)
        if i % 2:
            await asyncio.to_thread(usage.record, "gpt-4o", call_usage(i))  # mixed with threads
        else:
            usage.record("gpt-4o", call_usage(i))

    await asyncio.gather(*(one(i) for i in range(500)))
    assert totals(usage) == expected_totals(500)
    assert usage.as_dict()["calls"] == 500


def test_calls_without_local_counts_do_not_skew_savings() -> None:
    usage = Usage()
    usage.record("gpt-4o", CallUsage(input_tokens_reported=50, output_tokens=5))
    usage.record("gpt-4o", CallUsage(input_tokens_original=100, input_tokens_sent=70))
    assert usage.calls == 2
    assert usage.input_tokens_saved == 30
    assert usage.input_tokens_reported == 50
    assert usage.input_tokens_billed == 50 + 70  # reported where known, else counted
    assert usage.output_tokens == 5


def test_estimated_output_is_tracked_apart() -> None:
    usage = Usage()
    usage.record("gpt-4o", call_usage(1, estimated=True))
    usage.record("gpt-4o", call_usage(2))
    assert usage.output_tokens == 11 + 12
    assert usage.output_tokens_counted_locally == 11
    assert usage.by_model["gpt-4o"].output_tokens_counted_locally == 11


def test_unknown_model_is_grouped() -> None:
    usage = Usage()
    usage.record(None, call_usage())
    assert list(usage.by_model) == ["unknown"]


def price_table() -> dict[str, Any]:
    path = _prices.price_file()
    assert path is not None, "litellm's price table should be installed"
    return json.loads(path.read_text())


def test_cost_from_litellm_price_table() -> None:
    table = price_table()
    usage = Usage()
    usage.record(
        "gpt-4o-mini", CallUsage(input_tokens_reported=1000, output_tokens=200, cached_input_tokens=400)
    )
    usage.record("gpt-4o", CallUsage(input_tokens_reported=10, output_tokens=1))
    mini, big = table["gpt-4o-mini"], table["gpt-4o"]
    mini_cost = (
        600 * mini["input_cost_per_token"]
        + 400 * mini["cache_read_input_token_cost"]
        + 200 * mini["output_cost_per_token"]
    )
    big_cost = 10 * big["input_cost_per_token"] + 1 * big["output_cost_per_token"]
    assert usage.by_model["gpt-4o-mini"].cost_usd == pytest.approx(mini_cost)
    assert usage.cost_usd == pytest.approx(mini_cost + big_cost)
    snapshot = usage.as_dict()
    assert snapshot["cost_usd"] == pytest.approx(mini_cost + big_cost)
    assert snapshot["by_model"]["gpt-4o"]["cost_usd"] == pytest.approx(big_cost)


def test_unpriced_models_have_no_cost() -> None:
    usage = Usage()
    usage.record("my-local-llama", call_usage())
    assert usage.by_model["my-local-llama"].cost_usd is None
    assert usage.cost_usd is None
    usage.record("gpt-4o", call_usage())
    assert usage.cost_usd == usage.by_model["gpt-4o"].cost_usd


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("gpt-4o", "gpt-4o"),
        ("openai/gpt-4o", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18"),
        ("gpt-4o-mini-2099-01-01", "gpt-4o-mini"),  # a date the table does not know yet
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "ft:gpt-4o-mini-2024-07-18"),
        ("GPT-4o", "gpt-4o"),
    ],
)
def test_price_lookup_names(model: str, key: str) -> None:
    entry = price_table()[key]
    price = _prices.price_for(model)
    assert price is not None
    assert price.input == entry["input_cost_per_token"]
    assert price.max_input_tokens == entry["max_input_tokens"]


def test_context_windows() -> None:
    assert _prices.context_window("gpt-4o") == 128_000
    assert _prices.context_window("gpt-4") == 8192
    assert _prices.context_window("my-local-llama") is None
    assert _prices.context_window(None) is None


async def test_context_window_async() -> None:
    assert await _prices.context_window_async("gpt-4o-mini") == 128_000


def test_prices_never_import_litellm() -> None:
    code = (
        "import sys, tokenmw._tokens.prices as p; assert p.price_for('gpt-4o') is not None; "
        "assert 'litellm' not in sys.modules, 'litellm was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- usage the API reports -----------------------------------------------------------------------


def test_reported_usage_from_a_chat_completion() -> None:
    response = ChatCompletion.model_validate(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o",
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}
            ],
            "usage": {
                "prompt_tokens": 120,
                "completion_tokens": 30,
                "total_tokens": 150,
                "prompt_tokens_details": {"cached_tokens": 64},
                "completion_tokens_details": {"reasoning_tokens": 12},
            },
        }
    )
    u = CallUsage(output_tokens=5, output_tokens_estimated=True)
    assert u.record_reported(response)
    assert (u.input_tokens_reported, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens) == (
        120,
        30,
        64,
        12,
    )
    assert not u.output_tokens_estimated


def test_reported_usage_from_a_responses_response() -> None:
    response = Response.model_validate(
        {
            "id": "r1",
            "object": "response",
            "created_at": 0,
            "model": "gpt-4o",
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": 40,
                "output_tokens": 9,
                "total_tokens": 49,
                "input_tokens_details": {"cached_tokens": 8, "cache_write_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 3},
            },
        }
    )
    u = CallUsage()
    assert u.record_reported(response)
    assert (u.input_tokens_reported, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens) == (
        40,
        9,
        8,
        3,
    )
    # A stream's final event carries the response.
    u2 = CallUsage()
    assert u2.record_reported({"type": "response.completed", "response": response})
    assert u2.output_tokens == 9


def test_reported_usage_from_stream_chunks() -> None:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o"}
    text_chunk = ChatCompletionChunk.model_validate(
        {**base, "choices": [{"index": 0, "delta": {"content": "hi"}}], "usage": None}
    )
    usage_chunk = ChatCompletionChunk.model_validate(
        {**base, "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}}
    )
    u = CallUsage()
    assert not u.record_reported(text_chunk)
    assert u.output_tokens is None
    assert u.record_reported(usage_chunk)
    assert (u.input_tokens_reported, u.output_tokens) == (7, 2)


@pytest.mark.parametrize("obj", [None, {}, {"usage": None}, {"usage": {}}, object(), "text"])
def test_no_usage_found(obj: Any) -> None:
    u = CallUsage()
    assert not u.record_reported(obj)
    assert u == CallUsage()


# -- issue 11, defect 5: a wrap hook that sends more than once ---------------------------------------


class _SendTwice:
    """A hedging/retrying wrap hook: two model requests in one call, either one returned."""

    @staticmethod
    def make(concurrent: bool) -> Any:
        import tokenmw

        class SendTwice(tokenmw.Hook):
            name = "send_twice"

            async def wrap(self, call: Any, call_next: Any) -> Any:
                if concurrent:
                    first, _ = await asyncio.gather(call_next(call), call_next(call))
                    return first
                await call_next(call)  # a "retry" whose first answer is thrown away
                return await call_next(call)

        return SendTwice()


@pytest.mark.parametrize("concurrent", [False, True], ids=["retry", "hedge"])
@pytest.mark.parametrize("operation", ["chat", "responses"])
async def test_every_billed_response_is_recorded(live_server: Any, concurrent: bool, operation: str) -> None:
    import openai

    import tokenmw

    mw = tokenmw.Middleware([_SendTwice.make(concurrent), tokenmw.CountTokens()])
    raw = openai.AsyncOpenAI(api_key="k", base_url=live_server.base_url, max_retries=0)
    client = mw.wrap(raw)
    if operation == "chat":
        resp: Any = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Say something."}]
        )
        billed_in, billed_out = resp.usage.prompt_tokens, resp.usage.completion_tokens
    else:
        resp = await client.responses.create(model="gpt-4o-mini", input="Say something.")
        billed_in, billed_out = resp.usage.input_tokens, resp.usage.output_tokens
    await raw.close()
    assert len(live_server.requests) == 2  # the server billed two requests
    usage = mw.usage
    assert usage.calls == 1
    assert usage.input_tokens_reported == 2 * billed_in
    assert usage.output_tokens == 2 * billed_out
    assert usage.requests == 2
    assert usage.input_tokens_sent == usage.input_tokens_original > 0
