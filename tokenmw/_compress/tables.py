"""Aggressive: a JSON array of uniform objects becomes a compact keyed table.

API outputs list records (``[{"id": 1, "name": …, "state": …}, …]``) and repeat every key in every
record; written as a header line of keys and one ``|``-separated line per record, the keys are read
once. Every value is kept, as written (numbers keep their literal: ``2.50`` stays ``2.50``), and
``parse`` reads the table back to the same value, which the checks verify on every table. What is
lost: the text is no longer JSON (a reader that wants to parse it must know the format, so the span
says how many tables were made), and the key order of nested objects inside a cell is kept but not
their whitespace.

Format::

    [table: 3 objects]
    id|name|price
    1|Chair, graphite|289.0
    2|"true"|null

A cell is the string itself when that reads back unambiguously, else its JSON form (quoted, for
strings that hold ``|``, look like a number or literal, are empty or have edge spaces); numbers,
``true``/``false``/``null`` and nested arrays/objects are JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MIN_ROWS", "Table", "parse", "table_end", "to_table"]

MIN_ROWS = 3
_HEADER = re.compile(r"\[table: (\d+) objects\]\n")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_LOOKS_TYPED = re.compile(r"-?\d|true$|false$|null$")
_DECODER = json.JSONDecoder()


class Table:
    """Stands for the value of a table in the list the checks go through."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Literal(float):
    """A JSON number that remembers how it was written."""

    literal: str

    def __new__(cls, literal: str) -> _Literal:
        self = super().__new__(cls, float(literal))
        self.literal = literal
        return self


_LITERAL_DECODER = json.JSONDecoder(parse_float=_Literal, parse_int=_Literal)


def to_table(raw: str, value: Any) -> str | None:
    """The table for the JSON text ``raw`` (whose value is ``value``), or ``None`` when it is not
    an array of at least ``MIN_ROWS`` objects with the same keys in the same order."""
    if not isinstance(value, list) or len(value) < MIN_ROWS or not isinstance(value[0], dict):
        return None
    keys = list(value[0])
    if len(keys) < 2 or any(not isinstance(row, dict) or list(row) != keys for row in value):
        return None
    rows = _LITERAL_DECODER.decode(raw)  # the same structure, numbers as written
    lines = [f"[table: {len(rows)} objects]", "|".join(_cell(k) for k in keys)]
    lines += ["|".join(_cell(row[k]) for k in keys) for row in rows]
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if isinstance(v, str):
        if (
            v
            and v == v.strip()
            and not any(c in v for c in '|"\n\r\t\\')
            and v[0] not in "[{"
            and _LOOKS_TYPED.match(v) is None
        ):
            return v
        return json.dumps(v, ensure_ascii=False)
    return _dump(v)


def _dump(v: Any) -> str:
    if isinstance(v, _Literal):
        return v.literal
    if isinstance(v, dict):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_dump(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_dump(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)


def parse(text: str) -> Any:
    """The value a table stands for (the inverse of ``to_table``); raises ``ValueError``."""
    m = _HEADER.match(text)
    if m is None:
        raise ValueError("not a table")
    lines = text[m.end() :].split("\n")
    keys = _cells(lines[0])
    rows = [dict(zip(keys, _cells(line), strict=True)) for line in lines[1:]]
    if len(rows) != int(m.group(1)) or any(not isinstance(k, str) for k in keys):
        raise ValueError("bad table")
    return rows


def _cells(line: str) -> list[Any]:
    out: list[Any] = []
    pos, n = 0, len(line)
    while True:
        if pos < n and line[pos] in '"[{':
            v, pos = _DECODER.raw_decode(line, pos)
        else:
            end = line.find("|", pos)
            end = n if end < 0 else end
            cell = line[pos:end]
            number = _NUMBER.fullmatch(cell)
            v = json.loads(cell) if number or cell in ("true", "false", "null") else cell
            pos = end
        out.append(v)
        if pos == n:
            return out
        if line[pos] != "|":
            raise ValueError("bad cell")
        pos += 1


def table_end(text: str, start: int) -> int | None:
    """Where the table starting at ``text[start]`` ends, if one does (a compressed text read
    again: the table is kept as written, never taken for prose)."""
    m = _HEADER.match(text, start)
    if m is None:
        return None
    end = m.end() - 1
    for _ in range(int(m.group(1)) + 1):
        end = text.find("\n", end + 1)
        if end < 0:
            end = len(text)
            break
    try:
        parse(text[start:end])
    except (ValueError, TypeError):
        return None
    return end
