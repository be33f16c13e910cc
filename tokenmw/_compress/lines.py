"""Replace runs of whole lines that appeared earlier in the request with a marker pointing back.

Real agent traffic repeats text in pieces, not only in whole messages: a transcript in which every
agent re-quotes the task, the same instruction line in each few-shot example, a retrieved chunk
returned twice under its own header, a disclaimer quoted in every e-mail of a thread, a tool output
re-sent under a new ``Tool result (step N):`` line. Whole-text and whole-block dedup (``dedup``)
cannot see those; this works line by line across every text of the request:

- a run of consecutive lines equal to a run seen earlier (in this text or an earlier one), with at
  least ``MIN_RUN_CHARS`` characters, becomes one marker line naming where the first copy is;
- a label in front of the first line stays (``Instruction: [same as in message 2 above]``), and a
  line is also matched by what follows its label, so ``Task: <text>`` matches an earlier ``<text>``;
- quote prefixes (``> ``, ``>> ``) are ignored when matching and kept in front of the marker, so a
  quoted e-mail keeps its shape (indentation is matched: in YAML or an outline it carries meaning);
- marker lines never match and are never pointed to, and a marker only points to lines that are
  still there as written, earlier in the request: appending turns never changes an earlier turn;
- fenced code blocks and texts that look like source code are left alone (agents quote code to
  edit it).

The index of lines seen so far is append-only, so the state after one message can be extended by the
next message of a later request without being rebuilt (``history``).
"""

from __future__ import annotations

import re
from itertools import islice
from typing import cast

from .codelike import looks_like_code
from .protect import fence_spans

__all__ = ["MIN_RUN_CHARS", "LineIndex", "is_marker_line"]

MIN_RUN_CHARS = 96
"""Characters (of the lines as matched) a run needs to be worth a marker (~8 tokens)."""
MIN_INDEXED_CHARS = 40
"""Shorter lines are never where a run starts (they can still be inside one)."""

_QUOTE = re.compile(r"[ \t]*(?:>[ \t]?)+")
_QUOTE_CHARS = 24  # a quote prefix starts within this many characters
# "Label: rest" with a short label starting with a letter; "http://x" and "12:30" are not labels.
_LABEL = re.compile(r"([A-Za-z][\w ()/#.-]{0,39}?:[ \t]+)(?=\S)")
_LABEL_CHARS = 42  # a label's colon and space are within this many characters
_MARKER = re.compile(
    r"(?:[A-Za-z][\w ()/#.-]{0,39}?:[ \t]+)?\[(?:\d+ lines: )?same as (?:in [^\]\n]+ )?above\]"
    r"|\[(?:block )?identical to [^\]\n]*; omitted\]"
)


def is_marker_line(key: str) -> bool:
    """Whether a line (quote prefix removed) is a repeat marker."""
    return (
        key[-1:] == "]"
        and ("same as" in key or "identical to" in key)
        and _MARKER.fullmatch(key.lstrip(" \t")) is not None
    )


class LineIndex:
    """The lines of one request seen so far, where each first appeared, and the texts they are in."""

    __slots__ = ("first", "texts")

    def __init__(self) -> None:
        self.first: dict[str, tuple[int, int]] = {}
        """A line as matched -> (text number, line number) of its first copy as sent."""
        self.texts: list[tuple[str | int, list[str | None]]] = []
        """Per text: its place, and each of its lines as sent (``None``: never matched)."""

    def copy(self, firsts: int, texts: int) -> LineIndex:
        """The index as it was when it held ``firsts`` lines and ``texts`` texts."""
        new = LineIndex()
        if firsts == len(self.first):
            new.first = dict(self.first)
        else:
            new.first = dict(islice(self.first.items(), firsts))  # a generator costs ~2x
        new.texts = self.texts[:texts]
        return new

    def apply(self, text: str, where: str | int, kind: str, code: bool | None = None) -> tuple[str, int]:
        """``text`` (the text at place ``where``) with repeated runs replaced, and how many; a
        numbered place is called ``kind`` in markers ("message 3"). ``code``: whether the text
        compressor found source code in it (``None``: not known, looked at here)."""
        if len(text) < MIN_RUN_CHARS:
            return text, 0  # too short to hold a run, or to be the copy a later run points to
        lines = text.split("\n")
        keys = _keys(text, lines, code)
        number = len(self.texts)
        sent: list[str | None] = []
        self.texts.append((where, sent))
        if keys is None:  # source code: never matched, never pointed to
            sent.extend([None] * len(lines))
            return text, 0
        first = self.first
        if self._nothing_to_replace(keys):
            # The usual case for a new message: nothing seen before, no label, no line twice.
            sent.extend(keys)
            setdefault = first.setdefault
            for j, key in enumerate(keys):
                if key is not None and len(key) >= MIN_INDEXED_CHARS:
                    setdefault(key, (number, j))
            return text, 0
        out: list[str] | None = None
        replaced = 0
        i, n = 0, len(lines)
        while i < n:
            key = keys[i]
            run = None
            indexed = key is not None and len(key) >= MIN_INDEXED_CHARS
            labelled = indexed and ": " in key[:_LABEL_CHARS]  # type: ignore[index]
            # The label at the start, looked for once (``_run`` and the index both want it).
            label_match = _LABEL.match(key) if labelled else None  # type: ignore[arg-type]
            # A line right after an equal one as sent is a log's business (aggressive counts
            # those); "as sent" keeps the decision the same when the output is read again.
            # Most lines are new and hold no label: one dictionary miss and out.
            if indexed and (labelled or key in first) and (not sent or sent[-1] != key):
                run = self._run(keys, i, key, label_match)  # type: ignore[arg-type]
            if run is None:
                if out is not None:
                    out.append(lines[i])
                sent.append(key)
                if indexed:
                    position = (number, len(sent) - 1)
                    first.setdefault(key, position)  # type: ignore[arg-type]
                    if label_match is not None:
                        first.setdefault(key[label_match.end() :], position)  # type: ignore[index]
                i += 1
                continue
            length, source, label = run
            if out is None:
                out = lines[:i]
            place = self.texts[source][0]
            if place == where:
                where_text = "above"
            else:
                where_text = f"in {kind} {place} above" if isinstance(place, int) else f"in {place} above"
            count = f"{length} lines: " if length > 1 else ""
            line = lines[i]
            prefix = line[: len(line) - len(line.lstrip(" \t>"))] if line[:1] in " \t>" else ""
            out.append(f"{prefix}{label}[{count}same as {where_text}]")
            sent.append(None)
            replaced += 1
            i += length
        if out is None:
            return text, 0
        return "\n".join(out), replaced

    def _nothing_to_replace(self, keys: list[str | None]) -> bool:
        """Whether no line of a text can start a run: none seen before, none labelled, none
        twice within the text (a cheap pass that lets most new messages skip the full loop)."""
        indexed = [k for k in keys if k is not None and len(k) >= MIN_INDEXED_CHARS]
        if len(set(indexed)) < len(indexed):
            return False
        first = self.first
        return not any(k in first or ": " in k[:_LABEL_CHARS] for k in indexed)

    def _run(
        self, keys: list[str | None], i: int, key: str, label_match: re.Match[str] | None
    ) -> tuple[int, int, str] | None:
        """``(lines, source text, label kept)`` of the repeated run starting at line ``i``, if long
        enough; ``label_match``: ``_LABEL.match(key)`` if the caller found one (``None``: look)."""
        label = ""
        hit = self.first.get(key)
        end = 0
        while hit is None:  # "planner: Task: <text>" matches "<text>" and "Task: <text>"
            m = label_match if end == 0 and label_match is not None else _LABEL.match(key, end)
            if m is None:
                return None
            end = m.end()
            hit = self.first.get(key[end:])
            label = key[:end]
        source, line = hit
        src = self.texts[source][1]
        chars = len(key) - len(label)
        k = 1
        n = len(keys)
        while i + k < n and line + k < len(src):
            nxt = keys[i + k]
            if nxt is None or src[line + k] != nxt:
                break
            chars += len(nxt)
            k += 1
        while k > 1 and not keys[i + k - 1]:
            k -= 1  # a blank line at the end of a run stays
        if chars < MIN_RUN_CHARS:
            return None
        if not label:
            m = label_match if label_match is not None else _LABEL.match(key)
            if m is not None and len(key) - m.end() >= MIN_RUN_CHARS // 2:
                label = m.group(1)  # keep "Instruction: " in front when it is followed by enough
        return k, source, label


def _keys(text: str, lines: list[str], code: bool | None) -> list[str | None] | None:
    """Each line as matched (quote prefix off), ``None`` for lines never matched
    (inside fences, markers); ``None`` for the whole text when it looks like source code."""
    fences = fence_spans(text)
    if code:
        return None
    if code is None:
        outside = text
        if fences:
            ends = [0, *(p for span in fences for p in span), len(text)]
            outside = "\n".join(text[ends[i] : ends[i + 1]] for i in range(0, len(ends), 2))
        if looks_like_code(outside):
            return None
    stripped: list[str]
    if ">" in text:
        stripped = []
        for line in lines:
            if line[:1] in " \t>" and ">" in line[:_QUOTE_CHARS]:  # indentation alone is kept
                m = _QUOTE.match(line)
                if m is not None:
                    line = line[m.end() :]
            stripped.append(line.rstrip(" \t"))
    else:  # no quote prefix anywhere (most texts): one comprehension
        stripped = [line.rstrip(" \t") for line in lines]
    keys: list[str | None]
    if "same as" in text or "identical to" in text:  # what every marker holds
        keys = [None if key[-1:] == "]" and is_marker_line(key) else key for key in stripped]
    else:
        keys = cast("list[str | None]", stripped)
    if fences:
        for start, end in fences:
            first = text.count("\n", 0, start)
            last = text.count("\n", 0, end)
            for j in range(first, min(last + 1, len(keys))):
                keys[j] = None
    return keys
