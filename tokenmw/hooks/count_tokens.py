"""``CountTokens``: input tokens before and after the other hooks, output tokens, a budget guard.

Input is counted in ``on_send``, on the request exactly as it goes out, through the call's shared
count (the original request's texts were counted with the same cache, so the second count pays
only for what the hooks changed). Output tokens come from the API's usage; where it reports none
(a stream without the usage chunk, a provider that omits usage) the reply text is counted
locally and the figure is flagged as estimated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tokenmw._core.errors import TokenBudgetExceeded
from tokenmw._core.hook import Hook
from tokenmw._tokens import prices as _prices
from tokenmw._tokens.count_cache import cache_for
from tokenmw._tokens.encodings import encoding_for, encoding_for_async, loaded
from tokenmw._wire.text import chunk_pieces, reply_pieces
from tokenmw.hooks._checks import whole_number
from tokenmw.telemetry._spans import annotate_phase, phase_span

if TYPE_CHECKING:
    from tokenmw._core.call import Call
    from tokenmw._core.hook import StreamOutcome

__all__ = ["CountTokens"]

_DELTAS = "count_tokens.deltas"
# Responses stream events whose ``delta`` is generated text.


class CountTokens(Hook):
    """Record input tokens as made and as sent, output tokens, and refuse over-budget requests.

    ``max_input_tokens``: refuse (``TokenBudgetExceeded``, nothing sent) a request counted above
    it; with ``None`` the model's context window is the limit where a price table (genai-prices,
    else litellm's) knows it, and no limit is checked where none does.
    """

    name = "count_tokens"
    sync_fast_path = True
    _span_current = False
    _edits_by_replacing = True

    def __init__(self, max_input_tokens: int | None = None) -> None:
        whole_number("max_input_tokens", max_input_tokens, 0, optional=True)
        self.max_input_tokens = max_input_tokens
        if max_input_tokens is None:
            _prices.preload()  # context windows: read the table off the call path

    def __repr__(self) -> str:
        return f"CountTokens(max_input_tokens={self.max_input_tokens!r})"

    async def on_send(self, call: Call) -> None:
        sent, estimated = await call.input_count()
        original = await call.original_input_tokens()
        usage = call.usage
        if usage.requests and usage.input_tokens_sent is not None and usage.input_tokens_original is not None:
            # A later send of the same call (retry, expansion): each request sent is counted,
            # against the caller's request it carries; the budget is per request.
            usage.input_tokens_original += original
            usage.input_tokens_sent += sent
        else:
            usage.input_tokens_original = original
            usage.input_tokens_sent = sent
        limit = self.max_input_tokens
        if limit is None:
            limit = await _prices.context_window_async(call.model)
        if phase_span(call).is_recording():
            # The span says when a count is partly a guess, and when no budget was checked (a model
            # whose context window no price table knows: refusing it would be a guess too).
            notes: dict[str, Any] = {"tokens.estimated": estimated}
            if limit is None:
                notes["budget.off"] = "context window unknown"
            else:
                notes["budget.limit"] = limit
            annotate_phase(call, original, sent, **notes)
        if limit is not None and sent > limit:
            source: str | None
            if self.max_input_tokens is not None:
                source = f"CountTokens(max_input_tokens={self.max_input_tokens})"
            else:
                source = _prices.context_window_source(call.model)
            raise TokenBudgetExceeded(sent, limit, call.model, estimated=estimated, source=source)

    def _after_idle(self, call: Call, response: Any) -> bool:
        return call.usage.output_tokens is not None  # the chain read the API's usage already

    async def after(self, call: Call, response: Any) -> Any:
        usage = call.usage
        # The chain recorded what every send billed; read the response only when it did not
        # (a hook answered without sending).
        if usage.output_tokens is not None or (
            not usage.requests and usage.record_reported(response) and usage.output_tokens is not None
        ):
            return response
        pieces = reply_pieces(response)
        if pieces is not None:
            texts = [text for _, _, text in pieces]
            encoding = await encoding_for_async(call.model)
            usage.output_tokens = await cache_for(encoding).count_all_async(texts)
            usage.output_tokens_estimated = True
        return response

    def on_chunk(self, call: Call, chunk: Any) -> Any:
        pieces = chunk_pieces(chunk)
        if pieces:
            delta = pieces[0][2] if len(pieces) == 1 else "".join(text for _, _, text in pieces)
            deltas = call.state.get(_DELTAS)
            if deltas is None:
                call.state[_DELTAS] = [delta]
            else:
                deltas.append(delta)
        return chunk

    def on_stream_end(self, call: Call, outcome: StreamOutcome) -> None:
        deltas: list[str] | None = call.state.pop(_DELTAS, None)
        usage = call.usage
        if usage.output_tokens is not None:
            return  # the usage chunk arrived
        if deltas:
            # Sync by necessity (this may run at garbage collection); the encoding is loaded
            # already because on_send counted the input with it.
            encoding = loaded(call.model) or encoding_for(call.model)
            usage.output_tokens = cache_for(encoding).count("".join(deltas))
        else:
            usage.output_tokens = 0
        usage.output_tokens_estimated = True
