"""The per-call context every hook shares: the request, notes, and the counted values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tokenmw._tokens.count_cache import cache_for
from tokenmw._tokens.counting import CountPlan, plan_request
from tokenmw._tokens.encodings import encoding_for_async
from tokenmw._wire.usage import read_usage

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
    """Requests the model answered for this call (more than one: a retry, hedging, expansions)."""
    earlier: CallUsage | None = None
    """The sum of earlier sends of this call (a wrap hook that retries or hedges, an expansion):
    each billed response is banked here when the next one arrives, and folded in at the end."""
    _sends: list[Any] | None = None
    next_send_unrequested: bool = False
    """Set by a hook before a send of its own doing (an expansion follow-up): that send's input
    counts as sent but not as original, so ``input_tokens_saved`` is net of it."""

    def record_send(self, response: Any) -> None:
        """One response the model billed (the chain's centre calls this once per send): a second
        response banks the first's figures instead of replacing them, so every send is counted."""
        if read_usage(response) is None:
            return
        if self._sends is None:
            self._sends = [response]
        else:
            self._bank(local=False)
            self._sends.append(response)
        self.record_reported(response)

    def count_send(self, original: int, sent: int) -> None:
        """The local input counts of one send (``CountTokens.on_send``): a later send adds to
        the earlier ones rather than replacing them."""
        if self.input_tokens_sent is not None:
            self._bank(local=True)
        if self.next_send_unrequested:
            self.next_send_unrequested = False
            original = 0  # the caller never asked for this request: nothing saved on it
        self.input_tokens_original = original
        self.input_tokens_sent = sent

    def _bank(self, *, local: bool) -> None:
        bank = self.earlier
        if bank is None:
            bank = self.earlier = CallUsage()
        if local:
            names: tuple[str, ...] = ("input_tokens_original", "input_tokens_sent")
        else:
            names = ("input_tokens_reported", "output_tokens", "cached_input_tokens", "reasoning_tokens")
            bank.output_tokens_estimated |= self.output_tokens_estimated
        for name in names:
            value = getattr(self, name)
            if value is not None:
                setattr(bank, name, (getattr(bank, name) or 0) + value)
                setattr(self, name, None)

    def bank_reported(self, obj: Any) -> None:
        """Add the usage reported on ``obj`` to the earlier sends at once: a response a hook read
        and never passed on (a stream that was only an expand call)."""
        reported = read_usage(obj)
        if reported is None:
            return
        bank = self.earlier
        if bank is None:
            bank = self.earlier = CallUsage()
        for name in ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens"):
            value = getattr(reported, name)
            if isinstance(value, int):
                target = "input_tokens_reported" if name == "input_tokens" else name
                setattr(bank, target, (getattr(bank, target) or 0) + value)

    def fold_earlier(self) -> None:
        """Add the banked sends into these figures (once, when the call ends)."""
        bank, self.earlier = self.earlier, None
        if bank is None:
            return
        for name in _SUMMED:
            value = getattr(bank, name)
            if value is not None:
                setattr(self, name, (getattr(self, name) or 0) + value)
        self.output_tokens_estimated |= bank.output_tokens_estimated

    def record_reported(self, obj: Any) -> bool:
        """Copy the usage the API reported on ``obj`` (a response, stream chunk or final stream
        event) into these figures; whether it carried any."""
        sends = self._sends
        if sends is not None and obj is not sends[-1] and any(obj is seen for seen in sends):
            return self.output_tokens is not None  # already banked: never counted twice
        reported = read_usage(obj)
        if reported is None:
            return False
        self.input_tokens_reported = reported.input_tokens
        self.output_tokens = reported.output_tokens
        self.output_tokens_estimated = False
        if reported.cached_input_tokens is not None:
            self.cached_input_tokens = reported.cached_input_tokens
        if reported.reasoning_tokens is not None:
            self.reasoning_tokens = reported.reasoning_tokens
        return True


_SUMMED = (
    "input_tokens_original",
    "input_tokens_sent",
    "input_tokens_reported",
    "output_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
)


class Call:
    """One ``create()`` call as it travels through the chain.

    ``request`` is the live dict of keyword arguments: hooks change it in place and the changed
    dict is what is sent. Token counts go through the process-wide cache, so asking twice, or asking
    after another hook changed one message, encodes only text never seen before.
    """

    __slots__ = (
        "_original_plan",
        "_stream_end",
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
    ) -> None:
        self.request = request
        self.operation: Operation = operation
        self.provider = provider
        self.client = client
        """The unwrapped client the call goes to (``None`` for LiteLLM); hooks rarely need it."""
        self.integration: Integration = integration
        """Which wrapper made the call: parameter names differ (LiteLLM takes ``max_tokens`` for
        every provider and translates it)."""
        self.state: dict[str, Any] = {}
        """Free space for hooks' own notes, private to this call."""
        self.usage = CallUsage()
        self.usage_reported_elsewhere = False
        """Set by the integration when another instrumentation already reports this call's usage
        (its span nests under tokenmw's), so telemetry does not report it twice."""
        self._original_plan: CountPlan | None = None
        self._stream_end: tuple[Any, ...] | None = None

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
        return await self._count(plan_request(self.operation, self.request))

    async def input_count(self) -> tuple[int, bool]:
        """``(input_tokens(), estimated)``: whether part of the count is a guess (see ``counting``)."""
        plan = plan_request(self.operation, self.request)
        return await self._count(plan), plan.estimated

    async def original_input_tokens(self) -> int:
        """Input tokens of the request as the caller made it, before any hook changed it."""
        plan = self._original_plan
        if plan is None:
            return await self.input_tokens()
        return await self._count(plan)

    def snapshot_original(self) -> None:
        """Remember what the request counts as now (texts are immutable, so this copies no text)."""
        self._original_plan = plan_request(self.operation, self.request)

    async def _count(self, plan: CountPlan) -> int:
        encoding = await encoding_for_async(self.model)
        return plan.fixed + await cache_for(encoding).count_all_async(plan.texts)

    def end_stream(self, *final_chunks: Any) -> None:
        """Ask a stream to stop after the current chunk: upstream is closed at once and
        ``final_chunks`` are delivered (through every hook's ``on_chunk``) as its last chunks."""
        self._stream_end = final_chunks
