"""Errors tokenmw raises on purpose (as opposed to a hook that broke)."""

from __future__ import annotations

__all__ = ["ChainBypassWarning", "HookResultError", "HookTimeout", "TokenBudgetExceeded", "TokenmwError"]


class TokenmwError(Exception):
    """A deliberate refusal by tokenmw; never swallowed by ``on_hook_error="skip"``."""


class TokenBudgetExceeded(TokenmwError, ValueError):
    """The request has more input tokens than the configured budget; it was not sent."""

    code: str | None = "context_length_exceeded"
    """The API's own code for a request over the context window (what handlers match on)."""

    def __init__(
        self,
        tokens: int,
        limit: int,
        model: str | None = None,
        *,
        estimated: bool = False,
        source: str | None = None,
    ) -> None:
        self.tokens = tokens
        self.limit = limit
        self.model = model
        self.estimated = estimated
        """Whether ``tokens`` includes parts that could only be estimated (remote images, ...)."""
        self.source = source
        """Where ``limit`` came from (``CountTokens(max_input_tokens=...)``, a price table, ...)."""
        counted = f"{tokens} input tokens" + (" (estimated)" if estimated else "")
        where = f" for {model}" if model else ""
        origin = f" (from {source})" if source else ""
        super().__init__(
            f"request has {counted}, over the budget of {limit}{where}{origin}; it was not sent"
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Exceptions pickle their args; ours has keyword state too (multiprocessing, logging).
        return (_rebuild, (self.tokens, self.limit, self.model, self.estimated, self.source))


def _rebuild(
    tokens: int, limit: int, model: str | None, estimated: bool, source: str | None = None
) -> TokenBudgetExceeded:
    return TokenBudgetExceeded(tokens, limit, model, estimated=estimated, source=source)


# Not TokenmwErrors: these describe a hook that broke, so ``on_hook_error="skip"`` skips the hook.


class HookTimeout(TimeoutError):
    """A request-phase hook ran longer than ``Middleware(hook_timeout=...)``."""

    def __init__(self, hook: str, phase: str, timeout: float) -> None:
        self.hook = hook
        self.phase = phase
        self.timeout = timeout
        super().__init__(f"hook {hook!r} took longer than hook_timeout={timeout:g}s in {phase}")


class HookResultError(TypeError):
    """A hook returned something that is not a response (``after``) or a chunk (``on_chunk``)."""

    def __init__(self, hook: str, phase: str, got: object, expected: str) -> None:
        self.hook = hook
        self.phase = phase
        hint = " (did it forget `return response`?)" if got is None and phase == "after" else ""
        super().__init__(f"hook {hook!r} {phase} returned {type(got).__name__}, not {expected}{hint}")


class ChainBypassWarning(UserWarning):
    """A wrapped client made a model call that the chain cannot run for: Responses over WebSocket
    (``responses.connect()``), the Realtime API, the legacy ``completions.create()``,
    ``responses.compact()`` or an Assistants run. It goes out as the client sends it, without
    hooks, counts or spans, so a user is told instead of finding out from the bill. Warned once
    per kind of call and process; to silence it,
    ``warnings.filterwarnings("ignore", category=tokenmw.ChainBypassWarning)``."""
