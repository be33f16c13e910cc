"""What a hook is: a few optional methods, each run only if the hook defines it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from tokenmw._core.call import Call

__all__ = ["CallNext", "Hook", "StreamOutcome"]

CallNext = Callable[["Call"], Awaitable[Any]]
"""Runs the rest of the chain (later hooks, then the model call) and returns the response."""

StreamOutcome = Literal["completed", "error", "closed", "abandoned", "stopped"]
"""How a stream ended: read to the end, failed, closed by the caller, garbage-collected while
open, or stopped by a hook (``call.end_stream``)."""


class Hook:
    """Base class of every hook; override only the phases you need.

    Request phases are async (``before``, ``wrap``, ``on_send``, ``after``). Stream phases (``on_chunk``,
    ``on_stream_end``) are plain functions: they run once per chunk inside the caller's iteration,
    sync or async, and at garbage collection for an abandoned stream, where nothing can be awaited.
    Phases left as inherited are never called and cost nothing.
    """

    name: ClassVar[str] = "hook"
    """Shown on the hook's spans as ``tokenmw.hook.name``."""

    _span_current: ClassVar[bool] = True
    """Whether a request phase runs with its span as the current span, so spans the hook starts
    nest under it. The built-in hooks start none and say False: their phases skip a context
    attach and detach (~4 µs a phase with an SDK) and reach their span through the call
    (``telemetry._spans.phase_span``)."""

    _edits_by_replacing: ClassVar[bool] = False
    """Whether the hook changes ``call.request`` only by assigning new top-level values (new lists
    and dicts), never by editing an object of the request in place. The built-in hooks say True:
    while only they run, the call's count memo checks the top-level values by identity instead
    of fingerprinting every message (``Call._plan``). A custom hook is assumed to edit anything;
    so is a subclass that overrides a phase without declaring the flag itself
    (``edits_by_replacing``)."""

    sync_fast_path: ClassVar[bool] = False
    """Set to True when the hook's async phases await nothing that needs a current asyncio Task
    (plain asyncio futures, ``asyncio.sleep``, ``asyncio.to_thread`` are fine; ``asyncio.timeout``,
    anyio, sniffio-based clients such as httpx are not). With every hook so marked, sync clients
    skip the event-loop task per call (~0.1 ms)."""

    def _after_idle(self, call: Call, response: Any) -> bool:
        """Whether ``after`` has nothing to do for ``response``: the chain then does not run the
        phase, so it takes no time and has no span (with an SDK, a span costs more than most
        phases' work). The built-in hooks answer True in their common case (``CountTokens`` when
        the API reported usage, ``LimitResponse`` when the reply kept to the cap); a hook that does
        not override this always has its ``after`` run."""
        return False

    async def before(self, call: Call) -> None:
        """Change ``call.request`` before it is sent."""

    async def after(self, call: Call, response: Any) -> Any:
        """Inspect or replace a complete (non-streamed) response; return the response to pass on."""
        return response

    async def wrap(self, call: Call, call_next: CallNext) -> Any:
        """Run around the rest of the chain: call ``call_next`` zero, one or more times."""
        return await call_next(call)

    async def on_send(self, call: Call) -> None:
        """Runs right before the request goes out, on the request as every hook left it
        (accounting, budget checks); runs again if a ``wrap`` hook sends again."""

    def on_chunk(self, call: Call, chunk: Any) -> Any:
        """Inspect or replace one streamed chunk; return ``None`` to drop it."""
        return chunk

    def on_stream_end(self, call: Call, outcome: StreamOutcome) -> None:
        """Runs exactly once when a stream ends, however it ends."""


PHASES = ("before", "wrap", "on_send", "after", "on_chunk", "on_stream_end")


def defined_phases(hook: Hook) -> frozenset[str]:
    """The phases a hook overrides (the others are skipped, so they cost nothing)."""
    cls = type(hook)
    return frozenset(p for p in PHASES if getattr(cls, p) is not getattr(Hook, p))


def _owner(cls: type, name: str) -> type | None:
    """The class in ``cls``'s MRO whose own namespace defines ``name``."""
    return next((klass for klass in cls.__mro__ if name in vars(klass)), None)


def edits_by_replacing(hook: Hook) -> bool:
    """Whether every phase ``hook`` defines was written by a class that declares
    ``_edits_by_replacing = True`` itself: a user's subclass of a built-in hook that overrides a
    phase is custom code (it may edit the request in place) unless it declares the flag too."""
    cls = type(hook)
    for phase in defined_phases(hook):
        owner = _owner(cls, phase)
        if owner is None or vars(owner).get("_edits_by_replacing") is not True:
            return False
    return True


def after_idle(hook: Hook) -> Callable[[Call, Any], bool] | None:
    """``hook._after_idle`` when the class that wrote ``after`` also wrote it: a subclass that
    overrides ``after`` has its ``after`` run whatever the parent's ``_after_idle`` says."""
    cls = type(hook)
    owner = _owner(cls, "_after_idle")
    if owner is None or owner is Hook or owner is not _owner(cls, "after"):
        return None
    return hook._after_idle
