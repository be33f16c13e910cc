"""Opt-in rules that drop words or lines, not just whitespace: fillers, repeated lines, separators,
the middle of huge tool outputs. Each keeps every number and URL of what it keeps and is idempotent.
"""

from __future__ import annotations

import re

__all__ = ["collapse_repeats", "remove_fillers", "shorten_separators", "truncate_middle"]

# Phrase -> replacement. Only phrases whose removal changes no instruction: "Think step by step",
# "must", "never", "only" and other words that steer the model are never touched.
FILLERS = {
    "please note that": "",
    "it is important to note that": "",
    "it should be noted that": "",
    "it is worth noting that": "",
    "it is worth mentioning that": "",
    "as a matter of fact,": "",
    "for all intents and purposes,": "",
    "needless to say,": "",
    "basically,": "",
    "essentially,": "",
    "actually,": "",
    "as an ai language model,": "",
    "i would like you to": "",
    "i want you to": "",
    "could you please": "",
    "can you please": "",
    "would you please": "",
    "kindly": "",
    "in order to": "to",
    "due to the fact that": "because",
    "in spite of the fact that": "although",
    "despite the fact that": "although",
    "at this point in time": "now",
    "in the event that": "if",
    "a large number of": "many",
    "the majority of": "most",
    "prior to": "before",
    "is able to": "can",
    "are able to": "can",
    "has the ability to": "can",
    "have the ability to": "can",
}
# One regex per phrase, run only when a plain search finds the phrase: a single alternation of
# all of them costs the regex engine ~1 ms per 6 KB of text. Each starts with its first letter in
# either case (lower or sentence case) so the engine can skip ahead; the lookbehind after it keeps
# matches out of words, paths and quotations ("replace 'in order to' with 'to'" keeps its quote).
_FILLER = {
    phrase: re.compile(
        rf"(?P<p>[{phrase[0].upper()}{phrase[0]}](?<![\w\"'“‘`/.\-].){re.escape(phrase[1:])})"
        r"(?!\w)(?P<sp>[ \t]*)(?P<next>[^\W\d_]?)"
    )
    for phrase in FILLERS
}


def _defill(m: re.Match[str]) -> str:
    phrase, nxt = m.group("p"), m.group("next")
    repl = FILLERS[phrase.lower()]
    if repl:
        if phrase[0].isupper():
            repl = repl[0].upper() + repl[1:]
        return repl + m.group("sp") + nxt
    if not nxt:
        return m.group(0)  # "kindly." ends a sentence: removing it would leave a stray space
    return nxt.upper() if phrase[0].isupper() else nxt


def remove_fillers(text: str) -> str:
    """Drop or shorten filler phrases (English); repeated until nothing changes."""
    for _ in range(4):
        lower = text.lower()
        new = text
        for phrase, pattern in _FILLER.items():
            if phrase in lower:
                new = pattern.sub(_defill, new)
        if new == text:
            break
        text = new
    return text


_SEPARATOR = re.compile(r"^([ \t]*)([-=_*~])\2{3,}[ \t]*$", re.M)


def shorten_separators(text: str) -> str:
    """``==========`` and ``----------`` lines become three characters (still a rule in markdown)."""
    if not any(run in text for run in ("----", "====", "____", "****", "~~~~")):
        return text
    return _SEPARATOR.sub(r"\1\2\2\2", text)


MIN_REPEATS = 3


def collapse_repeats(text: str) -> str:
    """Three or more identical consecutive lines become one line followed by ``[×N]``; repeated
    until nothing changes (a collapsed line may equal its neighbours)."""
    for _ in range(4):
        lines = text.split("\n")
        out: list[str] = []
        i, n = 0, len(lines)
        while i < n:
            line = lines[i]
            j = i + 1
            while j < n and lines[j] == line:
                j += 1
            if j - i >= MIN_REPEATS and line:
                out.append(f"{line} [×{j - i}]")
            else:
                out.extend(lines[i:j])
            i = j
        if len(out) == n:
            break
        text = "\n".join(out)
    return text


TRUNCATE_ABOVE = 16_000
"""Characters (~4k tokens) above which a tool output loses its middle."""
KEEP_HEAD = 6_000
KEEP_TAIL = 4_000
_SLACK = 2_000


def truncate_middle(text: str) -> str | None:
    """Keep the first and last lines of a huge text, cut at line ends; ``None`` when not applicable
    (short text, or no line end near the cut points, as in one long line of JSON)."""
    n = len(text)
    if n <= TRUNCATE_ABOVE:
        return None
    head_end = text.find("\n", KEEP_HEAD, KEEP_HEAD + _SLACK)
    tail_start = text.rfind("\n", n - KEEP_TAIL - _SLACK, n - KEEP_TAIL)
    if head_end < 0 or tail_start <= head_end:
        return None
    lines = text.count("\n", head_end, tail_start)
    chars = tail_start - head_end
    return f"{text[:head_end]}\n[… {lines} lines ({chars} characters) omitted …]{text[tail_start:]}"
