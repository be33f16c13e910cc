"""Errors tokenmw raises on purpose (as opposed to a hook that broke)."""

from __future__ import annotations

__all__ = ["TokenBudgetExceeded", "TokenmwError"]


class TokenmwError(Exception):
    """A deliberate refusal by tokenmw; never swallowed by ``on_hook_error="skip"``."""


class TokenBudgetExceeded(TokenmwError, ValueError):
    """The request has more input tokens than the configured budget; it was not sent."""

    def __init__(self, tokens: int, limit: int, model: str | None = None, *, estimated: bool = False) -> None:
        self.tokens = tokens
        self.limit = limit
        self.model = model
        self.estimated = estimated
        """Whether ``tokens`` includes parts that could only be estimated (remote images, ...)."""
        counted = f"{tokens} input tokens" + (" (estimated)" if estimated else "")
        where = f" for {model}" if model else ""
        super().__init__(f"request has {counted}, over the budget of {limit}{where}; it was not sent")

    def __reduce__(self) -> tuple[object, ...]:
        # Exceptions pickle their args; ours has keyword state too (multiprocessing, logging).
        return (_rebuild, (self.tokens, self.limit, self.model, self.estimated))


def _rebuild(tokens: int, limit: int, model: str | None, estimated: bool) -> TokenBudgetExceeded:
    return TokenBudgetExceeded(tokens, limit, model, estimated=estimated)
