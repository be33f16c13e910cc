"""Errors tokenmw raises on purpose (as opposed to a hook that broke)."""

from __future__ import annotations

__all__ = ["TokenBudgetExceeded", "TokenmwError"]


class TokenmwError(Exception):
    """A deliberate refusal by tokenmw; never swallowed by ``on_hook_error="skip"``."""


class TokenBudgetExceeded(TokenmwError, ValueError):
    """The request has more input tokens than the configured budget; nothing was sent."""

    def __init__(self, tokens: int, limit: int, model: str | None = None) -> None:
        self.tokens = tokens
        self.limit = limit
        self.model = model
        where = f" for {model}" if model else ""
        super().__init__(
            f"request has {tokens} input tokens, over the budget of {limit}{where}; nothing was sent"
        )
