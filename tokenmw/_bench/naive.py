"""The "naive" optimizer: a faithful re-creation of how token optimization doubled a real system's
runtime (106 s -> 215 s), for ``tokenmw bench`` only. Never use it: it is here to be measured.

It does what the four built-in hooks do (compress the prompt, ask for at most N words, cap the
output, count the tokens) the way the seed system did, each anti-pattern on purpose:

- a tokenizer built per optimizer instance (each agent makes its own optimizer, and each builds a
  ``tiktoken.Encoding`` from tokenmw's offline encoding data: ~0.4 s of CPU, on the event loop);
- synchronous encodes on the event loop, and the same text counted four times per call (before
  compressing, after compressing, for the output budget, for the usage log);
- regular expressions compiled on every call (``re``'s cache bypassed, as code that builds its
  patterns per call from settings ends up doing);
- debug logging formatted on every call, the request serialised into the message, to a handler
  that is on (at DEBUG, writing to an in-memory stream);
- steps awaited one after another, each doing its work synchronously.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections import defaultdict
from typing import Any

import tiktoken

from tokenmw._tokens.offline import load_encoding

__all__ = ["NaiveOptimizer", "naive_log"]

CONTEXT_WINDOW = 128_000

try:  # Python 3.11+: re's compiler without its cache
    from re import _compiler as _sre_compiler  # type: ignore[attr-defined]
except ImportError:  # Python 3.10
    import sre_compile as _sre_compiler


def _compile(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """Compile ``pattern`` afresh, as ``re.compile`` would on a cache miss."""
    return _sre_compiler.compile(pattern, flags)  # type: ignore[no-any-return]


def naive_log() -> tuple[logging.Logger, io.StringIO]:
    """The optimizer's logger, on at DEBUG, with a handler writing to an in-memory stream."""
    logger = logging.getLogger("tokenmw.bench.naive")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    return logger, stream


class NaiveOptimizer:
    """One agent's optimizer, built with it (and its tokenizer with it)."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        max_words: int = 150,
        max_tokens: int = 400,
        encoding: str = "o200k_base",
    ) -> None:
        start = time.perf_counter()
        self.encoding: tiktoken.Encoding = load_encoding(encoding)  # per instance: the first anti-pattern
        self.logger = logger
        self.max_words = max_words
        self.max_tokens = max_tokens
        self.step_seconds: dict[str, float] = defaultdict(float)
        """Time in each step, summed over this optimizer's calls (the breakdown table); building
        the tokenizer is ``"tokenizer"``."""
        self.step_seconds["tokenizer"] = time.perf_counter() - start

    # -- counting: the OpenAI cookbook's num_tokens_from_messages, on the loop ---------------------

    def count(self, messages: list[dict[str, Any]]) -> int:
        total = 3
        for message in messages:
            total += 3
            for key, value in message.items():
                if isinstance(value, str):
                    total += len(self.encoding.encode(value))
                    if key == "name":
                        total += 1
        return total

    # -- the steps, one after another --------------------------------------------------------------

    async def prepare(self, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The ``create()`` arguments for ``messages``, optimized."""
        start = time.perf_counter()
        original = await self._count_step(messages)
        self._timed("count", start)
        self.logger.debug(f"optimizer: {len(messages)} messages, {original} tokens: {json.dumps(messages)}")

        start = time.perf_counter()
        compressed = await self._compress_step(messages)
        after = self.count(compressed)
        self._timed("compress", start)
        self.logger.debug(f"optimizer: compressed {original} -> {after} tokens ({original - after} saved)")

        start = time.perf_counter()
        enhanced = await self._enhance_step(compressed)
        self._timed("enhance", start)

        start = time.perf_counter()
        budget = CONTEXT_WINDOW - self.count(enhanced)
        limit = max(1, min(self.max_tokens, budget))
        self._timed("limit", start)
        self.logger.debug(f"optimizer: output budget {budget}, max_tokens={limit}")

        start = time.perf_counter()
        sent = self.count(enhanced)
        self._timed("count", start)
        self.logger.debug(f"optimizer: sending {sent} tokens to {model}: {json.dumps(enhanced)[:4000]}")
        return {"model": model, "messages": enhanced, "max_tokens": limit}

    async def after(self, response: Any) -> None:
        """Count and log the answer."""
        start = time.perf_counter()
        text = response.choices[0].message.content or ""
        output = len(self.encoding.encode(text))
        usage = response.usage.model_dump() if response.usage is not None else {}
        self.logger.debug(f"optimizer: answer {output} tokens, usage {json.dumps(usage)}: {text}")
        self._timed("count", start)

    async def _count_step(self, messages: list[dict[str, Any]]) -> int:
        return self.count(messages)

    async def _compress_step(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        trailing = _compile(r"[ \t]+\n")
        blank_runs = _compile(r"\n{3,}")
        spaces = _compile(r"(?<=\S)[ \t]{2,}")
        json_breaks = _compile(r"\n\s*")
        json_colons = _compile(r'":\s+')
        tool_header = _compile(r"^(Tool result \(step \d+\):)\n", re.MULTILINE)
        out = []
        for message in messages:
            content = message.get("content")
            if not isinstance(content, str):
                out.append(message)
                continue
            text = blank_runs.sub("\n\n", trailing.sub("\n", content))
            header = tool_header.match(text)
            if header is not None:  # pretty-printed JSON below the header: squeeze it
                body = json_colons.sub('":', json_breaks.sub("", text[header.end() :]))
                text = header.group(1) + "\n" + body
            else:
                text = spaces.sub(" ", text)
            out.append({**message, "content": text})
        return out

    async def _enhance_step(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        instruction = f"Answer in at most {self.max_words} words."
        pattern = _compile(re.escape(instruction))
        out = list(messages)
        for i, message in enumerate(out):
            if message.get("role") == "system" and isinstance(message.get("content"), str):
                if not pattern.search(message["content"]):
                    out[i] = {**message, "content": message["content"] + "\n\n" + instruction}
                return out
        return [{"role": "system", "content": instruction}, *out]

    def _timed(self, step: str, start: float) -> None:
        self.step_seconds[step] += time.perf_counter() - start
