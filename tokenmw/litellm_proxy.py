"""A ready LiteLLM proxy callback, configured from environment variables: no code to write.

In the proxy's ``config.yaml``::

    litellm_settings:
      callbacks: tokenmw.litellm_proxy.handler

Importing this module does nothing. The proxy reads ``handler``, and only then is it built (once)
from these variables; a bad value stops the proxy at start-up with a message naming it.

``TOKENMW_HOOKS``
    the built-in hooks to run, in order, comma-separated: ``compress``, ``enhance``,
    ``limit_response``, ``count_tokens`` (default ``compress,count_tokens``: the two that never
    change what the model is asked).
``TOKENMW_COMPRESS_LEVEL``, ``TOKENMW_COMPRESS_MIN_TOKENS``
    ``Compress(level=..., min_tokens=...)`` (default ``safe``, ``256``).
``TOKENMW_ENHANCE_MAX_WORDS``, ``TOKENMW_ENHANCE_INSTRUCTION``
    ``Enhance(max_words=..., instruction=...)``; ``enhance`` needs at least one.
``TOKENMW_LIMIT_MAX_TOKENS``
    ``LimitResponse(max_tokens=...)``; required by ``limit_response``.
``TOKENMW_MAX_INPUT_TOKENS``
    ``CountTokens(max_input_tokens=...)``: refuse larger requests (default: the model's context
    window where the proxy's ``model_info`` or litellm's table knows it, else no limit).
``TOKENMW_ON_HOOK_ERROR``
    ``skip`` (default) or ``raise``.
``TOKENMW_PENDING_TIMEOUT``
    seconds a request may wait for the model before its chain gives up (default 900).
``OTEL_EXPORTER_OTLP_ENDPOINT`` (and the other ``OTEL_*`` variables)
    when set, spans and metrics go there over OTLP/HTTP, as service ``OTEL_SERVICE_NAME``
    (default ``litellm-proxy``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenmw._clients.litellm_proxy import LiteLLMProxyHandler
    from tokenmw._clients.middleware import Middleware

__all__ = ["build_handler", "middleware_from_env"]  # and ``handler``, built on first access

DEFAULT_HOOKS = "compress,count_tokens"
HOOK_NAMES = ("compress", "enhance", "limit_response", "count_tokens")

_handler: LiteLLMProxyHandler | None = None
_lock = threading.Lock()


def _int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None


def middleware_from_env(env: Mapping[str, str] | None = None) -> Middleware:
    """The ``Middleware`` the ``TOKENMW_*`` variables describe (see the module docstring)."""
    import tokenmw

    env = os.environ if env is None else env
    names = [n.strip() for n in env.get("TOKENMW_HOOKS", DEFAULT_HOOKS).split(",") if n.strip()]
    unknown = [n for n in names if n not in HOOK_NAMES]
    if unknown:
        raise ValueError(f"TOKENMW_HOOKS: unknown hook(s) {unknown}; choose from {', '.join(HOOK_NAMES)}")
    hooks: list[tokenmw.Hook] = []
    for name in names:
        if name == "compress":
            level = env.get("TOKENMW_COMPRESS_LEVEL", "").strip() or "safe"
            min_tokens = _int(env, "TOKENMW_COMPRESS_MIN_TOKENS")
            hooks.append(tokenmw.Compress(level, 256 if min_tokens is None else min_tokens))  # type: ignore[arg-type]
        elif name == "enhance":
            max_words = _int(env, "TOKENMW_ENHANCE_MAX_WORDS")
            instruction = env.get("TOKENMW_ENHANCE_INSTRUCTION", "").strip() or None
            if max_words is None and instruction is None:
                raise ValueError("TOKENMW_HOOKS names enhance: set TOKENMW_ENHANCE_MAX_WORDS or "
                                 "TOKENMW_ENHANCE_INSTRUCTION")  # fmt: skip
            hooks.append(tokenmw.Enhance(max_words=max_words, instruction=instruction))
        elif name == "limit_response":
            max_tokens = _int(env, "TOKENMW_LIMIT_MAX_TOKENS")
            if max_tokens is None:
                raise ValueError("TOKENMW_HOOKS names limit_response: set TOKENMW_LIMIT_MAX_TOKENS")
            hooks.append(tokenmw.LimitResponse(max_tokens=max_tokens))
        else:
            hooks.append(tokenmw.CountTokens(max_input_tokens=_int(env, "TOKENMW_MAX_INPUT_TOKENS")))
    on_error = env.get("TOKENMW_ON_HOOK_ERROR", "").strip() or "skip"
    return tokenmw.Middleware(hooks, on_hook_error=on_error)  # type: ignore[arg-type]


def build_handler(env: Mapping[str, str] | None = None) -> LiteLLMProxyHandler:
    """A new ``LiteLLMProxyHandler`` configured from ``env`` (default ``os.environ``), with
    OTLP export set up when ``OTEL_EXPORTER_OTLP_ENDPOINT`` asks for it."""
    import tokenmw
    from tokenmw import telemetry

    env = os.environ if env is None else env
    timeout = env.get("TOKENMW_PENDING_TIMEOUT", "").strip()
    try:
        pending_timeout = float(timeout) if timeout else 900.0
    except ValueError:
        raise ValueError(f"TOKENMW_PENDING_TIMEOUT must be a number of seconds, got {timeout!r}") from None
    mw = middleware_from_env(env)
    telemetry.setup_from_env(env.get("OTEL_SERVICE_NAME", "").strip() or "litellm-proxy")
    return tokenmw.LiteLLMProxyHandler(mw, pending_timeout=pending_timeout)


def __getattr__(name: str) -> Any:
    # ``handler`` is built on first access (the proxy's), never at import.
    global _handler
    if name != "handler":
        raise AttributeError(f"module 'tokenmw.litellm_proxy' has no attribute {name!r}")
    with _lock:
        if _handler is None:
            _handler = build_handler()
    return _handler


# A forked child has none of the parent's threads: a pool without its workers, or a lock one of
# them held, would hang the child's first call (gunicorn --preload, multiprocessing, celery).
def _reset_in_child() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
