"""Apply text compression to every text the model reads in a request, and dedup across them.

Walks chat ``messages`` and Responses ``instructions``/``input``; touches message contents, text parts
and tool outputs only. Tool definitions, tool-call arguments, images, and any shape it does not know
are passed on as the same objects. The caller's objects are never changed: a message that changes is
a new dict in a new list (agents re-send their history, so editing it in place would compound).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import originals
from .history import Step, known_step, next_step, root
from .text import Level, compress_text

__all__ = ["Report", "compress_chat", "compress_responses"]

TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
TOOL_ROLES = frozenset({"tool", "function"})


@dataclass(slots=True)
class Report:
    """What compression did to one request."""

    texts: int = 0
    changed: int = 0
    fallbacks: list[str] = field(default_factory=list)
    """For each text sent unchanged because a check failed: the guarantee it would have broken."""
    duplicates: int = 0
    truncated: int = 0
    tables: int = 0
    """JSON arrays sent as tables (aggressive): that text is no longer JSON."""
    drop: range = range(0)
    """Indices of the messages (or input items) left out to fit the token budget."""

    @property
    def dropped(self) -> int:
        return len(self.drop)


class _Walker:
    __slots__ = ("kind", "level", "report", "step")

    def __init__(self, level: Level, dedup: bool, kind: str) -> None:
        self.level = level
        self.kind = kind
        # Reversible markers differ from plain ones: their prefixes are remembered apart.
        key = f"{level}+ref" if originals.active() else level
        self.step: Step | None = root(kind, key) if dedup else None
        """Where the request is in the remembered prefixes (``history``); ``None``: no dedup."""
        self.report = Report()

    def text(self, text: str, where: str | int, tool: bool) -> str:
        report = self.report
        report.texts += 1
        step = self.step
        found = known_step(step, where, tool, text) if step is not None else None
        if found is not None:
            # An agent's history, re-sent: this text at this place after this prefix was
            # compressed before, and its step says how (the usual case for all but the last turn).
            originals.seen(found.refs)  # as a text-cache hit does
            fallback, truncated, tables = found.fallback, found.truncated, found.tables
            self.step = found
            new = found.text
            report.duplicates += found.duplicates
        else:
            result = compress_text(text, self.level, tool=tool)
            fallback, truncated, tables = result.fallback, result.truncated, result.tables
            new = result.text
            if step is not None:
                self.step = step = next_step(step, result, text, where, tool, self.kind)
                new = step.text
                report.duplicates += step.duplicates
        if fallback is not None:
            report.fallbacks.append(fallback)
        if truncated:
            report.truncated += 1
        report.tables += tables
        if new != text:
            report.changed += 1
            return new
        return text

    def content(self, content: Any, where: str | int, tool: bool) -> Any:
        """``content`` (a string or a list of parts) compressed, or the same object if unchanged."""
        if isinstance(content, str):
            return self.text(content, where, tool)
        if not isinstance(content, list):
            return content
        parts: list[Any] | None = None
        for i, part in enumerate(content):
            if not isinstance(part, Mapping) or part.get("type") not in TEXT_PART_TYPES:
                continue
            text = part.get("text")
            if not isinstance(text, str):
                continue
            new = self.text(text, where, tool)
            if new is not text:
                if parts is None:
                    parts = list(content)
                parts[i] = {**part, "text": new}
        return content if parts is None else parts


def compress_chat(
    messages: list[Any],
    level: Level = "safe",
    *,
    dedup: bool = True,
    drop: range = range(0),
) -> tuple[list[Any], Report]:
    """Chat ``messages`` compressed; the same list object when nothing changed.

    ``drop``: indices of messages to leave out (trimming to a budget).
    """
    walker = _Walker(level, dedup, "message")
    out: list[Any] = []
    changed = bool(drop)
    for i, message in enumerate(messages):
        if i in drop:
            continue
        if isinstance(message, Mapping) and "content" in message:
            content = message["content"]
            # Markers name places in the list as sent (``drop`` shifts everything after the cut).
            new = walker.content(content, len(out) + 1, tool=message.get("role") in TOOL_ROLES)
            if new is not content:
                message = {**message, "content": new}
                changed = True
        out.append(message)
    walker.report.drop = drop
    return (out if changed else messages), walker.report


def compress_responses(
    request: Mapping[str, Any],
    level: Level = "safe",
    *,
    dedup: bool = True,
    drop: range = range(0),
) -> tuple[dict[str, Any], Report]:
    """The new values of ``instructions`` and ``input`` of a Responses request (only those that
    changed), and the report. ``drop``: indices of ``input`` items to leave out."""
    walker = _Walker(level, dedup, "input item")
    updates: dict[str, Any] = {}
    instructions = request.get("instructions")
    if isinstance(instructions, str):
        new = walker.text(instructions, "the instructions", tool=False)
        if new is not instructions:
            updates["instructions"] = new
    items = request.get("input")
    if isinstance(items, str):
        new = walker.text(items, "the input", tool=False)
        if new is not items:
            updates["input"] = new
    elif isinstance(items, list):
        out: list[Any] = []
        changed = bool(drop)
        for i, item in enumerate(items):
            if i in drop:
                continue
            new_item = _responses_item(walker, item, len(out) + 1)  # its place as sent
            changed = changed or new_item is not item
            out.append(new_item)
        if changed:
            updates["input"] = out
    walker.report.drop = drop
    return updates, walker.report


def _responses_item(walker: _Walker, item: Any, where: int) -> Any:
    if not isinstance(item, Mapping):
        return item
    kind = item.get("type")
    if kind == "function_call_output" or kind == "custom_tool_call_output":
        output = item.get("output")
        new = walker.content(output, where, tool=True)
        return item if new is output else {**item, "output": new}
    if (kind is None or kind == "message") and "content" in item:
        content = item["content"]
        new = walker.content(content, where, tool=False)
        return item if new is content else {**item, "content": new}
    return item
