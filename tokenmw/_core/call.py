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

    def record_reported(self, obj: Any) -> bool:
        """Copy the usage the API reported on ``obj`` (a response, stream chunk or final stream
        event) into these figures; whether it carried any."""
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

