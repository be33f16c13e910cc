"""The built-in hooks, one module each; imported on first use so unused ones cost nothing."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenmw.hooks.compress import Compress
    from tokenmw.hooks.count_tokens import CountTokens
    from tokenmw.hooks.enhance import Enhance
    from tokenmw.hooks.limit_response import LimitResponse

__all__ = ["Compress", "CountTokens", "Enhance", "LimitResponse"]

_MODULES = {
    "Compress": ".compress",
    "CountTokens": ".count_tokens",
    "Enhance": ".enhance",
    "LimitResponse": ".limit_response",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'tokenmw.hooks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
