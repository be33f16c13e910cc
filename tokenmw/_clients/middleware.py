"""``tokenmw.Middleware``: the chain of hooks, plus wrapping the clients it runs around."""

from __future__ import annotations

from typing import TypeVar

from tokenmw._clients.openai import wrap_openai_client
from tokenmw._core.chain import Chain

__all__ = ["Middleware"]

C = TypeVar("C")


class Middleware(Chain):
    """An ordered chain of hooks that wraps OpenAI clients and LiteLLM functions."""

    def wrap(self, client: C) -> C:
        """``client`` with this chain around every chat completion and Responses request it
        sends; to a type checker, the client's own type."""
        return wrap_openai_client(client, self)  # type: ignore[no-any-return]
