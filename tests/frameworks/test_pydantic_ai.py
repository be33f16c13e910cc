"""pydantic-ai with ``OpenAIProvider(openai_client=<wrapped AsyncOpenAI>)``: the chat and the
Responses model, ``run`` and ``run_stream``, a tool, and an ``output_type`` (pydantic-ai's default
output mode is a ``final_result`` tool)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pydantic
import pytest
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider

from tokenmw.server import EmbeddedServer

from .._probe import AUTO, enhanced, probe_middleware, wire_requests

MODEL = "gpt-4o-mini"


class Weather(pydantic.BaseModel):
    city: str
    summary: str


@pytest.fixture
async def raw_client(live_server: EmbeddedServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(
        api_key="k", base_url=live_server.base_url, max_retries=0, default_headers=AUTO
    )
    yield client
    await client.close()


def make_agent(kind: str, client: openai.AsyncOpenAI, output_type: type = Weather) -> Agent:
    provider = OpenAIProvider(openai_client=client)
    model = (
        OpenAIChatModel(MODEL, provider=provider)
        if kind == "chat"
        else OpenAIResponsesModel(MODEL, provider=provider)
    )
    agent = Agent(model, instructions="You answer weather questions.", output_type=output_type)

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"Sunny in {city}"

    return agent


def tool_names(body: dict) -> list[str]:
    return [t.get("function", t).get("name") for t in body.get("tools", [])]


def tool_result_sent(body: dict) -> bool:
    if "messages" in body:
        return any(m.get("role") == "tool" and "Sunny in" in str(m.get("content")) for m in body["messages"])
    return any(
        i.get("type") == "function_call_output" and "Sunny in" in str(i.get("output")) for i in body["input"]
    )


@pytest.mark.parametrize("kind", ["chat", "responses"])
@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_stream"])
async def test_agent_with_tool_and_output_type(
    kind: str, streamed: bool, raw_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    recorder, mw = probe_middleware()
    agent = make_agent(kind, mw.wrap(raw_client))
    if streamed:
        async with agent.run_stream("What is the weather in Paris?") as result:
            output = await result.get_output()
    else:
        output = (await agent.run("What is the weather in Paris?")).output
    assert isinstance(output, Weather) and output.city
    operation = "chat" if kind == "chat" else "responses"
    assert recorder.calls == [(operation, streamed)] * 2  # get_weather, then final_result
    bodies = wire_requests(live_server)
    assert len(bodies) == 2 and all(enhanced(b) for b in bodies)
    assert tool_names(bodies[0]) == ["get_weather", "final_result"]
    assert tool_result_sent(bodies[1])
    if streamed:
        assert recorder.ends == ["completed", "completed"]


@pytest.mark.parametrize("kind", ["chat", "responses"])
async def test_text_run_stream(
    kind: str, raw_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    recorder, mw = probe_middleware()
    agent = Agent(
        OpenAIChatModel(MODEL, provider=OpenAIProvider(openai_client=mw.wrap(raw_client)))
        if kind == "chat"
        else OpenAIResponsesModel(MODEL, provider=OpenAIProvider(openai_client=mw.wrap(raw_client))),
        instructions="Be brief.",
    )
    async with agent.run_stream("Hello") as result:
        deltas = [d async for d in result.stream_text(delta=True)]
    assert "".join(deltas).startswith("The middleware")
    assert recorder.calls == [("chat" if kind == "chat" else "responses", True)]
    assert recorder.ends == ["completed"]
    [body] = wire_requests(live_server)
    assert enhanced(body)
