"""``mw.usage``: a live, thread-safe sum over every call made through one middleware.

``record`` is the only writer and takes a lock, so totals are exact however many threads and
event loops share one middleware. Costs are not computed per call: they are linear in the token
totals, so ``cost_usd`` multiplies the per-model totals by the price table when it is read, and
the price table (~50 ms to parse) is never touched on the call path.
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from tokenmw._core.call import CallUsage
from tokenmw._tokens import prices as _prices

__all__ = ["ModelUsage", "Usage"]

_FIELDS = (
    "calls",
    "input_tokens_original",
    "input_tokens_sent",
    "input_tokens_saved",
    "input_tokens_reported",
    "output_tokens",
    "output_tokens_counted_locally",
    "cached_input_tokens",
    "reasoning_tokens",
    "requests",
)


@dataclass(slots=True)
class ModelUsage:
    """Totals for one model (or, as ``Usage``, for all of them)."""

    calls: int = 0
    input_tokens_original: int = 0
    input_tokens_sent: int = 0
    input_tokens_reported: int = 0
    output_tokens: int = 0
    output_tokens_counted_locally: int = 0
    """Part of ``output_tokens`` counted locally because the API reported none (streams)."""
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    model: str | None = None
    input_tokens_billed: int = 0
    """Input tokens as billed: reported by the API, else (no usage reported) counted locally."""
    requests: int = 0
    """Model requests sent: more than ``calls`` when a hook retries or expands (reversible
    compression), fewer when a cache answers."""

    @property
    def input_tokens_saved(self) -> int:
        """``input_tokens_original - input_tokens_sent``."""
        return self.input_tokens_original - self.input_tokens_sent

    @property
    def cost_usd(self) -> float | None:
        """Estimated USD cost from litellm's bundled price table; ``None`` if the model has no price."""
        return _prices.cost_usd(
            self.model, self.input_tokens_billed, self.cached_input_tokens, self.output_tokens
        )

    def _add(self, u: CallUsage) -> None:
        self.calls += 1
        self.requests += u.requests
        if u.input_tokens_original is not None and u.input_tokens_sent is not None:
            self.input_tokens_original += u.input_tokens_original
            self.input_tokens_sent += u.input_tokens_sent
        if u.input_tokens_reported is not None:
            self.input_tokens_reported += u.input_tokens_reported
            self.input_tokens_billed += u.input_tokens_reported
        elif u.input_tokens_sent is not None:
            self.input_tokens_billed += u.input_tokens_sent
        if u.output_tokens is not None:
            self.output_tokens += u.output_tokens
            if u.output_tokens_estimated:
                self.output_tokens_counted_locally += u.output_tokens
        self.cached_input_tokens += u.cached_input_tokens or 0
        self.reasoning_tokens += u.reasoning_tokens or 0

    def _snapshot(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}


# Every live Usage, by id (a dataclass with eq is not hashable, so not a WeakSet).
_instances: weakref.WeakValueDictionary[int, Usage] = weakref.WeakValueDictionary()


@dataclass
class Usage(ModelUsage):
    """Totals over every call, plus ``by_model``; read it any time, from any thread."""

    by_model: dict[str, ModelUsage] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        _instances[id(self)] = self

    def record(self, model: str | None, u: CallUsage) -> None:
        """Add one completed call."""
        key = model or "unknown"
        with self._lock:
            self._add(u)
            per_model = self.by_model.get(key)
            if per_model is None:
                per_model = self.by_model[key] = ModelUsage(model=model)
            per_model._add(u)

    @property
    def cost_usd(self) -> float | None:
        """Estimated USD cost of every call whose model has a price (litellm's bundled table);
        ``None`` when no call's model has one."""
        with self._lock:
            models = list(self.by_model.values())
        costs = [c for c in (m.cost_usd for m in models) if c is not None]
        return sum(costs) if costs else None

    def as_dict(self) -> dict[str, Any]:
        """A consistent snapshot as plain data (for printing or JSON), costs included."""
        with self._lock:
            out = self._snapshot()
            models = {name: (m, m._snapshot()) for name, m in self.by_model.items()}
        total = 0.0
        priced = False
        by_model: dict[str, Any] = {}
        for name, (m, snapshot) in models.items():
            snapshot["cost_usd"] = cost = m.cost_usd
            if cost is not None:
                total += cost
                priced = True
            by_model[name] = snapshot
        out["cost_usd"] = total if priced else None
        out["by_model"] = by_model
        return out


# A forked child has none of the parent's threads: a lock one of them held would hang it.
def _reset_in_child() -> None:
    for usage in list(_instances.values()):
        usage._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
