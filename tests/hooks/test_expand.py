"""Reversible compression end to end: the real openai client, the embedded server acting as a model
that calls ``tokenmw_expand`` for every ref it sees (``x-tokenmw-expand-refs``)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import openai
import pytest

import tokenmw
from tokenmw._compress import clear_cache, compress_text, refs
from tokenmw.server import EmbeddedServer
from tokenmw.telemetry import _semconv as sc

from .._otel import Capture, capture

MODEL = "gpt-4o-mini"
HEADERS = {"x-tokenmw-expand-refs": "1"}
_REF = re.compile(r"ref=([a-z2-7]+)")


def job_log(block: int = 0, needle: int = 31) -> str:
    """A tool output whose similar lines collapse; one line (the slow job) is in the elided part."""
    lines = []
    for i in range(60):
        ms = 99_000 + block if i == needle else 100 + i
        lines.append(f"2025-03-0{block + 1} 12:00:{i:02d} INFO job {4000 + i} finished in {ms} ms")
    return "\n".join(lines)


def conversation(log: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are an operations assistant. Answer from the logs."},
        {"role": "user", "content": "Which job was slowest today?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_log", "type": "function", "function": {"name": "read_log", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_log", "content": log},
    ]


class Responses(tokenmw.Hook):
    """Placed after Compress: sees every response the model sent (each send of the loop)."""

    name = "responses_seen"

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def after(self, call: tokenmw.Call, response: Any) -> Any:
        self.seen.append(response)
        return response


class ForgetOriginals(tokenmw.Hook):
    """Placed after Compress: the store loses every original (a restart, an eviction)."""

    name = "forget"

    async def before(self, call: tokenmw.Call) -> None:
        refs.clear()


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    clear_cache()
    refs.clear()
    yield
    clear_cache()
    refs.clear()


@pytest.fixture
def otel() -> Iterator[Capture]:
    cap = capture()
    cap.clear()
    yield cap


def bodies(server: EmbeddedServer, path: str = "/v1/chat/completions") -> list[dict[str, Any]]:
    return [r.body for r in server.requests if r.path == path]


def tool_names(body: dict[str, Any]) -> list[str]:
    out = []
    for tool in body.get("tools") or ():
        out.append(tool["function"]["name"] if "function" in tool else tool["name"])
    return out


def assert_coherent(messages: list[dict[str, Any]]) -> None:
    """Every tool call in the conversation has its result right after its turn."""
    for i, message in enumerate(messages):
        ids = [c["id"] for c in message.get("tool_calls") or ()]
        answered = [m.get("tool_call_id") for m in messages[i + 1 : i + 1 + len(ids)]]
        assert answered == ids, (i, ids, answered)


def mw_with_spy(**kwargs: Any) -> tuple[tokenmw.Middleware, Responses]:
    spy = Responses()
    compress = tokenmw.Compress(level="aggressive", reversible=True, min_tokens=0, **kwargs)
    return tokenmw.Middleware([compress, spy, tokenmw.CountTokens()]), spy


# -- chat completions ------------------------------------------------------------------------------


async def test_chat_expansion_round_trip(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    mw, spy = mw_with_spy()
    client = mw.wrap(async_client.with_options(default_headers=HEADERS))
    log = job_log()
    messages = conversation(log)
    resp = await client.chat.completions.create(model=MODEL, messages=messages)

    first, second = bodies(live_server)
    assert tool_names(first) == ["tokenmw_expand"]
    marker_refs = _REF.findall(first["messages"][-1]["content"])
    assert len(marker_refs) == 1
    assert "99000 ms" not in json.dumps(first)  # the slow job was elided...
    ref = marker_refs[0]
    call_turn, result = second["messages"][-2:]
    assert call_turn["tool_calls"][0]["function"] == {
        "name": "tokenmw_expand",
        "arguments": json.dumps({"ref": ref}),
    }
    assert result["role"] == "tool" and result["tool_call_id"] == call_turn["tool_calls"][0]["id"]
    assert "job 4031 finished in 99000 ms" in result["content"]  # ...and came back in the follow-up
    assert result["content"] in log
    assert second["messages"][:-2] == first["messages"]  # the conversation as the model saw it
    assert_coherent(second["messages"])

    # The caller gets the model's final answer only, as if it had answered directly.
    message = resp.choices[0].message
    assert message.tool_calls is None
    assert resp.choices[0].finish_reason == "stop"
    assert message.content.startswith("From the expanded original: ")
    assert message.content.split(": ", 1)[1].split()[:4] == result["content"].split()[:4]
    assert messages == conversation(log)  # the caller's own history is untouched

    # Both requests billed, both recorded (issue 11, defect 5).
    assert len(spy.seen) == 2
    assert mw.usage.calls == 1
    assert mw.usage.requests == 2
    assert mw.usage.input_tokens_reported == sum(r.usage.prompt_tokens for r in spy.seen)
    assert mw.usage.output_tokens == sum(r.usage.completion_tokens for r in spy.seen)
    sent = [await tokenmw.Call(body, "chat").input_tokens() for body in (first, second)]
    assert mw.usage.input_tokens_sent == sum(sent)
    # Nothing saved is claimed on the follow-up: the saving is net of the expansion.
    original = await tokenmw.Call({"model": MODEL, "messages": messages}, "chat").input_tokens()
    assert mw.usage.input_tokens_original == original
    assert mw.usage.input_tokens_saved == original - sum(sent)


async def test_history_stays_valid_for_the_next_turn(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    mw, _ = mw_with_spy()
    client = mw.wrap(async_client.with_options(default_headers=HEADERS))
    messages = conversation(job_log())
    resp = await client.chat.completions.create(model=MODEL, messages=messages)
    turn2 = [
        *messages,
        resp.choices[0].message.model_dump(exclude_none=True),
        {"role": "user", "content": "And which was the fastest?"},
    ]
    live_server.reset()
    resp2 = await client.chat.completions.create(model=MODEL, messages=turn2)
    first, second = bodies(live_server)
    assert_coherent(first["messages"])
    assert [m["role"] for m in first["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert "tokenmw_expand" not in json.dumps(first["messages"])  # no trace of the earlier detour
    # The old turn compresses to the same bytes, with the same ref: prefix caches are kept.
    assert first["messages"][:4] == mw_request_prefix(messages)
    assert second["messages"][-1]["role"] == "tool"
    assert resp2.choices[0].message.content.startswith("From the expanded original: ")


def mw_request_prefix(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    compressed = compress_text(messages[-1]["content"], "aggressive", tool=True, reversible=True).text
    return [*messages[:-1], {**messages[-1], "content": compressed}]


async def test_max_expansions_is_honoured(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer, otel: Capture
) -> None:
    mw, spy = mw_with_spy(max_expansions=2)
    client = mw.wrap(async_client.with_options(default_headers=HEADERS))
    logs = "\n\nnext host\n\n".join(job_log(block) for block in range(4))
    resp = await client.chat.completions.create(model=MODEL, messages=conversation(logs))
    sent = bodies(live_server)
    assert len(sent) == 3  # the first request and two expansions, no more
    assert len(set(_REF.findall(sent[0]["messages"][-1]["content"]))) == 4
    assert [tool_names(b) for b in sent] == [["tokenmw_expand"], ["tokenmw_expand"], []]
    assert "tools" not in sent[2] and "tool_choice" not in sent[2]
    assert resp.choices[0].message.tool_calls is None
    assert resp.choices[0].message.content.startswith("From the expanded original: ")
    assert len(spy.seen) == 3
    assert mw.usage.requests == 3
    assert mw.usage.input_tokens_reported == sum(r.usage.prompt_tokens for r in spy.seen)

    expands = [s for s in otel.spans() if s.name == sc.SPAN_COMPRESS_EXPAND]
    call_span = otel.span(f"chat {MODEL}")
    assert len(expands) == 2
    assert all(s.parent is not None and s.parent.span_id == call_span.context.span_id for s in expands)
    expanded = [s.attributes[sc.TOKENMW_EXPAND_REF] for s in expands]
    assert expanded == _REF.findall(sent[0]["messages"][-1]["content"])[:2]
    assert all(s.attributes[sc.TOKENMW_EXPAND_FOUND] is True for s in expands)
    assert all(s.attributes[sc.TOKENMW_EXPAND_TOKENS_RESTORED] > 500 for s in expands)
    assert call_span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == mw.usage.input_tokens_reported
    points = otel.metric_points()[sc.METRIC_EXPANSIONS]
    assert sum(p.value for p in points) == 2


async def test_unknown_ref_is_answered_honestly(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    compress = tokenmw.Compress(level="aggressive", reversible=True, min_tokens=0)
    mw = tokenmw.Middleware([compress, ForgetOriginals()])
    client = mw.wrap(async_client.with_options(default_headers=HEADERS))
    resp = await client.chat.completions.create(model=MODEL, messages=conversation(job_log()))
    _, second = bodies(live_server)
    result = second["messages"][-1]
    assert result["role"] == "tool"
    assert "no longer available" in result["content"]
    assert "99000" not in result["content"]
    assert resp.choices[0].message.content.startswith(
        "From the expanded original: The original text for ref="
    )


def test_sync_client_chat(sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    mw, spy = mw_with_spy()
    client = mw.wrap(sync_client.with_options(default_headers=HEADERS))
    resp = client.chat.completions.create(model=MODEL, messages=conversation(job_log()))
    assert len(bodies(live_server)) == 2
    assert "99000 ms" in json.dumps(bodies(live_server)[1]["messages"][-1])
    assert resp.choices[0].message.tool_calls is None
    assert resp.choices[0].message.content.startswith("From the expanded original: ")
    assert mw.usage.input_tokens_reported == sum(r.usage.prompt_tokens for r in spy.seen)


# -- Responses API -----------------------------------------------------------------------------------


def responses_input(log: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Which job was slowest today?"},
        {"type": "function_call", "call_id": "call_log", "name": "read_log", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_log", "output": log},
    ]


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
async def test_responses_expansion_round_trip(
    async_client: openai.AsyncOpenAI, sync_client: openai.OpenAI, live_server: EmbeddedServer, sync: bool
) -> None:
    mw, spy = mw_with_spy()
    items = responses_input(job_log())
    if sync:
        resp = mw.wrap(sync_client.with_options(default_headers=HEADERS)).responses.create(
            model=MODEL, input=items
        )
    else:
        client = mw.wrap(async_client.with_options(default_headers=HEADERS))
        resp = await client.responses.create(model=MODEL, input=items)
    first, second = bodies(live_server, "/v1/responses")
    assert tool_names(first) == ["tokenmw_expand"]
    assert first["tools"][0]["type"] == "function"
    ref = _REF.findall(first["input"][-1]["output"])[0]
    call_item, output_item = second["input"][-2:]
    assert call_item["type"] == "function_call" and json.loads(call_item["arguments"]) == {"ref": ref}
    assert output_item["type"] == "function_call_output" and output_item["call_id"] == call_item["call_id"]
    assert "job 4031 finished in 99000 ms" in output_item["output"]
    assert [item.type for item in resp.output] == ["message"]
    assert resp.output_text.startswith("From the expanded original: ")
    assert mw.usage.calls == 1
    assert mw.usage.input_tokens_reported == sum(r.usage.input_tokens for r in spy.seen) > 0
    assert len(spy.seen) == 2


# -- off when it cannot work ----------------------------------------------------------------------


READ_LOG = {
    "type": "function",
    "function": {"name": "read_log", "parameters": {"type": "object", "properties": {}}},
}
SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "a", "schema": {"type": "object", "properties": {"job": {"type": "string"}}}},
}


@pytest.mark.parametrize(
    ("hook", "extra"),
    [
        (tokenmw.Compress(level="aggressive", min_tokens=0), {}),
        (tokenmw.Compress(level="aggressive", reversible=True, min_tokens=0, max_expansions=0), {}),
        (
            tokenmw.Compress(level="aggressive", reversible=True, min_tokens=0),
            {"tool_choice": "none", "tools": [READ_LOG]},
        ),
        (
            tokenmw.Compress(level="aggressive", reversible=True, min_tokens=0),
            {"tool_choice": {"type": "function", "function": {"name": "read_log"}}, "tools": [READ_LOG]},
        ),
        (tokenmw.Compress(level="aggressive", reversible=True, min_tokens=0), {"response_format": SCHEMA}),
        (tokenmw.Compress(level="aggressive", reversible=True, min_tokens=0), {"n": 2}),
    ],
    ids=["reversible-off", "max-0", "tool-choice-none", "forced-tool", "json-schema", "n2"],
)
async def test_no_tool_when_off_or_impossible(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer, hook: tokenmw.Hook, extra: dict[str, Any]
) -> None:
    client = tokenmw.Middleware([hook]).wrap(async_client.with_options(default_headers=HEADERS))
    await client.chat.completions.create(model=MODEL, messages=conversation(job_log()), **extra)
    (body,) = bodies(live_server)
    assert "tokenmw_expand" not in json.dumps(body)
    assert "ref=" not in json.dumps(body)  # plain aggressive markers: a ref nobody can use costs tokens
    assert "similar lines" in json.dumps(body)
    assert body.get("tools") == extra.get("tools")


async def test_a_caller_tool_named_tokenmw_expand_is_left_alone(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    own = {"type": "function", "function": {"name": "tokenmw_expand", "parameters": {"type": "object"}}}
    hook = tokenmw.Compress(level="aggressive", reversible=True, min_tokens=0)
    client = tokenmw.Middleware([hook]).wrap(async_client)
    resp = await client.chat.completions.create(model=MODEL, messages=conversation(job_log()), tools=[own])
    (body,) = bodies(live_server)
    assert body["tools"] == [own]
    assert "ref=" not in json.dumps(body["messages"])
    assert resp.choices[0].message.content


def test_reversible_needs_aggressive() -> None:
    with pytest.raises(ValueError, match="aggressive"):
        tokenmw.Compress(reversible=True)
    with pytest.raises(TypeError, match="reversible=True by keyword"):
        tokenmw.Compress("aggressive", 256, True)
    with pytest.raises(ValueError, match="max_expansions"):
        tokenmw.Compress(level="aggressive", reversible=True, max_expansions=-1)


# -- mixed turns (the chain alone: the embedded server never mixes tool calls) --------------------


def completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    usage = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}


async def test_mixed_turn_answers_expand_and_asks_again() -> None:
    """The model calls the caller's tool and tokenmw_expand at once: tokenmw answers the expand
    call, leaves the caller's call out of the model's turn (it was never run) and asks again; the
    caller gets the model's next answer, here a fresh call of its own tool."""
    sent: list[dict[str, Any]] = []

    async def send(call: tokenmw.Call) -> Any:
        sent.append(json.loads(json.dumps(call.request)))
        if len(sent) == 1:
            ref = _REF.findall(json.dumps(call.request["messages"]))[0]
            return completion(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "read_log", "arguments": "{}"}},
                        {
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "tokenmw_expand", "arguments": json.dumps({"ref": ref})},
                        },
                    ],
                },
                "tool_calls",
            )
        again = {"id": "c3", "type": "function", "function": {"name": "read_log", "arguments": '{"day": 2}'}}
        return completion({"role": "assistant", "content": None, "tool_calls": [again]}, "tool_calls")

    mw = tokenmw.Middleware([tokenmw.Compress(level="aggressive", reversible=True, min_tokens=0)])
    request = {"model": MODEL, "messages": conversation(job_log()), "tools": [READ_LOG]}
    response = await mw.run(tokenmw.Call(request, "chat"), send)
    assert len(sent) == 2
    turn, result = sent[1]["messages"][-2:]
    assert [c["id"] for c in turn["tool_calls"]] == ["c2"]  # the caller's call left out, not half-answered
    assert result == {"role": "tool", "tool_call_id": "c2", "content": result["content"]}
    assert "99000 ms" in result["content"]
    assert tool_names(sent[1]) == ["read_log", "tokenmw_expand"]
    assert_coherent(sent[1]["messages"])
    calls = response["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["read_log"]
    assert mw.usage.input_tokens_reported == 20


# -- streams ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("usage_chunk", [True, False], ids=["include-usage", "no-usage"])
async def test_async_chat_stream_continues_with_the_follow_up(
    async_client: openai.AsyncOpenAI, live_server: EmbeddedServer, otel: Capture, usage_chunk: bool
) -> None:
    ended: list[str] = []

    class End(tokenmw.Hook):
        name = "end"

        def on_stream_end(self, call: tokenmw.Call, outcome: Any) -> None:
            ended.append(outcome)

    compress = tokenmw.Compress(level="aggressive", reversible=True, min_tokens=0)
    mw = tokenmw.Middleware([compress, End(), tokenmw.CountTokens()])
    client = mw.wrap(async_client.with_options(default_headers=HEADERS))
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if usage_chunk else {}
    stream = await client.chat.completions.create(
        model=MODEL, messages=conversation(job_log()), stream=True, **extra
    )
    assert isinstance(stream, openai.AsyncStream)
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)  # no expand call seen
    assert len({c.id for c in chunks}) == 1  # one well-formed stream: the follow-up's
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert text.startswith("From the expanded original: ")
    first, second = bodies(live_server)
    assert first["stream"] is True and second["stream"] is True
    assert "99000 ms" in second["messages"][-1]["content"]
    assert ended == ["completed"]
    assert mw.usage.calls == 1
    assert mw.usage.requests == 2
    sent = [await tokenmw.Call(body, "chat").input_tokens() for body in (first, second)]
    assert mw.usage.input_tokens_sent == sum(sent)
    if usage_chunk:  # the expand stream's usage chunk was consumed by tokenmw, and still counted
        assert mw.usage.input_tokens_reported == sum(sent)
    assert len([s for s in otel.spans() if s.name == sc.SPAN_COMPRESS_EXPAND]) == 1


def test_sync_responses_stream_continues_with_the_follow_up(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    mw, _ = mw_with_spy()
    client = mw.wrap(sync_client.with_options(default_headers=HEADERS))
    events = list(client.responses.create(model=MODEL, input=responses_input(job_log()), stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.count("response.created") == 1 and kinds.count("response.completed") == 1
    assert "response.function_call_arguments.delta" not in kinds
    assert events[-1].response.output_text.startswith("From the expanded original: ")
    _, second = bodies(live_server, "/v1/responses")
    assert "99000 ms" in second["input"][-1]["output"]
    first, second = bodies(live_server, "/v1/responses")
    sent = [asyncio.run(tokenmw.Call(body, "responses").input_tokens()) for body in (first, second)]
    assert events[-1].response.usage.input_tokens == sent[1]
    assert mw.usage.input_tokens_reported == sum(sent)  # the consumed expand stream's usage too


def test_a_text_stream_reaches_the_caller_whole(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    """Offered the tool, the model answers in text: the chunks read ahead come first, nothing lost."""
    hook = tokenmw.Compress(level="aggressive", reversible=True, min_tokens=0)
    plain = list(
        sync_client.chat.completions.create(model=MODEL, messages=conversation(job_log()), stream=True)
    )
    client = tokenmw.Middleware([hook]).wrap(sync_client)  # the server does not expand
    live_server.reset()
    chunks = list(client.chat.completions.create(model=MODEL, messages=conversation(job_log()), stream=True))
    (body,) = bodies(live_server)
    assert tool_names(body) == ["tokenmw_expand"]
    assert [c.choices[0].delta.content for c in chunks] == [c.choices[0].delta.content for c in plain]
    assert [c.choices[0].finish_reason for c in chunks] == [c.choices[0].finish_reason for c in plain]
