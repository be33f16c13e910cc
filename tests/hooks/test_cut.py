"""Cutting text with no word boundary in reach: emoji replies, unspaced runs (issue 11, defect 10)."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tokenmw import Call
from tokenmw._tokens.encodings import encoding_for
from tokenmw.hooks import LimitResponse
from tokenmw.hooks._cut import StreamBudget, cut_text

ENC = encoding_for("gpt-4o-mini")
CAP = 25
EMOJI_REPLY = "🎉🥳✨🎊🎈" * 40 + " Congratulations on the launch, everyone worked hard on it."


def tokens(text: str) -> int:
    return len(ENC.encode_ordinary(text))


def longest_prefix_within(text: str, limit: int) -> str:
    """The longest prefix (whole characters) of at most ``limit`` tokens, by brute force."""
    best = ""
    for i in range(1, len(text) + 1):
        if tokens(text[:i]) <= limit:
            best = text[:i]
        elif i > len(best) + 8:
            break
    return best


def completion(content: str) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
        }
    )


def chunk(content: str) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
        }
    )


@pytest.mark.parametrize(
    "text",
    [EMOJI_REPLY, "👍" * 200, "👍🏽" * 100, "x" * 30 + "a" * 400, "🇫🇷🇩🇪🇮🇹" * 50],
    ids=["emoji-then-words", "emoji", "skin-tones", "long-run", "flags"],
)
def test_a_cut_without_a_boundary_keeps_the_longest_prefix_that_fits(text: str) -> None:
    cut, count = cut_text(ENC, text, CAP)
    assert count == tokens(text)
    assert cut, "a reply must never be blanked"
    assert text.startswith(cut)
    assert tokens(cut) <= CAP
    assert "\ufffd" not in cut
    # Not less than the longest prefix within the cap, give or take the grapheme it would split.
    assert len(cut) >= len(longest_prefix_within(text, CAP)) - 2


async def test_a_whole_emoji_reply_keeps_what_the_same_reply_streamed_keeps() -> None:
    hook = LimitResponse(CAP)
    call = Call({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "celebrate"}]}, "chat")
    await hook.before(call)
    whole: Any = await hook.after(call, completion(EMOJI_REPLY))
    kept = whole.choices[0].message.content
    assert kept and EMOJI_REPLY.startswith(kept) and tokens(kept) <= CAP
    assert whole.choices[0].finish_reason == "length"

    budget = StreamBudget(ENC, CAP)
    streamed = ""
    for piece in [EMOJI_REPLY[i : i + 3] for i in range(0, len(EMOJI_REPLY), 3)]:
        fit = budget.add(piece)
        if fit is not None:
            streamed += piece[:fit]
            break
        streamed += piece
    assert tokens(kept) >= tokens(streamed) - 2  # never much less than the stream keeps


def test_cuts_never_split_an_emoji_from_its_modifier() -> None:
    text = "👍🏽" * 100
    cut, _ = cut_text(ENC, text, CAP)
    assert cut is not None and len(cut) % 2 == 0  # whole thumbs, each with its tone
