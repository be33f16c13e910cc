"""The embedded server as a model that takes time per output token and follows a word limit."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai import OpenAI

from tokenmw._tokens.encodings import encoding_for
from tokenmw.server import EmbeddedServer
from tokenmw.server._handler import _generating
from tokenmw.server._reply import asked_word_limit, reply_text
from tokenmw.server._settings import ServerSettings, SettingsError, request_settings

MODEL = "gpt-4o-mini"
FOLLOW = {"x-tokenmw-follow-word-limit": "1", "x-tokenmw-reply-words": "80"}


def limited(words: int) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": f"You are terse.\n\nAnswer in at most {words} words."},
        {"role": "user", "content": "Explain token budgets."},
    ]


def test_a_word_limit_in_the_prompt_shortens_the_answer(sync_client: OpenAI) -> None:
    completion = sync_client.chat.completions.create(model=MODEL, messages=limited(25), extra_headers=FOLLOW)
    text = completion.choices[0].message.content or ""
    assert text == reply_text(25)
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len(encoding_for(MODEL).encode(text))
    assert completion.choices[0].finish_reason == "stop"


def test_the_word_limit_is_ignored_unless_the_server_follows_it(sync_client: OpenAI) -> None:
    headers = {"x-tokenmw-reply-words": "80"}
    completion = sync_client.chat.completions.create(model=MODEL, messages=limited(25), extra_headers=headers)
    assert completion.choices[0].message.content == reply_text(80)


def test_a_limit_above_the_reply_length_changes_nothing(sync_client: OpenAI) -> None:
    completion = sync_client.chat.completions.create(model=MODEL, messages=limited(500), extra_headers=FOLLOW)
    assert completion.choices[0].message.content == reply_text(80)


def test_the_word_limit_applies_to_streams_and_the_responses_api(sync_client: OpenAI) -> None:
    stream = sync_client.chat.completions.create(
        model=MODEL, messages=limited(12), stream=True, extra_headers=FOLLOW
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == reply_text(12)
    response = sync_client.responses.create(
        model=MODEL, instructions="Answer in at most 9 words.", input="Explain.", extra_headers=FOLLOW
    )
    assert response.output_text == reply_text(9)


def test_the_setting_turns_it_on_server_wide() -> None:
    with EmbeddedServer(reply_words=70, follow_word_limit=True) as server:
        client = openai.OpenAI(api_key="k", base_url=server.base_url, max_retries=0)
        completion = client.chat.completions.create(model=MODEL, messages=limited(30))
        client.close()
    assert completion.choices[0].message.content == reply_text(30)


def test_asked_word_limit_reads_every_message_and_takes_the_smallest() -> None:
    messages = [
        {"role": "system", "content": "Answer in at most 40 words."},
        {"role": "user", "content": [{"type": "text", "text": "Please, AT MOST 15 WORDS."}]},
    ]
    assert asked_word_limit("chat", {"messages": messages}) == 15
    assert asked_word_limit("chat", {"messages": [{"role": "user", "content": "at most words"}]}) is None
    assert asked_word_limit("responses", {"input": [{"role": "user", "content": "at most 7 words"}]}) == 7


def test_generation_time_is_added_per_output_token() -> None:
    settings = request_settings(
        ServerSettings(latency=0.5, latency_per_token=0.01), {"x-tokenmw-chunk-delay": "0.002"}
    )
    whole = _generating(settings, 100, {"stream": False}, 50)
    assert whole.latency == pytest.approx(0.5 + 1.0)
    assert whole.chunk_delay == pytest.approx(0.002)
    streamed = _generating(settings, 100, {"stream": True}, 50)
    # Spread over the events: the whole answer still takes about a second longer.
    assert streamed.chunk_delay == pytest.approx(0.002 + 0.02)
    assert streamed.latency == pytest.approx(0.5 + 0.02)
    assert _generating(request_settings(ServerSettings(), {}), 100, {}, 50).latency == 0.0


def test_generation_headers_override_the_settings() -> None:
    settings = request_settings(
        ServerSettings(), {"x-tokenmw-latency-per-token": "0.03", "x-tokenmw-follow-word-limit": "yes"}
    )
    assert settings.latency_per_token == pytest.approx(0.03)
    assert settings.follow_word_limit is True
    with pytest.raises(SettingsError):
        request_settings(ServerSettings(), {"x-tokenmw-latency-per-token": "-1"})


def test_a_long_generation_makes_a_short_client_timeout_fire(live_server: EmbeddedServer) -> None:
    client = openai.OpenAI(api_key="k", base_url=live_server.base_url, max_retries=0, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model=MODEL, messages=limited(500), extra_headers={"x-tokenmw-latency-per-token": "1"}
        )
    client.close()
