"""``tokenmw.LiteLLMProxyHandler(mw)``: the chain inside a LiteLLM proxy, as a ``CustomLogger``.

The chain is an onion (``Middleware.run(call, send)``: request phases, ``send``, response phases);
the proxy splits a request across separate callbacks and makes the model call itself in between.
The bridge runs the whole onion as one task per request, a *flight*:

1. ``async_pre_call_hook`` starts ``mw.run(call, send)`` on the proxy's request dict and waits
   until the chain reaches ``send``. The request phases have then changed ``data`` in place; the
   hook returns it and the proxy sends it. (A hook that refuses, e.g. a token budget, fails the
   request with a 400 before anything is sent.)
2. ``send`` waits for the proxy's answer: ``async_post_call_success_hook`` (whole responses) or
   ``async_post_call_streaming_iterator_hook`` (streams) hands it over and returns what the chain
   returns (``after`` hooks applied; a stream seen through ``on_chunk``/``on_stream_end``).
3. ``async_post_call_failure_hook`` hands over the error instead, so the chain ends (span, no
   usage) exactly once.

Why one task rather than running phases piecemeal from each callback: ``wrap`` hooks (cache,
retry) and the span around the call need the real onion, and the chain stays the one place that
decides what runs when. A later ``send`` of the same call (a ``wrap`` hook that retries, or a
follow-up request) cannot go back through the proxy, which has sent already: it goes to the
proxy's router directly.

A flight is found again by the request dict itself: the proxy hands the dict the pre-call hook
returned to every later callback of that request. Where a later callback copies it (a guardrail
may), the flight is found by ``litellm_call_id``, which recent proxies put in ``data`` before the
pre-call hook and keep through every later callback; a client may choose its own id
(``x-litellm-call-id``), so one id can name several flights, and the oldest is taken. A flight
whose request never comes back (the proxy retried its pre-call phase after a rate limit, or
dropped the request) ends after ``pending_timeout`` seconds with ``TimeoutError`` and is
forgotten: nothing waits forever.

The proxy decides which callbacks override a hook by looking in the callback class's own
``__dict__``, so a subclass of this handler gets the hook methods copied into its class body.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from litellm.integrations.custom_logger import CustomLogger

from tokenmw._clients.litellm import OPERATIONS, _provider
from tokenmw._clients.streams import AsyncStreamProxy, async_result
from tokenmw._core.call import Call
from tokenmw._core.errors import TokenmwError
from tokenmw._tokens import aliases
from tokenmw._tokens import encodings as _tokenizer

if TYPE_CHECKING:
    from tokenmw._core.chain import Chain

__all__ = ["LiteLLMProxyHandler"]

logger = logging.getLogger("tokenmw")

# What the proxy keeps in its request dict for itself; not sent again on a second ``send``.
_PROXY_ONLY_KEYS = ("litellm_logging_obj", "litellm_call_id", "proxy_server_request")
_HOOK_METHODS = (
    "async_pre_call_hook",
    "async_post_call_success_hook",
    "async_post_call_failure_hook",
    "async_post_call_streaming_iterator_hook",
)


class _Flight:
    """One request's chain run, parked at ``send`` while the proxy calls the model."""

    __slots__ = ("answer", "call", "call_id", "request", "sends", "sent", "task")

    def __init__(self, call: Call, call_id: str | None) -> None:
        loop = asyncio.get_running_loop()
        self.call = call
        self.call_id = call_id
        self.request = call.request  # the proxy's dict: identifies the flight when ids repeat
        self.sent: asyncio.Future[None] = loop.create_future()
        self.answer: asyncio.Future[Any] = loop.create_future()
        self.sends = 0
        self.task: asyncio.Task[Any] | None = None

    def deliver(self, response: Any = None, error: BaseException | None = None) -> None:
        if self.answer.done():
            return
        if error is not None:
            self.answer.set_exception(error)
        else:
            self.answer.set_result(response)


class LiteLLMProxyHandler(CustomLogger):  # type: ignore[misc]
    """A LiteLLM proxy callback that runs ``mw`` on every chat completions and Responses request.

    Name an instance in the proxy's ``config.yaml`` (``litellm_settings: callbacks:
    my_hooks.handler``). ``pending_timeout``: seconds a request may spend between the proxy's
    pre-call and post-call callbacks before its chain gives up (``TimeoutError``); make it longer
    than the slowest model call the proxy allows.
    """

    def __init__(self, mw: Chain, *, pending_timeout: float = 900.0) -> None:
        super().__init__()
        from tokenmw._core.chain import Chain

        if not isinstance(mw, Chain):
            raise TypeError(f"LiteLLMProxyHandler takes a tokenmw.Middleware, got {type(mw).__name__!r}")
        if pending_timeout <= 0:
            raise ValueError(f"pending_timeout must be > 0, got {pending_timeout!r}")
        _check_litellm_version()
        self.mw = mw
        self.pending_timeout = pending_timeout
        # Parked flights by ``id()`` of their request dict (each flight holds its dict, so the id
        # is not reused while it is parked), and by the proxy's call id.
        self._by_request: dict[int, _Flight] = {}
        self._by_call_id: dict[str, list[_Flight]] = {}
        if mw.hooks:
            _tokenizer.preload()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # The proxy only calls a hook its callback's own class defines (``vars(type(cb))``).
        super().__init_subclass__(**kwargs)
        for name in _HOOK_METHODS:
            if name not in cls.__dict__:
                setattr(cls, name, getattr(cls, name))

    def __repr__(self) -> str:
        return f"LiteLLMProxyHandler({self.mw!r})"

    @property
    def in_flight(self) -> int:
        """Requests whose chain waits for the proxy's answer (for tests and health checks)."""
        return len(self._by_request)

    # -- request ----------------------------------------------------------------------------------

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
    ) -> dict[str, Any] | None:
        """Run the chain's request phases on ``data``; the proxy sends what they leave."""
        operation = OPERATIONS.get(str(call_type))
        if operation is None or not isinstance(data, dict):
            return None
        call_id = data.get("litellm_call_id")
        provider = _register_alias(data.get("model"))
        call = Call(data, operation, provider=provider, integration="litellm")
        flight = _Flight(call, call_id if isinstance(call_id, str) else None)
        task = asyncio.create_task(self.mw.run(call, lambda c: self._send(flight, c)))
        flight.task = task
        try:
            await asyncio.wait((flight.sent, task), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()  # the request was abandoned while the hooks ran
            raise
        if flight.sent.done():
            self._park(flight)
            return data
        # The chain ended without sending: a refusal, or a hook that answered itself.
        try:
            task.result()
        except TokenmwError as error:
            raise _bad_request(error) from error
        if operation == "chat" and not call.stream:
            # The proxy still routes the request; litellm's mock answer keeps it off the model,
            # and the success hook returns the chain's own answer.
            data["mock_response"] = "tokenmw"
            self._park(flight, answered=True)
            return data
        raise _bad_request(TokenmwError("a tokenmw hook answered a request the proxy must send"))

    async def _send(self, flight: _Flight, call: Call) -> Any:
        flight.sends += 1
        if flight.sends == 1:
            flight.sent.set_result(None)
            return await asyncio.wait_for(flight.answer, self.pending_timeout)
        return await _send_again(call)

    def _park(self, flight: _Flight, *, answered: bool = False) -> None:
        self._by_request[id(flight.request)] = flight
        if flight.call_id is not None:
            self._by_call_id.setdefault(flight.call_id, []).append(flight)
        if answered:  # the chain is done; keep its answer for the success hook, for a while
            asyncio.get_running_loop().call_later(self.pending_timeout, self._forget, flight)
        else:
            assert flight.task is not None
            flight.task.add_done_callback(lambda task: self._landed(flight, task))

    def _landed(self, flight: _Flight, task: asyncio.Task[Any]) -> None:
        self._forget(flight)
        # A chain that ended with nobody awaiting it (timed out, or the proxy moved on): its span
        # has the error; retrieving it here keeps asyncio from logging it again at collection.
        if not task.cancelled() and task.exception() is not None:
            logger.debug("tokenmw: a proxied call ended without the proxy: %r", task.exception())

    def _forget(self, flight: _Flight) -> None:
        if self._by_request.get(id(flight.request)) is flight:
            del self._by_request[id(flight.request)]
        flights = self._by_call_id.get(flight.call_id) if flight.call_id is not None else None
        if flights is not None and flight in flights:
            flights.remove(flight)
            if not flights:
                del self._by_call_id[flight.call_id]  # type: ignore[arg-type]

    def _take(self, data: Any) -> _Flight | None:
        if not isinstance(data, dict):
            return None
        flight = self._by_request.get(id(data))
        if flight is None or flight.request is not data:
            call_id = data.get("litellm_call_id")
            flights = self._by_call_id.get(call_id) if isinstance(call_id, str) else None
            if not flights:
                return None
            flight = flights[0]
        self._forget(flight)
        return flight

    # -- response ---------------------------------------------------------------------------------

    async def async_post_call_success_hook(
        self, data: dict[str, Any], user_api_key_dict: Any, response: Any
    ) -> Any:
        """Run the chain's response phases on a whole response; return what they return."""
        flight = self._take(data)
        if flight is None or flight.task is None:
            return None
        flight.deliver(response)
        try:
            result = await flight.task
        except TokenmwError as error:
            raise _bad_request(error) from error
        return result

    async def async_post_call_streaming_iterator_hook(
        self, user_api_key_dict: Any, response: Any, request_data: dict[str, Any]
    ) -> AsyncGenerator[Any, None]:
        """Run the chain's stream phases on each chunk the proxy relays."""
        flight = self._take(request_data)
        if flight is None or flight.task is None:
            async for chunk in response:
                yield chunk
            return
        flight.deliver(response)
        stream = async_result(await flight.task)
        if not isinstance(stream, AsyncStreamProxy):  # a hook answered with a whole response
            yield stream
            return
        try:
            async for chunk in stream:
                yield chunk
        finally:
            # Client gone or stream done: end the call (and close upstream) exactly once.
            await stream.aclose()

    async def async_post_call_failure_hook(
        self,
        request_data: dict[str, Any],
        original_exception: Exception,
        user_api_key_dict: Any,
        traceback_str: str | None = None,
    ) -> None:
        """End the chain with the proxy's error (span status, no usage); the error is not changed."""
        flight = self._take(request_data)
        if flight is None or flight.task is None:
            return None
        flight.deliver(error=original_exception)
        task = flight.task
        await asyncio.wait((task,))
        if not task.cancelled():
            task.exception()  # the proxy reports the error itself
        return None


TESTED_SINCE = (1, 108)
"""The oldest litellm whose proxy this handler is tested with. Older proxies call the callbacks
differently (the success hook's return value ignored, the call id set after the pre-call hook)."""


def _check_litellm_version() -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("litellm")
    except PackageNotFoundError:
        return
    parts = tuple(int(p) for p in found.split(".")[:2] if p.isdigit())
    if len(parts) == 2 and parts < TESTED_SINCE:
        logger.warning(
            "tokenmw: LiteLLMProxyHandler is tested with litellm >= %d.%d, found %s; response and "
            "stream hooks may not run in this proxy (pip install -U 'litellm[proxy]')",
            *TESTED_SINCE,
            found,
        )


def _register_alias(model: Any) -> str:
    """Register the deployment behind the proxy's model name (for counting and the context
    window) and return the provider it goes to."""
    if not isinstance(model, str):
        return "openai"
    deployments = _deployments(model)
    targets = [d.get("litellm_params", {}).get("model") for d in deployments]
    targets = [t for t in targets if isinstance(t, str)]
    if not targets:
        return _provider(model)
    windows = [(d.get("model_info") or {}).get("max_input_tokens") for d in deployments]
    # One window for every deployment behind the name, or none: the router picks later.
    known = [w for w in windows if isinstance(w, int) and w > 0]
    window = min(known) if known and len(known) == len(windows) else None
    aliases.set_alias(model, targets[0], context_window=window)
    provider = deployments[0].get("litellm_params", {}).get("custom_llm_provider")
    return provider if isinstance(provider, str) and provider else _provider(targets[0])


def _router() -> Any:
    """The proxy's router, if this process is a proxy (never imports the proxy server itself)."""
    server = sys.modules.get("litellm.proxy.proxy_server")
    return getattr(server, "llm_router", None)


def _deployments(model: str) -> list[dict[str, Any]]:
    llm_router = _router()
    if llm_router is None:
        return []
    try:
        found: list[Any] = llm_router.get_model_list(model_name=model) or []
    except Exception:
        logger.debug("tokenmw: cannot read the proxy's deployments of %r", model, exc_info=True)
        return []
    return [d for d in found if isinstance(d, dict)]


async def _send_again(call: Call) -> Any:
    """A second ``send`` of one call (a retrying or expanding hook): through the proxy's router."""
    import litellm

    request = {k: v for k, v in call.request.items() if k not in _PROXY_ONLY_KEYS}
    llm_router = _router()
    target: Any = llm_router if llm_router is not None else litellm
    if call.operation == "responses":
        return await target.aresponses(**request)
    return await target.acompletion(**request)


def _bad_request(error: TokenmwError) -> Exception:
    """A deliberate refusal by a hook, as the proxy's 400 (the request was never sent)."""
    from fastapi import HTTPException

    return HTTPException(status_code=400, detail={"error": f"tokenmw: {error}"})
