"""openai-agents handed a wrapped AsyncOpenAI: Runner.run and Runner.run_streamed, on the Responses
and the Chat Completions model, with a function tool and an ``output_type``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

import openai
import pydantic
import pytest
from agents import (
    Agent,
    ModelBehaviorError,
    OpenAIChatCompletionsModel,
    OpenAIProvider,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    function_tool,
    set_tracing_disabled,
)

import tokenmw
from tokenmw.server import EmbeddedServer

from .._probe import AUTO, enhanced, probe_middleware, wire_requests

set_tracing_disabled(True)
MODEL = "gpt-4o-mini"


class Weather(pydantic.BaseModel):
    city: str
    summary: str


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}, 21 degrees"


@pytest.fixture
async def raw_client(live_server: EmbeddedServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(
        api_key="k", base_url=live_server.base_url, max_retries=0, default_headers=AUTO
    )
    yield client
    await client.close()


def model_for(kind: str, client: openai.AsyncOpenAI) -> OpenAIResponsesModel | OpenAIChatCompletionsModel:
    return (
        OpenAIResponsesModel(MODEL, client)
        if kind == "responses"
        else OpenAIChatCompletionsModel(MODEL, client)
    )


def tool_result_sent(body: dict, kind: str) -> bool:
    """Whether the second turn carried the function tool's result back to the model."""
    if kind == "responses":
        items = body.get("input") or []
        return any(
            i.get("type") == "function_call_output" and "Sunny in" in i.get("output", "") for i in items
        )
    return any(m.get("role") == "tool" and "Sunny in" in str(m.get("content")) for m in body["messages"])


@pytest.mark.parametrize("kind", ["responses", "chat"])
@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
async def test_agent_with_tool_and_output_type(
    kind: str, streamed: bool, raw_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    recorder, mw = probe_middleware(tokenmw.CountTokens())
    agent = Agent(
        name="forecaster",
        instructions="You answer weather questions.",
        model=model_for(kind, mw.wrap(raw_client)),
        tools=[get_weather],
        output_type=Weather,
    )
    if streamed:
        result = Runner.run_streamed(agent, "What is the weather in Paris?")
        events = [event async for event in result.stream_events()]
        assert events
    else:
        result = await Runner.run(agent, "What is the weather in Paris?")  # type: ignore[assignment]
    assert isinstance(result.final_output, Weather) and result.final_output.city
    operation = "responses" if kind == "responses" else "chat"
    assert recorder.calls == [(operation, streamed)] * 2  # the tool turn and the answer turn
    bodies = wire_requests(live_server)
    assert len(bodies) == 2 and all(enhanced(b) for b in bodies)
    assert tool_result_sent(bodies[1], kind)
    if streamed:
        assert recorder.ends == ["completed", "completed"]
    assert mw.usage.calls == 2 and mw.usage.output_tokens > 0 and mw.usage.input_tokens_sent > 0


async def test_limit_response_cut_fails_a_responses_agent_but_not_a_chat_agent(
    raw_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    """The documented trade-off: a cut Responses answer is status="incomplete", as the API makes it,
    and openai-agents fails the turn on that status; the Chat Completions model takes a cut answer
    (finish_reason="length")."""
    mw = tokenmw.Middleware([tokenmw.LimitResponse(max_tokens=12)])
    client = mw.wrap(raw_client.with_options(default_headers={"x-tokenmw-reply-words": "120"}))
    with pytest.raises(ModelBehaviorError, match="incomplete"):
        await Runner.run(Agent(name="a", model=OpenAIResponsesModel(MODEL, client)), "Tell me a story.")
    result = await Runner.run(
        Agent(name="a", model=OpenAIChatCompletionsModel(MODEL, client)), "Tell me a story."
    )
    assert isinstance(result.final_output, str) and 0 < len(result.final_output.split()) < 20
    assert all(
        b.get("max_completion_tokens", b.get("max_output_tokens")) == 12 for b in wire_requests(live_server)
    )


@pytest.mark.parametrize("use_responses", [True, False])
async def test_provider_with_a_wrapped_client(
    use_responses: bool, raw_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    recorder, mw = probe_middleware()
    provider = OpenAIProvider(openai_client=mw.wrap(raw_client), use_responses=use_responses)
    agent = Agent(name="greeter", instructions="Greet the user.", model=MODEL)
    result = await Runner.run(agent, "Hello", run_config=RunConfig(model_provider=provider))
    assert result.final_output.startswith("The middleware")
    assert recorder.calls == [("responses" if use_responses else "chat", False)]
    [body] = wire_requests(live_server)
    assert enhanced(body)
