"""The per-call context every hook shares: the request, notes, and the counted values."""

from __future__ import annotations

import marshal
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tokenmw._tokens.count_cache import cache_for
from tokenmw._tokens.counting import COUNTED_KEYS, CountPlan, plan_request
from tokenmw._tokens.encodings import encoding_for_async, loaded
from tokenmw._wire.usage import ReportedUsage, read_usage

__all__ = ["Call", "CallUsage", "Integration", "Operation"]

Operation = Literal["chat", "responses"]
Integration = Literal["openai", "litellm"]


@dataclass(slots=True)
class CallUsage:
    """Token figures of one call; hooks fill the local counts, the chain the reported ones."""

    input_tokens_original: int | None = None
    input_tokens_sent: int | None = None
    input_tokens_reported: int | None = None
    output_tokens: int | None = None
    output_tokens_estimated: bool = False
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    requests: int = 0
    """Model requests this call sent (a retrying or expanding ``wrap`` hook sends more than one)."""
    _base: tuple[int | None, int | None, int | None, int | None] | None = field(
        default=None, repr=False, compare=False
    )
    """Reported figures of earlier responses of this call, which later ones add to."""
    _has_response: bool = field(default=False, repr=False, compare=False)
    _last_read: tuple[Any, ReportedUsage | None] | None = field(default=None, repr=False, compare=False)
    """The object read last and what it said: the chain and ``CountTokens.after`` read the same
    response."""

    def record_reported(self, obj: Any) -> bool:
        """Copy the usage the API reported on ``obj`` (a response, stream chunk or final stream
        event) into these figures, on top of earlier responses' (``bank``); whether it had any.

        Setting, not adding, keeps it idempotent for one response (the chain and a hook may both
        read the same response; a provider may repeat usage on every chunk)."""
        last = self._last_read
        if last is not None and last[0] is obj:
            reported = last[1]
        else:
            reported = read_usage(obj)
            self._last_read = (obj, reported)
        if reported is None:
            return False
        base = self._base or (None, None, None, None)
        self.input_tokens_reported = _plus(base[0], reported.input_tokens)
        self.output_tokens = _plus(base[1], reported.output_tokens)
        self.output_tokens_estimated = False
        if reported.cached_input_tokens is not None:
            self.cached_input_tokens = _plus(base[2], reported.cached_input_tokens)
        if reported.reasoning_tokens is not None:
            self.reasoning_tokens = _plus(base[3], reported.reasoning_tokens)
        return True

    def record_response(self, obj: Any) -> bool:
        """One more billed response (the chain's centre, per non-streamed send): an earlier
        response's figures are kept and this one's added, so a retry or a hedge is not lost."""
        if self._has_response:
            self.bank()
        self._has_response = True
        return self.record_reported(obj)

    def bank(self) -> None:
        """Keep the figures as they are now as the base later responses add to: called when a
        response is finished with (a consumed stream, before the next send)."""
        self._base = (
            self.input_tokens_reported,
            self.output_tokens,
            self.cached_input_tokens,
            self.reasoning_tokens,
        )
        self._has_response = False


def _plus(base: int | None, value: int | None) -> int | None:
    if base is None:
        return value
    return base if value is None else base + value


class Call:
    """One ``create()`` call as it travels through the chain.

    ``request`` is the live dict of keyword arguments: hooks change it in place and the changed
    dict is what is sent. Token counts go through the process-wide cache, so asking twice, or asking
    after another hook changed one message, encodes only text never seen before.
    """

    __slots__ = (
        "_counted",
        "_hooks_started",
        "_in_chain",
        "_original_chars",
        "_original_plan",
        "_phase_span",
        "_plan_memo",
        "_stream_end",
        "_unread",
        "_unverified",
        "_user_code",
        "blocking",
        "client",
        "integration",
        "operation",
        "provider",
        "request",
        "state",
        "usage",
        "usage_reported_elsewhere",
    )

    def __init__(
        self,
        request: dict[str, Any],
        operation: Operation,
        *,
        provider: str = "openai",
        client: Any = None,
        integration: Integration = "openai",
        blocking: bool = False,
    ) -> None:
        self.request = request
        self.operation: Operation = operation
        self.provider = provider
        self.client = client
        """The unwrapped client the call goes to (``None`` for LiteLLM); hooks rarely need it."""
        self.integration: Integration = integration
        """Which wrapper made the call: parameter names differ (LiteLLM takes ``max_tokens`` for
        every provider and translates it)."""
        self.blocking = blocking
        """Whether the caller waits synchronously (a sync client): a hook that reads a stream
        itself reads it with ``next()`` (LiteLLM's stream wrapper offers both and only one works)."""
        self.state: dict[str, Any] = {}
        """Free space for hooks' own notes, private to this call."""
        self.usage = CallUsage()
        self.usage_reported_elsewhere = False
        """Set by the integration when another instrumentation already reports this call's usage
        (its span nests under tokenmw's), so telemetry does not report it twice."""
        self._original_plan: CountPlan | None = None
        self._original_chars = 0
        """Characters of text in the request as the caller made it (what is counted): how much
        work the client has with it."""
        self._stream_end: tuple[Any, ...] | None = None
        # Per-request memos: hooks ask for the count several times per call (before and after
        # their change, on spans), mostly of a request nobody changed since the last ask.
        self._plan_memo: tuple[tuple[Any, ...], _Fingerprint | None, CountPlan] | None = None
        """``(counted values, fingerprint, plan)``: the request's counted top-level values (compared
        by identity), its full fingerprint when one was needed (``_fingerprint``), its plan."""
        # Who may have changed the request since the memo was made. Inside a chain run, outside
        # any custom hook's phase, only the chain and the built-in hooks touch it, and they change
        # it only by assigning new top-level values: an identity check of those is enough. A
        # custom hook may edit anything in place, so after one ran the full fingerprint decides;
        # outside a chain (a Call made by hand) it always does.
        self._in_chain = 0
        self._user_code = 0
        self._unverified = False
        self._counted: list[tuple[CountPlan, Any, int]] = []
        self._phase_span: Any = None
        """The span of the hook phase running now, when it is not made current (``Hook._span_current``)."""
        self._unread: tuple[Any, ...] = ()
        self._hooks_started = 0
        """``perf_counter_ns()`` when the chain started the hooks' request work (async calls):
        how long they held the loop so far."""

    def __repr__(self) -> str:
        return f"Call(operation={self.operation!r}, model={self.model!r}, stream={self.stream})"

    @property
    def model(self) -> str | None:
        """The model the request names."""
        model = self.request.get("model")
        return model if isinstance(model, str) else None

    @property
    def stream(self) -> bool:
        """Whether the caller asked for a stream."""
        return bool(self.request.get("stream"))

    async def input_tokens(self) -> int:
        """Input tokens of the request as it is now; only text never counted before is encoded."""
        return await self._count(self._plan())

    async def input_count(self) -> tuple[int, bool]:
        """``(input_tokens(), estimated)``: whether part of the count is a guess (see ``counting``)."""
        plan = self._plan()
        return await self._count(plan), plan.estimated

    async def original_input_tokens(self) -> int:
        """Input tokens of the request as the caller made it, before any hook changed it."""
        plan = self._original_plan
        if plan is None:
            return await self.input_tokens()
        return await self._count(plan)

    def materialise(self) -> None:
        """Turn one-shot iterables in the request (generators, ``itertools.chain``, tuples) into
        lists.

        openai types ``messages``, ``tools`` and other list parameters as ``Iterable``: counting a
        generator, or a hook reading it, would consume it and send an empty list (LiteLLM hands
        them on as given; openai's own client makes lists before tokenmw sees them). Done once, at
        the start of the call, so what is counted is what is sent. Only top-level values: inside a
        message tokenmw reads lists and tuples and never iterates anything else, and a scan of
        every message would cost every call ~0.2 us a message.
        """
        request = self.request
        for key, value in request.items():
            if _one_shot(value):
                request[key] = list(value)

    def snapshot_original(self) -> None:
        """Remember what the request counts as now (texts are immutable, so this copies no text)."""
        plan = self._original_plan = self._plan()
        self._original_chars = sum(map(len, plan.texts))

    def _uncounted_chars(self) -> int:
        """Characters of text in the request as made that were never counted in this process: how
        much work the hooks have with it (compressing and counting new text is most of it)."""
        plan = self._original_plan
        if plan is None:
            return 0
        encoding = loaded(self.model)
        if encoding is None:
            return sum(map(len, plan.texts))  # not known yet: as if all new
        return cache_for(encoding).unseen_chars(plan.texts)

    def _plan(self) -> CountPlan:
        """The counting plan of the request as it is now, reused while the request is unchanged."""
        request = self.request
        values = self._counted_values()
        memo = self._plan_memo
        trusted = self._in_chain and not self._user_code
        if memo is not None:
            old_values, old_print, plan = memo
            if trusted and not self._unverified:
                if all(map(operator.is_, old_values, values)):
                    return plan
            elif old_print is not None and _same(old_print, _fingerprint(self.operation, request)):
                self._plan_memo = (values, old_print, plan)
                self._unverified = not trusted
                return plan
        plan = plan_request(self.operation, request)
        # The fingerprint is only taken when a later check may need it (custom code may run).
        found = None if trusted else _fingerprint(self.operation, request)
        self._plan_memo = (values, found, plan) if trusted or found is not None else None
        self._unverified = not trusted
        return plan

    def _counted_values(self) -> tuple[Any, ...]:
        """The request's values under the keys its count reads, to compare by identity."""
        return tuple(map(self.request.get, COUNTED_KEYS[self.operation]))

    def _enter_chain(self) -> None:
        """A chain starts running this call: until a custom hook runs, identity checks hold."""
        self._in_chain += 1
        self._unverified = True  # whatever happened to the request before is checked in full once

    def _leave_chain(self) -> None:
        self._in_chain -= 1

    def _enter_user_code(self) -> None:
        """A custom hook's phase starts: it may edit the request in place, so the memo keeps (or
        takes now, while it still matches) a full fingerprint to be checked against afterwards."""
        if not self._user_code:
            memo = self._plan_memo
            if memo is not None and memo[1] is None:
                values, _, plan = memo
                found = (
                    _fingerprint(self.operation, self.request)
                    if all(map(operator.is_, values, self._counted_values()))
                    else None
                )
                self._plan_memo = (values, found, plan) if found is not None else None
        self._user_code += 1
        self._unverified = True

    def _leave_user_code(self) -> None:
        self._user_code -= 1

    async def _count(self, plan: CountPlan) -> int:
        encoding = await encoding_for_async(self.model)
        for counted, by, tokens in self._counted:
            if counted is plan and by is encoding:
                return tokens
        tokens = plan.fixed + await cache_for(encoding).count_all_async(plan.texts)
        if len(self._counted) >= 4:  # the original plan and the latest few
            del self._counted[1]
        self._counted.append((plan, encoding, tokens))
        return tokens

    def end_stream(self, *final_chunks: Any) -> None:
        """Ask a stream to stop after the current chunk: upstream is closed at once and
        ``final_chunks`` are delivered (through every hook's ``on_chunk``) as its last chunks."""
        self._stream_end = final_chunks

    def unread(self, *chunks: Any) -> None:
        """Put ``chunks`` back in front of the stream a ``wrap`` hook returns: a hook that read
        ahead to decide (reversible compression) hands the caller every chunk, in order."""
        self._unread = chunks


_PLANNED_KEYS = tuple(key for key in COUNTED_KEYS["chat"] if key != "messages")
"""What ``plan_chat`` reads of a chat request besides ``messages``."""

_Fingerprint = tuple[tuple[Any, ...], list[Any]]


def _same(old: _Fingerprint, new: _Fingerprint | None) -> bool:
    if new is None:
        return False
    planned, key = new
    old_planned, old_key = old
    return planned == old_planned and len(old_key) == len(key) and all(map(operator.is_, old_key, key))


def _fingerprint(operation: Operation, request: dict[str, Any]) -> _Fingerprint | None:
    """What a chat request's count depends on, to compare with an earlier request state: the
    values of the planned keys besides ``messages`` (tools and a ``tool_choice`` object by their
    content, ``marshal``: ~5 µs for eight tools, where a new plan renders them again), and every
    object of ``messages``, compared by identity. ``None`` (never reused) when some part could
    change in place unseen: parts lists, SDK objects, and the Responses API. Strings are
    immutable, so a message whose values are all strings is unchanged exactly when its keys and
    values are the same objects."""
    if operation != "chat":
        return None
    messages = request.get("messages")
    if type(messages) is not list:
        return None
    planned: list[Any] = []
    for name in _PLANNED_KEYS:
        value = request.get(name)
        if value is not None and type(value) is not str:
            try:
                value = marshal.dumps(value)  # plain data only: anything else raises
            except ValueError:
                return None
        planned.append(value)
    key: list[Any] = [messages]
    for message in messages:
        if type(message) is not dict:
            return None
        values = message.values()
        if not _STR_OR_NONE.issuperset(map(type, values)):  # C loops: this runs per count
            return None
        key.append(message)
        key.extend(message)
        key.extend(values)
    return tuple(planned), key


_STR_OR_NONE = frozenset({str, type(None)})


_PLAIN = frozenset({str, list, dict, int, float, bool, type(None)})


def _one_shot(value: Any) -> bool:
    """Whether ``value`` is an iterable JSON would send as an array but that is not a list."""
    return (
        type(value) not in _PLAIN
        and isinstance(value, Iterable)
        and not isinstance(value, list | str | bytes | bytearray | memoryview | Mapping)
        and not hasattr(value, "model_dump")  # a pydantic model iterates over its fields
        and not hasattr(value, "read")  # a file
    )
