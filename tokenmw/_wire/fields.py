"""Reading a field of an API object whatever its shape.

Responses and chunks arrive as openai or LiteLLM pydantic models, or as plain dicts (raw JSON,
other proxies); code that only reads them should not care which.
"""

from __future__ import annotations

from typing import Any

__all__ = ["get_field"]


def get_field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``; ``None`` when absent."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)
