"""Tell source code that is not fenced (a file a tool read, a diff) from prose.

Agents read files through tools and then edit them by quoting exact lines; a space removed inside a
string literal or a blank line dropped between functions makes that quote fail to match. So text that
looks like code is kept byte for byte, like a fenced block. Erring towards "code" only costs savings.
"""

from __future__ import annotations

import re

__all__ = ["is_code_line", "looks_like_code"]

# One alternative per family of tell-tale line; keywords are lowercase so prose sentences
# ("If you...", "For example") do not match. An optional "12\t" / "12→" prefix covers `cat -n` views.
# A line ending with ``;``, a brace or ``(`` is one alternative per character: backing off a ``.*``
# to a literal is a tight loop in the regex engine, to a character class a step per character
# (the one alternative took most of the time on prose).
_CODE_LINE_BODY = r"""[ \t]*(?:\d+(?:\t|→|\ \|)[ \t]*)?(?:
        (?:async\ )?def\ \w+\s*\(.*
      | class\ \w+.*:[ \t]*$
      | (?:import\ [\w.]+|from\ [\w.]+\ import\ ).*
      | (?:if|elif|while|for|with|try|except|else|finally)\b.*:[ \t]*$
      | (?:return|raise|yield|const|let|var|function|fn|pub|func|package|\#include|\#define|using)\b.*
      | (?:@@\ |diff\ --git\ |\+\+\+\ [ab/]|---\ [ab/]|index\ [0-9a-f]{7,}\.\.)
      | (?://|/\*|\*/|\#!)
      | @[A-Za-z_][\w.]*(?:\(.*)?[ \t]*$
      | [A-Za-z_][\w.]*(?:\[[^\]\n]*\])?\s*(?:[-+*/%|&^]|//|\*\*|<<|>>)?=(?!=)\s*\S.*
      | [)\]}].*
      | .*;[ \t]*$ | .*\{[ \t]*$ | .*\}[ \t]*$ | .*\([ \t]*$
    )"""
_CODE_LINE = re.compile(f"^{_CODE_LINE_BODY}", re.M | re.X)
# The same from the line break before a line: a pattern opening with a literal lets the regex
# engine jump from line to line, where ``^`` is tried (and fails) at every character (~4x slower).
# No match ends with a line break, so counting these after a match at the start counts the same.
_CODE_LINE_AFTER_BREAK = re.compile(rf"\n{_CODE_LINE_BODY}", re.M | re.X)
# A config or data line: ``key: value``, ``key = value``, ``- key: value``.
_KEY_LINE = re.compile(r"[ \t]*(?:-[ \t]+)?[\w.\-]+[ \t]*[:=][ \t]")
# Code almost always shows one of these; a text with none of them is not looked at line by line.
# " = " and a colon opening an indented block catch scripts with no keyword hint (``x = 1``,
# ``if x:`` then an indented body).
_HINTS = (
    "def ", "import ", "return ", "{\n", ";\n", "\n}", "):\n", "=>", "@@ ", "function", "#include",
    "1\t", "1→", " = ", ":\n    ", ":\n\t",
)  # fmt: skip
# Each hint with the rarest character it holds (if any): a one-character search (memchr, ~0.1 µs on
# 3 KB) rules most hints out for prose, where a search for the hint itself takes ~3 µs.
_GATED_HINTS = tuple((next((c for c in "\t→#@;{}()=:" if c in hint), ""), hint) for hint in _HINTS)
SAMPLE_CHARS = 3_000
"""Only the start of a long text is classified: the kind of a file shows in its first lines."""


def looks_like_code(text: str) -> bool:
    """Whether at least a third of the non-blank lines (and two or more) look like code."""
    if len(text) > SAMPLE_CHARS:
        text = text[: text.rfind("\n", 0, SAMPLE_CHARS) + 1 or SAMPLE_CHARS]
    if not any(gate in text and hint in text for gate, hint in _GATED_HINTS):
        return False
    first = _CODE_LINE.match(text)
    if first is None:
        code = len(_CODE_LINE_AFTER_BREAK.findall(text))
    else:
        code = 1 + len(_CODE_LINE_AFTER_BREAK.findall(text, first.end()))
    if code < 2:
        return False
    nonblank = text.count("\n") + 1 - text.count("\n\n")  # close enough: a ratio is wanted
    return code * 3 >= nonblank


def is_code_line(text: str, start: int) -> bool:
    """Whether the line starting at ``text[start]`` looks like code or a ``key: value`` line."""
    return _CODE_LINE.match(text, start) is not None or _KEY_LINE.match(text, start) is not None
