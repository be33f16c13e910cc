"""Reversible compression end to end: the real openai client, the embedded server whose "model"
calls ``tokenmw_expand`` for each ``ref=`` it sees (``x-tokenmw-answer: expand``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import openai
import pytest

import tokenmw
from tokenmw._compress import originals
from tokenmw.hooks._expand import EXPAND_TOOL, LIMIT_REACHED
from tokenmw.server import EmbeddedServer
from tokenmw.telemetry import _semconv as sc
from tokenmw.telemetry import _spans as tel

from .._otel import Capture, capture

EXPAND = {"x-tokenmw-answer": "expand"}
MODEL = "gpt-4o-mini"
REF = re.compile(r"ref=([A-Za-z0-9_-]+)\]")


def log(seed: int, lines: int = 900) -> str:
    """A long tool output of similar lines: aggressive keeps the first and last, and elides the run
    between behind one ref. ``NEEDLE`` (line 437) is what a question about it would need."""
    return "\n".join(
        f"2026-01-0{seed} 12:00:{i % 60:02d} INFO worker-{i % 7} item {i} took {i * 3} ms"
        for i in range(lines)
    )


NEEDLE = "item 437 took 1311 ms"


def chat_messages(*outputs: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Which item failed, and why?"}]
    for n, output in enumerate(outputs):
        call_id = f"call_log{n}"
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": "read_log", "arguments": "{}"}}
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call_id, "content": output})
    return messages


def responses_input(*outputs: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [{"role": "user", "content": "Which item failed, and why?"}]
    for n, output in enumerate(outputs):
        items.append(
            {"type": "function_call", "call_id": f"call_log{n}", "name": "read_log", "arguments": "{}"}
        )
        items.append({"type": "function_call_output", "call_id": f"call_log{n}", "output": output})
    return items


@pytest.fixture
def otel() -> Iterator[Capture]:
    cap = capture()
    cap.clear()
    cap.metric_points()
    tel.set_usage_reporting("auto")
    yield cap


def middleware(**options: Any) -> tokenmw.Middleware:
    return tokenmw.Middleware(
        [tokenmw.Compress(level="aggressive", reversible=True, **options), tokenmw.CountTokens()]
    )


async def create(client: Any, operation: str, stream: bool, outputs: tuple[str, ...], **kwargs: Any) -> Any:
    """One call through ``client`` (sync or async); returns (text the caller got, raw result)."""
    if operation == "chat":
        args: dict[str, Any] = {"model": MODEL, "messages": chat_messages(*outputs)}
        if stream:
            args["stream_options"] = {"include_usage": True}
        method = client.chat.completions.create
    else:
        args = {"model": MODEL, "input": responses_input(*outputs)}
        method = client.responses.create
    args.update(kwargs)
    result = method(**args, stream=stream, extra_headers=EXPAND)
    if hasattr(result, "__await__"):
        result = await result
    if not stream:
        return result
    if hasattr(result, "__aiter__"):
        return [chunk async for chunk in result]
    return list(result)


def final_text(operation: str, stream: bool, result: Any) -> str:
    """The caller's answer; fails if an expand call reached the caller."""
    if operation == "chat":
        if stream:
            for chunk in result:
                for choice in chunk.choices:
                    assert not choice.delta.tool_calls
            return "".join(c.choices[0].delta.content or "" for c in result if c.choices)
        assert result.choices[0].message.tool_calls is None
        return str(result.choices[0].message.content)
    if stream:
        assert all("function_call" not in e.type for e in result)
        kinds = [e.type for e in result]
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
        return "".join(e.delta for e in result if e.type == "response.output_text.delta")
    assert all(item.type != "function_call" for item in result.output)
    return str(result.output_text)


def billed(server: EmbeddedServer) -> list[Any]:
    return [r.body for r in server.requests if r.path in ("/v1/chat/completions", "/v1/responses")]


def prompt_of(body: dict[str, Any]) -> str:
    return json.dumps(body.get("messages") or body.get("input"))


def tools_of(body: dict[str, Any]) -> list[str]:
    names = []
    for tool in body.get("tools") or ():
        names.append(tool["function"]["name"] if "function" in tool else tool["name"])
    return names


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest, live_server: EmbeddedServer) -> Iterator[Any]:
    cls = openai.OpenAI if request.param == "sync" else openai.AsyncOpenAI
    raw = cls(api_key="test-key", base_url=live_server.base_url, max_retries=0)
    yield raw


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("operation", ["chat", "responses"])
async def test_the_model_expands_and_the_caller_gets_the_final_answer(
    client: Any, live_server: EmbeddedServer, otel: Capture, operation: str, stream: bool
) -> None:
    mw = middleware()
    wrapped = mw.wrap(client)
    output = log(1)
    result = await create(wrapped, operation, stream, (output,))
    text = final_text(operation, stream, result)
    assert text  # the model's answer after the expansion

    first, follow_up = billed(live_server)
    # The first request: the failing line elided behind a ref, the tool offered.
    assert NEEDLE not in prompt_of(first)
    refs = REF.findall(prompt_of(first))
    assert len(refs) == 1
    assert EXPAND_TOOL in tools_of(first)
    # The follow-up: the model's expand call answered with the original, byte for byte.
    assert NEEDLE in prompt_of(follow_up)
    if operation == "chat":
        expand_call, result_message = follow_up["messages"][-2:]
        assert json.loads(expand_call["tool_calls"][0]["function"]["arguments"]) == {"ref": refs[0]}
        assert result_message["role"] == "tool"
        assert result_message["tool_call_id"] == expand_call["tool_calls"][0]["id"]
        assert result_message["content"] == originals.get(refs[0])
        assert result_message["content"] in output
    else:
        expand_call, result_item = follow_up["input"][-2:]
        assert expand_call["type"] == "function_call" and expand_call["name"] == EXPAND_TOOL
        assert result_item == {
            "type": "function_call_output",
            "call_id": expand_call["call_id"],
            "output": originals.get(refs[0]),
        }

    usage = mw.usage
    assert usage.calls == 1
    assert usage.requests == 2
    # Both requests billed: the follow-up alone carries the original, the first its compressed form.
    assert usage.input_tokens_reported > usage.input_tokens_sent // 2 > 0
    assert usage.output_tokens > 0
    spans = [s for s in otel.spans() if s.name == sc.SPAN_EXPAND]
    assert len(spans) == 1
    assert spans[0].attributes[sc.TOKENMW_EXPAND_REF] == refs[0]
    assert spans[0].attributes[sc.TOKENMW_EXPAND_FOUND] is True
    assert spans[0].attributes[sc.TOKENMW_EXPAND_TOKENS] > 1000
    call_span = next(s for s in otel.spans() if s.name.endswith(MODEL))
    assert spans[0].parent is not None and spans[0].parent.span_id == call_span.context.span_id
    points = otel.metric_points().get(sc.METRIC_EXPANSIONS, [])
    assert sum(p.value for p in points) == 1


async def test_usage_sums_both_requests_as_the_server_billed(live_server: EmbeddedServer) -> None:
    mw = middleware()
    raw = openai.AsyncOpenAI(api_key="k", base_url=live_server.base_url, max_retries=0)
    wrapped = mw.wrap(raw)
    messages = chat_messages(log(2))
    final = await wrapped.chat.completions.create(model=MODEL, messages=messages, extra_headers=EXPAND)
    first, _ = billed(live_server)
    # What the server bills for each request it saw, asked of it directly (no tokenmw in between).
    plain = openai.AsyncOpenAI(api_key="k", base_url=live_server.base_url, max_retries=0)
    again = [
        await plain.chat.completions.create(
            **{k: v for k, v in body.items() if k != "stream"}, extra_headers=EXPAND
        )
        for body in (first,)
    ]
    await raw.close()
    await plain.close()
    assert final.usage is not None and again[0].usage is not None
    assert mw.usage.requests == 2
    # First request (as re-sent: the server answers it with the same expand call) + the follow-up.
    assert mw.usage.input_tokens_reported == again[0].usage.prompt_tokens + final.usage.prompt_tokens
    assert mw.usage.output_tokens == again[0].usage.completion_tokens + final.usage.completion_tokens
    assert mw.usage.input_tokens_sent > mw.usage.input_tokens_original // 2  # both sends counted


@pytest.mark.parametrize("operation", ["chat", "responses"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_max_expansions_is_honoured(
    client: Any, live_server: EmbeddedServer, operation: str, stream: bool
) -> None:
    mw = middleware(max_expansions=1)
    result = await create(mw.wrap(client), operation, stream, (log(3), log(4), log(5)))
    assert final_text(operation, stream, result)
    bodies = billed(live_server)
    assert len(bodies) == 2  # one expansion, then the model had to answer
    assert EXPAND_TOOL in tools_of(bodies[0])
    assert EXPAND_TOOL not in tools_of(bodies[1])  # withdrawn once the limit is reached
    assert "tools" not in bodies[1]  # the caller sent none
    assert mw.usage.requests == 2


async def test_three_expansions_by_default(live_server: EmbeddedServer) -> None:
    mw = middleware()
    raw = openai.AsyncOpenAI(api_key="k", base_url=live_server.base_url, max_retries=0)
    messages = chat_messages(log(3), log(4), log(5), log(6))
    resp = await mw.wrap(raw).chat.completions.create(model=MODEL, messages=messages, extra_headers=EXPAND)
    await raw.close()
    assert resp.choices[0].message.content
    bodies = billed(live_server)
    assert len(bodies) == 4  # three expansions (one per response), then the answer
    assert [EXPAND_TOOL in tools_of(b) for b in bodies] == [True, True, True, False]
    assert LIMIT_REACHED not in prompt_of(bodies[-1])


def test_unknown_ref_is_answered_honestly(sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    mw = middleware()
    # A marker whose original this process does not hold (elided before a restart, or evicted):
    # the model asks for it first.
    stale = "ref=00deadbeef"
    messages = chat_messages(log(7))
    messages[0] = {"role": "user", "content": f"Earlier: [… 12 lines omitted … {stale}]. Which item failed?"}
    resp = mw.wrap(sync_client).chat.completions.create(model=MODEL, messages=messages, extra_headers=EXPAND)
    assert resp.choices[0].message.content
    bodies = billed(live_server)
    assert len(bodies) == 3  # the stale ref, then the real one, then the answer
    answer = bodies[1]["messages"][-1]
    assert answer["role"] == "tool"
    assert "no longer available" in answer["content"]
    assert "00deadbeef" in answer["content"]
    assert NEEDLE in bodies[2]["messages"][-1]["content"]  # the real ref still expands


def test_history_stays_valid_for_the_next_turn(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    mw = middleware()
    wrapped = mw.wrap(sync_client)
    messages = chat_messages(log(8))
    before = json.dumps(messages)
    resp = wrapped.chat.completions.create(model=MODEL, messages=messages, extra_headers=EXPAND)
    assert json.dumps(messages) == before  # the caller's list untouched
    # The caller's next turn: its history, the answer it got, a new question.
    messages += [
        {"role": "assistant", "content": resp.choices[0].message.content},
        {"role": "user", "content": "Thanks. And which worker was it?"},
    ]
    live_server.reset()
    second = wrapped.chat.completions.create(model=MODEL, messages=messages, extra_headers=EXPAND)
    assert second.choices[0].message.content
    sent = billed(live_server)[0]["messages"]
    # A coherent conversation: every tool call answered right after it, no stray expand exchange.
    for i, message in enumerate(sent):
        for call in message.get("tool_calls") or ():
            assert call["function"]["name"] != EXPAND_TOOL
            assert sent[i + 1]["tool_call_id"] == call["id"]
    assert [m["role"] for m in sent[:5]] == ["user", "assistant", "tool", "assistant", "user"]
    # The earlier turn compresses byte for byte the same (same ref): the prefix cache holds.
    first_turn_tool = sent[2]["content"]
    assert REF.findall(first_turn_tool)


@pytest.mark.parametrize(
    ("options", "request_extra"),
    [
        ({"reversible": False}, {}),
        ({}, {"tool_choice": "none"}),
        ({}, {"tool_choice": {"type": "function", "function": {"name": "read_log"}}}),
        (
            {},
            {
                "tools": [
                    {"type": "function", "function": {"name": EXPAND_TOOL, "parameters": {"type": "object"}}}
                ]
            },
        ),
        (
            {},
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "a", "schema": {"type": "object"}},
                }
            },
        ),
    ],
    ids=["reversible-off", "tool-choice-none", "forced-tool", "caller-tool-named-expand", "json-schema"],
)
def test_no_expand_tool_when_it_cannot_work(
    sync_client: openai.OpenAI,
    live_server: EmbeddedServer,
    options: dict[str, Any],
    request_extra: dict[str, Any],
) -> None:
    compress = tokenmw.Compress(level="aggressive", **{"reversible": True, **options})
    mw = tokenmw.Middleware([compress])
    extra = dict(request_extra)
    if "tool_choice" in extra and "tools" not in extra:
        extra["tools"] = [
            {"type": "function", "function": {"name": "read_log", "parameters": {"type": "object"}}}
        ]
    mw.wrap(sync_client).chat.completions.create(model=MODEL, messages=chat_messages(log(9)), **extra)
    (body,) = billed(live_server)
    caller_named_it = EXPAND_TOOL in json.dumps(request_extra.get("tools"))
    assert tools_of(body).count(EXPAND_TOOL) == (1 if caller_named_it else 0)  # only the caller's
    assert "ref=" not in prompt_of(body)  # markers without refs: nothing to expand
    assert "similar lines" in prompt_of(body)  # still compressed aggressively


def test_caller_tools_kept_and_expand_tool_added(
    sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    mw = middleware()
    tools = [{"type": "function", "function": {"name": "read_log", "parameters": {"type": "object"}}}]
    mw.wrap(sync_client).chat.completions.create(model=MODEL, messages=chat_messages(log(1)), tools=tools)
    (body,) = billed(live_server)
    assert tools_of(body) == ["read_log", EXPAND_TOOL]
    assert "tokenmw_expand" not in json.dumps(tools)  # the caller's list is not changed


def test_reversible_needs_aggressive() -> None:
    with pytest.raises(ValueError, match="aggressive"):
        tokenmw.Compress(reversible=True)
    plain = tokenmw.Compress(level="aggressive")
    assert "wrap" not in type(plain).__dict__  # no per-call wrap phase unless reversible
    assert isinstance(tokenmw.Compress(level="aggressive", reversible=True), tokenmw.Compress)


# -- mixed turns and the withdrawn tool, with a scripted model (no server needed) ----------------------


def _reply(*calls: tuple[str, str], text: str | None = None) -> dict[str, Any]:
    tool_calls = [
        {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": args}}
        for n, (name, args) in enumerate(calls)
    ]
    message = {"role": "assistant", "content": text, "tool_calls": tool_calls or None}
    return {"choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}]}


async def _scripted(replies: list[dict[str, Any]], **options: Any) -> tuple[Any, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    async def send(call: tokenmw.Call) -> Any:
        sent.append(json.loads(json.dumps(call.request)))
        return replies[len(sent) - 1]

    mw = middleware(**options)
    tools = [{"type": "function", "function": {"name": "read_log", "parameters": {"type": "object"}}}]
    call = tokenmw.Call({"model": MODEL, "messages": chat_messages(log(1)), "tools": tools}, "chat")
    response = await mw.run(call, send)
    return response, sent


async def test_mixed_turn_answers_the_expand_call_first_and_asks_again() -> None:
    ref = REF.findall(json.dumps(await _first_prompt()))[0]
    caller_call = ("read_log", '{"since": "12:00"}')
    response, sent = await _scripted(
        [_reply(caller_call, (EXPAND_TOOL, json.dumps({"ref": ref}))), _reply(caller_call)]
    )
    assert len(sent) == 2
    assistant, answer = sent[1]["messages"][-2:]
    # The follow-up holds only the expand call (every call in it is answered), then its result.
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == [EXPAND_TOOL]
    assert answer == {
        "role": "tool",
        "tool_call_id": assistant["tool_calls"][0]["id"],
        "content": originals.get(ref),
    }
    # The caller gets the model's second answer: its own tool call, nothing of tokenmw's.
    calls = response["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["read_log"]


async def test_an_expand_call_after_the_limit_never_reaches_the_caller() -> None:
    ref = REF.findall(json.dumps(await _first_prompt()))[0]
    expand = (EXPAND_TOOL, json.dumps({"ref": ref}))
    # A model that asks again although the tool was withdrawn.
    response, sent = await _scripted(
        [_reply(expand), _reply(expand, ("read_log", "{}"), text="checking")], max_expansions=1
    )
    assert len(sent) == 2
    assert [t["function"]["name"] for t in sent[1]["tools"]] == ["read_log"]  # withdrawn
    message = response["choices"][0]["message"]
    assert [c["function"]["name"] for c in message["tool_calls"]] == ["read_log"]
    assert message["content"] == "checking"


async def _first_prompt() -> Any:
    call = tokenmw.Call({"model": MODEL, "messages": chat_messages(log(1))}, "chat")
    await tokenmw.Compress(level="aggressive", reversible=True).before(call)
    return call.request["messages"]


@pytest.mark.parametrize("mode", ["completion", "acompletion", "acompletion-stream", "completion-stream"])
async def test_wrap_litellm_expands_too(live_server: EmbeddedServer, mode: str) -> None:
    """The loop reads LiteLLM's response shapes (``ModelResponse``, its stream wrapper) as well."""
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    mw = middleware()
    stream = mode.endswith("stream")
    fn = litellm.acompletion if mode.startswith("a") else litellm.completion
    wrapped = tokenmw.wrap_litellm(fn, mw)
    args: dict[str, Any] = {
        "model": f"openai/{MODEL}",
        "api_base": live_server.base_url,
        "api_key": "test-key",
        "messages": chat_messages(log(1)),
        "extra_headers": EXPAND,
    }
    if stream:
        args["stream"] = True
        args["stream_options"] = {"include_usage": True}
    result = wrapped(**args)
    if hasattr(result, "__await__"):
        result = await result
    if stream:
        chunks = [c async for c in result] if mode.startswith("a") else list(result)
        for chunk in chunks:
            for choice in chunk.choices:
                assert not getattr(choice.delta, "tool_calls", None)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        assert not result.choices[0].message.tool_calls
        text = result.choices[0].message.content
    assert text

    first, follow_up = billed(live_server)
    assert NEEDLE not in prompt_of(first) and EXPAND_TOOL in tools_of(first)
    assert NEEDLE in prompt_of(follow_up)
    assert mw.usage.calls == 1 and mw.usage.requests == 2
    server_input = sum(r.billed.input_tokens for r in live_server.requests if r.billed is not None)
    assert mw.usage.input_tokens_reported == server_input


class _FailSecondSend(tokenmw.Hook):
    """Fails the follow-up (the second request of the call) before it is sent."""

    name = "fail_second_send"

    def __init__(self) -> None:
        self.sends = 0

    async def on_send(self, call: tokenmw.Call) -> None:
        self.sends += 1
        if self.sends == 2:
            raise RuntimeError("the follow-up is refused")


async def test_a_failed_follow_up_still_records_the_first_request(live_server: EmbeddedServer) -> None:
    mw = tokenmw.Middleware(
        [tokenmw.Compress(level="aggressive", reversible=True), _FailSecondSend()], on_hook_error="raise"
    )
    wrapped = mw.wrap(openai.AsyncOpenAI(api_key="k", base_url=live_server.base_url, max_retries=0))
    with pytest.raises(RuntimeError, match="follow-up"):
        await create(wrapped, "chat", False, (log(1),))
    (first,) = [r for r in live_server.requests if r.billed is not None]
    assert mw.usage.requests == 1
    assert (mw.usage.input_tokens_reported, mw.usage.output_tokens) == (
        first.billed.input_tokens,
        first.billed.output_tokens,
    )
