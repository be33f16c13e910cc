"""Compress one text: protect, rewrite the prose, restore, check; cached by content.

The result depends on the text and the level alone (never on the request around it), so a text
compresses the same way in every turn it appears in, and a repeated system prompt or tool output
costs one dictionary lookup.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from typing import Any, Literal

from . import aggressive, logs, originals, tables
from .codelike import is_code_line, looks_like_code
from .integrity import check
from .jsoncompact import JSON_AT_START, JSON_START, find_json
from .jsonlex import Lexed, embedded_blocks, lex_stretch
from .protect import (
    Regions,
    fence_spans,
    has_placeholder_chars,
    indented_code_spans,
    inline_code_spans,
    quoted_spans,
    url_spans,
)
from .whitespace import has_odd_chars, normalize_prose

__all__ = ["BLOCK_SEPARATOR", "Compressed", "Level", "clear_cache", "compress_text"]

Level = Literal["safe", "aggressive"]
LEVELS: tuple[Level, ...] = ("safe", "aggressive")

BLOCK_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class Compressed:
    """A compressed text and how it got there."""

    text: str
    pieces: tuple[str, ...]
    """``text`` split at blank lines (``BLOCK_SEPARATOR``), code blocks whole: the units that can be
    replaced as duplicates of earlier ones."""
    changed: bool = True
    fallback: str | None = None
    """The guarantee a rewrite broke (the text is then the original), or ``None``."""
    truncated: bool = False
    code: bool | None = None
    """Whether a stretch between fences looked like source code (then kept byte for byte), when
    known (``None``: the text was not looked at that closely); line repeats leave code alone."""
    tables: int = 0
    """Aggressive only: JSON arrays written as tables (``tables``); that text is no longer JSON."""
    elided: tuple[str, ...] = ()
    """Aggressive only: every text left out, in order, each replaced by a marker (``elide``), as it
    stood when it was left out (prose lines already whitespace-normalised)."""
    refs: tuple[tuple[str, str], ...] = ()
    """Reversible only: ``(ref, original)`` of each marker, the original as the caller wrote it."""


def _unchanged(text: str, fallback: str | None = None) -> Compressed:
    return Compressed(text, (text,), changed=False, fallback=fallback)


def _compress(text: str, level: Level, tool: bool) -> Compressed:
    """``_rewrite``, made a fixed point (compress(compress(x)) == compress(x)): once a non-breaking
    or zero-width character is normalised away, text around it can read as JSON or a code fence
    that it did not before, so such a text is rewritten once more."""
    result, odd = _rewrite(text, level, tool)
    if result.changed and odd:
        again, _ = _rewrite(result.text, level, tool)
        if again.changed and again.fallback is None:
            result = replace(again, truncated=again.truncated or result.truncated)
    return result


def _rewrite(raw: str, level: Level, tool: bool) -> tuple[Compressed, bool]:
    """Mask what must not change, apply the level's rules to the rest, restore, check; then, for a
    tool output at the aggressive level, cut the middle of a huge one. Also returns whether ``raw``
    holds odd characters (``has_odd_chars``), looked for once here for ``_compress``."""
    if not raw:
        return _unchanged(raw), False
    utf8 = None if raw.isascii() else raw.encode("utf-8", "surrogatepass")
    odd = utf8 is not None and has_odd_chars(utf8)
    if level == "safe" and not tool and _clean(raw, odd):
        return _unchanged(raw), odd
    if has_placeholder_chars(raw, utf8):
        return _unchanged(raw), odd
    regions = Regions()
    # Safe rules without odd characters to remove only touch runs of spaces, so inline code,
    # URLs and compact JSON need protecting only where they hold two spaces in a row.
    strict = odd or level == "aggressive"
    out: list[str] = []  # the text with placeholders
    json_values: list[tuple[Any, str]] = []
    elided: list[str] = []
    fences: list[str] = []  # each fenced block as it must come out
    pos = 0
    code = False
    for start, end in [*fence_spans(raw), (len(raw), len(raw))]:
        if start > pos:
            segment = raw[pos:start]
            code |= _protect_segment(segment, regions, out, json_values, strict, level == "aggressive")
        if end > start:
            block = raw[start:end]
            if level == "aggressive":
                block = logs.collapse_fence(block, elided)  # logs only; code stays as written
            fences.append(block)
            out.append(regions.add(block))
        pos = end
    masked = "".join(out)

    rewritten = normalize_prose(masked, odd)
    if level == "aggressive":
        rewritten = aggressive.remove_fillers(rewritten)
        rewritten = aggressive.strip_emphasis(rewritten)
        rewritten = aggressive.shorten_separators(rewritten)
        with originals.restoring(regions.restore):
            rewritten = logs.collapse_lines(rewritten, elided, similar=tool)
    if rewritten == masked and not json_values and not elided:
        result = Compressed(raw, (raw,), changed=False, code=code)
    else:
        pieces = tuple(regions.restore(p) for p in rewritten.split(BLOCK_SEPARATOR))
        text = BLOCK_SEPARATOR.join(pieces)
        failed = check(
            raw, text, masked, rewritten, regions, json_values,
            drops_lines=level == "aggressive", fences=fences, elided=elided,
        )  # fmt: skip
        if failed is not None:
            result = _unchanged(raw, failed)
        elif text == raw:
            result = Compressed(raw, (raw,), changed=False, code=code)
        else:
            made = sum(isinstance(value, tables.Table) for value, _ in json_values)
            result = Compressed(text, pieces, code=code, tables=made, elided=tuple(elided))
    if tool and level == "aggressive":
        cut: list[str] = []
        short = aggressive.truncate_middle(result.text, cut)
        if short is not None:
            result = replace(
                result, text=short, pieces=(short,), truncated=True, elided=(*result.elided, *cut)
            )
    return result, odd


# What the safe rules act on; a text with none of it comes back unchanged without being parsed.
_SAFE_TRIGGERS = ("  ", "\n\n\n", " \n", "\t\n", "\r\n", "{", "[", "---")


def _clean(raw: str, odd: bool) -> bool:
    """Whether no safe rule can change ``raw`` (plain substring searches, no regex); ``odd``: whether
    it holds odd characters (``has_odd_chars``)."""
    if raw[:1] == "\n" or raw[-1:] in (" ", "\t", "\n"):
        return False
    if odd:
        return False
    return not any(trigger in raw for trigger in _SAFE_TRIGGERS)


def _protect_segment(
    segment: str,
    regions: Regions,
    out: list[str],
    json_values: list[tuple[Any, str]],
    strict: bool,
    as_tables: bool = False,
) -> bool:
    """Mask one stretch of text between code fences: indented code blocks, JSON, then inline code,
    quoted strings and URLs; or all of it when it looks like unfenced source code. Not ``strict``:
    only what the rules could change. ``as_tables``: JSON arrays of uniform objects become tables
    (aggressive). Returns whether the stretch looked like source code."""
    blocks = _json_blocks(segment)
    lexed = embedded_blocks(segment, blocks)
    if lexed:
        blocks = sorted([*blocks, *lexed], key=lambda block: block[0])
    bare = segment
    if blocks:
        rest = []
        pos = 0
        for start, end, _ in blocks:
            rest.append(segment[pos:start])
            pos = end
        rest.append(segment[pos:])
        bare = "".join(rest)
    if looks_like_code(bare):
        out.append(regions.add(segment))
        return True
    spans = blocks
    indented = indented_code_spans(segment)
    if indented:
        # Kept as written (a ``None`` result), JSON inside them included.
        spans = [(s, e, None) for s, e in indented]
        spans += [b for b in blocks if not any(s < b[1] and b[0] < e for s, e in indented)]
        spans.sort(key=lambda span: span[0])
    text = segment
    if spans:
        masked: list[str] = []
        pos = 0
        for start, end, result in spans:
            masked.append(segment[pos:start])
            if result is None:
                masked.append(regions.add(segment[start:end]))
            else:
                compact = result[1]
                table = tables.to_table(segment[start:end], result[0]) if as_tables else None
                if table is not None:
                    result = (tables.Table(result[0]), table)
                    compact = table
                if compact != segment[start:end]:
                    json_values.append(result)
                protect = strict or "  " in compact or isinstance(result[0], Lexed)
                masked.append(regions.add(compact) if protect else compact)
            pos = end
        masked.append(segment[pos:])
        text = "".join(masked)
    if strict:
        text = regions.protect(text, inline_code_spans)
        text = regions.protect(text, _quoted_spans)
        text = regions.protect(text, url_spans)
    elif "  " in text:
        text = regions.replace_spans(text, [(s, e) for s, e in inline_code_spans(text) if "  " in text[s:e]])
        text = regions.protect(text, _quoted_spans)
    out.append(text)
    return False


def _quoted_spans(text: str) -> list[tuple[int, int]]:
    return quoted_spans(text, is_code_line)


def _json_blocks(segment: str) -> list[tuple[int, int, Any]]:
    """``(start, end, (value, compact) or None)`` of each JSON object/array filling its lines."""
    if "{" not in segment and "[" not in segment:
        return []
    blocks: list[tuple[int, int, tuple[Any, str] | None]] = []
    pos = 0
    m = JSON_AT_START.match(segment)
    # Brackets still to come: more openings than closings means no document from here can close
    # (an output cut mid-document), so the strict parse, slow to fail at the end, is skipped.
    counted = 0
    balance = _balance(segment)
    while True:
        if m is None:
            m = JSON_START.search(segment, pos)
            if m is None:
                return blocks
        start = m.end() - 1
        if segment.startswith("[table: ", start):  # made by the aggressive level: kept as is
            end = tables.table_end(segment, start)
            if end is not None:
                blocks.append((start, end, None))
                pos, m = end, None
                continue
        balance -= _balance(segment, counted, start)
        counted = start
        found: tuple[int, Any] | None
        skip = start + 1
        if balance > 0:  # JSON tokens; a whole document among them is parsed after all
            stretch_end, lexed = lex_stretch(segment, start)
            found = None if lexed is None else (stretch_end, lexed)
            if found is None:
                skip = max(skip, stretch_end)  # no line start inside it has anything to compact
            elif found[1][0].closed:
                found = find_json(segment, start) or found
        else:  # JSON, else JSON tokens
            found = find_json(segment, start)
            if found is None:
                stretch_end, lexed = lex_stretch(segment, start)
                found = None if lexed is None else (stretch_end, lexed)
                if found is None:
                    # Line starts inside it hold at most whitespace-only savings in documents
                    # that have no ``:`` or ``,``: skipped, so a failing parse is not retried at
                    # each of them (``[`` lines deeper than the parser's limit took minutes).
                    skip = max(skip, stretch_end)
        m = None
        if found is None:
            pos = skip
            continue
        end, result = found
        blocks.append((start, end, result))
        pos = end


def _balance(text: str, start: int = 0, end: int | None = None) -> int:
    """Opening brackets minus closing ones in ``text[start:end]`` (strings included: a guess)."""
    return (
        text.count("{", start, end) + text.count("[", start, end)
        - text.count("}", start, end) - text.count("]", start, end)
    )  # fmt: skip


# Content-keyed, bounded: entries and characters held (keys and results) are both capped.
MAX_ENTRIES = 8192
MAX_CHARS = 32_000_000

_caches: dict[tuple[Level, bool], dict[str, Compressed]] = {
    (level, tool): {} for level in LEVELS for tool in (False, True)
}
_reversible_caches: dict[tuple[Level, bool], dict[str, Compressed]] = {
    (level, tool): {} for level in LEVELS for tool in (False, True)
}
"""Reversible results (markers with refs) kept apart from the plain ones."""
_held_chars = 0
_lock = threading.Lock()


def compress_text(text: str, level: Level = "safe", *, tool: bool = False) -> Compressed:
    """``text`` compressed at ``level``; ``tool`` marks a tool output (aggressive may cut its middle)."""
    tool = tool and level == "aggressive"  # safe treats tool outputs like any text
    reversible = originals.active()
    cache = (_reversible_caches if reversible else _caches)[(level, tool)]
    hit = cache.get(text)
    if hit is not None:
        originals.seen(hit.refs)
        return hit
    if reversible:
        result = _reversible_rewrite(text, level, tool)
        _remember(cache, text, result)
        return result
    try:
        result = _compress(text, level, tool)
    except (OverflowError, RecursionError):
        result = _unchanged(text)
    _remember(cache, text, result)
    return result


def is_cached(text: str, level: Level) -> bool:
    """Whether ``compress_text(text, level)`` would be a cache hit (as a tool output or not)."""
    for caches in (_caches, _reversible_caches):
        if text in caches[(level, False)] or text in caches[(level, True)]:
            return True
    return False


def _reversible_rewrite(text: str, level: Level, tool: bool) -> Compressed:
    """``_compress`` in a pass of its own, so the result records its markers' refs (``refs``)
    and a cache hit can note them again."""
    with originals.collecting() as found:
        try:
            result = _compress(text, level, tool)
        except (OverflowError, RecursionError):
            result = _unchanged(text)
    # Only markers that made it into the text count (a failed check sends the original).
    refs = tuple(pair for pair in dict.fromkeys(found) if f"ref={pair[0]}]" in result.text)
    if refs:
        result = replace(result, refs=refs)
    originals.seen(refs)
    return result


def _remember(cache: dict[str, Compressed], text: str, result: Compressed) -> None:
    global _held_chars
    size = len(text) + (len(result.text) if result.text is not text else 0)
    if size > MAX_CHARS // 8:
        return
    with _lock:
        if len(cache) >= MAX_ENTRIES or _held_chars + size > MAX_CHARS:
            _evict()
        cache[text] = result
        _held_chars += size


def _evict() -> None:
    # Drop the oldest half of every level's entries (dicts keep insertion order).
    global _held_chars
    for cache in (*_caches.values(), *_reversible_caches.values()):
        for key in list(cache)[: (len(cache) + 1) // 2]:
            dropped = cache.pop(key, None)
            if dropped is not None:
                _held_chars -= len(key) + (len(dropped.text) if dropped.text is not key else 0)


def clear_cache() -> None:
    """Forget every cached result (tests, benchmarks)."""
    global _held_chars
    with _lock:
        for cache in (*_caches.values(), *_reversible_caches.values()):
            cache.clear()
        _held_chars = 0


# A forked child has none of the parent's threads: a pool without its workers, or a lock one of
# them held, would hang the child's first call (gunicorn --preload, multiprocessing, celery).
def _reset_in_child() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
