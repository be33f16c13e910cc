"""The callback of the end-to-end proxy test: the example's hooks, plus two only a proxy shows.

The proxy imports this module by name (``callbacks: tests.clients._proxy_hooks.handler``, the
checkout on ``PYTHONPATH``). ``Cache`` answers a repeated request itself, so the proxy must not
reach the model; ``SendTwice`` sends a request a second time, which cannot go back through the
proxy and goes to its router. Both act only on requests that ask for it (the ``user`` field), so
every other test sees the example's hooks alone.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import tokenmw
from tokenmw import Call, CallNext, Hook

_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "litellm_proxy" / "tokenmw_hooks.py"


def _example_hooks() -> Any:
    spec = importlib.util.spec_from_file_location("litellm_proxy_example_hooks", _EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # also sets up OTLP export, as the example does
    return module


class Cache(Hook):
    """Answers a request seen before with the answer it got then."""

    name = "cache"

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}

    async def wrap(self, call: Call, call_next: CallNext) -> Any:
        if call.request.get("user") != "cache-me":
            return await call_next(call)
        key = json.dumps(call.request["messages"], sort_keys=True)
        if key not in self.answers:
            self.answers[key] = await call_next(call)
        return self.answers[key]


class SendTwice(Hook):
    """Sends the request again and returns the second answer (a retry, as a hook would do it)."""

    name = "send_twice"

    async def wrap(self, call: Call, call_next: CallNext) -> Any:
        if call.request.get("user") != "send-twice":
            return await call_next(call)
        await call_next(call)
        return await call_next(call)


example = _example_hooks()
handler = tokenmw.LiteLLMProxyHandler(tokenmw.Middleware([Cache(), SendTwice(), *example.mw.hooks]))
