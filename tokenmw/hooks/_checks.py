"""Checks of the built-in hooks' settings, so a bad one fails at construction, saying what is allowed.

A setting checked only when a call uses it fails far from the line that set it (a string budget
raised ``TypeError`` inside the first call), or not at all (``min_tokens=1.5`` silently compared).
"""

from __future__ import annotations

from typing import Any

__all__ = ["whole_number"]


def whole_number(name: str, value: Any, minimum: int, *, optional: bool = False) -> Any:
    """``value`` when it is an int (not a bool) of at least ``minimum`` (or ``None`` if ``optional``);
    else ``ValueError`` naming the setting and what it allows."""
    if value is None and optional:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = f"a whole number >= {minimum}" + (" or None" if optional else "")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value
