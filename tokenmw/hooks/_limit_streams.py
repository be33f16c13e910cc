"""``LimitResponse`` on streams: count the text as it arrives and stop the stream at the cap.

Each chunk costs a few microseconds (``StreamBudget`` encodes each byte about once over the whole
stream). At the cap the rest of the chunk is dropped and ``call.end_stream`` closes the upstream
connection and hands the caller the end the API would have sent for a cut answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tokenmw._tokens.count_cache import cache_for
from tokenmw._tokens.counting import plan_request
from tokenmw.hooks._cut import StreamBudget
from tokenmw.hooks._shapes import (
    TEXT_ITEMS,
    build,
    cut_part,
    empty_delta,
    event_like,
    get,
    replace,
    trim_logprobs,
)

if TYPE_CHECKING:
    import tiktoken

    from tokenmw._core.call import Call

__all__ = ["ChatStream", "LimitPlan", "ResponsesStream"]


class LimitPlan:
    """What ``before`` decided for one call, and what the response came to."""

    __slots__ = ("encoding", "include_usage", "limit", "output_tokens", "skipped", "stream", "truncated")

    def __init__(
        self,
        limit: int,
        encoding: tiktoken.Encoding | None,
        *,
        include_usage: bool = False,
        skipped: str | None = None,
    ) -> None:
        self.limit = limit
        self.encoding = encoding
        """``None`` when the call is left alone (``skipped``)."""
        self.include_usage = include_usage
        self.skipped = skipped
        self.truncated = False
        self.output_tokens: int | None = None
        self.stream: ChatStream | ResponsesStream | None = None


class ChatStream:
    """Chat completion chunks: one budget per choice; the stream stops once every choice has
    ended or been cut."""

    __slots__ = ("budgets", "cut", "ended", "finished", "plan", "protected")

    def __init__(self, plan: LimitPlan) -> None:
        self.plan = plan
        self.budgets: dict[int, StreamBudget] = {}
        self.cut: dict[int, Any] = {}
        """Choices cut at the cap: index -> the upstream choice that crossed it."""
        self.finished: set[int] = set()
        self.protected: set[int] = set()
        """Choices that are calling tools: never counted, never cut."""
        self.ended = False

    def feed(self, call: Call, chunk: Any) -> Any:
        """The chunk to show (possibly cut), or ``None`` to drop it."""
        if self.ended:
            if get(chunk, "usage") is not None:  # ours, since upstream is closed: not the API's
                call.usage.input_tokens_reported = None
                call.usage.output_tokens_estimated = True
            return chunk
        choices = get(chunk, "choices")
        if not choices:
            return chunk
        shown: list[Any] | None = None
        for pos, choice in enumerate(choices):
            new = self._choice(choice)
            if new is choice and shown is None:
                continue
            if shown is None:
                shown = list(choices[:pos])
            if new is not None:
                shown.append(new)
        result = chunk
        if shown is not None:
            result = replace(chunk, choices=shown) if shown or get(chunk, "usage") is not None else None
        # Stop early once a cut choice still waits for its end and every other choice has ended.
        cut = self.cut
        if cut and not cut.keys() <= self.finished and len(cut.keys() | self.finished) >= _choice_count(call):
            self._end(call, chunk)
        return result

    def _choice(self, choice: Any) -> Any:
        """The choice to show: itself, a cut copy, or ``None`` to drop it."""
        index = get(choice, "index") or 0
        finish = get(choice, "finish_reason")
        if index in self.cut:
            if finish is None:
                return None  # text past the cap
            self.finished.add(index)  # other choices kept the stream going: end this one as cut
            return replace(choice, delta=empty_delta(get(choice, "delta")), finish_reason="length")
        if finish is not None:
            self.finished.add(index)
        delta = get(choice, "delta")
        if delta is None or index in self.protected:
            return choice
        if get(delta, "tool_calls") or get(delta, "function_call"):
            self.protected.add(index)
            self.plan.skipped = "tool_calls"
            return choice
        content = get(delta, "content")
        if not isinstance(content, str) or not content:
            return choice
        budget = self.budgets.get(index)
        if budget is None:
            budget = self.budgets[index] = StreamBudget(_encoding(self.plan), self.plan.limit)
        keep = budget.add(content)
        if keep is None:
            return choice
        self.cut[index] = choice
        self.finished.discard(index)  # its end is ours to send, as a cut
        self.plan.truncated = True
        if keep == 0 and get(delta, "role") is None:
            return None
        return replace(
            choice,
            delta=replace(delta, content=content[:keep]),
            finish_reason=None,
            logprobs=trim_logprobs(get(choice, "logprobs"), keep),
        )

    def _end(self, call: Call, chunk: Any) -> None:
        """Stop the stream: a finish chunk for the cut choices, then usage if the caller asked."""
        self.ended = True
        finals: list[Any] = []
        ending = [choice for index, choice in sorted(self.cut.items()) if index not in self.finished]
        if ending:
            finish = [
                replace(c, delta=empty_delta(get(c, "delta")), finish_reason="length", logprobs=None)
                for c in ending
            ]
            finals.append(replace(chunk, choices=finish))
        produced = self.produced()
        usage = call.usage
        if usage.output_tokens is None:
            usage.output_tokens = produced
            usage.output_tokens_estimated = True
        if self.plan.include_usage:
            prompt = _input_tokens(call, _encoding(self.plan))
            finals.append(replace(chunk, choices=[], usage=_chat_usage(chunk, prompt, produced)))
        call.end_stream(*finals)

    def produced(self) -> int:
        """Visible output tokens received, over every choice (exact)."""
        return sum(budget.total() for budget in self.budgets.values())


class ResponsesStream:
    """Responses API events: one budget for the response's text. At the cap the stream ends the
    way the API ends a cut response: the open text part, content part and message item are
    closed, then ``response.incomplete`` carries the whole response as it was shown."""

    __slots__ = (
        "budget",
        "done_items",
        "done_parts",
        "ended",
        "item",
        "part",
        "plan",
        "protected",
        "response",
        "sequence",
        "shown",
    )

    def __init__(self, plan: LimitPlan) -> None:
        self.plan = plan
        self.budget = StreamBudget(_encoding(plan), plan.limit)
        self.response: Any = None
        """The response as ``response.created`` announced it."""
        self.done_items: dict[int, Any] = {}
        self.item: tuple[int, Any] | None = None
        """The message item being written: its output index and its ``output_item.added`` form."""
        self.done_parts: dict[int, Any] = {}
        self.part: tuple[int, Any] | None = None
        """The content part being written: its index and its ``content_part.added`` form."""
        self.shown: list[str] = []
        """Text of the open part shown so far."""
        self.sequence = -1
        self.protected = False
        self.ended = False

    def feed(self, call: Call, event: Any) -> Any:
        """The event to show (possibly cut), or ``None`` to drop it."""
        if self.ended:
            if get(event, "type") == "response.incomplete":  # ours: the usage is a local count
                call.usage.input_tokens_reported = None
                call.usage.output_tokens_estimated = True
            return event
        kind = get(event, "type")
        sequence = get(event, "sequence_number")
        if isinstance(sequence, int):
            self.sequence = sequence
        if kind == "response.output_text.delta":
            return event if self.protected else self._text(call, event)
        if kind in ("response.created", "response.in_progress"):
            self.response = get(event, "response")
        elif kind == "response.output_item.added":
            item = get(event, "item")
            item_type = get(item, "type")
            if item_type not in TEXT_ITEMS:
                self.protected = True
                self.plan.skipped = "tool_calls"
            elif item_type == "message":
                self.item = (get(event, "output_index") or 0, item)
                self.done_parts = {}
        elif kind == "response.content_part.added":
            self.part = (get(event, "content_index") or 0, get(event, "part"))
            self.shown = []
        elif kind == "response.content_part.done":
            self.done_parts[get(event, "content_index") or 0] = get(event, "part")
        elif kind == "response.output_item.done":
            self.done_items[get(event, "output_index") or 0] = get(event, "item")
        return event

    def _text(self, call: Call, event: Any) -> Any:
        delta = get(event, "delta")
        if not isinstance(delta, str) or not delta:
            return event
        keep = self.budget.add(delta)
        if keep is None:
            self.shown.append(delta)
            return event
        self.plan.truncated = True
        self.ended = True
        self.shown.append(delta[:keep])
        if not keep:
            self.sequence -= 1  # this event is not shown: the closing events take its number
        call.end_stream(*self._closing(call, event))
        return replace(event, delta=delta[:keep]) if keep else None

    def _closing(self, call: Call, event: Any) -> list[Any]:
        """The events that end a cut response: ``output_text.done``, ``content_part.done``,
        ``output_item.done`` for what is open, then ``response.incomplete``."""
        events: list[Any] = []
        seq = self.sequence

        def add(class_name: str, fields: dict[str, Any]) -> None:
            nonlocal seq
            seq += 1
            events.append(event_like(event, class_name, {**fields, "sequence_number": seq}))

        where = {
            "item_id": get(event, "item_id"),
            "output_index": get(event, "output_index") or 0,
            "content_index": get(event, "content_index") or 0,
        }
        text = "".join(self.shown)
        add(
            "ResponseTextDoneEvent",
            {**where, "type": "response.output_text.done", "text": text, "logprobs": []},
        )
        items = dict(self.done_items)
        if self.part is not None:
            index, part = self.part
            part = cut_part(part, text)
            add("ResponseContentPartDoneEvent", {**where, "type": "response.content_part.done", "part": part})
            self.done_parts[index] = part
        if self.item is not None:
            output_index, item = self.item
            content = [self.done_parts[i] for i in sorted(self.done_parts)]
            item = replace(item, content=content, status="incomplete")
            add(
                "ResponseOutputItemDoneEvent",
                {"type": "response.output_item.done", "output_index": output_index, "item": item},
            )
            items[output_index] = item
        produced = self.produced()
        usage = call.usage
        if usage.output_tokens is None:
            usage.output_tokens = produced
            usage.output_tokens_estimated = True
        if self.response is not None:
            prompt = _input_tokens(call, _encoding(self.plan))
            details = {"reason": "max_output_tokens"}
            response = replace(
                self.response,
                status="incomplete",
                incomplete_details=build(self.response, "incomplete_details", details),
                output=[items[i] for i in sorted(items)],
                usage=build(self.response, "usage", _responses_usage(prompt, produced)),
            )
            add("ResponseIncompleteEvent", {"type": "response.incomplete", "response": response})
        return events

    def produced(self) -> int:
        """Visible output tokens received (exact)."""
        return self.budget.total()


def _choice_count(call: Call) -> int:
    n = call.request.get("n")
    return n if isinstance(n, int) and n > 1 else 1


def _encoding(plan: LimitPlan) -> tiktoken.Encoding:
    encoding = plan.encoding
    assert encoding is not None  # streams are only limited when before() loaded it
    return encoding


def _input_tokens(call: Call, encoding: tiktoken.Encoding) -> int:
    """Input tokens for a usage the provider never sent: counted by another hook if one did,
    else here (sync, inside the caller's iteration; the shared cache usually has every text)."""
    sent = call.usage.input_tokens_sent
    if sent is not None:
        return sent
    plan = plan_request(call.operation, call.request)
    return plan.fixed + cache_for(encoding).count_all(plan.texts)


def _chat_usage(chunk: Any, prompt: int, completion: int) -> Any:
    values = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return build(chunk, "usage", values)


def _responses_usage(prompt: int, output: int) -> dict[str, Any]:
    # Cached and reasoning tokens are unknown locally; 0 is what the API would say without them.
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + output,
    }
