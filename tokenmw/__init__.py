"""tokenmw: middleware for OpenAI and LiteLLM clients that cuts token spend without adding latency.

Public names are the ones exported here; everything else lives in private modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tokenmw._clients.litellm import wrap_litellm
from tokenmw._clients.middleware import Middleware
from tokenmw._core.call import Call, CallUsage
from tokenmw._core.chain import OnHookError
from tokenmw._core.errors import (
    ChainBypassWarning,
    HookResultError,
    HookTimeout,
    TokenBudgetExceeded,
    TokenmwError,
)
from tokenmw._core.hook import CallNext, Hook, StreamOutcome
from tokenmw._core.usage import ModelUsage, Usage
from tokenmw._tokens.counting import count_tokens
from tokenmw._tokens.encodings import encoding_for

__version__ = "0.1.0"

if TYPE_CHECKING:
    from tokenmw._clients.litellm_proxy import LiteLLMProxyHandler
    from tokenmw.hooks import Compress, CountTokens, Enhance, LimitResponse


def __getattr__(name: str) -> Any:
    # Built-in hooks load on first use (Compress compiles its patterns at import).
    if name in ("Compress", "CountTokens", "Enhance", "LimitResponse"):
        from . import hooks

        return getattr(hooks, name)
    if name == "LiteLLMProxyHandler":  # imports litellm: only inside the proxy
        from tokenmw._clients.litellm_proxy import LiteLLMProxyHandler

        return LiteLLMProxyHandler
    raise AttributeError(f"module 'tokenmw' has no attribute {name!r}")

__all__ = [
    "Call",
    "CallNext",
    "CallUsage",
    "ChainBypassWarning",
    "Compress",
    "CountTokens",
    "Enhance",
    "Hook",
    "HookResultError",
    "HookTimeout",
    "LimitResponse",
    "LiteLLMProxyHandler",
    "Middleware",
    "ModelUsage",
    "OnHookError",
    "StreamOutcome",
    "TokenBudgetExceeded",
    "TokenmwError",
    "Usage",
    "__version__",
    "count_tokens",
    "encoding_for",
    "wrap_litellm",
]
