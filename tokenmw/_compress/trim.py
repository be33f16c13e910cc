"""Where to cut the oldest turns of a conversation that is over its token budget.

Pure arithmetic on message sizes the caller counted. Three rules: the system prompt (and the first
user message, which usually states the task) stays; a cut only falls right before a user or
assistant message, so a tool call never loses its result; and the amount dropped is rounded up to a
multiple of ``step``, so as the history grows the cut stays put for many turns and the provider's
prompt cache keeps matching the prefix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["choose_cut", "cut_points", "pinned_count"]

_SYSTEM_ROLES = frozenset({"system", "developer"})


def _role(item: Any) -> Any:
    return item.get("role") if isinstance(item, Mapping) else None


def pinned_count(items: Sequence[Any]) -> int:
    """How many leading items always stay: system/developer messages, then the first user message."""
    n = 0
    while n < len(items) and _role(items[n]) in _SYSTEM_ROLES:
        n += 1
    if n < len(items) and _role(items[n]) == "user":
        n += 1
    return n


def cut_points(items: Sequence[Any], pinned: int, operation: str) -> list[int]:
    """Indices after the pinned ones where the kept part may start."""
    starts = ("user", "assistant") if operation == "chat" else ("user",)
    points = []
    for i in range(pinned + 1, len(items)):
        item = items[i]
        if _role(item) in starts and (operation == "chat" or item.get("type") in (None, "message")):
            points.append(i)
    return points


def choose_cut(
    sizes: Sequence[int], pinned: int, points: Sequence[int], excess: int, step: int
) -> int | None:
    """The index the kept part starts at (items ``pinned`` up to it are dropped), or ``None``.

    Drops at least ``excess`` tokens rounded up to a multiple of ``step`` when the cut points allow,
    else as much as they allow.
    """
    if excess <= 0 or not points:
        return None
    step = max(step, 1)
    target = -(-excess // step) * step
    dropped = 0
    pos = pinned
    for point in points:
        dropped += sum(sizes[pos:point])
        pos = point
        if dropped >= target:
            return point
    return points[-1]
