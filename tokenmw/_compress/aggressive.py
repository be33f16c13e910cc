"""Opt-in rules that drop words or lines, not just whitespace: fillers, markdown emphasis, repeated
lines, separators, the middle of huge tool outputs. Each keeps every number and URL of what it keeps
and is idempotent; every line or span dropped goes through ``elide.elide``.
"""

from __future__ import annotations

import re

from .elide import elide
from .logs import collapse_lines

__all__ = ["collapse_repeats", "remove_fillers", "shorten_separators", "strip_emphasis", "truncate_middle"]

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
    return _SEPARATOR.sub(_short_separator, text)


def _short_separator(m: re.Match[str]) -> str:
    # ``r"\1\2\2\2"`` as a function: a template is expanded in Python for every match (slower).
    return m.group(1) + m.group(2) * 3


def collapse_repeats(text: str, sink: list[str] | None = None) -> str:
    """Three or more identical consecutive lines become one line followed by ``[×N]``; repeated
    until nothing changes (a collapsed line may equal its neighbours). ``sink`` collects what
    went (``elide``)."""
    return collapse_lines(text, [] if sink is None else sink, similar=False)


# **bold** and __bold__ around a word or phrase on one line; not inside words (snake__case), not
# list bullets or rules (`* item`, `***`).
# The delimiter first, the character before it looked at after (``..`` steps back over it): a
# pattern opening with a lookbehind is tried at every character, one opening with ``**|__`` only
# where one of them is (~3x faster).
_EMPHASIS = re.compile(r"(\*\*|__)(?<![\w*_\\]..)(?=[^\s*_])([^\n]*?[^\s*_\\])\1(?![\w*_])")


def _emphasised(m: re.Match[str]) -> str:
    # ``r"\2"`` as a function: a template is expanded in Python for every match (slower).
    return m.group(2)


def strip_emphasis(text: str) -> str:
    """Markdown bold (``**x**``, ``__x__``) becomes plain ``x``: the model does not need the stress
    to follow an instruction. Lost: the emphasis itself. Italics (single ``*``/``_``) stay: too
    easily confused with globs, math and identifiers."""
    if "**" not in text and "__" not in text:
        return text
    for _ in range(3):  # **a __b__** nests
        new = _EMPHASIS.sub(_emphasised, text)
        if new == text:
            break
        text = new
    return text


TRUNCATE_ABOVE = 16_000
"""Characters (~4k tokens) above which a tool output loses its middle."""
KEEP_HEAD = 6_000
KEEP_TAIL = 4_000
_SLACK = 2_000


def truncate_middle(text: str, sink: list[str] | None = None) -> str | None:
    """Keep the head and tail of a huge text, cut at line ends, or where there are none near the
    cut points (one long line of compact JSON) after a comma or a space; ``None`` for a short text.
    The marker says how many lines and characters went; ``sink`` collects them (``elide``)."""
    n = len(text)
    if n <= TRUNCATE_ABOVE:
        return None
    sink = [] if sink is None else sink
    head_end = text.find("\n", KEEP_HEAD, KEEP_HEAD + _SLACK)
    tail_start = text.rfind("\n", n - KEEP_TAIL - _SLACK, n - KEEP_TAIL)
    if head_end >= 0 and tail_start > head_end:
        lines = text.count("\n", head_end, tail_start)
        marker = elide(
            text[head_end + 1 : tail_start],
            f"… {lines} lines ({tail_start - head_end} characters) omitted …",
            sink,
        )
        return f"{text[:head_end]}\n{marker}{text[tail_start:]}"
    head_end = max(
        text.rfind(",", KEEP_HEAD - _SLACK, KEEP_HEAD), text.rfind(" ", KEEP_HEAD - _SLACK, KEEP_HEAD)
    )
    tail_start = max(
        text.rfind(",", n - KEEP_TAIL - _SLACK, n - KEEP_TAIL),
        text.rfind(" ", n - KEEP_TAIL - _SLACK, n - KEEP_TAIL),
    )
    if head_end < 0 or tail_start <= head_end:
        head_end, tail_start = KEEP_HEAD, n - KEEP_TAIL  # no separator at all: cut anywhere
    head_end += 1
    marker = elide(text[head_end:tail_start], f"… {tail_start - head_end} characters omitted …", sink)
    return f"{text[:head_end]}{marker}{text[tail_start:]}"
