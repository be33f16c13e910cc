"""``tokenmw.wrap_litellm(fn, mw)`` for ``litellm.completion`` / ``acompletion`` (chat) and
``litellm.responses`` / ``aresponses`` (the Responses API).

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
from tokenmw._core.call import Call, Operation
from tokenmw._tokens import encodings as _tokenizer
from tokenmw._tokens.models import provider_of

if TYPE_CHECKING:
    from tokenmw._core.chain import Chain as Middleware

__all__ = ["wrap_litellm"]

F = TypeVar("F", bound=Callable[..., Any])


def wrap_litellm(fn: F, middleware: Middleware) -> F:
    """``fn`` (``litellm.completion``, ``acompletion``, ``responses`` or ``aresponses``) with
    ``middleware`` around it.

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
    operation = _operation(fn)

    def new_call(request: dict[str, Any]) -> Call:
        return Call(
            request,
            operation,
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


OPERATIONS: dict[str, Operation] = {
    "completion": "chat",
    "acompletion": "chat",
    "responses": "responses",
    "aresponses": "responses",
}
"""litellm's functions (and the proxy's call types) for the two APIs tokenmw reads."""


def _operation(fn: Callable[..., Any]) -> Operation:
    """The API ``fn`` calls, from its name: ``litellm.responses`` / ``aresponses`` (and a router's
    methods of those names) send Responses requests (``input``, ``instructions``), which the hooks
    must read as such; a function of any other name (a wrapper, a ``functools.partial``) is taken
    for a chat completion function, as the docs say. Other LiteLLM APIs are refused: the chain
    would run on a request it cannot read and the call would go out unchanged, unnoticed."""
    target = fn.func if isinstance(fn, functools.partial) else fn
    name = getattr(target, "__name__", None)
    if isinstance(name, str) and name in OPERATIONS:
        return OPERATIONS[name]
    module = getattr(target, "__module__", None) or ""
    if isinstance(name, str) and name in _UNSUPPORTED and module.startswith("litellm"):
        raise TypeError(
            f"wrap_litellm() takes litellm.completion, acompletion, responses or aresponses, "
            f"got litellm.{name}: the chain cannot run for that API"
        )
    return "chat"


_UNSUPPORTED = frozenset({
    "text_completion", "atext_completion", "embedding", "aembedding", "image_generation",
    "aimage_generation", "transcription", "atranscription", "speech", "aspeech", "moderation",
    "amoderation", "rerank", "arerank",
})  # fmt: skip


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
