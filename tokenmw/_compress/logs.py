"""Aggressive: collapse what logs repeat, in prose lines and in untyped or log-like fences.

Logs are pasted in fences (often without a language) or returned by tools as plain text, and they
repeat: a heartbeat every second, a retry loop, a progress line whose counter moves. Two rules:

- a run of ``MIN_IDENTICAL`` or more identical lines becomes the line once and ``[×N]``;
- a run of ``MIN_SIMILAR`` or more lines that are equal once their digits are ignored (timestamps,
  counters, durations) keeps its first and last line, with ``[… N similar lines …]`` between them.

What is lost: how many times a line repeated is kept, but not the values (timestamps, counters) of
the lines between the first and the last of a similar run. Every dropped line goes through
``elide``. Fences with a programming language (```python, ```json, ```diff) are never touched.
"""

from __future__ import annotations

import re

from .elide import elide

__all__ = ["LOG_FENCE_INFO", "collapse_fence", "collapse_lines"]

MIN_IDENTICAL = 3
MIN_SIMILAR = 4

LOG_FENCE_INFO = frozenset(
    {"", "log", "logs", "text", "txt", "plain", "plaintext", "console", "output", "stdout", "stderr",
     "shell-session", "terminal"}
)  # fmt: skip
"""Fence info strings (lowercase, first word) whose content is treated as a log."""

_DIGITS = re.compile(r"\d+")
_FENCE_INFO = re.compile(r"[ \t]*(?:`{3,}|~{3,})[ \t]*(\S*)")


def collapse_lines(text: str, sink: list[str], similar: bool = True) -> str:
    """``text`` with runs of identical (and, if ``similar``, digit-only-different) lines collapsed;
    repeated until nothing changes, so the result is a fixed point."""
    for _ in range(4):
        new = _collapse_once(text, sink, similar)
        if new == text:
            break
        text = new
    return text


def _collapse_once(text: str, sink: list[str], similar: bool) -> str:
    lines = text.split("\n")
    n = len(lines)
    if n < MIN_IDENTICAL:
        return text
    keys = [_DIGITS.sub("0", line) for line in lines] if similar else lines
    out: list[str] = []
    i = 0
    changed = False
    while i < n:
        line, key = lines[i], keys[i]
        j = i + 1
        while j < n and keys[j] == key:
            j += 1
        run = j - i
        if not line.strip() or run < MIN_IDENTICAL:
            out.extend(lines[i:j])
        elif all(lines[k] == line for k in range(i + 1, j)):
            out.append(f"{line} {elide(chr(10).join(lines[i + 1 : j]), f'×{run}', sink)}")
            changed = True
        elif run >= MIN_SIMILAR:
            middle = "\n".join(lines[i + 1 : j - 1])
            out += [line, elide(middle, f"… {run - 2} similar lines …", sink), lines[j - 1]]
            changed = True
        else:
            out.extend(lines[i:j])
        i = j
    return "\n".join(out) if changed else text


def collapse_fence(block: str, sink: list[str]) -> str:
    """A fenced block (fence lines included) with its log lines collapsed, if it is untyped or
    log-like (``LOG_FENCE_INFO``); any other block as it is."""
    first_end = block.find("\n")
    if first_end < 0:
        return block
    m = _FENCE_INFO.match(block, 0, first_end)
    if m is None or m.group(1).lower() not in LOG_FENCE_INFO:
        return block
    last_start = block.rfind("\n")
    closing = block[last_start + 1 :].strip()
    closed = last_start > first_end and closing[:3] in ("```", "~~~")
    body_end = last_start if closed else len(block)  # unclosed: runs to the end
    body = block[first_end + 1 : body_end]
    new = collapse_lines(body, sink)
    return block if new == body else f"{block[: first_end + 1]}{new}{block[body_end:]}"
