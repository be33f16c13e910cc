"""``LimitResponse``: cap output tokens at the provider, and enforce the cap where it is ignored.

Output tokens cost several times input tokens, and a long answer is re-sent as input on every later
turn of an agent. The cap goes out in the parameter the API understands; proxies and local servers
often ignore it, so the answer is also cut here: a complete response at a sentence or word
boundary, a stream as soon as it passes the cap (its upstream connection is closed, so the server
stops generating and billing). What the caller parses is never cut: tool calls and structured
output pass untouched.

Responses are read and rebuilt duck-typed (``_shapes``), so nothing here imports ``openai`` or
``litellm``. Text is cut by ``_cut``; streams are followed by ``_limit_streams``.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import trace

from tokenmw._core.hook import Hook
from tokenmw._tokens.count_cache import INLINE_ENCODE_LIMIT
from tokenmw._tokens.encodings import encoding_for_async
from tokenmw._tokens.models import base_model
from tokenmw._wire.text import reply_pieces
from tokenmw._wire.usage import read_usage_block
from tokenmw.hooks._cut import cut_text
from tokenmw.hooks._limit_streams import ChatStream, LimitPlan, ResponsesStream
from tokenmw.hooks._shapes import TEXT_ITEMS, build, cut_part, get, replace, trim_logprobs
from tokenmw.telemetry._spans import phase_span

if TYPE_CHECKING:
    import tiktoken
    from opentelemetry.trace import Span

    from tokenmw._core.call import Call
    from tokenmw._core.hook import StreamOutcome

__all__ = ["LimitResponse", "ReasoningBudget"]

ReasoningBudget = Literal["total", "headroom"]

ATTR_MAX_TOKENS = "tokenmw.limit.max_tokens"
"""The cap on visible output the hook enforces."""
ATTR_REQUEST_MAX_TOKENS = "tokenmw.limit.request_max_tokens"
"""The cap the provider was asked for (higher with reasoning headroom)."""
ATTR_OUTPUT_TOKENS = "tokenmw.limit.output_tokens"
"""Visible output tokens the model produced (the API's figure when it was within the cap, else
counted locally). A whole reply's are on the ``after`` span, which a reply within the cap does not
have (the phase does not run; the call span's ``gen_ai.usage.output_tokens`` says what it took); a
stream's are on the call span, within the cap or not."""
ATTR_TRUNCATED = "tokenmw.limit.truncated"
ATTR_SKIPPED = "tokenmw.limit.skipped_reason"
"""Why the output was passed untouched: ``structured_output``, ``forced_tool_call``, ``tool_calls``."""

_STATE = "limit_response"

# The parameter a cap goes in, in order of preference. Chat completions: ``max_tokens`` is
# deprecated in favour of ``max_completion_tokens`` and rejected by reasoning models (o-series,
# gpt-5), so that is what we set; but many OpenAI-compatible servers know only ``max_tokens``, so a
# caller who already uses it gets it lowered instead, and nothing they did not send is added.
# LiteLLM takes ``max_tokens`` for every provider and translates it (to ``max_completion_tokens``
# for OpenAI reasoning models). The Responses API has one name.
_CHAT_PARAMS = ("max_completion_tokens", "max_tokens")
_LITELLM_PARAMS = ("max_tokens", "max_completion_tokens")
_RESPONSES_PARAMS = ("max_output_tokens",)

# OpenAI reasoning models: o1/o3/o4…, gpt-5* except the gpt-5(.x)-chat models, gpt-oss, codex.
_REASONING_MODEL = re.compile(r"o\d|gpt-5(?!(?:\.\d+)?-chat)|gpt-oss|codex")
_STRUCTURED_FORMATS = frozenset({"json_object", "json_schema"})


class LimitResponse(Hook):
    """Cap every response at ``max_tokens`` output tokens.

    The cap is sent as the API's parameter (``max_completion_tokens``, or the ``max_tokens`` the
    caller already uses; ``max_output_tokens`` for Responses; ``max_tokens`` through LiteLLM). A
    lower value the caller set is kept. When the provider returns more anyway, the text is cut to
    at most ``max_tokens`` tokens (counted with the model's tokenizer) at the last sentence or word
    boundary, the finish reason becomes ``length`` (Responses: status ``incomplete``, reason
    ``max_output_tokens``), and the response keeps its type and every other field. ``usage`` is
    left as the provider reported it: it is what was billed.

    A stream stops as soon as its text passes the cap: the rest is not shown, the upstream
    connection is closed so the server stops generating, and the stream ends well formed (a chunk
    with finish reason ``length`` and, if ``stream_options.include_usage`` was asked for, a usage
    chunk; Responses: the ``.done`` events and ``response.incomplete``). That usage is counted
    locally, since the provider never sent its own.

    Never cut: requests for structured output (``response_format`` / ``text.format`` of type
    ``json_object`` or ``json_schema``) and requests that force a tool call are left entirely
    alone, parameter included, since a cut document parses as nothing; a response that contains
    tool calls is passed untouched. (A model that answers with a tool call longer than the cap is
    still stopped by the provider, with finish reason ``length``, as with the API's own parameter.)

    Reasoning models (o-series, gpt-5, or any request with ``reasoning_effort`` / ``reasoning``)
    count their hidden reasoning against the same parameter, so ``reasoning`` chooses what the cap
    means for them:

    ``"total"`` (default)
        ``max_tokens`` caps reasoning and answer together, as the API's parameter does: the bill
        for output never passes ``max_tokens``, but a model that thinks long may spend it all and
        return an empty answer with finish reason ``length``.
    ``"headroom"``
        the provider is asked for ``max_tokens + reasoning_headroom``, and the visible answer is
        cut here to ``max_tokens``: answers keep their length, and the bill is bounded by the sum.
        OpenAI suggests reserving ~25,000 tokens when reasoning effort is high; the default
        headroom suits low and medium effort.
    """

    name = "limit_response"
    sync_fast_path = True
    _span_current = False
    _edits_by_replacing = True

    def __init__(
        self,
        max_tokens: int,
        *,
        reasoning: ReasoningBudget = "total",
        reasoning_headroom: int = 4096,
    ) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive int, got {max_tokens!r}")
        if reasoning not in ("total", "headroom"):
            raise ValueError(f"reasoning must be 'total' or 'headroom', got {reasoning!r}")
        if reasoning_headroom < 0:
            raise ValueError(f"reasoning_headroom must be >= 0, got {reasoning_headroom}")
        self.max_tokens = max_tokens
        self.reasoning: ReasoningBudget = reasoning
        self.reasoning_headroom = reasoning_headroom

    def __repr__(self) -> str:
        return (
            f"LimitResponse(max_tokens={self.max_tokens!r}, reasoning={self.reasoning!r}, "
            f"reasoning_headroom={self.reasoning_headroom!r})"
        )

    # -- request ----------------------------------------------------------------------------------

    async def before(self, call: Call) -> None:
        span = phase_span(call)
        skipped = _protected_request(call.request)
        if skipped is not None:
            call.state[_STATE] = LimitPlan(self.max_tokens, None, skipped=skipped)
            _annotate(span, self.max_tokens, skipped=skipped)
            return
        cap = self.max_tokens
        if self.reasoning == "headroom" and _reasons(call):
            cap += self.reasoning_headroom
        params: tuple[str, ...]
        if call.operation == "responses":
            params = _RESPONSES_PARAMS
        elif call.integration == "litellm":
            params = _LITELLM_PARAMS
        else:
            params = _CHAT_PARAMS
        sent = _set_cap(call.request, params, cap)
        limit = min(self.max_tokens, sent)
        # Loaded (off the event loop) now, so a stream never loads it while the caller iterates.
        encoding = await encoding_for_async(call.model)
        call.state[_STATE] = LimitPlan(limit, encoding, include_usage=_include_usage(call.request))
        if span.is_recording():
            span.set_attributes({ATTR_MAX_TOKENS: limit, ATTR_REQUEST_MAX_TOKENS: sent})

    # -- complete responses -----------------------------------------------------------------------

    def _after_idle(self, call: Call, response: Any) -> bool:
        # Nothing to cut when the provider kept to the cap (the common case): the phase does not
        # run, and the call span's output tokens say what the reply took.
        plan: LimitPlan | None = call.state.get(_STATE)
        if plan is None or plan.encoding is None:
            return True
        try:
            reported = _visible_reported(response)
        except Exception:  # a response ``after`` must look at (and may fail on, as a hook)
            return False
        return reported is not None and reported <= plan.limit

    async def after(self, call: Call, response: Any) -> Any:
        plan: LimitPlan | None = call.state.get(_STATE)
        if plan is None or plan.encoding is None:
            return response
        limit, encoding = plan.limit, plan.encoding
        reported = _visible_reported(response)
        if reported is not None and reported <= limit:
            # The provider kept to the cap (the common case): nothing to walk or encode.
            result: _Limited = (response, reported, False, None)
        else:
            # The operation first: asking a pydantic chat completion for ``output`` is a miss (~1 µs).
            responses = call.operation == "responses" and get(response, "output") is not None
            limiter = _limit_responses if responses else _limit_chat
            if _text_size(response) > INLINE_ENCODE_LIMIT:
                result = await asyncio.to_thread(limiter, response, limit, encoding)
            else:
                result = limiter(response, limit, encoding)
        response, plan.output_tokens, plan.truncated, reason = result
        plan.skipped = plan.skipped or reason
        _annotate(phase_span(call), limit, plan.output_tokens, plan.truncated, plan.skipped)
        return response

    # -- streams ----------------------------------------------------------------------------------

    def on_chunk(self, call: Call, chunk: Any) -> Any:
        plan: LimitPlan | None = call.state.get(_STATE)
        if plan is None or plan.encoding is None:
            return chunk
        stream = plan.stream
        if stream is None:
            stream = plan.stream = (
                ResponsesStream(plan) if isinstance(get(chunk, "type"), str) else ChatStream(plan)
            )
        return stream.feed(call, chunk)

    def on_stream_end(self, call: Call, outcome: StreamOutcome) -> None:
        plan: LimitPlan | None = call.state.get(_STATE)
        if plan is None:
            return
        stream, plan.stream = plan.stream, None  # the stream refers to its plan: no cycle left
        span = trace.get_current_span()  # the call span
        if not span.is_recording():
            return
        produced = stream.produced() if stream is not None else None
        _annotate(span, plan.limit, produced, plan.truncated, plan.skipped)


# -- the request ----------------------------------------------------------------------------------


def _cap_value(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _set_cap(request: dict[str, Any], params: tuple[str, ...], cap: int) -> int:
    """Lower every cap the caller set to ``cap`` (or set the preferred one); the cap now in force."""
    present = [name for name in params if _cap_value(request.get(name)) is not None]
    for name in params:
        if name in request and request[name] is None:
            del request[name]  # an explicit "no cap" next to the one we set would confuse servers
    if not present:
        request[params[0]] = cap
        return cap
    for name in present:
        if request[name] > cap:
            request[name] = cap
    return min(request[name] for name in present)


def _protected_request(request: dict[str, Any]) -> str | None:
    """Why this request's output must not be capped at all, or ``None``."""
    fmt = request.get("response_format")
    if isinstance(fmt, type) or get(fmt, "type") in _STRUCTURED_FORMATS:
        return "structured_output"  # (a class is LiteLLM's way to ask for a JSON schema)
    text = request.get("text")
    if text is not None and get(get(text, "format"), "type") in _STRUCTURED_FORMATS:
        return "structured_output"
    choice = request.get("tool_choice")
    allowed = choice.get("allowed_tools") if isinstance(choice, dict) else None
    if choice == "required" or (
        isinstance(choice, dict)
        and (
            choice.get("mode") == "required"
            or choice.get("type") in ("function", "custom")
            or (isinstance(allowed, dict) and allowed.get("mode") == "required")
        )
    ):
        return "forced_tool_call"
    if isinstance(request.get("function_call"), dict):
        return "forced_tool_call"  # the deprecated functions API, naming one function
    return None


def _reasons(call: Call) -> bool:
    """Whether the call goes to a model that spends output tokens on hidden reasoning."""
    request = call.request
    effort = request.get("reasoning_effort")
    if effort is not None:
        return effort != "none"
    reasoning = request.get("reasoning")
    if reasoning is not None:
        return get(reasoning, "effort") != "none"
    if request.get("thinking") is not None:  # LiteLLM's Anthropic-style switch
        return True
    model = call.model
    if not model:
        return False
    return _REASONING_MODEL.match(base_model(model)) is not None


def _include_usage(request: dict[str, Any]) -> bool:
    options = request.get("stream_options")
    return bool(get(options, "include_usage")) if options is not None else False


# -- complete responses -----------------------------------------------------------------------------

_Limited = tuple[Any, int | None, bool, str | None]
"""A limiter's result: the response, visible tokens produced, whether it was cut, why not."""


def _limit_chat(response: Any, limit: int, encoding: tiktoken.Encoding) -> _Limited:
    choices = get(response, "choices")
    if not isinstance(choices, list):
        return response, None, False, None
    reported = _visible_reported(response)
    if reported is not None and reported <= limit:
        return response, reported, False, None  # the provider kept to the cap: nothing to encode
    new_choices = list(choices)
    produced = 0
    truncated = False
    skipped = None
    for i, choice in enumerate(choices):
        message = get(choice, "message")
        if message is None:
            continue
        if get(message, "tool_calls") or get(message, "function_call"):
            skipped = "tool_calls"
            continue
        content = get(message, "content")
        if not isinstance(content, str) or not content:
            continue
        cut, tokens = cut_text(encoding, content, limit)
        produced += tokens
        if cut is None:
            continue
        truncated = True
        new_choices[i] = replace(
            choice,
            message=replace(message, content=cut),
            finish_reason="length",
            logprobs=trim_logprobs(get(choice, "logprobs"), len(cut)),
        )
    if truncated:
        response = replace(response, choices=new_choices)
    return response, reported if reported is not None else produced, truncated, skipped


def _limit_responses(response: Any, limit: int, encoding: tiktoken.Encoding) -> _Limited:
    output = get(response, "output")
    reported = _visible_reported(response)
    if not isinstance(output, list) or (reported is not None and reported <= limit):
        return response, reported, False, None
    if any(get(item, "type") not in TEXT_ITEMS for item in output):
        return response, reported, False, "tool_calls"
    budget = limit
    produced = 0
    truncated = False
    new_output: list[Any] = []
    for item in output:
        if get(item, "type") != "message":
            new_output.append(item)
            continue
        new_parts: list[Any] = []
        for part in get(item, "content") or ():
            text = get(part, "text")
            if truncated:
                produced += _count(encoding, text)  # past the cut: counted, not shown
            elif get(part, "type") != "output_text" or not isinstance(text, str):
                new_parts.append(part)
            else:
                cut, tokens = cut_text(encoding, text, budget)
                produced += tokens
                budget -= tokens
                new_parts.append(part if cut is None else cut_part(part, cut))
                truncated = cut is not None
        if new_parts or not truncated:  # a message wholly past the cut is dropped
            new_output.append(replace(item, content=new_parts, status="incomplete") if truncated else item)
    if not truncated:
        return response, reported if reported is not None else produced, False, None
    response = replace(
        response,
        output=new_output,
        status="incomplete",
        incomplete_details=build(response, "incomplete_details", {"reason": "max_output_tokens"}),
    )
    return response, reported if reported is not None else produced, True, None


def _count(encoding: tiktoken.Encoding, text: Any) -> int:
    return len(encoding.encode_ordinary(text)) if isinstance(text, str) and text else 0


def _text_size(response: Any) -> int:
    """Characters of answer text in a complete response (decides whether to leave the loop)."""
    return sum(len(text) for _, kind, text in reply_pieces(response) or () if kind == "text")


def _annotate(
    span: Span,
    limit: int,
    output_tokens: int | None = None,
    truncated: bool | None = None,
    skipped: str | None = None,
) -> None:
    if not span.is_recording():
        return
    attrs: dict[str, Any] = {ATTR_MAX_TOKENS: limit}  # one call: the SDK takes a lock per call
    if output_tokens is not None:
        attrs[ATTR_OUTPUT_TOKENS] = output_tokens
    if truncated is not None:
        attrs[ATTR_TRUNCATED] = truncated
    if skipped is not None:
        attrs[ATTR_SKIPPED] = skipped
    span.set_attributes(attrs)


def _visible_reported(response: Any) -> int | None:
    usage = read_usage_block(get(response, "usage"))
    return usage.visible_output_tokens if usage is not None else None
