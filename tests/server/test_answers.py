"""``x-tokenmw-answer: auto``: the server reads the request, as agent frameworks need it to."""

from __future__ import annotations

import json
from typing import Any, Literal

import openai
import pydantic
import pytest
from openai import OpenAI

from tokenmw.server import EmbeddedServer
from tokenmw.server._reply import read_request, schema_instance

MODEL = "gpt-4o-mini"
AUTO = {"x-tokenmw-answer": "auto"}
MESSAGES: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
LOOKUP_TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


class Leg(pydantic.BaseModel):
    mode: Literal["train", "plane"]
    hours: float


class Trip(pydantic.BaseModel):
    destination: str
    nights: int = pydantic.Field(ge=2)
    legs: list[Leg]
    budget: int | None
    confirmed: bool


def test_schema_instance_validates_against_a_pydantic_schema() -> None:
    trip = Trip.model_validate(schema_instance(Trip.model_json_schema()))  # $defs, anyOf, enum, minimum
    assert trip.nights >= 2 and trip.legs[0].mode == "train" and trip.budget is not None


def test_plain_requests_still_get_the_plain_reply(sync_client: OpenAI) -> None:
    resp = sync_client.chat.completions.create(model=MODEL, messages=MESSAGES, tools=[WEATHER_TOOL])
    assert resp.choices[0].message.tool_calls is None  # without the header: text, as before


def test_chat_tool_call_then_text_after_the_result(sync_client: OpenAI) -> None:
    resp = sync_client.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=[WEATHER_TOOL, LOOKUP_TOOL], extra_headers=AUTO
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "The"}
    assert resp.usage and resp.usage.completion_tokens > 0
    history = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny"},
    ]
    second = sync_client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER_TOOL, LOOKUP_TOOL], extra_headers=AUTO
    )
    assert second.choices[0].message.tool_calls[0].function.name == "lookup"  # type: ignore[index]
    history[-2]["tool_calls"].append(second.choices[0].message.tool_calls[0].model_dump())  # type: ignore[index]
    third = sync_client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER_TOOL, LOOKUP_TOOL], extra_headers=AUTO
    )
    assert third.choices[0].message.content and third.choices[0].finish_reason == "stop"


def test_forced_and_refused_tool_choice() -> None:
    forced = {
        "tools": [WEATHER_TOOL, LOOKUP_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
    }
    answer = read_request("chat", {"messages": MESSAGES, **forced})
    assert answer is not None and answer.tool_name == "lookup"
    assert (
        read_request("chat", {"messages": MESSAGES, "tools": [WEATHER_TOOL], "tool_choice": "none"}) is None
    )


def test_chat_tool_call_stream_assembles(sync_client: OpenAI) -> None:
    with sync_client.chat.completions.stream(
        model=MODEL, messages=MESSAGES, tools=[WEATHER_TOOL], extra_headers=AUTO
    ) as stream:
        final = stream.get_final_completion()
    [call] = final.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "The"}


def test_structured_output_chat_and_responses(sync_client: OpenAI) -> None:
    parsed = sync_client.chat.completions.parse(
        model=MODEL, messages=MESSAGES, response_format=Trip, extra_headers=AUTO
    )
    assert isinstance(parsed.choices[0].message.parsed, Trip)
    resp = sync_client.responses.parse(
        model=MODEL, input="Plan a trip.", text_format=Trip, extra_headers=AUTO
    )
    assert isinstance(resp.output_parsed, Trip)


def test_responses_function_call_streamed(sync_client: OpenAI) -> None:
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL["function"]["parameters"]}  # type: ignore[index]
    with sync_client.responses.stream(
        model=MODEL, input="Weather?", tools=[tool], extra_headers=AUTO
    ) as stream:  # type: ignore[list-item]
        types = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in types and types[-1] == "response.completed"
    [item] = final.output
    assert item.type == "function_call" and json.loads(item.arguments) == {"city": "The"}  # type: ignore[union-attr]


def test_server_wide_setting(live_server: EmbeddedServer, sync_client: OpenAI) -> None:
    live_server.settings.answer = "auto"
    try:
        resp = sync_client.chat.completions.create(model=MODEL, messages=MESSAGES, tools=[WEATHER_TOOL])
    finally:
        live_server.settings.answer = "text"
    assert resp.choices[0].message.tool_calls


def test_bad_answer_header_is_a_bad_request(sync_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="x-tokenmw-answer"):
        sync_client.chat.completions.create(
            model=MODEL, messages=MESSAGES, extra_headers={"x-tokenmw-answer": "x"}
        )
