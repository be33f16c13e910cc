"""Word limits: the server answers shorter when the prompt asks for fewer words (``follow_word_limit``)."""

from __future__ import annotations

from typing import Any

import pytest
from openai import OpenAI

import tokenmw
from tokenmw.server import EmbeddedServer
from tokenmw.server._reply import WORD_LIMIT_FILL, limited_words, word_limit

MODEL = "gpt-4o-mini"
FOLLOW = {"x-tokenmw-follow-word-limit": "true", "x-tokenmw-reply-words": "220"}


def chat(*texts: str, role: str = "system") -> dict[str, Any]:
    return {"messages": [{"role": role, "content": t} for t in texts]}


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("Answer in at most 150 words.", 150),
        ("Keep it under 40 words, please.", 40),
        ("Explain it in 25 words.", 25),
        ("Reply with 1,200 words or less.", 1200),
        ("No more than 80-word answers.", 80),
        ("Summarise (60 words max).", 60),
        ("Use AT MOST 30 WORDS.", 30),
    ],
)
def test_word_limit_phrasings(text: str, limit: int) -> None:
    assert word_limit("chat", chat(text)) == limit


def test_no_limit_without_one_or_outside_instructions() -> None:
    assert word_limit("chat", chat("Be brief. Tool results longer than 5,000 characters are cut.")) is None
    assert word_limit("chat", chat("answer in at most 10 words", role="assistant")) is None
    assert word_limit("chat", chat("a 500 word essay about words")) is None  # a length, not a limit


def test_smallest_limit_wins_across_messages_and_parts() -> None:
    request = {
        "messages": [
            {"role": "system", "content": "Answer in at most 150 words."},
            {"role": "user", "content": [{"type": "text", "text": "This time in 40 words."}]},
        ]
    }
    assert word_limit("chat", request) == 40


def test_responses_instructions_and_input() -> None:
    assert word_limit("responses", {"instructions": "At most 70 words.", "input": "hi"}) == 70
    assert word_limit("responses", {"input": "Tell me, in 12 words."}) == 12
    assert word_limit("responses", {"input": [{"role": "user", "content": "under 9 words"}]}) == 9


def test_modelled_answer_length() -> None:
    assert limited_words(220, None) == 220
    assert limited_words(220, 150) == int(150 * WORD_LIMIT_FILL) < 150
    assert limited_words(60, 150) == 60  # a limit above the answer does not lengthen it
    assert limited_words(220, 1) == 1


def test_reply_shrinks_when_the_prompt_asks(sync_client: OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Describe the middleware."}]
    plain = sync_client.chat.completions.create(model=MODEL, messages=messages, extra_headers=FOLLOW)
    limited = sync_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Answer in at most 150 words."}, *messages],
        extra_headers=FOLLOW,
    )
    ignored = sync_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Answer in at most 150 words."}, *messages],
        extra_headers={"x-tokenmw-reply-words": "220"},  # not following limits: the old behaviour
    )
    assert len((plain.choices[0].message.content or "").split()) == 220
    assert len((limited.choices[0].message.content or "").split()) == 135
    assert len((ignored.choices[0].message.content or "").split()) == 220
    assert limited.usage and plain.usage and limited.usage.completion_tokens < plain.usage.completion_tokens


def test_responses_reply_shrinks(sync_client: OpenAI) -> None:
    resp = sync_client.responses.create(
        model=MODEL, instructions="Use at most 20 words.", input="Describe it.", extra_headers=FOLLOW
    )
    assert len(resp.output_text.split()) == 18


def test_enhance_instruction_shortens_the_answer(live_server: EmbeddedServer) -> None:
    """Enhance's own wording is a limit the server follows: the point of the model."""
    raw = OpenAI(api_key="k", base_url=live_server.base_url, max_retries=0, default_headers=FOLLOW)
    wrapped = tokenmw.Middleware([tokenmw.Enhance(max_words=50)]).wrap(raw)
    messages: Any = [{"role": "user", "content": "Describe the middleware."}]
    before = raw.chat.completions.create(model=MODEL, messages=messages)
    after = wrapped.chat.completions.create(model=MODEL, messages=messages)
    raw.close()
    assert len((before.choices[0].message.content or "").split()) == 220
    assert len((after.choices[0].message.content or "").split()) == 45
