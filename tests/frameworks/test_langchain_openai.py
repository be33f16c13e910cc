"""langchain-openai's ChatOpenAI handed wrapped clients: invoke, ainvoke, stream, astream,
bind_tools, with_structured_output (json_schema, its default, and function_calling, plain and
streamed) and use_responses_api=True.

LangChain needs all four clients set: given only ``root_client`` it builds its own ``client`` and
``async_client`` from its settings, and those are not wrapped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pydantic
import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from tokenmw import Middleware
from tokenmw.server import EmbeddedServer

from .._probe import AUTO, Recorder, enhanced, probe_middleware, wire_requests

MODEL = "gpt-4o-mini"


class Weather(pydantic.BaseModel):
    city: str
    summary: str


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


@pytest.fixture
def probe() -> tuple[Recorder, Middleware]:
    return probe_middleware()


@pytest.fixture
def make_llm(live_server: EmbeddedServer, probe: tuple[Recorder, Middleware]) -> Iterator[Any]:
    _, mw = probe
    sync = mw.wrap(
        openai.OpenAI(api_key="k", base_url=live_server.base_url, max_retries=0, default_headers=AUTO)
    )
    async_ = mw.wrap(
        openai.AsyncOpenAI(api_key="k", base_url=live_server.base_url, max_retries=0, default_headers=AUTO)
    )

    def make(**kwargs: Any) -> ChatOpenAI:
        return ChatOpenAI(
            model=MODEL,
            api_key="k",  # type: ignore[arg-type]
            client=sync.chat.completions,
            async_client=async_.chat.completions,
            root_client=sync,
            root_async_client=async_,
            **kwargs,
        )

    yield make
    sync.close()


def ran_once(
    recorder: Recorder, server: EmbeddedServer, operation: str = "chat", stream: bool = False
) -> dict:
    assert recorder.calls == [(operation, stream)]
    [body] = wire_requests(server)
    assert enhanced(body)
    if stream:
        assert recorder.ends == ["completed"]
    return body


def test_invoke(make_llm: Any, probe: tuple[Recorder, Middleware], live_server: EmbeddedServer) -> None:
    message = make_llm().invoke("What is the weather in Paris?")
    assert message.content.startswith("The middleware")
    ran_once(probe[0], live_server)
    assert message.usage_metadata["output_tokens"] == probe[1].usage.output_tokens


async def test_ainvoke(
    make_llm: Any, probe: tuple[Recorder, Middleware], live_server: EmbeddedServer
) -> None:
    message = await make_llm().ainvoke("What is the weather in Paris?")
    assert message.content
    ran_once(probe[0], live_server)


def test_stream(make_llm: Any, probe: tuple[Recorder, Middleware], live_server: EmbeddedServer) -> None:
    chunks = list(make_llm().stream("What is the weather in Paris?"))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    text = "".join(str(c.content) for c in chunks)
    ran_once(probe[0], live_server, stream=True)
    assert text.startswith("The middleware") and probe[0].chunks >= len(text.split())


async def test_astream(
    make_llm: Any, probe: tuple[Recorder, Middleware], live_server: EmbeddedServer
) -> None:
    chunks = [c async for c in make_llm().astream("What is the weather in Paris?")]
    assert "".join(str(c.content) for c in chunks).startswith("The middleware")
    ran_once(probe[0], live_server, stream=True)


def test_bind_tools(make_llm: Any, probe: tuple[Recorder, Middleware], live_server: EmbeddedServer) -> None:
    message = make_llm().bind_tools([get_weather]).invoke("What is the weather in Paris?")
    [call] = message.tool_calls
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str)
    body = ran_once(probe[0], live_server)
    assert body["tools"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_with_structured_output(
    method: str, make_llm: Any, probe: tuple[Recorder, Middleware], live_server: EmbeddedServer
) -> None:
    weather = make_llm().with_structured_output(Weather, method=method).invoke("Weather in Paris?")
    assert isinstance(weather, Weather) and weather.city
    body = ran_once(probe[0], live_server)
    assert ("response_format" in body) == (method == "json_schema")


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
async def test_with_structured_output_astream(
    method: str, make_llm: Any, probe: tuple[Recorder, Middleware], live_server: EmbeddedServer
) -> None:
    parts = [p async for p in make_llm().with_structured_output(Weather, method=method).astream("Weather?")]
    assert isinstance(parts[-1], Weather) and parts[-1].summary
    ran_once(probe[0], live_server, stream=True)


def test_responses_api(
    make_llm: Any, probe: tuple[Recorder, Middleware], live_server: EmbeddedServer
) -> None:
    llm = make_llm(use_responses_api=True)
    assert llm.invoke("Hello").text.startswith("The middleware")
    ran_once(probe[0], live_server, "responses")
    live_server.reset()
    probe[0].calls.clear()
    chunks = list(llm.stream("Hello"))
    assert "".join(c.text for c in chunks).startswith("The middleware")
    ran_once(probe[0], live_server, "responses", stream=True)
    live_server.reset()
    probe[0].calls.clear()
    weather = llm.with_structured_output(Weather).invoke("Weather in Paris?")
    assert isinstance(weather, Weather)
    body = ran_once(probe[0], live_server, "responses", stream=False)
    assert body["text"]["format"]["type"] == "json_schema"
