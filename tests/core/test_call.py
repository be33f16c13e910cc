"""``Call``: the memoized input count stays exact whatever a hook changes, and in whichever way."""

from __future__ import annotations

from typing import Any

import pytest

from tokenmw import Call, count_tokens
from tokenmw._core import call as call_module

MODEL = "gpt-4o"


def _messages() -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are a careful assistant for a logistics team."},
        {"role": "user", "content": "Which orders from warehouse AMS1 are delayed today?"},
    ]


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a request was walked into a counting plan."""
    made: list[int] = []
    real = call_module.plan_request

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(call_module, "plan_request", counting)
    return made


async def test_unchanged_request_is_planned_once(plans: list[int]) -> None:
    call = Call({"model": MODEL, "messages": _messages()}, "chat")
    call.snapshot_original()
    first = await call.input_tokens()
    assert await call.input_tokens() == first == await call.original_input_tokens()
    assert (await call.input_count())[0] == first
    assert len(plans) == 1


async def test_content_replaced_in_the_same_message_dict_is_counted(plans: list[int]) -> None:
    messages = _messages()
    call = Call({"model": MODEL, "messages": messages}, "chat")
    before = await call.input_tokens()
    messages[1]["content"] += " And which ones left FRA2 late?"  # same dict, new string
    after = await call.input_tokens()
    assert after == count_tokens(messages, MODEL) > before


async def test_message_appended_in_place_is_counted() -> None:
    messages = _messages()
    call = Call({"model": MODEL, "messages": messages}, "chat")
    before = await call.input_tokens()
    messages.append({"role": "user", "content": "Thanks."})  # same list object
    assert await call.input_tokens() == count_tokens(messages, MODEL) > before


async def test_key_added_to_a_message_is_counted() -> None:
    messages = _messages()
    call = Call({"model": MODEL, "messages": messages}, "chat")
    before = await call.input_tokens()
    messages[1]["name"] = "dispatcher"
    assert await call.input_tokens() == count_tokens(messages, MODEL) > before


async def test_parts_list_changed_in_place_is_counted() -> None:
    # A list of parts can change without any object the memo compares changing: never reused.
    messages = _messages()
    messages[1]["content"] = [{"type": "text", "text": "Which orders are delayed?"}]
    call = Call({"model": MODEL, "messages": messages}, "chat")
    before = await call.input_tokens()
    messages[1]["content"].append({"type": "text", "text": "Only AMS1, please, and by customer."})
    assert await call.input_tokens() == count_tokens(messages, MODEL) > before


def _tools() -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": "search_orders",
                "description": "Orders of a warehouse by status",
                "parameters": {"type": "object", "properties": {"status": {"type": "string"}}},
            },
        }
    ]


async def test_request_with_tools_unchanged_is_planned_once(plans: list[int]) -> None:
    # Agents send tools on every call: the memo holds for them too (compared by content).
    tools = _tools()
    call = Call({"model": MODEL, "messages": _messages(), "tools": tools}, "chat")
    first = await call.input_tokens()
    assert await call.input_tokens() == first == count_tokens(_messages(), MODEL, tools=_tools())
    assert len(plans) == 1


async def test_tools_changed_in_place_are_counted(plans: list[int]) -> None:
    # The same list, the same dicts, edited deep inside or appended to: counted again.
    tools = _tools()
    messages = _messages()
    call = Call({"model": MODEL, "messages": messages, "tools": tools}, "chat")
    before = await call.input_tokens()
    tools[0]["function"]["parameters"]["properties"]["warehouse"] = {"type": "string"}
    deeper = await call.input_tokens()
    assert deeper == count_tokens(messages, MODEL, tools=tools) > before
    tools.append({"type": "function", "function": {"name": "get_order", "description": "One order"}})
    assert await call.input_tokens() == count_tokens(messages, MODEL, tools=tools) > deeper
    call.request["tool_choice"] = {"type": "function", "function": {"name": "get_order"}}
    assert await call.input_tokens() == count_tokens(
        messages, MODEL, tools=tools, tool_choice=call.request["tool_choice"]
    )
    call.request["tool_choice"]["function"]["name"] = "search_orders"  # the same dict, edited
    assert await call.input_tokens() == count_tokens(
        messages, MODEL, tools=tools, tool_choice=call.request["tool_choice"]
    )
    assert len(plans) == 5


async def test_original_count_is_the_request_as_made() -> None:
    messages = _messages()
    call = Call({"model": MODEL, "messages": messages}, "chat")
    call.snapshot_original()
    made = await call.input_tokens()
    call.request["messages"] = messages[1:]
    assert await call.original_input_tokens() == made
    assert await call.input_tokens() == count_tokens(messages[1:], MODEL) < made
