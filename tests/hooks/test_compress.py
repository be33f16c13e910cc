"""``Compress`` as a hook: on a ``Call`` built by hand, then end to end through a real client."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tokenmw import Call, Middleware
from tokenmw._compress import clear_cache, compress_chat
from tokenmw._compress import text as text_module
from tokenmw._tokens.counting import count_request
from tokenmw.hooks.compress import OFFLOAD_CHARS, Compress, _new_chars
from tokenmw.server import EmbeddedServer

from .._otel import sdk_on

DATA = Path(__file__).parents[1] / "data"


def corpus(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def chat_call(body: dict[str, Any]) -> Call:
    return Call(dict(body), "chat")


async def test_short_request_below_min_tokens_is_untouched() -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "What   is 2 + 2?  "}]}
    call = chat_call(body)
    await Compress().before(call)
    assert call.request["messages"] is body["messages"]
    assert "compress" not in call.state
    await Compress(min_tokens=0).before(call)
    assert call.request["messages"][0]["content"] == "What is 2 + 2?"


async def test_large_request_is_compressed_and_the_caller_keeps_its_objects() -> None:
    body = corpus("agent_loop_k8s.json")
    pristine = copy.deepcopy(body)
    call = chat_call(body)
    before = count_request("chat", body)[0]
    assert before > 256
    await Compress().before(call)
    assert body == pristine
    assert call.request["messages"] is not body["messages"]
    assert count_request("chat", call.request)[0] < before * 0.6
    assert call.request["tools"] is body["tools"]
    for old, new in zip(body["messages"], call.request["messages"], strict=True):
        if old.get("tool_calls"):
            assert new["tool_calls"] is old["tool_calls"]


def test_constructor_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="level"):
        Compress(level="extreme")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Compress(min_tokens=-1)
    with pytest.raises(ValueError):
        Compress(max_input_tokens=0)


async def test_malformed_requests_are_left_for_the_api_to_reject() -> None:
    for request in ({"model": "gpt-4o", "messages": "hello   there"}, {"model": "gpt-4o"}):
        call = chat_call(request)
        await Compress(min_tokens=0).before(call)
        assert call.request == request
    call = Call({"model": "gpt-4o", "input": 42}, "responses")
    await Compress(min_tokens=0).before(call)
    assert call.request == {"model": "gpt-4o", "input": 42}


async def test_responses_request_is_compressed() -> None:
    body = corpus("responses_agent.json")
    call = Call(dict(body), "responses")
    await Compress(min_tokens=0).before(call)
    assert call.request["tools"] is body["tools"]
    assert "\n\n\n" not in call.request["instructions"]
    assert count_request("responses", call.request)[0] < count_request("responses", body)[0] * 0.7
    outputs = [i for i in call.request["input"] if i.get("type") == "function_call_output"]
    assert outputs[2]["output"] == "[identical to input item 3 above; omitted]"


async def test_span_carries_tokens_before_after_and_saved() -> None:
    sdk_on()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    body = corpus("agent_loop_coding.json")
    call = chat_call(body)
    with provider.get_tracer("test").start_as_current_span("tokenmw.compress.before"):
        await Compress().before(call)
    (span,) = exporter.get_finished_spans()
    attrs = span.attributes or {}
    assert attrs["tokenmw.tokens.before"] == count_request("chat", body)[0]
    assert attrs["tokenmw.tokens.after"] == count_request("chat", call.request)[0]
    assert attrs["tokenmw.tokens.saved"] == attrs["tokenmw.tokens.before"] - attrs["tokenmw.tokens.after"] > 0
    assert attrs["tokenmw.compress.duplicates"] == 3  # two whole tool outputs, one run of lines
    assert attrs["tokenmw.compress.fallback"] is False


async def test_failed_check_sends_the_original_text_and_marks_the_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clear_cache()
    # A broken rule that eats digits: the check catches it and the text goes out as it was.
    monkeypatch.setattr(text_module, "normalize_prose", lambda t, odd=True: t.replace("4", ""))
    sdk_on()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    text = "Retry   4 times before giving up.  " * 40
    call = chat_call({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
    with provider.get_tracer("test").start_as_current_span("tokenmw.compress.before"):
        await Compress().before(call)
    assert call.request["messages"][0]["content"] == text
    attrs = exporter.get_finished_spans()[0].attributes or {}
    assert attrs["tokenmw.compress.fallback"] is True
    assert attrs["tokenmw.compress.fallbacks"] == "number"
    assert attrs["tokenmw.tokens.saved"] == 0
    clear_cache()


# -- trimming to a budget --------------------------------------------------------------------------


def tool_pairs_intact(messages: list[dict[str, Any]]) -> bool:
    calls = {c["id"] for m in messages for c in m.get("tool_calls") or ()}
    results = {m["tool_call_id"] for m in messages if m.get("role") == "tool"}
    return calls == results


async def test_trimming_keeps_system_first_user_and_tool_pairs_and_fits_the_budget() -> None:
    body = corpus("agent_loop_k8s.json")
    assert tool_pairs_intact(body["messages"])
    call = chat_call(body)
    await Compress(max_input_tokens=2500).before(call)
    kept = call.request["messages"]
    assert kept[0] == {"role": "system", "content": kept[0]["content"]}
    assert kept[1]["content"].startswith("Alert CheckoutPodNotReady")
    assert kept[-1]["content"] == body["messages"][-1]["content"].replace("  ", " ")
    assert len(kept) < len(body["messages"])
    assert tool_pairs_intact(kept)
    assert count_request("chat", call.request)[0] <= 2500
    assert call.state["compress"].dropped == len(body["messages"]) - len(kept)


async def test_trim_point_stays_put_while_the_conversation_grows() -> None:
    body = corpus("support_chat_long.json")
    budget = 900
    kept_prefixes = []
    history = list(body["messages"])
    for turn in range(4):
        call = chat_call({**body, "messages": history})
        await Compress(max_input_tokens=budget).before(call)
        kept = call.request["messages"]
        assert count_request("chat", call.request)[0] <= budget
        kept_prefixes.append(kept[:3])
        history = [
            *history,
            {"role": "assistant", "content": f"Answer {turn}: done."},
            {"role": "user", "content": f"Follow-up {turn}?"},
        ]
    assert all(p == kept_prefixes[0] for p in kept_prefixes)  # the same cut: the cached prefix holds


async def test_no_trim_when_under_budget() -> None:
    body = corpus("support_chat_long.json")
    call = chat_call(body)
    await Compress(max_input_tokens=100_000).before(call)
    assert len(call.request["messages"]) == len(body["messages"])
    assert call.state["compress"].dropped == 0


async def test_dedup_marker_after_trimming_names_the_message_as_sent() -> None:
    big = ("Tool output line with some data 12345 and more words here.\n" * 8).strip()
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "task"},
        {"role": "assistant", "content": "filler " * 300},
        {"role": "user", "content": "x " * 300},
        {"role": "assistant", "content": big},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": big},
    ]
    call = chat_call({"model": "gpt-4o", "messages": messages})
    await Compress(min_tokens=0, max_input_tokens=400).before(call)
    sent = call.request["messages"]
    assert call.state["compress"].drop == range(2, 4)
    assert sent[2]["content"] == big
    assert sent[4]["content"] == "[identical to message 3 above; omitted]"
    # A later turn with the same cut sends the same prefix, marker included.
    later = [*messages, {"role": "user", "content": "more"}, {"role": "assistant", "content": big}]
    call = chat_call({"model": "gpt-4o", "messages": later})
    await Compress(min_tokens=0, max_input_tokens=400).before(call)
    assert call.request["messages"][:5] == sent
    assert call.request["messages"][6]["content"] == "[identical to message 3 above; omitted]"


# -- end to end -------------------------------------------------------------------------------------


async def test_server_receives_the_compressed_request(
    live_server: EmbeddedServer, async_client: openai.AsyncOpenAI
) -> None:
    body = corpus("agent_loop_k8s.json")
    client = Middleware([Compress()]).wrap(async_client)
    await client.chat.completions.create(model=body["model"], messages=body["messages"], tools=body["tools"])
    sent = live_server.requests[-1].body
    assert sent["tools"] == body["tools"]
    assert len(sent["messages"]) == len(body["messages"])
    assert sent["messages"][11]["content"] == "[identical to message 4 above; omitted]"
    assert json.loads(sent["messages"][3]["content"]) == json.loads(body["messages"][3]["content"])
    assert count_request("chat", sent)[0] < count_request("chat", body)[0] * 0.6


def test_sync_client_sends_the_compressed_request(
    live_server: EmbeddedServer, sync_client: openai.OpenAI
) -> None:
    client = Middleware([Compress(min_tokens=0)]).wrap(sync_client)
    client.responses.create(
        model="gpt-4o-mini", input="Summarise   this,   please.  ", instructions="Be   brief."
    )
    sent = live_server.requests[-1].body
    assert sent["input"] == "Summarise this, please."
    assert sent["instructions"] == "Be brief."


async def test_responses_trimming_keeps_instructions_and_call_output_pairs() -> None:
    body = corpus("responses_agent.json")
    call = Call(dict(body), "responses")
    await Compress(max_input_tokens=700).before(call)
    items = call.request["input"]
    assert call.request["instructions"].startswith("You are a travel-desk agent")
    assert items[0]["content"].startswith("I need to be in San Francisco")
    assert items[-1]["content"] == [
        {
            "type": "input_text",
            "text": "Yes, but I'd rather take LX 38 — it leaves later. Is that within policy?",
        }
    ]
    calls = {i["call_id"] for i in items if i.get("type") == "function_call"}
    outputs = {i["call_id"] for i in items if i.get("type") == "function_call_output"}
    assert calls == outputs
    assert call.state["compress"].dropped > 0
    assert count_request("responses", call.request)[0] <= 700


class _ThreadSpy:
    """Records the thread each ``compress_chat`` runs on (the real function does the work)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import threading

        from tokenmw.hooks import compress as hook_module

        self.threads: list[str] = []
        real = hook_module.compress_chat

        def spy(*args: Any, **kwargs: Any) -> Any:
            self.threads.append(threading.current_thread().name)
            return real(*args, **kwargs)

        monkeypatch.setattr(hook_module, "compress_chat", spy)


def _long_rag_request(seed: int) -> list[dict[str, Any]]:
    body = corpus("rag_multi_docs.json")
    docs = "\n\n".join(
        f"Document {seed}.{i}: " + json.dumps(body["messages"], indent=2) for i in range(12)
    )
    return [{"role": "system", "content": "Answer from the documents."}, {"role": "user", "content": docs}]


async def test_a_long_new_text_is_compressed_off_the_event_loop(
    live_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_cache()
    spy = _ThreadSpy(monkeypatch)
    mw = Middleware([Compress()])
    client = mw.wrap(openai.AsyncOpenAI(api_key="k", base_url=live_server.base_url, max_retries=0))
    messages = _long_rag_request(1)
    assert len(messages[1]["content"]) > 32_768
    await client.chat.completions.create(model="gpt-4o-mini", messages=copy.deepcopy(messages))
    sent_first = live_server.requests[-1].body["messages"]
    await client.chat.completions.create(model="gpt-4o-mini", messages=copy.deepcopy(messages))
    short = [{"role": "user", "content": "hi " * 400}]
    await client.chat.completions.create(model="gpt-4o-mini", messages=short)
    # New long text: a worker; the same text again (cached) and a short one: on the loop.
    assert spy.threads[0].startswith("tokenmw-count")
    assert not spy.threads[1].startswith("tokenmw-count")
    assert not spy.threads[2].startswith("tokenmw-count")
    # Off the loop or on it, the same bytes go out.
    assert live_server.requests[-2].body["messages"] == sent_first
    assert len(sent_first[1]["content"]) < len(messages[1]["content"])


def test_a_sync_client_compresses_inline(
    live_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    clear_cache()
    spy = _ThreadSpy(monkeypatch)
    client = Middleware([Compress()]).wrap(
        openai.OpenAI(api_key="k", base_url=live_server.base_url, max_retries=0)
    )
    client.chat.completions.create(model="gpt-4o-mini", messages=_long_rag_request(2))
    assert spy.threads == [threading.current_thread().name]


def test_a_remembered_history_is_not_new_text_after_the_text_cache_is_emptied() -> None:
    # Re-sent messages are found by their remembered steps, never by the text cache again: when
    # that cache is emptied (it ages faster), the history must not count as new, or every later
    # turn of a long history would go to the worker pool.
    clear_cache()
    line = "the pallet count was checked against the manifest. "
    roles = ("assistant", "user")
    messages = [{"role": roles[i % 2], "content": f"Step {i}: " + line * 30} for i in range(40)]
    assert sum(len(m["content"]) for m in messages) > OFFLOAD_CHARS
    compress_chat(messages, "safe")
    text_module.clear_cache()
    assert _new_chars({"messages": messages}, "safe") == 0
