"""Each fast path of the engine against the plain formulation it replaced, on the corpus and on
generated strings: the faster regexes and string searches must find exactly what the plain ones
found (the engine's output must not change by a byte)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from tokenmw._compress import codelike, jsonlex, lines, protect, whitespace
from tokenmw._compress.aggressive import _EMPHASIS

DATA = Path(__file__).parents[1] / "data"


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    return []


CORPUS = sorted({t for p in DATA.glob("*.json") for t in _texts(json.loads(p.read_text(encoding="utf-8")))})


def generated(pieces: list[str], count: int, seed: int, size: int = 40) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, size))) for _ in range(count)]


JSONISH = generated(
    [*'{}[],:"\\ \t\n\rab1-e.', "true", "null", '"x  y"', '\\"', "  ", "\n  ", '{"a": ', "[1, 2", "\u00a0"],
    4000,
    1,
)
CODEISH = generated(
    ["def f(", "class A:", "import os", "if x:", "return 1", "x = 1", "\n", "\n\n", " ", "\t", "@@ ", "// c",
     "}", ";", "{", "(", "foo", "1\t", "12→", "a[1] += 2", "==", "prose words ", "@dec", "  "],
    4000,
    2,
)  # fmt: skip
PROSE = generated(
    [*" \t\n\r\"'ab.*_\\", "  ", "   ", "\n  ", "'x  y'", '"a  b"', "**x**", "__y__", "x: ",
     *"\u00a0\u200b\ufeff\u00ad\u202f"],  # odd characters: has_odd_chars' lead-byte gate
    4000,
    3,
)
FENCED = generated(
    ["```", "~~~", "````", "```py", "\n", "\n", "  ", "x", "`", "```x```", " ```\n", "\n~~~ \n"], 4000, 4
)


# The plain formulations, as they were before the fast paths.


def plain_compact(raw: str) -> str:
    """``jsonlex._compact`` as written before: whitespace deleted outside strings."""
    parts = raw.split('"')
    if '\\"' in raw:
        parts = jsonlex._rejoin_escaped(parts)
    parts[::2] = "\0".join(parts[::2]).translate(jsonlex._DELETE_WHITESPACE).split("\0")
    return '"'.join(parts)


_TOKEN = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"?|[{}\[\],:]|[^\s"{}\[\],:]+')
_STRETCH = re.compile(rf'(?:[ \t\r\n]*(?:"{jsonlex._STRING_BODY}"|[{{}}\[\],:]|{jsonlex._LITERAL}))+')
_CODE_LINE = re.compile(
    "^"
    + codelike._CODE_LINE_BODY.replace(
        r".*;[ \t]*$ | .*\{[ \t]*$ | .*\}[ \t]*$ | .*\([ \t]*$", r".*[;{}(][ \t]*$"
    ),
    re.M | re.X,
)
_PLAIN_EMPHASIS = re.compile(r"(?<![\w*_\\])(\*\*|__)(?=[^\s*_])([^\n]*?[^\s*_\\])\1(?![\w*_])")


def plain_same_tokens(raw: str, compact: str) -> bool:
    tokens = _TOKEN.findall(raw)
    if "".join(tokens) != compact:
        return False
    bare = False
    for token in tokens:
        if token[0] in '"{}[],:':
            bare = False
        elif bare:
            return False
        else:
            bare = True
    return True


def plain_inner_spaces(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        return m.group() if m.start() == 0 or text[m.start() - 1] in "\n\t" else " "

    return re.sub("  +", one, text)


def plain_keys(text: str, lines_: list[str]) -> list[str | None]:
    keys: list[str | None] = []
    for line in lines_:
        if line[:1] in " \t>" and ">" in line[:24]:
            m = lines._QUOTE.match(line)
            if m is not None:
                line = line[m.end() :]
        line = line.rstrip(" \t")
        keys.append(None if line[-1:] == "]" and lines.is_marker_line(line) else line)
    return keys


def test_code_line_pattern_is_the_plain_one_rewritten() -> None:
    assert _CODE_LINE.pattern != codelike._CODE_LINE.pattern  # the replace above found its target


@pytest.mark.parametrize("texts", [CORPUS, JSONISH], ids=["corpus", "generated"])
def test_same_tokens(texts: list[str]) -> None:
    for text in texts:
        for compact in (jsonlex._compact(text), text, text.replace(" ", "")):
            assert jsonlex.same_tokens(text, compact) == plain_same_tokens(text, compact), text


@pytest.mark.parametrize("texts", [CORPUS, JSONISH], ids=["corpus", "generated"])
def test_stretch_ends_and_compacts_as_before(texts: list[str]) -> None:
    for text in texts:
        for start in [i for i, c in enumerate(text) if c in "[{"][:20]:
            m = _STRETCH.match(text, start)
            new = jsonlex._STRETCH.match(text, start)
            assert (start if new is None else new.end()) == (start if m is None else m.end()), text
            end, found = jsonlex.lex_stretch(text, start)
            if found is not None:
                assert found[1] == plain_compact(text[start:end])


@pytest.mark.parametrize("texts", [CORPUS, CODEISH], ids=["corpus", "generated"])
def test_code_lines_counted_as_before(texts: list[str]) -> None:
    for text in texts:
        first = codelike._CODE_LINE.match(text)
        rest = codelike._CODE_LINE_AFTER_BREAK.findall(text, 0 if first is None else first.end())
        assert len(rest) + (first is not None) == len(_CODE_LINE.findall(text)), text


@pytest.mark.parametrize("texts", [CORPUS, PROSE, JSONISH], ids=["corpus", "prose", "json"])
def test_prose_rules_as_before(texts: list[str]) -> None:
    for text in texts:
        assert whitespace._INNER_SPACES.sub(" ", text) == plain_inner_spaces(text), text
        assert _EMPHASIS.sub(r"\2", text) == _PLAIN_EMPHASIS.sub(r"\2", text), text
        if not whitespace.has_odd_chars(text.encode("utf-8", "surrogatepass")):
            found = list(protect._lines_with_quote_then_spaces(text))
            assert found == list(protect._lines_with_quote_then_run(text)), text
        assert whitespace.has_odd_chars(text.encode("utf-8", "surrogatepass")) == (
            whitespace._ODD_UTF8.search(text.encode("utf-8", "surrogatepass")) is not None
        )


@pytest.mark.parametrize("texts", [CORPUS, FENCED], ids=["corpus", "generated"])
def test_fence_lines_found_as_before(texts: list[str]) -> None:
    for text in texts:
        for pos in range(0, len(text) + 1, max(1, len(text) // 16)):
            for at_line, after_break in (
                (protect._FENCE_OPEN, protect._FENCE_OPEN_AFTER_BREAK),
                (protect._FENCE_CLOSE, protect._FENCE_CLOSE_AFTER_BREAK),
            ):
                new = protect._line_search(at_line, after_break, text, pos)
                old = at_line.search(text, pos)
                assert (new and new.span()) == (old and old.span()), (text, pos)


@pytest.mark.parametrize("texts", [CORPUS, PROSE], ids=["corpus", "generated"])
def test_line_keys_as_before(texts: list[str]) -> None:
    for text in [*texts, *(f"> {t}\n>> [same as above]" for t in texts[:500])]:
        split = text.split("\n")
        fenced = lines._keys(text, split, False)
        fences = protect.fence_spans(text)
        expected = plain_keys(text, split)
        for start, end in fences:
            for j in range(text.count("\n", 0, start), min(text.count("\n", 0, end) + 1, len(expected))):
                expected[j] = None
        assert fenced == expected, text


def test_aggressive_number_check_as_before() -> None:
    from tokenmw._compress.integrity import _NUMBER, check
    from tokenmw._compress.protect import Regions

    rng = random.Random(5)
    pieces = ["12", "3.5", "x", " ", "\n", "\n", "a1b", "\u0663", "4,5:6", "\ue000", "7_8"]
    for _ in range(3000):
        masked = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        kept = masked.split("\n")
        rng.shuffle(kept)
        rewritten = "\n".join(kept[: rng.randint(0, len(kept))])
        elided = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))]
        lost = (
            set(_NUMBER.findall(masked)) - set(_NUMBER.findall(elided[0])) - set(_NUMBER.findall(rewritten))
        )
        found = check("x", "x", masked, rewritten, Regions(), [], drops_lines=True, elided=elided)
        assert found == ("number" if lost else None), (masked, rewritten, elided)


@pytest.mark.parametrize(
    "texts",
    [
        CORPUS,
        generated(
            ["---", "----", "====", "|", ":", " ", "\t", "\n", "x", "**", "*", "~~~~", "| :--- |"], 4000, 6
        ),
    ],
    ids=["corpus", "generated"],
)
def test_replacement_functions_as_templates(texts: list[str]) -> None:
    from tokenmw._compress.aggressive import _SEPARATOR, shorten_separators

    for text in texts:
        assert shorten_separators(text) == (
            _SEPARATOR.sub(r"\1\2\2\2", text)
            if any(r in text for r in ("----", "====", "____", "****", "~~~~"))
            else text
        )
        assert whitespace._RULE_CELL.sub(whitespace._short_cell, text) == whitespace._RULE_CELL.sub(
            r"\1---\2", text
        )
