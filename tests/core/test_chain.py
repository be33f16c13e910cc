"""The chain on its own: order, wrap semantics and the error policy, with a plain ``send``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import tokenmw
from tokenmw import Call, Hook, Middleware
from tokenmw._core import chain as chain_module


class Recorder(Hook):
    def __init__(self, name: str, log: list[str]) -> None:
        self.label = name
        self.log = log

    async def before(self, call: Call) -> None:
        self.log.append(f"before:{self.label}")

    async def wrap(self, call: Call, call_next: tokenmw.CallNext) -> Any:
        self.log.append(f"wrap-in:{self.label}")
        response = await call_next(call)
        self.log.append(f"wrap-out:{self.label}")
        return response

    async def on_send(self, call: Call) -> None:
        self.log.append(f"on_send:{self.label}")

    async def after(self, call: Call, response: Any) -> Any:
        self.log.append(f"after:{self.label}")
        return response


def make_send(log: list[str], reply: Any = "reply") -> Any:
    async def send(call: Call) -> Any:
        log.append("send")
        return reply

    return send


def make_flaky(attempts: list[int]) -> Any:
    """A send that fails with ConnectionError the first time and answers "second" after."""

    async def flaky(call: Call) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("first attempt fails")
        return "second"

    return flaky


def new_call() -> Call:
    return Call({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}, "chat")


async def test_order_of_phases() -> None:
    log: list[str] = []
    mw = Middleware([Recorder("a", log), Recorder("b", log)])
    assert await mw.run(new_call(), make_send(log)) == "reply"
    assert log == [
        "before:a",
        "wrap-in:a",
        "before:b",
        "wrap-in:b",
        "on_send:a",
        "on_send:b",
        "send",
        "wrap-out:b",
        "after:b",
        "wrap-out:a",
        "after:a",
    ]


class ShortCircuit(Hook):
    name = "cache"

    async def wrap(self, call: Call, call_next: tokenmw.CallNext) -> Any:
        return "cached"


async def test_wrap_can_short_circuit() -> None:
    log: list[str] = []
    mw = Middleware([ShortCircuit(), Recorder("later", log)])
    assert await mw.run(new_call(), make_send(log)) == "cached"
    assert log == []  # neither the later hook nor the model call ran


class Retry(Hook):
    name = "retry"

    async def wrap(self, call: Call, call_next: tokenmw.CallNext) -> Any:
        try:
            return await call_next(call)
        except ConnectionError:
            return await call_next(call)


async def test_wrap_can_call_next_more_than_once() -> None:
    attempts: list[int] = []
    flaky = make_flaky(attempts)

    assert await Middleware([Retry()]).run(new_call(), flaky) == "second"
    assert len(attempts) == 2


class Broken(Hook):
    name = "broken"

    def __init__(self, phase: str) -> None:
        self.phase = phase

    async def before(self, call: Call) -> None:
        if self.phase == "before":
            call.request["messages"] = "half-changed"  # must be rolled back
            raise RuntimeError("boom in before")

    async def after(self, call: Call, response: Any) -> Any:
        if self.phase == "after":
            raise RuntimeError("boom in after")
        return response

    async def wrap(self, call: Call, call_next: tokenmw.CallNext) -> Any:
        if self.phase == "wrap-before-next":
            raise RuntimeError("boom before call_next")
        response = await call_next(call)
        if self.phase == "wrap-after-next":
            raise RuntimeError("boom after call_next")
        return response


@pytest.mark.parametrize("phase", ["before", "after", "wrap-before-next", "wrap-after-next"])
async def test_failing_hook_is_skipped_and_the_call_goes_on(
    phase: str, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[Any] = []

    async def send(call: Call) -> str:
        sent.append(call.request["messages"])
        return "reply"

    mw = Middleware([Broken(phase)])
    with caplog.at_level(logging.DEBUG, logger="tokenmw"):
        assert await mw.run(new_call(), send) == "reply"
        assert await mw.run(new_call(), send) == "reply"
    assert sent == [[{"role": "user", "content": "hi"}]] * 2  # one send per call, request intact
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # logged once, not once per call
    assert "broken" in warnings[0].getMessage()
    assert mw.usage.calls == 2


@pytest.mark.parametrize("phase", ["before", "after", "wrap-before-next", "wrap-after-next"])
async def test_failing_hook_raises_when_strict(phase: str) -> None:
    mw = Middleware([Broken(phase)], on_hook_error="raise")
    with pytest.raises(RuntimeError, match="boom"):
        await mw.run(new_call(), make_send([]))


async def test_errors_of_the_model_call_are_not_hook_errors() -> None:
    async def failing(call: Call) -> str:
        raise TimeoutError("upstream")

    mw = Middleware([Broken("wrap-after-next"), Recorder("r", [])])
    with pytest.raises(TimeoutError):
        await mw.run(new_call(), failing)
    assert mw.usage.calls == 0


class Refuse(Hook):
    async def on_send(self, call: Call) -> None:
        raise tokenmw.TokenBudgetExceeded(10, 5)


async def test_deliberate_refusals_are_never_skipped() -> None:
    log: list[str] = []
    with pytest.raises(tokenmw.TokenBudgetExceeded):
        await Middleware([Refuse()]).run(new_call(), make_send(log))
    assert log == []


def test_bad_configuration_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="on_hook_error"):
        Middleware([], on_hook_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="instance"):
        Middleware([Recorder])  # type: ignore[list-item]


async def test_original_count_is_taken_before_hooks_change_the_request() -> None:
    class Shorten(Hook):
        async def before(self, call: Call) -> None:
            call.request["messages"] = [{"role": "user", "content": "hi"}]

    seen: dict[str, int] = {}

    class Measure(Hook):
        async def on_send(self, call: Call) -> None:
            seen["original"] = await call.original_input_tokens()
            seen["sent"] = await call.input_tokens()

    long_call = Call(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "word " * 200}]}, "chat"
    )
    await Middleware([Shorten(), Measure()]).run(long_call, make_send([]))
    assert seen["sent"] == tokenmw.count_tokens([{"role": "user", "content": "hi"}])
    assert seen["original"] == tokenmw.count_tokens([{"role": "user", "content": "word " * 200}])


async def test_hook_times_add_up_each_phase() -> None:
    log: list[str] = []
    mw = Middleware([Recorder("a", log), ShortCircuit()])  # Recorder keeps the default name "hook"
    for _ in range(3):
        await mw.run(new_call(), make_send(log))
    times = mw.hook_times.snapshot()
    # The cache short-circuits, so on_send never runs; a wrap counts once however it is split.
    assert {key: t.runs for key, t in times.items()} == {
        ("hook", "before"): 3,
        ("hook", "wrap"): 3,
        ("hook", "after"): 3,
        ("cache", "wrap"): 3,
    }
    assert all(t.seconds > 0 for t in times.values())
    assert mw.hook_times.total_seconds == pytest.approx(sum(t.seconds for t in times.values()))
    mw.hook_times.reset()
    assert mw.hook_times.snapshot() == {}


async def test_a_wrap_bug_after_a_successful_retry_is_still_skipped() -> None:
    attempts: list[int] = []
    flaky = make_flaky(attempts)

    class RetryThenBug(Hook):
        async def wrap(self, call: Call, call_next: tokenmw.CallNext) -> Any:
            try:
                await call_next(call)
            except ConnectionError:
                await call_next(call)
            raise KeyError("the hook's own bug")

    assert await Middleware([RetryThenBug()]).run(new_call(), flaky) == "second"


async def test_a_wrap_hook_may_hedge_with_parallel_calls() -> None:
    import asyncio

    class Hedge(Hook):
        name = "hedge"

        async def wrap(self, call: Call, call_next: tokenmw.CallNext) -> Any:
            first, _ = await asyncio.gather(call_next(call), call_next(call))
            return first

    log: list[str] = []
    mw = Middleware([Hedge()])
    assert await mw.run(new_call(), make_send(log)) == "reply"
    assert log == ["send", "send"]
    assert mw.hook_times.snapshot()[("hedge", "wrap")].runs == 1


async def test_a_failing_wrap_is_bypassed_with_the_request_it_found() -> None:
    sent: list[Any] = []

    class ChangeThenFail(Hook):
        async def wrap(self, call: Call, call_next: tokenmw.CallNext) -> Any:
            call.request["messages"] = "half-changed"
            raise RuntimeError("boom")

    async def send(call: Call) -> str:
        sent.append(call.request["messages"])
        return "reply"

    await Middleware([ChangeThenFail()]).run(new_call(), send)
    assert sent == [[{"role": "user", "content": "hi"}]]


async def test_failing_on_send_is_rolled_back() -> None:
    class BrokenSend(Hook):
        async def on_send(self, call: Call) -> None:
            call.request["temperature"] = 2.0
            call.request["messages"] = "half-changed"
            raise RuntimeError("boom in on_send")

    sent: list[dict[str, Any]] = []

    async def send(call: Call) -> str:
        sent.append(dict(call.request))
        return "reply"

    await Middleware([BrokenSend()]).run(new_call(), send)
    assert sent == [{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}]


async def test_repeated_failures_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    mw = Middleware([Broken("after")])
    with caplog.at_level(logging.DEBUG, logger="tokenmw"):
        for _ in range(3):
            await mw.run(new_call(), make_send([]))
    levels = [r.levelno for r in caplog.records if "broken" in r.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG]


# -- handing the event loop back ---------------------------------------------------------------------


async def steps_between(request: dict[str, Any]) -> list[str]:
    """The order of a chain's ``before``, its ``send`` and another task's ticks: which loop steps
    the chain took."""
    log: list[str] = []
    running = True

    async def ticker() -> None:
        while running:
            log.append("tick")
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # the ticker runs once, then waits for the loop's next step
    log.clear()
    await Middleware([Recorder("a", log)]).run(Call(request, "chat"), make_send(log))
    running = False
    await task
    return [entry for entry in log if entry in ("tick", "before:a", "send")]


async def test_a_small_request_with_quick_hooks_is_one_loop_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain_module, "HOOK_STEP_NS", 10**12)  # no machine is that slow
    steps = await steps_between({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    assert steps == ["before:a", "send"]


async def test_a_large_request_hands_the_loop_back_before_and_after_the_hooks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chain_module, "HOOK_STEP_NS", 10**12)
    text = "word " * (chain_module.LARGE_REQUEST_CHARS // 5 + 1)
    steps = await steps_between({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
    assert steps == ["tick", "before:a", "tick", "send"]


async def test_slow_hooks_hand_the_loop_back_before_the_send(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain_module, "HOOK_STEP_NS", -1)  # every hook counts as slow
    steps = await steps_between({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    assert steps == ["before:a", "tick", "send"]


async def test_a_subclass_overriding_after_has_it_run_whatever_the_parent_would_skip() -> None:
    # CountTokens skips its ``after`` when usage came back; a subclass's own ``after`` must run.
    seen: list[int | None] = []

    class BillingCount(tokenmw.CountTokens):
        async def after(self, call: Call, response: Any) -> Any:
            seen.append(call.usage.output_tokens)
            return await super().after(call, response)

    reply = {"id": "r1", "model": "gpt-4o", "choices": [{"finish_reason": "stop"}],
             "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}  # fmt: skip
    call = Call({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, "chat")
    await Middleware([BillingCount()]).run(call, make_send([], reply))
    assert seen == [2]


async def test_new_text_hands_the_loop_back_before_the_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    # A request well under the large size whose new text (never counted) the hooks will compress
    # and count: that work gets a loop step of its own, apart from the client's.
    monkeypatch.setattr(chain_module, "HOOK_STEP_NS", 10**12)
    text = "A new tool output, never seen: " + " ".join(f"row {i} shipped" for i in range(250))
    assert chain_module.NEW_TEXT_CHARS < len(text) < chain_module.LARGE_REQUEST_CHARS
    steps = await steps_between({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
    assert steps == ["tick", "before:a", "send"]
    tokenmw.count_tokens([{"role": "user", "content": text}], "gpt-4o")  # counted now: not new
    steps = await steps_between({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
    assert steps == ["before:a", "send"]
