"""The "naive" mode of ``tokenmw bench``: token optimization written the way the seed system wrote it.

This module exists only to reproduce the problem tokenmw solves; nothing else may import it. It
does what the four built-in hooks do (compress the messages, add a word limit, cap the output,
count the tokens) with the anti-patterns that doubled the seed's runtime (106 s -> 215 s), each one
as people write it, none exaggerated:

- every optimizer builds its own tokenizer when it is created (a new ``tiktoken.Encoding`` from
  tokenmw's offline encoding files, so it needs no network: the same files, not the shared object);
  each agent creates its own optimizer, so a run builds one tokenizer per agent, each time on the
  event loop (~0.3-0.6 s here);
- every encode runs synchronously on the event loop;
- the same text is counted four times per call (before and after compressing, for the context
  check, for the usage report);
- the compression regexes are compiled on every call (``re.purge()`` first: Python's pattern cache
  would otherwise hide the cost, as it does not in code with more patterns than the cache holds);
- a debug log line is formatted on every call (an f-string: formatted even when DEBUG is off);
- the steps run one after another, each over the whole request.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import tiktoken

from tokenmw._tokens.offline import load_encoding

__all__ = ["NaiveClient", "NaivePipeline"]

logger = logging.getLogger("tokenmw.bench.naive")

_CONTEXT_WINDOW = 128_000


class _Tokenizer:
    """What each optimizer holds: its own encoding, built when the optimizer is, shared by its steps."""

    def __init__(self, encoding_name: str) -> None:
        self.encoding: tiktoken.Encoding = load_encoding(encoding_name)

    def count_messages(self, messages: list[dict[str, Any]]) -> int:
        total = 3
        for message in messages:
            total += 4 + len(self.encoding.encode(str(message.get("content") or "")))
        return total


class _Compressor:
    """Whitespace and JSON compaction by regular expressions, compiled per call."""

    def __init__(self, tokenizer: _Tokenizer) -> None:
        self.count_messages = tokenizer.count_messages

    def compress(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        before = self.count_messages(messages)
        re.purge()
        trailing = re.compile(r"[ \t]+\n")
        blank_runs = re.compile(r"\n{3,}")
        json_open = re.compile(r"([\[{,])\s*\n\s*")
        json_close = re.compile(r"\s*\n\s*([\]}])")
        json_colon = re.compile(r'":\s+')
        spaces = re.compile(r"[ \t]{2,}")
        out = []
        for message in messages:
            content = message.get("content")
            if isinstance(content, str):
                text = trailing.sub("\n", content)
                text = blank_runs.sub("\n\n", text)
                if "{" in text:
                    text = json_close.sub(r"\1", json_open.sub(r"\1", text))
                    text = json_colon.sub('":', text)
                text = spaces.sub(" ", text)
                message = {**message, "content": text}
            out.append(message)
        after = self.count_messages(out)
        logger.debug(f"compress: {before} -> {after} tokens, messages={json.dumps(out)[:2000]}")
        return out


class _Enhancer:
    """Adds the word limit to the system prompt."""

    def __init__(self, max_words: int) -> None:
        self.text = f"Answer in at most {max_words} words."

    def enhance(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = list(messages)
        if out and out[0].get("role") == "system":
            content = str(out[0].get("content") or "")
            if self.text not in content:
                out[0] = {**out[0], "content": f"{content}\n\n{self.text}"}
        else:
            out.insert(0, {"role": "system", "content": self.text})
        logger.debug(f"enhance: added {self.text!r} to {len(out)} messages")
        return out


class _Limiter:
    """Caps the output and checks that the request fits the context window."""

    def __init__(self, tokenizer: _Tokenizer, max_tokens: int) -> None:
        self.count_messages = tokenizer.count_messages
        self.max_tokens = max_tokens

    def limit(self, request: dict[str, Any]) -> dict[str, Any]:
        used = self.count_messages(request["messages"])
        if used + self.max_tokens > _CONTEXT_WINDOW:
            raise ValueError(f"request of {used} tokens does not fit the context window")
        logger.debug(f"limit: {used} input tokens, max_tokens={self.max_tokens}")
        return {**request, "max_tokens": self.max_tokens}


class _Counter:
    """Counts the request as sent and the answer, for the usage report."""

    def __init__(self, tokenizer: _Tokenizer) -> None:
        self.count_messages = tokenizer.count_messages
        self.encoding = tokenizer.encoding
        self.input_tokens = 0
        self.output_tokens = 0

    def count_request(self, request: dict[str, Any]) -> None:
        self.input_tokens += self.count_messages(request["messages"])
        logger.debug(f"count: request {json.dumps(request)[:2000]}")

    def count_response(self, text: str) -> None:
        self.output_tokens += len(self.encoding.encode(text))


class NaivePipeline:
    """One agent's optimizer: its own tokenizer, and its steps run one after another per call."""

    def __init__(self, encoding_name: str, max_words: int, max_tokens: int) -> None:
        tokenizer = _Tokenizer(encoding_name)
        self.compressor = _Compressor(tokenizer)
        self.enhancer = _Enhancer(max_words)
        self.limiter = _Limiter(tokenizer, max_tokens)
        self.counter = _Counter(tokenizer)

    def prepare(self, request: dict[str, Any]) -> dict[str, Any]:
        messages = self.compressor.compress(request["messages"])
        messages = self.enhancer.enhance(messages)
        prepared = self.limiter.limit({**request, "messages": messages})
        self.counter.count_request(prepared)
        return prepared


class NaiveClient:
    """``client.chat.completions.create`` through one agent's ``NaivePipeline`` (all on the loop)."""

    def __init__(self, client: Any, pipeline: NaivePipeline) -> None:
        self.chat = self
        self.completions = self
        self._client = client
        self._pipeline = pipeline

    async def create(self, **request: Any) -> Any:
        prepared = self._pipeline.prepare(request)
        response = await self._client.chat.completions.create(**prepared)
        self._pipeline.counter.count_response(response.choices[0].message.content or "")
        return response
