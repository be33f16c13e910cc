"""End to end: tokenmw's hooks inside a real LiteLLM proxy process, in front of the embedded server.

One proxy (``litellm --config``) starts per module, with the example's ``config.yaml`` and
``tokenmw_hooks.py`` plus a few test models, and exports its spans over OTLP/HTTP to a receiver
this module starts. The ``openai`` client talks to the proxy; what the hooks did is read on the
embedded server (what reached the wire) and in the spans the proxy process exported.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import litellm
import openai
import pytest
import yaml

import tokenmw
from tokenmw import Call, Hook, Middleware
from tokenmw._tokens.encodings import encoding_for
from tokenmw.server import EmbeddedServer

from .._billed import server_billed
from ..telemetry.test_otlp_export import Receiver, attrs

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "litellm_proxy"
MASTER_KEY = "sk-tokenmw-proxy-test-1234"
LITELLM = Path(sys.executable).with_name("litellm")
CAP = 400  # LimitResponse(max_tokens=400) in the example's hooks module
INSTRUCTION = "Answer in at most 150 words."


def _load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"litellm_proxy_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# What a support agent sends (examples/litellm_proxy/agent.py): a tool result as pretty-printed
# JSON, which Compress compacts, then the question.
AGENT = _load_example("agent")
ORDERS: list[dict[str, Any]] = AGENT.ORDERS
MESSAGES: list[dict[str, Any]] = AGENT.MESSAGES


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(server: EmbeddedServer) -> dict[str, Any]:
    config = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    upstream = {"api_base": server.base_url, "api_key": "test-key"}
    config["model_list"] += [
        # The proxy's model_info gives the context window: the budget guard uses it.
        {
            "model_name": "gpt-4o-mini-small-window",
            "litellm_params": {"model": "openai/gpt-4o-mini", **upstream},
            "model_info": {"max_input_tokens": 64},
        },
        # A model tiktoken does not know: counted with the closest encoding, marked estimated.
        {"model_name": "acme-chat", "litellm_params": {"model": "openai/acme-llm-7b", **upstream}},
        # Nothing listens there: the call fails upstream.
        {
            "model_name": "unreachable",
            "litellm_params": {
                "model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:9/v1", "api_key": "x"
            },
        },
    ]
    config["router_settings"] = {"num_retries": 0}
    config["litellm_settings"]["callbacks"] = "proxy_hooks.handler"
    return config


class Proxy:
    def __init__(self, url: str, receiver: Receiver, log: Path) -> None:
        self.url = url
        self.receiver = receiver
        self.log = log

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(api_key=MASTER_KEY, base_url=self.url + "/v1", max_retries=0, timeout=60)

    def wait_for_spans(self, done: Callable[[list[Any]], bool], timeout: float = 30.0) -> list[Any]:
        """The proxy's spans once ``done(spans)`` holds (the exporter sends in batches)."""
        deadline = time.monotonic() + timeout
        while True:
            spans = [span for service, span in self.receiver.spans() if service == "litellm-proxy"]
            if done(spans):
                return spans
            if time.monotonic() > deadline:
                names = sorted({s.name for s in spans})
                raise AssertionError(f"no spans in {timeout}s; got {names}\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def proxy(server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    if not LITELLM.exists():
        pytest.skip("the litellm CLI (litellm[proxy]) is not installed")
    workdir = tmp_path_factory.mktemp("litellm_proxy")
    (workdir / "config.yaml").write_text(yaml.safe_dump(_config(server)))
    # The proxy loads callbacks from files next to its config (older releases only from there).
    (workdir / "proxy_hooks.py").write_text("from tests.clients._proxy_hooks import handler  # noqa: F401\n")
    receiver = Receiver()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))}
    env.update(
        UPSTREAM_API_BASE=server.base_url,
        UPSTREAM_API_KEY="test-key",
        LITELLM_MASTER_KEY=MASTER_KEY,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_SERVICE_NAME="litellm-proxy",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="500",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    log = workdir / "proxy.log"
    run = _load_example("run")
    try:
        with run.proxy_process(workdir / "config.yaml", port=_free_port(), env=env, log=log) as url:
            yield Proxy(url, receiver, log)
    finally:
        receiver.close()


def _tokens(text: str) -> int:
    return len(encoding_for("gpt-4o-mini").encode(text))


def _sent(server: EmbeddedServer, path: str) -> dict[str, Any]:
    bodies = [r.body for r in server.requests if r.path == path]
    assert bodies, f"nothing reached {path}"
    return bodies[-1]


def test_chat_request_and_response_phases_run_in_the_proxy(proxy: Proxy, live_server: EmbeddedServer) -> None:
    live_server.settings.ignore_max_tokens = True  # the upstream ignores the cap: the proxy cuts
    live_server.settings.reply_words = 600
    with proxy.client() as client:
        resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    body = _sent(live_server, "/v1/chat/completions")
    # compress: the tool's pretty-printed JSON arrived compacted, with equal values
    tool = next(m for m in body["messages"] if m["role"] == "tool")
    assert len(tool["content"]) < len(MESSAGES[3]["content"]) * 0.7
    assert json.loads(tool["content"]) == ORDERS
    # enhance: the instruction, once, in the system message
    system = body["messages"][0]
    assert system["role"] == "system" and system["content"].count(INSTRUCTION) == 1
    # limit_response: the cap went out, and the longer answer was cut in the proxy
    assert CAP in (body.get("max_tokens"), body.get("max_completion_tokens"))
    assert resp.choices[0].finish_reason == "length"
    assert 0 < _tokens(resp.choices[0].message.content or "") <= CAP
    # the caller's messages went through the proxy; the client's own list is unchanged
    assert MESSAGES[0]["content"] == "You are a support agent for an online shop. Be accurate."


def test_chat_stream_is_cut_in_the_proxy_and_upstream_closed(
    proxy: Proxy, live_server: EmbeddedServer
) -> None:
    live_server.settings.ignore_max_tokens = True
    live_server.settings.reply_words = 1500
    live_server.settings.chunk_delay = 0.002
    with proxy.client() as client:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert reasons == ["length"]
    assert 0 < _tokens(text) <= CAP
    body = _sent(live_server, "/v1/chat/completions")
    assert body["stream"] is True
    assert body["messages"][0]["content"].count(INSTRUCTION) == 1
    record = live_server.streams[-1]
    assert record.wait(10)
    assert record.disconnected  # the proxy closed the upstream stream once the cap was passed


def test_responses_api_runs_the_hooks(proxy: Proxy, live_server: EmbeddedServer) -> None:
    document = "Order report\n\n" + json.dumps(ORDERS, indent=4)
    with proxy.client() as client:
        resp = client.responses.create(
            model="gpt-4o-mini", instructions="You summarise order reports.", input=document
        )
    assert resp.output_text
    body = _sent(live_server, "/v1/responses")
    assert body["max_output_tokens"] == CAP
    assert body["instructions"].count(INSTRUCTION) == 1
    assert len(body["input"] if isinstance(body["input"], str) else str(body["input"])) < len(document) * 0.7


def test_responses_stream(proxy: Proxy, live_server: EmbeddedServer) -> None:
    with proxy.client() as client:
        events = list(client.responses.create(model="gpt-4o-mini", input="Say hello.", stream=True))
    kinds = [e.type for e in events]
    assert kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert _sent(live_server, "/v1/responses")["max_output_tokens"] == CAP


def test_a_hook_that_answers_itself_keeps_the_request_off_the_model(
    proxy: Proxy, live_server: EmbeddedServer
) -> None:
    with proxy.client() as client:
        first = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES[:2], user="cache-me")
        second = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES[:2], user="cache-me")
    assert len(live_server.requests) == 1  # the second answer came from the hook
    assert second.choices[0].message.content == first.choices[0].message.content
    assert second.id == first.id


def test_a_second_send_goes_through_the_proxys_router(proxy: Proxy, live_server: EmbeddedServer) -> None:
    with proxy.client() as client:
        resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES[:2], user="send-twice")
    sent = [r.body for r in live_server.requests]
    assert len(sent) == 2
    assert sent[0]["messages"] == sent[1]["messages"]  # the hooks' request, sent again as it was
    assert sent[1]["messages"][0]["content"].count(INSTRUCTION) == 1
    assert resp.choices[0].message.content


def test_context_window_from_model_info_refuses_before_sending(
    proxy: Proxy, live_server: EmbeddedServer
) -> None:
    with proxy.client() as client, pytest.raises(openai.BadRequestError, match="tokenmw"):
        client.chat.completions.create(model="gpt-4o-mini-small-window", messages=MESSAGES)
    assert not live_server.requests  # refused in the proxy, nothing sent


def test_spans_from_every_hook_phase_and_the_failure_path(proxy: Proxy, live_server: EmbeddedServer) -> None:
    # An upstream that ignores the cap: LimitResponse.after has a reply to cut, so its phase runs
    # (CountTokens.after has nothing to do when usage came back, and does not run: no span).
    live_server.settings.ignore_max_tokens = True
    live_server.settings.reply_words = 600
    with proxy.client() as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES[:2])
        client.chat.completions.create(model="acme-chat", messages=MESSAGES[:2])
        with pytest.raises(openai.APIError):
            client.chat.completions.create(model="unreachable", messages=MESSAGES[:2])
    wanted = {
        "tokenmw.compress.before",
        "tokenmw.enhance.before",
        "tokenmw.limit_response.before",
        "tokenmw.count_tokens.on_send",
        "tokenmw.limit_response.after",
    }

    def complete(spans: list[Any]) -> bool:
        names = {s.name for s in spans}
        models = {attrs(s).get("gen_ai.request.model") for s in spans}
        return wanted <= names and {"acme-chat", "unreachable"} <= models

    spans = proxy.wait_for_spans(complete)
    calls = {s.span_id: s for s in spans if attrs(s).get("gen_ai.operation.name") == "chat"}
    # each hook span sits inside a call span of the proxy's own trace
    for span in spans:
        if span.name in wanted:
            assert span.parent_span_id in calls
    by_model = {attrs(s).get("gen_ai.request.model"): attrs(s) for s in calls.values()}
    failed = by_model["unreachable"]
    assert failed.get("error.type")  # ended by the failure hook, not left waiting
    # the count of a model tiktoken does not know is marked estimated, and no budget is guessed
    acme_call = next(i for i, s in calls.items() if attrs(s).get("gen_ai.request.model") == "acme-chat")
    count_span = next(
        s for s in spans if s.parent_span_id == acme_call and s.name == "tokenmw.count_tokens.on_send"
    )
    assert attrs(count_span)["tokenmw.tokens.estimated"] is True
    assert attrs(count_span)["tokenmw.budget.off"] == "context window unknown"
    gpt_counts = [
        s for s in spans
        if s.name == "tokenmw.count_tokens.on_send"
        and attrs(calls[s.parent_span_id]).get("gen_ai.request.model") == "gpt-4o-mini"
    ]  # fmt: skip
    # the same plain question to a model tiktoken knows is counted exactly
    assert any(attrs(s)["tokenmw.tokens.estimated"] is False for s in gpt_counts)
    # fleet-wide accounting: each replica exports the metrics a backend sums
    deadline = time.monotonic() + 30
    metrics = {"tokenmw.tokens.saved", "gen_ai.client.token.usage", "gen_ai.client.operation.duration"}
    while not metrics <= proxy.receiver.metric_names() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metrics <= proxy.receiver.metric_names()


# -- the callbacks driven in process, in the order the proxy calls them ---------------------------
# What a proxy run cannot make happen on demand: a request dropped between the callbacks, two
# requests with one client-chosen call id, a request abandoned while the hooks run.


class Gate(Hook):
    """Holds the request phase until released; notes which request each phase saw."""

    name = "gate"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.release.set()
        self.entered = asyncio.Event()
        self.cancelled = False
        self.after_seen: list[str] = []

    async def before(self, call: Call) -> None:
        self.entered.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    async def after(self, call: Call, response: Any) -> Any:
        self.after_seen.append(call.request["messages"][-1]["content"])
        return response


def _data(content: str, call_id: str = "call-1", model: str = "gpt-4o-mini") -> dict[str, Any]:
    # What the proxy hands its callbacks: the client's body plus its own keys.
    return {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "litellm_call_id": call_id,
        "metadata": {"user_api_key_alias": "agent-7"},
    }


async def _answer(server: EmbeddedServer, data: dict[str, Any]) -> Any:
    """The model call the proxy makes between the callbacks: the real litellm, to the server."""
    request = {k: v for k, v in data.items() if k not in ("litellm_call_id", "metadata")}
    request["model"] = "openai/" + request["model"]
    return await litellm.acompletion(**request, api_base=server.base_url, api_key="test-key")


async def test_callbacks_run_the_whole_chain_once(live_server: EmbeddedServer) -> None:
    hooks = [tokenmw.Enhance(max_words=40), tokenmw.LimitResponse(max_tokens=30), tokenmw.CountTokens()]
    mw = Middleware(hooks)
    handler = tokenmw.LiteLLMProxyHandler(mw)
    data = _data("Explain what a context window is.")
    sent = await handler.async_pre_call_hook(None, None, data, "acompletion")
    assert sent is data and handler.in_flight == 1
    assert "Answer in at most 40 words." in data["messages"][0]["content"]
    assert data["max_tokens"] == 30
    live_server.settings.ignore_max_tokens = True
    live_server.settings.reply_words = 200
    response = await _answer(live_server, data)
    result = await handler.async_post_call_success_hook(data, None, response)
    assert result.choices[0].finish_reason == "length"  # after hooks ran on the proxy's response
    assert handler.in_flight == 0
    assert mw.usage.calls == 1 and mw.usage.input_tokens_reported == response.usage.prompt_tokens
    assert mw.usage.input_tokens_reported == server_billed(live_server).input_tokens


async def test_failure_ends_the_chain_without_usage() -> None:
    mw = Middleware([tokenmw.CountTokens()])
    handler = tokenmw.LiteLLMProxyHandler(mw)
    data = _data("Hello?")
    await handler.async_pre_call_hook(None, None, data, "acompletion")
    data.pop("litellm_logging_obj", None)  # the proxy drops it before the failure callbacks
    error = litellm.APIConnectionError(message="refused", llm_provider="openai", model="gpt-4o-mini")
    assert await handler.async_post_call_failure_hook(data, error, None) is None
    assert handler.in_flight == 0 and mw.usage.calls == 0


async def test_a_request_that_never_comes_back_is_forgotten() -> None:
    handler = tokenmw.LiteLLMProxyHandler(Middleware([tokenmw.CountTokens()]), pending_timeout=0.05)
    data = _data("Hello?")
    await handler.async_pre_call_hook(None, None, data, "acompletion")
    assert handler.in_flight == 1
    for _ in range(200):  # bounded: 2 s at most
        if handler.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert handler.in_flight == 0
    assert await handler.async_post_call_success_hook(data, None, object()) is None  # passed through


async def test_requests_sharing_a_client_call_id_keep_their_own_chains(live_server: EmbeddedServer) -> None:
    gate = Gate()
    handler = tokenmw.LiteLLMProxyHandler(Middleware([gate]))
    first, second = _data("first question", "shared-id"), _data("second question", "shared-id")
    await handler.async_pre_call_hook(None, None, first, "acompletion")
    await handler.async_pre_call_hook(None, None, second, "acompletion")
    assert handler.in_flight == 2
    answer = await _answer(live_server, second)
    await handler.async_post_call_success_hook(second, None, answer)
    await handler.async_post_call_success_hook(first, None, await _answer(live_server, first))
    assert gate.after_seen == ["second question", "first question"]
    assert handler.in_flight == 0


async def test_a_copied_request_dict_is_found_by_its_call_id(live_server: EmbeddedServer) -> None:
    gate = Gate()
    handler = tokenmw.LiteLLMProxyHandler(Middleware([gate]))
    data = _data("what a guardrail copied", "id-7")
    await handler.async_pre_call_hook(None, None, data, "acompletion")
    copy = dict(data)  # a later callback returned a new dict
    await handler.async_post_call_success_hook(copy, None, await _answer(live_server, copy))
    assert gate.after_seen == ["what a guardrail copied"] and handler.in_flight == 0


async def test_without_a_call_id_the_request_dict_finds_its_flight(live_server: EmbeddedServer) -> None:
    # Older proxies set litellm_call_id only after the pre-call callbacks.
    gate = Gate()
    handler = tokenmw.LiteLLMProxyHandler(Middleware([gate]))
    data = _data("no id yet")
    del data["litellm_call_id"]
    await handler.async_pre_call_hook(None, None, data, "completion")
    data["litellm_call_id"] = "set-later"
    await handler.async_post_call_success_hook(data, None, await _answer(live_server, data))
    assert gate.after_seen == ["no id yet"] and handler.in_flight == 0


async def test_a_request_abandoned_in_the_hooks_cancels_its_chain() -> None:
    gate = Gate()
    gate.release.clear()
    handler = tokenmw.LiteLLMProxyHandler(Middleware([gate]))
    pre = asyncio.create_task(handler.async_pre_call_hook(None, None, _data("Hi"), "acompletion"))
    await asyncio.wait_for(gate.entered.wait(), 5)
    pre.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pre
    for _ in range(100):  # the chain's task sees the cancellation on its next step
        if gate.cancelled:
            break
        await asyncio.sleep(0)
    assert gate.cancelled and handler.in_flight == 0


async def test_budget_refusal_is_a_400_and_other_routes_pass() -> None:
    from fastapi import HTTPException

    handler = tokenmw.LiteLLMProxyHandler(Middleware([tokenmw.CountTokens(max_input_tokens=5)]))
    data = _data("a question far longer than five tokens")
    with pytest.raises(HTTPException) as raised:
        await handler.async_pre_call_hook(None, None, data, "acompletion")
    assert raised.value.status_code == 400 and "tokenmw" in str(raised.value.detail)
    embedding = {"model": "text-embedding-3-small", "input": "hi", "litellm_call_id": "e-1"}
    assert await handler.async_pre_call_hook(None, None, embedding, "aembedding") is None
    assert handler.in_flight == 0


def test_a_subclass_keeps_the_hooks_the_proxy_looks_for() -> None:
    class Mine(tokenmw.LiteLLMProxyHandler):
        pass

    # The proxy only calls hooks the callback's own class defines.
    for name in ("pre_call_hook", "post_call_success_hook", "post_call_streaming_iterator_hook"):
        assert f"async_{name}" in vars(Mine)
