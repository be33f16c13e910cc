"""``mw.hook_times``: how long each hook phase took, summed per hook, without any SDK.

Spans need an OpenTelemetry SDK and cost ~60 µs each with one; these counters cost two clock reads
and a locked add per phase, so they are always on, and ``tokenmw demo`` reads its per-hook table
from them.
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass

__all__ = ["HookTimes", "PhaseTime"]


@dataclass(frozen=True, slots=True)
class PhaseTime:
    """Runs of one hook phase and the time they took in total (the hook's own work only)."""

    runs: int
    seconds: float


_instances: weakref.WeakSet[HookTimes] = weakref.WeakSet()


class HookTimes:
    """Per ``(hook name, phase)`` totals over every call made through one middleware."""

    __slots__ = ("__weakref__", "_lock", "_totals")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, str], list[int]] = {}
        _instances.add(self)

    def add(self, hook: str, phase: str, nanoseconds: int, runs: int = 1) -> None:
        """Add ``runs`` runs taking ``nanoseconds`` in all."""
        key = (hook, phase)
        with self._lock:
            entry = self._totals.get(key)
            if entry is None:
                self._totals[key] = [runs, nanoseconds]
            else:
                entry[0] += runs
                entry[1] += nanoseconds

    def snapshot(self) -> dict[tuple[str, str], PhaseTime]:
        """A consistent copy: ``{(hook, phase): PhaseTime}``."""
        with self._lock:
            return {key: PhaseTime(runs, ns / 1e9) for key, (runs, ns) in self._totals.items()}

    def reset(self) -> None:
        """Forget everything (e.g. after a warm-up)."""
        with self._lock:
            self._totals.clear()

    @property
    def total_seconds(self) -> float:
        """Time spent in all hooks together."""
        with self._lock:
            return sum(ns for _, ns in self._totals.values()) / 1e9


# A forked child has none of the parent's threads: a lock one of them held would hang it.
def _reset_in_child() -> None:
    for times in list(_instances):
        times._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
