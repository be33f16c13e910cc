"""``Compress``: fewer input tokens, code/JSON/numbers/URLs intact, the same output every time.

The rewriting is the pure engine in ``tokenmw._compress``; this hook decides whether to run it (the
request's shared token count against ``min_tokens``), counts what trimming to a budget needs, and
records before/after on its span.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, get_args

from tokenmw._compress import (
    Level,
    Report,
    compress_chat,
    compress_responses,
    is_cached,
    originals,
    remembered,
)
from tokenmw._compress.trim import choose_cut, cut_points, pinned_count
from tokenmw._core.hook import Hook
from tokenmw._tokens.count_cache import TokenCache, cache_for, in_worker
from tokenmw._tokens.counting import plan_request
from tokenmw._tokens.encodings import encoding_for_async
from tokenmw.hooks import _expand
from tokenmw.hooks._checks import whole_number
from tokenmw.telemetry._spans import annotate_phase, phase_span

if TYPE_CHECKING:
    from tokenmw._core.call import Call
    from tokenmw._core.hook import CallNext

__all__ = ["Compress"]

_LEVELS = get_args(Level)


class Compress(Hook):
    """Shrink every text the model reads (message contents, tool results, Responses input and
    instructions); see ``tokenmw._compress`` for the rules and the checks behind them.

    ``level``: ``"safe"`` (whitespace, compact JSON, also JSON cut mid-document or inside prose, and
    repeats: whole texts, blocks and runs of lines seen earlier become markers pointing back) or
    ``"aggressive"`` (also fillers, bold, collapsed log lines, JSON arrays as tables, the middle of
    huge tool outputs). ``min_tokens``: requests counted below this are
    left alone. ``max_input_tokens``: drop the oldest turns (the system prompt and first user message
    stay, tool calls keep their results) so the request fits; cuts come in steps of a quarter of the
    budget so the kept prefix stays cacheable. ``reversible`` (aggressive only): every elision
    marker carries ``ref=<id>`` and the request offers ``tokenmw_expand``, which tokenmw answers
    with the original inside the call (at most ``max_expansions`` per call; ``hooks/_expand.py``).
    """

    name = "compress"
    sync_fast_path = True
    _span_current = False
    _edits_by_replacing = True

    def __new__(cls, *args: Any, **kwargs: Any) -> Compress:
        # Reversible compression needs a ``wrap`` phase (the expansion loop); a phase a hook
        # defines costs every call, so only reversible instances are of the class that has one.
        reversible = kwargs.get("reversible", False)
        if cls is Compress and reversible:
            cls = _ReversibleCompress
        return super().__new__(cls)

    def __init__(
        self,
        level: Level = "safe",
        min_tokens: int = 256,
        max_input_tokens: int | None = None,
        *,
        reversible: bool = False,
        max_expansions: int = 3,
    ) -> None:
        if level not in _LEVELS:
            raise ValueError(f"level must be one of {_LEVELS}, not {level!r}")
        whole_number("min_tokens", min_tokens, 0)
        whole_number("max_input_tokens", max_input_tokens, 1, optional=True)
        whole_number("max_expansions", max_expansions, 0)
        if not isinstance(reversible, bool):
            raise ValueError(f"reversible must be True or False, got {reversible!r}")
        if reversible and level != "aggressive":
            raise ValueError("reversible=True needs level='aggressive' (only aggressive elides text)")
        self.level: Level = level
        self.min_tokens = min_tokens
        self.max_input_tokens = max_input_tokens
        self.reversible = reversible
        """Elisions carry ``ref=<id>`` and the model may ask for them back (``tokenmw_expand``)."""
        self.max_expansions = max_expansions
        """At most this many originals sent back per call (then the model must answer); with 0
        the markers keep their refs (stable prefixes) but the tool is not offered."""

    def __repr__(self) -> str:
        extra = f", reversible=True, max_expansions={self.max_expansions}" if self.reversible else ""
        return (
            f"Compress(level={self.level!r}, min_tokens={self.min_tokens}, "
            f"max_input_tokens={self.max_input_tokens}{extra})"
        )

    async def before(self, call: Call) -> None:
        request = call.request
        if call.operation == "chat":
            if not isinstance(request.get("messages"), list):
                return
        elif not isinstance(request.get("input"), str | list) and not isinstance(
            request.get("instructions"), str
        ):
            return
        recording = phase_span(call).is_recording()
        before = await call.input_tokens() if self.min_tokens or recording else 0
        if before < self.min_tokens:
            return

        original = _originals(call)
        reversible = self.reversible and _expand.off_reason(call) is None
        with originals.collecting() if reversible else nullcontext() as found:
            if not call.blocking and _new_chars(original, self.level) > OFFLOAD_CHARS:
                report = await in_worker(self._apply, call, original, range(0))
            else:
                report = self._apply(call, original, range(0))
            if self.max_input_tokens is not None and await call.input_tokens() > self.max_input_tokens:
                cut = await self._cut(call, original)
                if cut is not None:
                    if found is not None:
                        found.clear()  # only the elisions of the request as sent count
                    report = self._apply(call, original, cut)
        if found and self.max_expansions:
            _expand.offer(call, self.max_expansions)
        call.state[self.name] = report
        if recording:
            annotate_phase(call, before, await call.input_tokens(), **_attributes(self.level, report))

    def _apply(self, call: Call, original: dict[str, Any], drop: range) -> Report:
        """Compress the request as the caller made it (dropping ``drop``) into ``call.request``."""
        if call.operation == "chat":
            messages, report = compress_chat(original["messages"], self.level, drop=drop)
            call.request["messages"] = messages
        else:
            updates, report = compress_responses(original, self.level, drop=drop)
            call.request.update(original)
            call.request.update(updates)
        return report

    async def _cut(self, call: Call, original: dict[str, Any]) -> range | None:
        """Which items to drop so the request fits ``max_input_tokens``, from their sizes after
        compression without dedup (dedup only shrinks the result further)."""
        budget = self.max_input_tokens
        assert budget is not None
        items: Any
        if call.operation == "chat":
            items, _ = compress_chat(original["messages"], self.level, dedup=False)
            request = {**call.request, "messages": items}
        else:
            updates, _ = compress_responses(original, self.level, dedup=False)
            items = updates.get("input", original.get("input"))
            if not isinstance(items, list):
                return None
            request = {**call.request, **updates}
        plan = plan_request(call.operation, request)
        cache = cache_for(await encoding_for_async(call.model))
        total = plan.fixed + await cache.count_all_async(plan.texts)
        sizes = [_size(cache, call, item) for item in items]
        pinned = pinned_count(items)
        points = cut_points(items, pinned, call.operation)
        cut = choose_cut(sizes, pinned, points, total - budget, step=budget // 4)
        return None if cut is None else range(pinned, cut)


class _ReversibleCompress(Compress):
    """``Compress(..., reversible=True)``: the same, plus the expansion loop (``hooks/_expand.py``)."""

    _edits_by_replacing = True  # the loop replaces ``messages`` / ``input`` / ``tools``, never edits them

    async def wrap(self, call: Call, call_next: CallNext) -> Any:
        return await _expand.expand(call, call_next)


OFFLOAD_CHARS = 32_768
"""New text (not compressed before in this process) above which a call's compression runs in the
worker pool instead of on the event loop: the engine takes ~0.25 ms per 1,000 characters, so this
keeps the loop free of steps much over 5 ms; an agent turn's few new KB stay inline (a thread hop
costs more than they do)."""

_SMALL = 256  # shorter texts are not worth a cache lookup here


def _new_chars(original: dict[str, Any], level: Level) -> int:
    """Characters of the texts in ``original`` that the engine has not compressed yet."""
    texts = [text for text in _texts(original) if len(text) > _SMALL]
    if sum(map(len, texts)) <= OFFLOAD_CHARS:
        return 0  # small enough whatever is new: no cache lookups
    return sum(len(text) for text in texts if not is_cached(text, level) and not remembered(text))


def _texts(original: dict[str, Any]) -> Iterator[str]:
    """The texts of a chat or Responses request the engine reads (contents, text parts, outputs)."""
    for key in ("instructions", "input"):
        value = original.get(key)
        if isinstance(value, str):
            yield value
    items = original.get("messages")
    if not isinstance(items, list):
        items = original.get("input")
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        for key in ("content", "output"):
            value = item.get(key)
            if isinstance(value, str):
                yield value
            elif isinstance(value, list):
                for part in value:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        yield part["text"]


def _originals(call: Call) -> dict[str, Any]:
    """The fields compression reads, as the caller passed them (kept for a second pass)."""
    keys = ("messages",) if call.operation == "chat" else ("input", "instructions")
    return {k: call.request[k] for k in keys if k in call.request}


def _size(cache: TokenCache, call: Call, item: Any) -> int:
    """Tokens one message or input item adds to the request."""
    key = "messages" if call.operation == "chat" else "input"
    base: dict[str, Any] = {"model": call.model, key: []}
    plan = plan_request(call.operation, {**base, key: [item]})
    return plan.fixed - plan_request(call.operation, base).fixed + cache.count_all(plan.texts)


def _attributes(level: str, report: Report) -> dict[str, Any]:
    """The span's notes; counts that are zero are left out (every attribute costs the SDK ~1.5 µs
    a call to clean and store, and an absent count reads as none in Jaeger's tag search)."""
    attributes: dict[str, Any] = {
        "compress.level": level,
        "compress.texts_changed": report.changed,
        "compress.fallback": bool(report.fallbacks),
    }
    for key, value in (
        ("compress.duplicates", report.duplicates),
        ("compress.truncated", report.truncated),
        ("compress.json_tables", report.tables),
        ("compress.dropped", report.dropped),
    ):
        if value:
            attributes[key] = value
    if report.fallbacks:
        attributes["compress.fallbacks"] = ",".join(sorted(set(report.fallbacks)))
    return attributes
