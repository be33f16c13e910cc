"""What the embedded server bills: its own usage, counted without tokenmw's counting rules.

Tests must be able to tell "the API reported" from "tokenmw counted". If the server billed with
tokenmw's counter, a bug that stores the local count in place of the reported one would pass every
test. So the server has a rule of its own, deliberately simpler than OpenAI's (and than tokenmw's,
which an import-linter contract keeps out of this package):

- input: ``INPUT_BASE`` once, ``PER_ITEM`` for each message or input item, ``PER_TOOL`` for each
  tool definition, and the tokens of every string *value* anywhere in the input fields
  (``messages``, ``input``, ``instructions``, ``tools``, ``tool_choice``), keys not counted;
- output: the tokens of the text (or tool name and arguments) the server wrote;
- both plus an offset (``ServerSettings.usage_offset`` / ``output_offset``, or the
  ``x-tokenmw-usage-offset`` / ``x-tokenmw-output-offset`` headers), so a test can make the
  difference as large as it needs.

Tokens are those of the model's encoding (the shared tiktoken loader: loading is not counting).
What was billed is kept on the request's ``RequestRecord.billed``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from tokenmw._tokens.encodings import encoding_for

__all__ = ["INPUT_BASE", "PER_ITEM", "PER_TOOL", "input_tokens", "text_tokens"]

INPUT_BASE = 5
PER_ITEM = 4
PER_TOOL = 6
_INPUT_FIELDS = ("instructions", "messages", "input", "tools", "tool_choice")
_MAX_DEPTH = 64
"""Deeper structures are billed at this depth only: a pathological body must not crash the server."""


_CACHED_CHARS = 65_536
"""Longer texts are encoded every time: the cache must not hold megabytes of test prompts."""


def text_tokens(encoding_name: str, text: str) -> int:
    """Tokens of ``text`` in the encoding; cached, since the same texts come back turn after turn."""
    if len(text) > _CACHED_CHARS:
        return _encoded_length(encoding_name, text)
    return _cached_length(encoding_name, text)


def _encoded_length(encoding_name: str, text: str) -> int:
    return len(encoding_for(encoding_name).encode(text, disallowed_special=()))


_cached_length = lru_cache(maxsize=4096)(_encoded_length)


def input_tokens(encoding_name: str, request: Mapping[str, Any], offset: int = 0) -> int:
    """Input tokens the server bills for a chat or Responses request body."""
    total = INPUT_BASE + offset
    for name in _INPUT_FIELDS:
        value = request.get(name)
        if value is None:
            continue
        if name in ("messages", "input") and isinstance(value, list):
            total += PER_ITEM * len(value)
        elif name == "tools" and isinstance(value, list):
            total += PER_TOOL * len(value)
        total += sum(text_tokens(encoding_name, text) for text in _strings(value, 0))
    return max(total, 0)


def _strings(value: Any, depth: int) -> Iterator[str]:
    """Every string value in a parsed JSON value (dict keys left out)."""
    if isinstance(value, str):
        yield value
    elif depth >= _MAX_DEPTH:
        return
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, depth + 1)
