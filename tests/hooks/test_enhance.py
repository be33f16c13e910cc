"""``Enhance``: the instruction is added once, in one stable place, and earlier turns never change."""

from __future__ import annotations

import copy
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tokenmw import Call, Middleware
from tokenmw.hooks.enhance import Enhance
from tokenmw.server import EmbeddedServer

from .._otel import sdk_on

WORDS = "Answer in at most 150 words."


async def run(hook: Enhance, messages: list[Any]) -> list[Any]:
    call = Call({"model": "gpt-4o", "messages": messages}, "chat")
    await hook.before(call)
    return call.request["messages"]


async def test_appends_to_the_end_of_the_first_system_message() -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": "Second."},
    ]
    pristine = copy.deepcopy(messages)
    new = await run(Enhance(max_words=150), messages)
    assert new[1] == {"role": "system", "content": f"You are terse.\n\n{WORDS}"}
    assert new[0] is messages[0] and new[2] is messages[2]
    assert messages == pristine


async def test_new_system_message_when_there_is_none() -> None:
    messages = [{"role": "user", "content": "Hi"}]
    new = await run(Enhance(max_words=150), messages)
    assert new == [{"role": "system", "content": WORDS}, messages[0]]


async def test_instruction_and_word_limit_together() -> None:
    hook = Enhance(max_words=40, instruction="Use bullet points.")
    new = await run(hook, [{"role": "developer", "content": ""}])
    assert new == [{"role": "developer", "content": "Answer in at most 40 words. Use bullet points."}]


async def test_list_content_gets_a_text_part() -> None:
    part = {"type": "text", "text": "You are terse."}
    new = await run(Enhance(instruction="Cite sources."), [{"role": "system", "content": [part]}])
    assert new[0]["content"] == [part, {"type": "text", "text": "Cite sources."}]


async def test_unknown_system_content_is_left_alone() -> None:
    messages = [{"role": "system", "content": None}, {"role": "user", "content": "Hi"}]
    call = Call({"model": "gpt-4o", "messages": messages}, "chat")
    await Enhance(max_words=10).before(call)
    assert call.request["messages"] is messages


async def test_idempotent_over_a_twenty_turn_agent_loop() -> None:
    """An agent that re-sends the history it sent (with the instruction) never gets it twice, and
    every turn's request starts with the same system message."""
    hook = Enhance(max_words=150)
    history: list[dict[str, Any]] = [{"role": "system", "content": "You are an agent."}]
    sent_before: list[Any] = []
    for turn in range(20):
        history.append({"role": "user", "content": f"step {turn}"})
        sent = await run(hook, history)
        assert sent[: len(sent_before)] == sent_before  # earlier turns are never rewritten
        assert sum(str(m["content"]).count(WORDS) for m in sent) == 1
        assert sent[0]["content"].endswith(WORDS)
        history = [*sent, {"role": "assistant", "content": f"done {turn}"}]  # re-sends what was sent
        sent_before = sent


async def test_idempotent_when_the_caller_keeps_its_own_history() -> None:
    hook = Enhance(max_words=150)
    history: list[dict[str, Any]] = [{"role": "user", "content": "first"}]
    first = await run(hook, history)
    for turn in range(20):
        history += [{"role": "assistant", "content": "ok"}, {"role": "user", "content": f"turn {turn}"}]
        sent = await run(hook, history)
        assert sent[0] == first[0] == {"role": "system", "content": WORDS}
        assert len(sent) == len(history) + 1


async def test_responses_instructions() -> None:
    hook = Enhance(max_words=150)
    call = Call({"model": "gpt-4o", "input": "Hi"}, "responses")
    await hook.before(call)
    assert call.request["instructions"] == WORDS
    call = Call({"model": "gpt-4o", "input": "Hi", "instructions": "Be kind."}, "responses")
    await hook.before(call)
    assert call.request["instructions"] == f"Be kind.\n\n{WORDS}"
    await hook.before(call)
    assert call.request["instructions"] == f"Be kind.\n\n{WORDS}"


async def test_nothing_to_add_does_nothing() -> None:
    messages = [{"role": "user", "content": "Hi"}]
    call = Call({"model": "gpt-4o", "messages": messages}, "chat")
    await Enhance().before(call)
    assert call.request["messages"] is messages


def test_constructor_rejects_bad_word_limits() -> None:
    for bad in (0, -5, True):
        with pytest.raises(ValueError):
            Enhance(max_words=bad)


async def test_span_records_the_added_tokens() -> None:
    sdk_on()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    call = Call({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}, "chat")
    with provider.get_tracer("test").start_as_current_span("tokenmw.enhance.before"):
        await Enhance(max_words=150).before(call)
    attrs = exporter.get_finished_spans()[0].attributes or {}
    assert attrs["tokenmw.enhance.added"] is True
    assert attrs["tokenmw.tokens.after"] > attrs["tokenmw.tokens.before"]


async def test_server_receives_the_instruction(
    live_server: EmbeddedServer, async_client: openai.AsyncOpenAI
) -> None:
    client = Middleware([Enhance(max_words=150)]).wrap(async_client)
    await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert live_server.requests[-1].body["messages"][0] == {"role": "system", "content": WORDS}


async def test_system_message_given_as_an_sdk_object_is_left_alone() -> None:
    from pydantic import BaseModel

    class Message(BaseModel):
        role: str
        content: str

    messages = [Message(role="system", content="sys"), {"role": "user", "content": "hi"}]
    call = Call({"model": "gpt-4o", "messages": messages}, "chat")
    await Enhance(max_words=50).before(call)
    assert call.request["messages"] == messages  # no second system message in front of it


async def test_instruction_is_not_added_twice_after_compress() -> None:
    from tokenmw import Compress

    enhance, compress = Enhance(instruction="Use  two  spaces."), Compress(min_tokens=0)
    history = [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]
    call = Call({"model": "gpt-4o", "messages": history}, "chat")
    await enhance.before(call)
    await compress.before(call)
    sent = call.request["messages"]
    again = Call({"model": "gpt-4o", "messages": [*sent, {"role": "user", "content": "more"}]}, "chat")
    await enhance.before(again)
    assert again.request["messages"][0]["content"].count("Use two spaces.") == 1
