"""Proof that the chain ran for a request: a recording hook, and Enhance's instruction on the wire.

Shared by the openai path tests and the agent framework tests: each hands a client wrapped with
``probe_middleware()`` to the code under test, then checks what the embedded server received.
"""

from __future__ import annotations

from typing import Any

import tokenmw
from tokenmw import Call, Hook, Middleware
from tokenmw.server import EmbeddedServer

__all__ = ["AUTO", "INSTRUCTION", "Recorder", "enhanced", "probe_middleware", "wire_requests"]

WORDS = 50
INSTRUCTION = f"Answer in at most {WORDS} words."
AUTO = {"x-tokenmw-answer": "auto"}
"""Client default headers that make the embedded server answer tool calls and JSON schemas."""


class Recorder(Hook):
    """Notes every call the chain runs, and how its stream ended."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.chunks = 0
        self.ends: list[str] = []
        self.responses: list[Any] = []

    async def before(self, call: Call) -> None:
        self.calls.append((call.operation, call.stream))

    async def after(self, call: Call, response: Any) -> Any:
        self.responses.append(response)
        return response

    def on_chunk(self, call: Call, chunk: Any) -> Any:
        self.chunks += 1
        return chunk

    def on_stream_end(self, call: Call, outcome: tokenmw.StreamOutcome) -> None:
        self.ends.append(outcome)


def probe_middleware(*extra: Hook) -> tuple[Recorder, Middleware]:
    recorder = Recorder()
    return recorder, Middleware([recorder, tokenmw.Enhance(max_words=WORDS), *extra])


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def enhanced(body: dict[str, Any]) -> bool:
    """Whether a request body carries Enhance's instruction, exactly once, where Enhance puts it."""
    if "messages" in body:
        texts = [
            _text(m.get("content")) for m in body["messages"] if m.get("role") in ("system", "developer")
        ]
        return sum(t.count(INSTRUCTION) for t in texts) == 1
    instructions = body.get("instructions")
    return isinstance(instructions, str) and instructions.count(INSTRUCTION) == 1


def wire_requests(server: EmbeddedServer) -> list[dict[str, Any]]:
    """The model request bodies the server received, in order."""
    return [r.body for r in server.requests if r.path in ("/v1/chat/completions", "/v1/responses")]
