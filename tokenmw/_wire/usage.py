"""Reading the usage an API reported: one reader for responses, stream chunks and stream events.

Chat completions say ``prompt_tokens``/``completion_tokens``, the Responses API ``input_tokens``/
``output_tokens``; a Responses stream carries usage only on its final event, inside ``response``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokenmw._wire.fields import get_field

__all__ = ["FINAL_EVENTS", "ReportedUsage", "read_usage", "read_usage_block"]

FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
"""Responses API stream events that carry the whole response, usage included."""


@dataclass(frozen=True, slots=True)
class ReportedUsage:
    """What the API said one response cost."""

    input_tokens: int | None
    output_tokens: int | None
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def visible_output_tokens(self) -> int | None:
        """Output tokens the caller sees (output minus reasoning), if the API reported output."""
        output = self.output_tokens
        if not isinstance(output, int):
            return None
        reasoning = self.reasoning_tokens
        return output - reasoning if isinstance(reasoning, int) else output


def read_usage(obj: Any) -> ReportedUsage | None:
    """The usage reported on a response, stream chunk or final stream event; ``None`` if none."""
    usage = get_field(obj, "usage")
    if usage is None:
        inner = get_field(obj, "response")  # a Responses stream's final event
        usage = get_field(inner, "usage") if inner is not None else None
    return read_usage_block(usage)


def read_usage_block(usage: Any) -> ReportedUsage | None:
    """A ``usage`` object or dict, chat or Responses field names; ``None`` if it has no counts."""
    if usage is None:
        return None
    prompt = get_field(usage, "prompt_tokens")
    completion = get_field(usage, "completion_tokens")
    # One family of names per object: asking a chat usage for the Responses names (or back) costs
    # a pydantic ``__getattr__`` miss each, ~1 µs, and usage is read several times per call.
    if prompt is not None or completion is not None:
        details = get_field(usage, "prompt_tokens_details")
        out_details = get_field(usage, "completion_tokens_details")
    else:
        prompt = get_field(usage, "input_tokens")
        completion = get_field(usage, "output_tokens")
        if prompt is None and completion is None:
            return None
        details = get_field(usage, "input_tokens_details")
        out_details = get_field(usage, "output_tokens_details")
    return ReportedUsage(
        input_tokens=prompt,
        output_tokens=completion,
        cached_input_tokens=get_field(details, "cached_tokens") if details is not None else None,
        reasoning_tokens=get_field(out_details, "reasoning_tokens") if out_details is not None else None,
    )
