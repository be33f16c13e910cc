"""``Enhance``: ask for concise answers, once, always in the same place.

Output tokens cost several times input tokens, and a length instruction is the cheapest way to cut
them. Where it goes matters for prompt caching: always the end of the first system/developer message
(or ``instructions``), which does not move as the conversation grows, and never a second time when
an agent re-sends a history that already carries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tokenmw._core.hook import Hook
from tokenmw._wire.fields import get_field
from tokenmw.hooks._checks import whole_number
from tokenmw.telemetry._spans import annotate_phase, phase_span

if TYPE_CHECKING:
    from tokenmw._core.call import Call

__all__ = ["Enhance"]

_SYSTEM_ROLES = frozenset({"system", "developer"})


class Enhance(Hook):
    """Add "Answer in at most N words." and/or ``instruction`` to the end of the first
    system/developer message (a new system message first when there is none), or to
    ``instructions`` for the Responses API; nothing when it is already there."""

    name = "enhance"
    sync_fast_path = True
    _span_current = False
    _edits_by_replacing = True

    def __init__(self, max_words: int | None = None, instruction: str | None = None) -> None:
        whole_number("max_words", max_words, 1, optional=True)
        if instruction is not None and not (isinstance(instruction, str) and instruction.strip()):
            raise ValueError(f"instruction must be a non-blank string or None, got {instruction!r}")
        parts = []
        if max_words is not None:
            parts.append(f"Answer in at most {max_words} words.")
        if instruction is not None and instruction.strip():
            # Whitespace as Compress leaves it, so the instruction is found again in a history
            # that went through Compress (else it would be added a second time).
            parts.append(" ".join(instruction.split()))
        self.max_words = max_words
        self.instruction = instruction
        self.text = " ".join(parts)
        """What is added (empty: the hook does nothing)."""

    def __repr__(self) -> str:
        return f"Enhance(max_words={self.max_words!r}, instruction={self.instruction!r})"

    async def before(self, call: Call) -> None:
        if not self.text:
            return
        request = call.request
        recording = phase_span(call).is_recording()
        before = await call.input_tokens() if recording else 0
        key = "messages" if call.operation == "chat" else "instructions"
        current = request.get(key)
        new: Any
        if key == "messages":
            new = with_instruction(current, self.text) if isinstance(current, list) else None
        elif current is None:
            new = self.text
        else:
            new = _appended(current, self.text) if isinstance(current, str) else None
        if new is not None:
            request[key] = new
        if recording:
            annotate_phase(call, before, await call.input_tokens(), **{"enhance.added": new is not None})


def with_instruction(messages: list[Any], text: str) -> list[Any] | None:
    """A new message list carrying ``text`` at the end of the first system/developer message, or
    ``None`` when it already carries it or that message has a shape we do not know."""
    if not messages:
        return None  # no conversation: the API refuses it, and an added message would hide that
    for i, message in enumerate(messages):
        if get_field(message, "role") in _SYSTEM_ROLES:
            if not isinstance(message, Mapping):
                return None  # an SDK object we cannot rebuild: leave the request as it is
            content = _appended(message.get("content"), text)
            if content is None:
                return None
            new = list(messages)
            new[i] = {**message, "content": content}
            return new
    return [{"role": "system", "content": text}, *messages]


def _appended(content: Any, text: str) -> Any:
    """``content`` (a string or a list of parts) with ``text`` at its end; ``None`` when it is
    already there or the shape is unknown."""
    if isinstance(content, str):
        if text in content:
            return None
        return f"{content}\n\n{text}" if content.strip() else text
    if isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str) and text in part["text"]:
                return None
        return [*content, {"type": "text", "text": text}]
    return None
