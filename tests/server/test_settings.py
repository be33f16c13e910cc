"""Modelled answer time: a base latency plus time per output token, set server-wide or per request."""

from __future__ import annotations

import pytest
from openai import OpenAI

from tokenmw.server import EmbeddedServer
from tokenmw.server._settings import ServerSettings, SettingsError, request_settings, response_delay

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Say something."}]


def test_delay_is_base_plus_time_per_output_token() -> None:
    settings = request_settings(ServerSettings(latency=0.8, latency_per_token=0.01), {})
    assert response_delay(settings, 0) == pytest.approx(0.8)
    assert response_delay(settings, 150) == pytest.approx(2.3)
    assert response_delay(settings, 300) - response_delay(settings, 150) == pytest.approx(1.5)


def test_headers_override_time_per_token_and_word_limits() -> None:
    base = ServerSettings(latency=0.5)
    settings = request_settings(
        base, {"x-tokenmw-latency-per-token": "0.002", "x-tokenmw-follow-word-limit": "yes"}
    )
    assert settings.latency_per_token == 0.002 and settings.follow_word_limit is True
    assert response_delay(settings, 100) == pytest.approx(0.7)
    assert request_settings(base, {}).follow_word_limit is False  # off unless asked for
    with pytest.raises(SettingsError):
        request_settings(base, {"x-tokenmw-latency-per-token": "-1"})


def test_server_records_the_delay_of_each_answer(live_server: EmbeddedServer, sync_client: OpenAI) -> None:
    per_token = {"x-tokenmw-latency-per-token": "0.00001"}
    long = sync_client.chat.completions.create(
        model=MODEL, messages=MESSAGES, extra_headers={**per_token, "x-tokenmw-reply-words": "200"}
    )
    short = sync_client.chat.completions.create(
        model=MODEL, messages=MESSAGES, extra_headers={**per_token, "x-tokenmw-reply-words": "20"}
    )
    assert long.usage and short.usage
    first, second = live_server.requests
    assert first.delay == pytest.approx(0.00001 * long.usage.completion_tokens)
    assert second.delay == pytest.approx(0.00001 * short.usage.completion_tokens)
    assert first.delay > 5 * second.delay  # the longer answer took longer to "write"


def test_stream_delay_counts_its_output_tokens(live_server: EmbeddedServer, sync_client: OpenAI) -> None:
    stream = sync_client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-tokenmw-latency-per-token": "0.00001"},
    )
    usage = [chunk.usage for chunk in stream if chunk.usage is not None]
    assert usage and live_server.requests[-1].delay == pytest.approx(0.00001 * usage[0].completion_tokens)


def test_server_wide_settings_from_the_constructor() -> None:
    with EmbeddedServer(latency_per_token=0.00002, follow_word_limit=True) as server:
        client = OpenAI(api_key="k", base_url=server.base_url, max_retries=0)
        resp = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "system", "content": "Answer in at most 10 words."}, *MESSAGES],
        )
        client.close()
        assert resp.choices[0].message.content is not None
        assert len(resp.choices[0].message.content.split()) == 9
        assert resp.usage
        assert server.requests[0].delay == pytest.approx(0.00002 * resp.usage.completion_tokens)
