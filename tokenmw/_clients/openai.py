"""``mw.wrap(client)`` for ``openai.OpenAI`` / ``AsyncOpenAI`` (and the Azure variants).

Where the interception sits, and why: every openai method that asks for a chat completion or a
Responses answer — ``create``, ``parse``, the ``stream()`` helpers, ``beta``, ``with_raw_response``,
``with_streaming_response``, and whatever helper openai adds next — ends in one method of the
client, ``post(path, body=..., options=...)``: resources bind ``client.post`` when they are built
(``SyncAPIResource.__init__``), and the client builds every resource from ``self``. So the wrapped
client is an instance of a per-class subclass of the caller's client class whose ``post`` runs the
chain for ``/chat/completions`` and ``/responses`` and passes every other path through untouched.
The chain sits outside openai's retry loop (``request()``, called by ``post``), so retries stay
inside one chain run; ``parse()`` and ``stream()`` post once, so hooks run once per logical call.

The wrapped client is a copy of the caller's instance (same settings, same connection pool) without
its resources, which are rebuilt from the copy on first use. ``isinstance`` holds, the original
stays unwrapped, and ``copy()`` / ``with_options()`` / ``with`` give wrapped clients (openai builds
copies with ``self.__class__``). Nothing global is patched.

``call.request`` is the request body as it goes out (``extra_body`` merged in), so hooks see what
the API will read: the JSON schema ``parse()`` made of a pydantic class, the tools as dicts.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
import threading
import warnings
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx2
import openai
import wrapt

# openai 3.3–3.63 (checked): with_raw_response sends this header with "true", with_streaming_response
# with "stream"; post() then returns the raw response object instead of the parsed one. Used only
# in ``_raw_mode`` below; tests/clients/test_openai_internals.py fails if openai changes it.
from openai._constants import RAW_RESPONSE_HEADER
from openai.resources.chat.completions import AsyncCompletions, Completions
from openai.resources.responses import AsyncResponses, Responses

from tokenmw._clients.streams import AsyncStreamProxy, SyncStreamProxy, watch_body
from tokenmw._clients.sync import call_blocking, run_sync
from tokenmw._core.call import Call, Operation
from tokenmw._core.errors import ChainBypassWarning, TokenBudgetExceeded
from tokenmw._core.stream_run import StreamRun
from tokenmw._tokens import encodings as _tokenizer

if TYPE_CHECKING:
    from tokenmw._core.chain import Chain as Middleware

__all__ = ["INTERCEPTED_PATHS", "wrap_openai_client"]

INTERCEPTED_PATHS: dict[str, Operation] = {"/chat/completions": "chat", "/responses": "responses"}
"""The POST paths whose requests run the chain (``?beta=true`` and other query strings aside)."""

_CHAINS = "_tokenmw_chains"


def wrap_openai_client(client: Any, mw: Middleware) -> Any:
    """A wrapped copy of ``client`` that runs ``mw`` around its chat completion and Responses requests."""
    if not isinstance(client, openai.OpenAI | openai.AsyncOpenAI):
        raise TypeError(
            f"mw.wrap() takes an openai.OpenAI or openai.AsyncOpenAI client, got {type(client).__name__!r};"
            " for LiteLLM use tokenmw.wrap_litellm(litellm.completion, mw)"
        )
    chains: tuple[Middleware, ...] = getattr(client, _CHAINS, ())
    if any(chain is mw for chain in chains):
        return client  # idempotent: wrapping twice must not run the hooks twice
    if mw.hooks:
        _tokenizer.preload()
    base: type = getattr(type(client), "_tokenmw_base", type(client))
    wrapped = _bare_copy(client, _wrapped_class(base))
    wrapped.__dict__[_CHAINS] = (mw, *chains)  # the newest chain runs outermost
    return wrapped


# -- refusals as the API's own errors ---------------------------------------------------------------


class ContextLengthExceeded(TokenBudgetExceeded, openai.BadRequestError):
    """``TokenBudgetExceeded`` as openai's own 400 for a prompt over the context window (code
    ``context_length_exceeded``), so the handlers that already exist for that error (an agent
    that trims its history and retries, LangChain's and CrewAI's context-overflow handling, which
    catch ``BadRequestError`` and look for the code) treat tokenmw's refusal the same way.
    Nothing was sent: ``response`` is made here, not received."""

    def __init__(self, refused: TokenBudgetExceeded, url: str) -> None:
        message = f"{refused} ({self.code})"
        body = {"message": message, "type": "invalid_request_error", "param": "messages", "code": self.code}
        response = httpx2.Response(400, json={"error": body}, request=httpx2.Request("POST", url))
        openai.BadRequestError.__init__(self, message, response=response, body=body)
        self.tokens, self.limit, self.model = refused.tokens, refused.limit, refused.model
        self.estimated, self.source = refused.estimated, refused.source


def _as_api_error(refused: TokenBudgetExceeded, client: Any, path: str) -> TokenBudgetExceeded:
    if isinstance(refused, openai.APIError):
        return refused  # a stacked chain converted it already
    error = ContextLengthExceeded(refused, f"{str(client.base_url).rstrip('/')}{path}")
    return error.with_traceback(refused.__traceback__)


# -- the wrapped classes --------------------------------------------------------------------------


class _Wrapped:
    """What every wrapped client class adds to the caller's class (it comes first in the MRO)."""

    _tokenmw_base: Any  # the caller's client class
    _tokenmw_provider: str
    _tokenmw_chains: tuple[Middleware, ...]

    @property
    def tokenmw_middleware(self) -> Middleware:
        """The middleware this client was wrapped with last (the outermost one)."""
        return self._tokenmw_chains[0]

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        copied = super().copy(*args, **kwargs)  # type: ignore[misc]  # openai: self.__class__(...)
        copied.__dict__[_CHAINS] = self._tokenmw_chains
        return copied

    with_options = copy

    def __repr__(self) -> str:
        base = self._tokenmw_base
        return f"<tokenmw-wrapped {base.__module__}.{base.__qualname__} object at {id(self):#x}>"


# openai 3.3–3.63 (checked): every resource method posts through ``client.post(path, body=...,
# options=..., cast_to=..., stream=..., stream_cls=...)``, bound when the resource is built;
# tests/clients/test_openai_internals.py fails if that changes.
class _SyncWrapped(_Wrapped):
    def post(self, path: str, *args: Any, **kwargs: Any) -> Any:
        operation = _operation(path, kwargs)
        if operation is None:
            _warn_if_bypassed(path)
            return super().post(path, *args, **kwargs)  # type: ignore[misc]
        request = _Request(self, operation, path, args, kwargs)
        fast = all(chain.sync_fast_path for chain in request.chains)
        try:
            return request.returned(run_sync(_through_sync(request, 0, request.body), fast=fast))
        except TokenBudgetExceeded as refused:
            raise _as_api_error(refused, self, path) from None

    def _prepare_options(self, options: Any) -> Any:  # see _warn_if_websocket
        _warn_if_websocket(options)
        return super()._prepare_options(options)  # type: ignore[misc]


class _AsyncWrapped(_Wrapped):
    async def post(self, path: str, *args: Any, **kwargs: Any) -> Any:
        operation = _operation(path, kwargs)
        if operation is None:
            _warn_if_bypassed(path)
            return await super().post(path, *args, **kwargs)  # type: ignore[misc]
        request = _Request(self, operation, path, args, kwargs)
        try:
            return request.returned(await _through_async(request, 0, request.body))
        except TokenBudgetExceeded as refused:
            raise _as_api_error(refused, self, path) from None

    async def _prepare_options(self, options: Any) -> Any:  # see _warn_if_websocket
        _warn_if_websocket(options)
        return await super()._prepare_options(options)  # type: ignore[misc]


_warned: set[str] = set()


def _warn_if_bypassed(path: str) -> None:
    """Warn once when a POST the chain does not run for is a model call (``ChainBypassWarning``)."""
    path = path.split("?", 1)[0]
    if path == "/completions":
        _warn_bypass("the legacy completions endpoint (client.completions.create)")
    elif path == "/responses/compact":
        # A model call, but not a Responses request the hooks may rewrite: it takes no
        # max_output_tokens, and an added instruction would change what the compaction keeps.
        _warn_bypass("client.responses.compact()")
    elif path.startswith("/threads/") and _ASSISTANTS_RUN.fullmatch(path):
        _warn_bypass("Assistants runs (client.beta.threads.runs)")


# The POSTs that make an Assistants run call the model: create_and_run, runs.create,
# submit_tool_outputs (cancel and update do not).
_ASSISTANTS_RUN = re.compile(r"/threads/runs|/threads/[^/]+/runs(?:/[^/]+/submit_tool_outputs)?")


# openai 3.63 (checked; 3.3 has the Realtime API and no WebSocket Responses): ``responses.connect()``
# and ``realtime.connect()`` open a WebSocket, never calling ``post``, and prepare the handshake
# with ``client._prepare_options(options)``, ``options.url`` a ws:// or wss:// URL. The wrapped
# classes override that method only to call this; tests/clients/test_openai_internals.py fails if
# openai stops calling it there.
def _warn_if_websocket(options: Any) -> None:
    """Warn once when the client opens a WebSocket for model calls (``ChainBypassWarning``)."""
    url = getattr(options, "url", None)
    if isinstance(url, str) and url.startswith(("ws://", "wss://")):
        if "/realtime" in url.split("?", 1)[0]:
            _warn_bypass("the Realtime API")
        else:
            _warn_bypass("Responses over WebSocket (client.responses.connect)")


def _warn_bypass(what: str) -> None:
    if what in _warned:
        return
    _warned.add(what)
    message = (
        f"tokenmw: {what} does not run the middleware chain: these requests go out without "
        "tokenmw's hooks, counts or spans (see the README, 'Not covered')"
    )
    if sys.version_info >= (3, 12):  # pointed at the caller's line, past openai's and ours
        warnings.warn(message, ChainBypassWarning, skip_file_prefixes=_LIBRARY_DIRS)
    else:
        warnings.warn(message, ChainBypassWarning, stacklevel=4)


_LIBRARY_DIRS = (os.path.dirname(openai.__file__), os.path.dirname(os.path.dirname(__file__)))


# The chains, outermost first, then the client's own ``post``. Module functions, not closures in
# ``post``: a closure that calls itself is a reference cycle, and each call's request, body and
# options would then wait for the garbage collector instead of being freed when the call returns
# (16 objects a call, a collection every ~40 calls).
async def _through_sync(request: _Request, i: int, body: dict[str, Any]) -> Any:
    if i == len(request.chains):
        client = request.client
        send = functools.partial(client._tokenmw_base.post, client, request.path, *request.args)
        return request.opened(call_blocking(send, **request.post_kwargs(body)), body)
    result = await request.chains[i].run(request.call(body), functools.partial(_next_sync, request, i + 1))
    return request.proxied(result, SyncStreamProxy)


def _next_sync(request: _Request, i: int, call: Call) -> Any:
    return _through_sync(request, i, call.request)


async def _through_async(request: _Request, i: int, body: dict[str, Any]) -> Any:
    if i == len(request.chains):
        client = request.client
        post = client._tokenmw_base.post
        sent = await post(client, request.path, *request.args, **request.post_kwargs(body))
        result = request.opened(sent, body)
        return await result if inspect.isawaitable(result) else result
    result = await request.chains[i].run(request.call(body), functools.partial(_next_async, request, i + 1))
    return request.proxied(result, AsyncStreamProxy)


def _next_async(request: _Request, i: int, call: Call) -> Any:
    return _through_async(request, i, call.request)


_classes: dict[type, type] = {}
_classes_lock = threading.Lock()


def _wrapped_class(base: type) -> type:
    """The wrapped subclass of ``base`` (one per client class, made on first use)."""
    cls = _classes.get(base)
    if cls is None:
        with _classes_lock:
            cls = _classes.get(base)
            if cls is None:
                mixin = _AsyncWrapped if issubclass(base, openai.AsyncOpenAI) else _SyncWrapped
                azure = issubclass(base, openai.AzureOpenAI | openai.AsyncAzureOpenAI)
                cls = type(
                    base.__name__,
                    (mixin, base),
                    {
                        "__module__": base.__module__,
                        "__qualname__": base.__qualname__,
                        "__doc__": base.__doc__,
                        "_tokenmw_base": base,
                        # GenAI semantic conventions name Azure OpenAI apart from OpenAI.
                        "_tokenmw_provider": "azure.ai.openai" if azure else "openai",
                    },
                )
                _classes[base] = cls
    return cls


_cached: dict[type, frozenset[str]] = {}


def _cached_names(cls: type) -> frozenset[str]:
    """The client's lazily built attributes (resources, raw views): openai (3.3–3.63, checked by
    tests/clients/test_openai_internals.py) caches them in the instance ``__dict__`` with
    ``functools.cached_property``; a copy must build its own."""
    names = _cached.get(cls)
    if names is None:
        names = _cached[cls] = frozenset(
            name
            for klass in cls.__mro__
            for name, attr in vars(klass).items()
            if isinstance(attr, functools.cached_property)
        )
    return names


def _bare_copy(client: Any, cls: type) -> Any:
    """An instance of ``cls`` with ``client``'s settings and connection pool, none of its resources."""
    dropped = _cached_names(type(client))
    copied: Any = object.__new__(cls)
    copied.__dict__.update(
        (name, value)
        for name, value in vars(client).items()
        if name not in dropped and not name.startswith("_tokenmw_")
    )
    return copied


def _unwrapped(client: Any) -> Any:
    """The same client without the chain (made once per wrapped client), for ``call.client``."""
    plain = client.__dict__.get("_tokenmw_unwrapped")
    if plain is None:
        plain = client.__dict__["_tokenmw_unwrapped"] = _bare_copy(client, client._tokenmw_base)
    return plain


# -- one intercepted request ------------------------------------------------------------------------


def _operation(path: str, kwargs: Mapping[str, Any]) -> Operation | None:
    """The operation a POST is, if it is one the chain runs for."""
    operation = INTERCEPTED_PATHS.get(path if "?" not in path else path.split("?", 1)[0])
    if operation is None or not isinstance(kwargs.get("body"), dict):
        return None
    return operation


def _raw_mode(options: Mapping[str, Any]) -> str | None:
    """``"true"`` for ``with_raw_response``, ``"stream"`` for ``with_streaming_response``, else None."""
    headers = options.get("headers")
    mode = headers.get(RAW_RESPONSE_HEADER) if isinstance(headers, Mapping) else None
    return mode if isinstance(mode, str) else None


class _Request:
    """One intercepted POST: the body the chain sees, how it is sent, and what the caller gets."""

    __slots__ = (
        "args", "body", "chains", "client", "kwargs", "mode", "operation", "options", "path",
        "proxies", "raw",
    )  # fmt: skip

    def __init__(
        self, client: Any, operation: Operation, path: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.client = client
        self.chains: tuple[Middleware, ...] = client._tokenmw_chains
        """The chains to run, outermost first (``_through_async``, ``_through_sync``)."""
        self.operation: Operation = operation
        self.path = path
        self.args = args
        self.kwargs = kwargs
        options = dict(kwargs.get("options") or {})
        body: dict[str, Any] = dict(kwargs["body"])
        extra = options.get("extra_json")
        if isinstance(extra, Mapping):
            # openai merges extra_body into the JSON when it builds the request; hooks should see
            # (and count) the request as it goes out, so the merge happens here instead.
            del options["extra_json"]
            body.update((k, v) for k, v in extra.items() if not isinstance(v, openai.Omit))
        self.body = body
        self.options = options
        self.mode = _raw_mode(options)
        self.raw: Any = None
        self.proxies: list[weakref.ref[Any]] = []

    def call(self, body: dict[str, Any]) -> Call:
        client = self.client
        is_async = isinstance(client, openai.AsyncOpenAI)
        call = Call(
            body,
            self.operation,
            provider=client._tokenmw_provider,
            client=_unwrapped(client),
            blocking=not is_async,
        )
        call.usage_reported_elsewhere = _instrumented(self.operation, is_async)
        return call

    def post_kwargs(self, body: dict[str, Any]) -> dict[str, Any]:
        kwargs = dict(self.kwargs)
        kwargs["body"] = body
        kwargs["options"] = self.options
        return kwargs

    def opened(self, result: Any, body: dict[str, Any]) -> Any:
        """What the innermost chain gets from ``post``: the response, a stream, or (raw modes) what
        the raw response parses to, read here so hooks can see it. The raw response is kept for
        the caller (``returned``)."""
        if self.mode is None:
            if body.get("stream"):
                watch_body(getattr(result, "response", None), self.proxies)
            return result
        self.raw = result
        if body.get("stream"):
            watch_body(getattr(result, "http_response", None), self.proxies)
        # with_raw_response: LegacyAPIResponse.parse() (sync for both clients); with_streaming_response:
        # APIResponse.parse() / await AsyncAPIResponse.parse(). A stream is not read by parsing it.
        return result.parse()

    def proxied(self, result: Any, proxy: Callable[[StreamRun], Any]) -> Any:
        """A chain's result as the next layer out (or the caller) gets it: a stream run becomes a
        stream proxy."""
        if isinstance(result, StreamRun):
            wrapped = proxy(result)
            self.proxies.append(weakref.ref(wrapped))
            return wrapped
        return result

    def returned(self, result: Any) -> Any:
        """What the caller gets: the chain's result, or the raw response that parses to it."""
        raw = self.raw
        if raw is None:
            return result
        # openai 3.3–3.63 (checked): both raw response classes memoize parse() in _parsed_by_type,
        # keyed by _cast_to; seeding it makes raw.parse() return what the chain returned. Used only
        # here; tests/clients/test_openai_internals.py fails if openai changes it.
        raw._parsed_by_type[raw._cast_to] = result
        return raw


def _instrumented(operation: Operation, is_async: bool) -> bool:
    """Whether another instrumentation wraps the resource's ``create`` with ``wrapt`` (as
    opentelemetry-instrumentation-openai-v2, OpenLLMetry and Langfuse do): it then reports the
    call's usage in its own span, and tokenmw's does not report it again."""
    return isinstance(_create_attr(operation, is_async), wrapt.FunctionWrapper)


def _create_attr(operation: Operation, is_async: bool) -> Any:
    if operation == "chat":
        resource: type = AsyncCompletions if is_async else Completions
    else:
        resource = AsyncResponses if is_async else Responses
    return resource.__dict__.get("create")


# A forked child has none of the parent's threads: a pool without its workers, or a lock one of
# them held, would hang the child's first call (gunicorn --preload, multiprocessing, celery).
def _reset_in_child() -> None:
    global _classes_lock
    _classes_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
