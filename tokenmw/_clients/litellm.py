"""``tokenmw.wrap_litellm(fn, mw)`` for ``litellm.completion`` and ``litellm.acompletion``.

LiteLLM's request-modifying hooks run only inside its proxy server; in-process, wrapping the
function is the way in. This module never imports litellm: it receives the function.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from tokenmw._clients.streams import async_result, sync_result
from tokenmw._clients.sync import call_blocking, run_sync
from tokenmw._core.call import Call
from tokenmw._tokens import encodings as _tokenizer
from tokenmw._tokens.models import provider_of

if TYPE_CHECKING:
    from tokenmw._core.chain import Chain as Middleware

__all__ = ["wrap_litellm"]

F = TypeVar("F", bound=Callable[..., Any])


def wrap_litellm(fn: F, middleware: Middleware) -> F:
    """``fn`` (``litellm.completion`` or ``litellm.acompletion``) with ``middleware`` around it.

    tokenmw does not depend on litellm: install it with ``pip install 'tokenmw[litellm]'``."""
    if getattr(fn, "__tokenmw_middleware__", None) is middleware:
        return fn  # idempotent
    if not callable(fn):
        raise TypeError(
            f"wrap_litellm() takes litellm.completion or litellm.acompletion, got {fn!r} "
            "(litellm is not a tokenmw dependency: pip install 'tokenmw[litellm]')"
        )
    positional = _positional_names(fn)
    if middleware.hooks:
        _tokenizer.preload()

    def to_kwargs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        if len(args) > len(positional):
            return None  # not a call litellm accepts either; let it raise its own error
        request = dict(zip(positional, args, strict=False))
        request.update(kwargs)
        return request

    blocking = not inspect.iscoroutinefunction(fn)

    def new_call(request: dict[str, Any]) -> Call:
        return Call(
            request,
            "chat",
            provider=_provider(request.get("model")),
            integration="litellm",
            blocking=blocking,
        )

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            request = to_kwargs(args, kwargs)
            if request is None:
                return await fn(*args, **kwargs)

            async def send(call: Call) -> Any:
                return await fn(**call.request)

            return async_result(await middleware.run(new_call(request), send))

        wrapper: Any = async_wrapper
    else:

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            request = to_kwargs(args, kwargs)
            if request is None:
                return fn(*args, **kwargs)

            async def send(call: Call) -> Any:
                return call_blocking(fn, **call.request)

            result = run_sync(middleware.run(new_call(request), send), fast=middleware.sync_fast_path)
            return sync_result(result)

        wrapper = sync_wrapper
    wrapper.__tokenmw_middleware__ = middleware
    return wrapper  # type: ignore[no-any-return]


def _positional_names(fn: Callable[..., Any]) -> list[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return ["model", "messages"]
    return [
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]


def _provider(model: Any) -> str:
    # "anthropic/claude-3-5-sonnet" -> "anthropic"; bare OpenAI names have no prefix.
    return (provider_of(model) if isinstance(model, str) else None) or "openai"
