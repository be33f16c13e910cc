"""instructor's ``from_openai`` on a wrapped client: Mode.TOOLS, Mode.JSON_SCHEMA (sync, async,
partial streaming) and Mode.RESPONSES_TOOLS."""

from __future__ import annotations

from collections.abc import Iterator

import instructor
import openai
import pydantic
import pytest

from tokenmw import Middleware
from tokenmw.server import EmbeddedServer

from .._probe import AUTO, Recorder, enhanced, probe_middleware, wire_requests

MODEL = "gpt-4o-mini"
MESSAGES = [
    {"role": "system", "content": "You extract weather reports."},
    {"role": "user", "content": "Paris: sunny, 21 degrees."},
]


class Weather(pydantic.BaseModel):
    city: str
    summary: str
    temperature: int


@pytest.fixture
def probe() -> tuple[Recorder, Middleware]:
    return probe_middleware()


@pytest.fixture
def sync_wrapped(live_server: EmbeddedServer, probe: tuple[Recorder, Middleware]) -> Iterator[openai.OpenAI]:
    client = probe[1].wrap(
        openai.OpenAI(api_key="k", base_url=live_server.base_url, max_retries=0, default_headers=AUTO)
    )
    yield client
    client.close()


def ran(recorder: Recorder, server: EmbeddedServer, operation: str = "chat", stream: bool = False) -> dict:
    assert recorder.calls == [(operation, stream)]
    [body] = wire_requests(server)
    assert enhanced(body)
    return body


def check(weather: object) -> None:
    assert isinstance(weather, Weather) and weather.city and weather.temperature > 0


@pytest.mark.parametrize("mode", [instructor.Mode.TOOLS, instructor.Mode.JSON_SCHEMA])
def test_create(
    mode: instructor.Mode,
    sync_wrapped: openai.OpenAI,
    probe: tuple[Recorder, Middleware],
    live_server: EmbeddedServer,
) -> None:
    client = instructor.from_openai(sync_wrapped, mode=mode)
    check(client.chat.completions.create(model=MODEL, messages=MESSAGES, response_model=Weather))
    body = ran(probe[0], live_server)
    if mode == instructor.Mode.TOOLS:
        assert body["tool_choice"]["function"]["name"] == "Weather"
    else:
        assert body["response_format"]["type"] == "json_schema"


@pytest.mark.parametrize("mode", [instructor.Mode.TOOLS, instructor.Mode.JSON_SCHEMA])
async def test_create_async(
    mode: instructor.Mode, probe: tuple[Recorder, Middleware], live_server: EmbeddedServer
) -> None:
    raw = openai.AsyncOpenAI(api_key="k", base_url=live_server.base_url, max_retries=0, default_headers=AUTO)
    client = instructor.from_openai(probe[1].wrap(raw), mode=mode)
    check(await client.chat.completions.create(model=MODEL, messages=MESSAGES, response_model=Weather))
    ran(probe[0], live_server)
    await raw.close()


@pytest.mark.parametrize("mode", [instructor.Mode.TOOLS, instructor.Mode.JSON_SCHEMA])
def test_partial_streaming(
    mode: instructor.Mode,
    sync_wrapped: openai.OpenAI,
    probe: tuple[Recorder, Middleware],
    live_server: EmbeddedServer,
) -> None:
    client = instructor.from_openai(sync_wrapped, mode=mode)
    parts = list(
        client.chat.completions.create_partial(model=MODEL, messages=MESSAGES, response_model=Weather)
    )
    assert len(parts) > 1
    final = parts[-1]
    assert final.city and final.temperature
    ran(probe[0], live_server, stream=True)
    assert probe[0].ends == ["completed"] and probe[0].chunks > len(parts) - 1


def test_responses_tools(
    sync_wrapped: openai.OpenAI, probe: tuple[Recorder, Middleware], live_server: EmbeddedServer
) -> None:
    client = instructor.from_openai(sync_wrapped, mode=instructor.Mode.RESPONSES_TOOLS)
    check(client.responses.create(model=MODEL, input="Paris: sunny, 21 degrees.", response_model=Weather))
    body = ran(probe[0], live_server, "responses")
    assert body["tools"][0]["name"] == "Weather"
