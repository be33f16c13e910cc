"""Shared fixtures: one embedded OpenAI-compatible server per test session, real clients on it."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import openai
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tokenmw.server import EmbeddedServer, ServerSettings


@pytest.fixture(scope="session")
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(port=0) as srv:
        yield srv


@pytest.fixture
def live_server(server: EmbeddedServer) -> Iterator[EmbeddedServer]:
    """The shared server with its records cleared and default settings restored after the test."""
    defaults = ServerSettings()
    server.reset()
    yield server
    server.reset()
    for field in dataclasses.fields(ServerSettings):
        setattr(server.settings, field.name, getattr(defaults, field.name))


@pytest.fixture
def sync_client(live_server: EmbeddedServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(api_key="test-key", base_url=live_server.base_url, max_retries=0)
    yield client
    client.close()


@pytest.fixture
async def async_client(live_server: EmbeddedServer):  # type: ignore[no-untyped-def]
    client = openai.AsyncOpenAI(api_key="test-key", base_url=live_server.base_url, max_retries=0)
    yield client
    await client.close()


MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Tell me about the weather in Paris."},
]
