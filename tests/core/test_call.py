"""``Call``: the memoized input count stays exact whatever a hook changes, and in whichever way."""

from __future__ import annotations

from typing import Any

import pytest

from tokenmw import (
    Call,
    Compress,
    CountTokens,
    Enhance,
    Hook,
    LimitResponse,
    Middleware,
    TokenBudgetExceeded,
    count_tokens,
)
from tokenmw._core import call as call_module
from tokenmw._core.call import CallUsage

MODEL = "gpt-4o"


def _messages() -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are a careful assistant for a logistics team."},
        {"role": "user", "content": "Which orders from warehouse AMS1 are delayed today?"},
    ]


def _calls_to(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """One entry per call of ``call_module.<name>`` from now on (the function still runs)."""
    made: list[int] = []
    real = getattr(call_module, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(call_module, name, counting)
    return made


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a request was walked into a counting plan."""
    return _calls_to(monkeypatch, "plan_request")


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


# -- inside a chain: identity checks while only the built-in hooks run ------------------------------


class EditInPlace(Hook):
    """A custom hook that edits the last message's dict in place (the same list, the same dict)."""

    name = "edit_in_place"

    def __init__(self, counted: list[int]) -> None:
        self.counted = counted

    async def before(self, call: Call) -> None:
        self.counted.append(await call.input_tokens())
        call.request["messages"][-1]["content"] += " Group them by customer, please."
        self.counted.append(await call.input_tokens())  # the same phase: counted again


@pytest.fixture
def fingerprints(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a request was fingerprinted (every message compared by identity)."""
    return _calls_to(monkeypatch, "_fingerprint")


async def _sent_count(hooks: list[Hook], messages: list[dict[str, Any]]) -> tuple[Call, int | None]:
    call = Call({"model": MODEL, "messages": messages}, "chat")

    async def send(call: Call) -> Any:
        choice = {"finish_reason": "stop", "message": {"content": "ok"}}
        return {"id": "r1", "model": MODEL, "choices": [choice]}

    await Middleware(hooks).run(call, send)
    return call, call.usage.input_tokens_sent


async def test_built_in_hooks_alone_take_no_fingerprint(fingerprints: list[int], plans: list[int]) -> None:
    messages = [*_messages(), {"role": "user", "content": "Which of them ship with carrier DHX? " * 30}]
    hooks: list[Hook] = [
        Compress(min_tokens=0), Enhance(max_words=80), LimitResponse(max_tokens=200), CountTokens()
    ]
    call, sent = await _sent_count(hooks, messages)
    assert sent == count_tokens(call.request["messages"], MODEL)
    assert call.usage.input_tokens_original == count_tokens(messages, MODEL)
    assert fingerprints == []
    # At most one plan per request state: as made, compressed, enhanced (with an SDK recording,
    # each hook counts before and after its change; without one only as made and as sent).
    assert 2 <= len(plans) <= 3


async def test_a_custom_hooks_in_place_edit_is_counted_by_the_built_in_hooks_after_it() -> None:
    # Compress counts the request first; the custom hook then edits a message dict in place
    # (no top-level value changes); CountTokens' count of the request as sent must see it.
    counted: list[int] = []
    messages = _messages()
    call, sent = await _sent_count([Compress(min_tokens=0), EditInPlace(counted), CountTokens()], messages)
    assert sent == count_tokens(call.request["messages"], MODEL)
    assert counted[1] == sent > counted[0]


async def test_a_custom_wrap_hooks_in_place_edit_is_counted_inside_it() -> None:
    class EditThenSend(Hook):
        name = "edit_then_send"

        async def wrap(self, call: Call, call_next: Any) -> Any:
            await call.input_tokens()
            call.request["messages"][0]["content"] += " Always answer in English."
            return await call_next(call)

    messages = _messages()
    call, sent = await _sent_count([EditThenSend(), CountTokens()], messages)
    assert sent == count_tokens(call.request["messages"], MODEL)
    assert "Always answer in English." in call.request["messages"][0]["content"]


async def test_a_count_before_the_chain_runs_is_checked_again_in_it() -> None:
    # A Call counted by hand (or by an earlier run), edited in place, then run: the chain does
    # not trust the old memo.
    messages = _messages()
    call = Call({"model": MODEL, "messages": messages}, "chat")
    before = await call.input_tokens()
    messages[1]["content"] += " And the ones from FRA2?"

    async def send(call: Call) -> Any:
        return {"id": "r1", "model": MODEL, "choices": [{"finish_reason": "stop"}]}

    mw = Middleware([CountTokens()])
    await mw.run(call, send)
    first = call.usage.input_tokens_sent
    assert first == count_tokens(messages, MODEL) > before
    messages[1]["content"] += " Only those over 20 kg."
    call.usage = CallUsage()
    await mw.run(call, send)
    assert call.usage.input_tokens_sent == count_tokens(messages, MODEL) > first


async def test_a_subclass_of_a_built_in_hook_that_edits_in_place_is_custom_code() -> None:
    # It inherits the flag, but not the promise: its own phase edits a message in place, and the
    # budget must see the request as sent.
    class RedactingEnhance(Enhance):
        async def before(self, call: Call) -> None:
            message = call.request["messages"][-1]
            message["content"] += " [context] " + "lorem ipsum " * 300  # the same dict
            await super().before(call)

    messages = [
        {"role": "system", "content": "Be brief. Answer in at most 50 words."},  # nothing to add
        {"role": "user", "content": "hi"},
    ]
    call = Call({"model": MODEL, "messages": messages}, "chat")

    async def send(call: Call) -> Any:
        raise AssertionError("over the budget: must not be sent")

    with pytest.raises(TokenBudgetExceeded) as refused:
        await Middleware([RedactingEnhance(max_words=50), CountTokens(max_input_tokens=100)]).run(call, send)
    assert refused.value.tokens == count_tokens(messages, MODEL) > 100
