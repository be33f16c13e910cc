"""How the embedded server behaves, server-wide and per request.

Tests change behaviour in two ways: the mutable ``ServerSettings`` on the server object (affects
every later request) and ``x-tokenmw-*`` request headers (affect one request, so concurrent tests
sharing one server do not step on each other).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

__all__ = [
    "HEADER_PREFIX",
    "RequestSettings",
    "ServerSettings",
    "SettingsError",
    "request_settings",
    "response_delay",
]

HEADER_PREFIX = "x-tokenmw-"

ANSWERS = frozenset({"text", "auto", "expand"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(slots=True)
class ServerSettings:
    """Server-wide behaviour; change the attributes at run time, the next request sees them."""

    reply_words: int = 60
    """Words in each reply (before any ``max_tokens`` cut)."""
    latency: float = 0.0
    """Seconds to wait before the first byte of a response."""
    chunk_delay: float = 0.0
    """Seconds to wait between two stream events."""
    ignore_max_tokens: bool = False
    """Send the whole reply even when the request caps the output (tests client-side cutting)."""
    answer: str = "text"
    """``"text"``: always the plain reply; ``"auto"``: read the request, and answer with a tool call
    when tools are offered, or JSON matching a ``json_schema`` format (what agent frameworks need);
    ``"expand"``: call ``tokenmw_expand`` for the first ``ref=<id>`` marker in the prompt not
    expanded yet, when that tool is offered, else the plain reply (reversible compression)."""
    usage_offset: int = 0
    """Added to the input tokens the server bills (its own count, see ``_billing``)."""
    output_offset: int = 0
    """Added to the output tokens the server bills."""
    latency_per_token: float = 0.0
    """Seconds per output token, on top of ``latency``: a model's time grows with what it writes,
    so an answer that asks for fewer words comes back sooner (``response_delay``)."""
    follow_word_limit: bool = False
    """Answer a prompt that asks for "at most N words" with fewer words, as instruction-following
    models do (a model of that effect, not a measurement: ``_reply.word_limit``)."""


@dataclass(slots=True, frozen=True)
class RequestSettings:
    """The settings one request runs with: the server's, overridden by its headers."""

    reply_words: int
    latency: float
    chunk_delay: float
    ignore_max_tokens: bool
    answer: str = "text"
    seed: str | None = None
    """Chooses where in the reply corpus the text starts; ``None`` gives the same text every time."""
    error_status: int | None = None
    """Answer with this HTTP error status instead of a completion."""
    usage_offset: int = 0
    output_offset: int = 0
    latency_per_token: float = 0.0
    follow_word_limit: bool = False


class SettingsError(ValueError):
    """A ``x-tokenmw-*`` header with a value that cannot be used."""

    def __init__(self, header: str, value: str) -> None:
        super().__init__(f"Invalid value for header {header}: {value!r}")
        self.header = header


def request_settings(settings: ServerSettings, headers: Mapping[str, str]) -> RequestSettings:
    """The settings for one request; ``headers`` has lower-case names."""
    resolved = RequestSettings(
        reply_words=settings.reply_words,
        latency=settings.latency,
        chunk_delay=settings.chunk_delay,
        ignore_max_tokens=settings.ignore_max_tokens,
        answer=settings.answer,
        usage_offset=settings.usage_offset,
        output_offset=settings.output_offset,
        latency_per_token=settings.latency_per_token,
        follow_word_limit=settings.follow_word_limit,
    )
    overrides = {k: v for k, v in headers.items() if k.startswith(HEADER_PREFIX)}
    if not overrides:
        return resolved
    changes: dict[str, object] = {}
    for header, value in overrides.items():
        name = header[len(HEADER_PREFIX) :]
        value = value.strip()
        try:
            if name == "reply-words":
                changes["reply_words"] = int(_non_negative(int(value)))
            elif name == "latency":
                changes["latency"] = _non_negative(float(value))
            elif name == "chunk-delay":
                changes["chunk_delay"] = _non_negative(float(value))
            elif name == "ignore-max-tokens":
                changes["ignore_max_tokens"] = _boolean(value)
            elif name == "answer":
                if value not in ANSWERS:
                    raise ValueError(value)
                changes["answer"] = value
            elif name == "latency-per-token":
                changes["latency_per_token"] = _non_negative(float(value))
            elif name == "follow-word-limit":
                changes["follow_word_limit"] = _boolean(value)
            elif name == "seed":
                changes["seed"] = value
            elif name == "usage-offset":
                changes["usage_offset"] = int(value)
            elif name == "output-offset":
                changes["output_offset"] = int(value)
            elif name == "error":
                status = int(value)
                if not 400 <= status <= 599:
                    raise ValueError(value)
                changes["error_status"] = status
        except ValueError:
            raise SettingsError(header, value) from None
    return replace(resolved, **changes)  # type: ignore[arg-type]


def response_delay(settings: RequestSettings, output_tokens: int) -> float:
    """Seconds before a whole response leaves: the base latency plus the time to write
    ``output_tokens`` (a stream spends the second part between its events)."""
    return settings.latency + settings.latency_per_token * max(output_tokens, 0)


def _non_negative(number: float) -> float:
    if number < 0 or number != number:  # NaN
        raise ValueError(number)
    return number


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(value)
