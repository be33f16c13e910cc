"""``tokenmw.wrap_litellm`` with the real litellm, talking to the embedded server."""

from __future__ import annotations

import functools
import os
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm
import pytest

import tokenmw
from tokenmw import Call, Hook, Middleware
from tokenmw.server import EmbeddedServer

from .._billed import server_billed
from ..conftest import MESSAGES


class Marker(Hook):
    name = "marker"

    def __init__(self) -> None:
        self.before_calls = 0
        self.after_calls = 0
        self.chunks = 0
        self.outcomes: list[str] = []
        self.providers: list[str] = []

    async def before(self, call: Call) -> None:
        self.before_calls += 1
        self.providers.append(call.provider)
        messages = list(call.request["messages"])
        messages[-1] = {**messages[-1], "content": messages[-1]["content"] + " [tokenmw]"}
        call.request["messages"] = messages

    async def after(self, call: Call, response: Any) -> Any:
        self.after_calls += 1
        return response

    def on_chunk(self, call: Call, chunk: Any) -> Any:
        self.chunks += 1
        return chunk

    def on_stream_end(self, call: Call, outcome: tokenmw.StreamOutcome) -> None:
        self.outcomes.append(outcome)


def kwargs(server: EmbeddedServer) -> dict[str, Any]:
    return {"model": "openai/gpt-4o-mini", "api_base": server.base_url, "api_key": "test-key"}


def test_completion(live_server: EmbeddedServer) -> None:
    hook = Marker()
    mw = Middleware([hook])
    completion = tokenmw.wrap_litellm(litellm.completion, mw)
    assert completion.__name__ == litellm.completion.__name__
    resp = completion(messages=MESSAGES, **kwargs(live_server))
    assert resp.choices[0].message.content
    assert live_server.requests[-1].body["messages"][-1]["content"].endswith(" [tokenmw]")
    assert hook.before_calls == hook.after_calls == 1
    assert hook.providers == ["openai"]
    assert mw.usage.calls == 1
    assert mw.usage.input_tokens_reported == resp.usage.prompt_tokens
    billed = server_billed(live_server)  # the server's own count, not tokenmw's
    assert (mw.usage.input_tokens_reported, mw.usage.output_tokens) == (
        billed.input_tokens,
        billed.output_tokens,
    )


def test_completion_positional_model(live_server: EmbeddedServer) -> None:
    hook = Marker()
    completion = tokenmw.wrap_litellm(litellm.completion, Middleware([hook]))
    args = kwargs(live_server)
    resp = completion(args.pop("model"), MESSAGES, **args)
    assert resp.choices[0].message.content
    assert hook.before_calls == 1


async def test_acompletion(live_server: EmbeddedServer) -> None:
    hook = Marker()
    acompletion = tokenmw.wrap_litellm(litellm.acompletion, Middleware([hook]))
    resp = await acompletion(messages=MESSAGES, **kwargs(live_server))
    assert resp.choices[0].message.content
    assert live_server.requests[-1].body["messages"][-1]["content"].endswith(" [tokenmw]")
    assert hook.after_calls == 1


async def test_acompletion_stream(live_server: EmbeddedServer) -> None:
    hook = Marker()
    acompletion = tokenmw.wrap_litellm(litellm.acompletion, Middleware([hook]))
    stream = await acompletion(messages=MESSAGES, stream=True, **kwargs(live_server))
    chunks = [c async for c in stream]
    assert chunks
    assert hook.chunks == len(chunks)
    assert hook.outcomes == ["completed"]


def test_completion_stream(live_server: EmbeddedServer) -> None:
    hook = Marker()
    completion = tokenmw.wrap_litellm(litellm.completion, Middleware([hook]))
    chunks = list(completion(messages=MESSAGES, stream=True, **kwargs(live_server)))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert hook.chunks == len(chunks)
    assert hook.outcomes == ["completed"]


def test_wrapping_twice_is_idempotent() -> None:
    mw = Middleware([Marker()])
    once = tokenmw.wrap_litellm(litellm.completion, mw)
    assert tokenmw.wrap_litellm(once, mw) is once


def test_litellm_is_not_imported_by_tokenmw() -> None:
    import subprocess
    import sys

    code = "import sys, tokenmw; tokenmw.Middleware([]); print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("bad", [None, "not a function"])
def test_wrap_litellm_rejects_non_functions(bad: Any) -> None:
    with pytest.raises(TypeError):
        tokenmw.wrap_litellm(bad, Middleware([]))


# -- the Responses API: litellm.responses / aresponses ---------------------------------------------

LONG_INPUT = "\n\n\n".join(
    f"Step {i}:  the  agent  read  the  ticket,  checked  the  order  history  and  wrote  a  note."
    for i in range(60)
)
"""Long enough for Compress (over its 256-token floor), with runs of spaces the safe level removes."""


class Operations(Hook):
    name = "operations"

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def before(self, call: Call) -> None:
        self.seen.append(call.operation)


def four_hooks(recorder: Operations) -> Middleware:
    return Middleware(
        [
            recorder,
            tokenmw.Compress(),
            tokenmw.Enhance(max_words=50),
            tokenmw.LimitResponse(max_tokens=100),
            tokenmw.CountTokens(),
        ]
    )


def assert_responses_request_optimised(body: dict[str, Any]) -> None:
    assert "messages" not in body  # nothing of a chat request was added
    assert "at most 50 words" in body["instructions"]
    assert body["max_output_tokens"] == 100
    assert "  " not in body["input"] and body["input"].replace(" ", "") == LONG_INPUT.replace(
        " ", ""
    ).replace("\n\n\n", "\n\n")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_responses_runs_the_chain_as_a_responses_call(live_server: EmbeddedServer, stream: bool) -> None:
    recorder = Operations()
    mw = four_hooks(recorder)
    responses = tokenmw.wrap_litellm(litellm.responses, mw)
    result = responses(input=LONG_INPUT, stream=stream, **kwargs(live_server))
    if stream:
        events = list(result)
        assert events[-1].type == "response.completed"
    else:
        assert result.output_text if hasattr(result, "output_text") else result.output
    assert recorder.seen == ["responses"]
    [record] = live_server.requests
    assert_responses_request_optimised(record.body)
    billed = server_billed(live_server)  # the server's own count, not tokenmw's
    assert (mw.usage.input_tokens_reported, mw.usage.output_tokens) == (
        billed.input_tokens,
        billed.output_tokens,
    )
    assert mw.usage.input_tokens_sent < mw.usage.input_tokens_original


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_aresponses_runs_the_chain_as_a_responses_call(
    live_server: EmbeddedServer, stream: bool
) -> None:
    recorder = Operations()
    mw = four_hooks(recorder)
    aresponses = tokenmw.wrap_litellm(functools.partial(litellm.aresponses, api_key="test-key"), mw)
    args = kwargs(live_server)
    del args["api_key"]
    result = await aresponses(input=LONG_INPUT, stream=stream, **args)
    if stream:
        events = [event async for event in result]
        assert events[-1].type == "response.completed"
    assert recorder.seen == ["responses"]
    [record] = live_server.requests
    assert_responses_request_optimised(record.body)
    billed = server_billed(live_server)
    assert (mw.usage.input_tokens_reported, mw.usage.output_tokens) == (
        billed.input_tokens,
        billed.output_tokens,
    )


@pytest.mark.parametrize("name", ["text_completion", "atext_completion", "embedding", "aembedding"])
def test_wrap_litellm_refuses_the_apis_the_chain_cannot_read(name: str) -> None:
    with pytest.raises(TypeError, match=f"litellm.{name}"):
        tokenmw.wrap_litellm(getattr(litellm, name), Middleware([]))
