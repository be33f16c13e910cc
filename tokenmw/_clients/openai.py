"""``mw.wrap(client)`` for ``openai.OpenAI`` / ``AsyncOpenAI`` (and the Azure variants).

The wrapped client is a ``wrapt.ObjectProxy`` over the caller's instance, so ``isinstance`` holds
and every attribute but ``chat.completions.create`` and ``responses.create`` is the client's own.
Nothing global is patched, and the original client stays usable unwrapped. The proxies know
nothing of hooks: they build a ``Call`` and hand it to the chain with a ``send`` that makes the
real call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import openai
import wrapt

from tokenmw._clients.streams import async_result, sync_result
from tokenmw._clients.sync import call_blocking, run_sync
from tokenmw._core.call import Call, Operation
from tokenmw._tokens import encodings as _tokenizer

if TYPE_CHECKING:
    from tokenmw._core.chain import Chain as Middleware

__all__ = ["wrap_openai_client"]

# openai marks with_raw_response / with_streaming_response calls with this header.
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"


def wrap_openai_client(client: Any, mw: Middleware) -> Any:
    """``client`` with ``mw`` around its chat completions and Responses ``create()``."""
    if isinstance(client, _ClientProxy) and client._self_mw is mw:
        return client  # idempotent: wrapping twice must not run the hooks twice
    if not (hasattr(client, "chat") and hasattr(client, "responses")):
        raise TypeError(
            f"mw.wrap() takes an openai.OpenAI or openai.AsyncOpenAI client, got {type(client).__name__!r};"
            " for LiteLLM use tokenmw.wrap_litellm(litellm.completion, mw)"
        )
    if mw.hooks:
        _tokenizer.preload()
    return _ClientProxy(client, mw)


class _RawViews(wrapt.ObjectProxy):  # type: ignore[misc]
    """``with_raw_response`` / ``with_streaming_response`` of a client or resource, built from the
    proxy rather than from the wrapped object (openai builds them from ``self``), so the
    ``create`` they call goes through the chain."""

    def __init__(self, wrapped: Any) -> None:
        super().__init__(wrapped)
        self._self_raw: Any = None
        self._self_streaming: Any = None

    @property
    def with_raw_response(self) -> Any:
        if self._self_raw is None:
            self._self_raw = type(self.__wrapped__.with_raw_response)(self)
        return self._self_raw

    @property
    def with_streaming_response(self) -> Any:
        if self._self_streaming is None:
            self._self_streaming = type(self.__wrapped__.with_streaming_response)(self)
        return self._self_streaming


class _ClientProxy(_RawViews):
    def __init__(self, client: Any, mw: Middleware) -> None:
        super().__init__(client)
        self._self_mw = mw
        self._self_chat: Any = None
        self._self_responses: Any = None

    @property
    def chat(self) -> Any:
        if self._self_chat is None:
            self._self_chat = _ChatProxy(self.__wrapped__.chat, self._self_mw, self.__wrapped__)
        return self._self_chat

    @property
    def responses(self) -> Any:
        if self._self_responses is None:
            self._self_responses = _create_proxy(
                self.__wrapped__.responses, self._self_mw, "responses", self.__wrapped__
            )
        return self._self_responses

    def with_options(self, *args: Any, **kwargs: Any) -> Any:
        return _ClientProxy(self.__wrapped__.with_options(*args, **kwargs), self._self_mw)

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        return _ClientProxy(self.__wrapped__.copy(*args, **kwargs), self._self_mw)

    @property
    def tokenmw_middleware(self) -> Middleware:
        """The middleware this client is wrapped with."""
        return self._self_mw

    def __repr__(self) -> str:
        return f"<tokenmw-wrapped {self.__wrapped__!r}>"


class _ChatProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    def __init__(self, chat: Any, mw: Middleware, client: Any) -> None:
        super().__init__(chat)
        self._self_completions = _create_proxy(chat.completions, mw, "chat", client)

    @property
    def completions(self) -> Any:
        return self._self_completions


def _create_proxy(resource: Any, mw: Middleware, operation: Operation, client: Any) -> Any:
    # openai decorates create() with a plain wrapper, so iscoroutinefunction() cannot tell.
    proxy_cls = _AsyncCreateProxy if isinstance(client, openai.AsyncOpenAI) else _SyncCreateProxy
    return proxy_cls(resource, mw, operation, client)


class _CreateProxy(_RawViews):
    """A resource (``chat.completions`` or ``responses``) whose ``create`` runs the chain."""

    def __init__(self, resource: Any, mw: Middleware, operation: Operation, client: Any) -> None:
        super().__init__(resource)
        self._self_mw = mw
        self._self_operation: Operation = operation
        self._self_client = client
        # GenAI semantic conventions name Azure OpenAI apart from OpenAI.
        azure = isinstance(client, openai.AzureOpenAI | openai.AsyncAzureOpenAI)
        self._self_provider = "azure.ai.openai" if azure else "openai"

    def _call(self, kwargs: dict[str, Any]) -> Call:
        call = Call(kwargs, self._self_operation, provider=self._self_provider, client=self._self_client)
        call.usage_reported_elsewhere = _instrumented(self.__wrapped__)
        return call


def _raw_mode(kwargs: dict[str, Any]) -> str | None:
    headers = kwargs.get("extra_headers")
    if not headers:
        return None
    mode = headers.get(_RAW_RESPONSE_HEADER)
    return str(mode) if mode is not None else None


class _SyncCreateProxy(_CreateProxy):
    def create(self, *args: Any, **kwargs: Any) -> Any:
        original = self.__wrapped__.create
        mode = _raw_mode(kwargs)
        if args or mode == "stream":
            # Positional args are not the API's (let it reject them); raw streaming responses are
            # read lazily by the caller, after create() returns, so no hook could see them.
            return original(*args, **kwargs)
        raw: list[Any] = []

        async def send(call: Call) -> Any:
            result = call_blocking(original, **call.request)
            if mode is not None:
                raw.append(result)
                return result.parse()
            return result

        result = run_sync(self._self_mw.run(self._call(kwargs), send), fast=self._self_mw.sync_fast_path)
        return _rewrap_raw(raw, sync_result(result))


class _AsyncCreateProxy(_CreateProxy):
    async def create(self, *args: Any, **kwargs: Any) -> Any:
        original = self.__wrapped__.create
        mode = _raw_mode(kwargs)
        if args or mode == "stream":
            return await original(*args, **kwargs)
        raw: list[Any] = []

        async def send(call: Call) -> Any:
            result = await original(**call.request)
            if mode is not None:
                raw.append(result)
                return result.parse()
            return result

        result = await self._self_mw.run(self._call(kwargs), send)
        return _rewrap_raw(raw, async_result(result))


def _rewrap_raw(raw: list[Any], result: Any) -> Any:
    """Put the chain's result back inside the raw response, so ``raw.parse()`` returns it."""
    if not raw:
        return result
    response = raw[-1]
    response._parsed_by_type[response._cast_to] = result
    return response


def _instrumented(resource: Any) -> bool:
    """Whether another instrumentation wraps this resource class's ``create`` with ``wrapt`` (as
    opentelemetry-instrumentation-openai-v2, OpenLLMetry and Langfuse do): it then reports the
    call's usage in its own span, nested under tokenmw's."""
    for klass in type(resource).__mro__:
        create = klass.__dict__.get("create")
        if create is not None:
            return isinstance(create, wrapt.FunctionWrapper)
    return False
