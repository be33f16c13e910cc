"""Every guarantee of ``Compress`` on every request of the corpus in ``tests/data``.

The checks here are written independently of the engine (a line-by-line fence parser, the stdlib JSON
decoder, plain regexes for numbers and URLs), so a bug in the engine's own checks shows up here.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tokenmw import Call
from tokenmw._compress import clear_cache, compress_text
from tokenmw._compress.tables import parse as parse_table
from tokenmw._compress.tables import table_end
from tokenmw._tokens.counting import count_request
from tokenmw.hooks.compress import Compress

from .._fences import fenced_blocks

DATA = Path(__file__).parents[1] / "data"
CORPUS = sorted(DATA.glob("*.json"))
AGENT_LOOPS = [p for p in CORPUS if p.name.startswith(("agent_loop_", "responses_agent"))]
REAL = [  # written for issue 12 as agents send them, not for the engine
    DATA / f"{name}.json"
    for name in (
        "agent_loop_seed_like", "code_review_followup", "email_thread_quoted", "few_shot_labels",
        "logs_tracebacks_fenced", "multi_agent_transcript", "one_line_chat", "rag_multi_docs",
        "react_scratchpad", "system_prompt_long", "tool_json_truncated",
    )
]  # fmt: skip

_NUMBER = re.compile(r"\w*\d[\w.]*\w|\d")
_URL = re.compile(r"https?://[^\s\"'<>`)\]]+")
_MARKER = re.compile(
    r"\[(?:block )?identical to (?:one in |a block in )?(message|input item) (\d+) above; omitted\]"
)
_WHOLE_MARKER = re.compile(r"\[identical to (message|input item) (\d+) above; omitted\]")
_ANY_MARKER = re.compile(r"\[(?:block )?identical to [^\]\n]*; omitted\]")
# A run of lines repeating earlier ones: "[same as above]", "[3 lines: same as in message 2 above]".
_LINE_MARKER = re.compile(r"\[(?:\d+ lines: )?same as (?:in (message|input item) (\d+) |in the \w+ )?above\]")


def load(path: Path) -> tuple[dict[str, Any], str]:
    body = json.loads(path.read_text(encoding="utf-8"))
    return body, ("responses" if "input" in body else "chat")


async def compress(body: dict[str, Any], operation: str, level: str, **options: Any) -> dict[str, Any]:
    call = Call(dict(body), operation)  # type: ignore[arg-type]
    await Compress(level=level, min_tokens=0, **options).before(call)  # type: ignore[arg-type]
    return call.request


def items_of(request: dict[str, Any], operation: str) -> list[Any]:
    return list(request["messages"] if operation == "chat" else request["input"])


def text_of(item: Any) -> str | None:
    content = item.get("content", item.get("output")) if isinstance(item, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return None


# -- independent extractors ---------------------------------------------------------------------------


def json_blocks(text: str) -> tuple[list[Any], str]:
    """Values of the JSON objects/arrays that fill their lines (outside fences), and the text
    without them."""
    values, rest, pos = [], [], 0
    in_fence = False
    offset = 0
    decoder = json.JSONDecoder()
    for line in text.split("\n"):
        start = offset
        offset += len(line) + 1
        if line.strip().startswith(("```", "~~~")):
            in_fence = not in_fence
        if in_fence or start < pos or not line.lstrip().startswith(("{", "[")):
            continue
        begin = start + len(line) - len(line.lstrip())
        try:
            value, end = decoder.raw_decode(text, begin)
        except ValueError:
            continue
        if text[end:].split("\n", 1)[0].strip() or not isinstance(value, dict | list):
            continue
        values.append(value)
        rest.append(text[pos:begin])
        pos = end
    rest.append(text[pos:])
    return values, "".join(rest)


def values_anywhere(text: str) -> list[Any]:
    """Values of the JSON objects/arrays starting at any bracket of ``text``."""
    decoder = json.JSONDecoder()
    found = []
    for m in re.finditer(r"[\[{]", text):
        try:
            found.append(decoder.raw_decode(text, m.start())[0])
        except ValueError:
            continue
    return found


def tables_in(text: str) -> list[Any]:
    """Values of the aggressive level's tables (``tables.parse``, tested on its own)."""
    found = []
    for m in re.finditer(r"^\[table: \d+ objects\]$", text, re.M):
        end = table_end(text, m.start())
        assert end is not None, "a table that does not read back"
        found.append(parse_table(text[m.start() : end]))
    return found


# -- the guarantees ------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["safe", "aggressive"])
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
async def test_guarantees_hold_on_every_corpus_request(path: Path, level: str) -> None:
    body, operation = load(path)
    pristine = copy.deepcopy(body)
    out = await compress(body, operation, level)
    assert body == pristine, "the caller's request was changed in place"

    for key in set(body) - {"messages", "input", "instructions"}:
        assert out[key] is body[key], f"{key} must pass through untouched"
    before, after = items_of(body, operation), items_of(out, operation)
    assert len(before) == len(after)
    new_texts = [text_of(item) for item in after]
    for i, (old_item, new_item) in enumerate(zip(before, after, strict=True)):
        for key in set(old_item) - {"content", "output"}:
            assert new_item[key] == old_item[key], f"item {i + 1}: {key} changed"
        if isinstance(old_item.get("content"), list):
            for old_part, new_part in zip(old_item["content"], new_item["content"], strict=True):
                if old_part.get("type") not in ("text", "input_text", "output_text"):
                    assert new_part is old_part
        old, new = text_of(old_item), new_texts[i]
        if old is None:
            continue
        tool = old_item.get("role") == "tool" or "output" in old_item
        _check_text(old, new, new_texts, level, tool=tool, place=i + 1)
    if operation == "responses":
        _check_text(body["instructions"], out["instructions"], new_texts, level, tool=False, place=0)


def _check_text(old: str, new: str, new_texts: list[str | None], level: str, tool: bool, place: int) -> None:
    for kind, index in _MARKER.findall(new):
        assert int(index) >= 1 and new_texts[int(index) - 1] is not None, f"marker to {kind} {index}"
    whole = _WHOLE_MARKER.fullmatch(new)
    if whole:  # a repeat: the first copy compresses to exactly what this one would
        first = new_texts[int(whole.group(2)) - 1] or ""
        if not _LINE_MARKER.search(first):  # else it points further back in turn
            assert first == compress_text(old, level, tool=tool).text  # type: ignore[arg-type]
        return
    if "omitted …]" in new or _ANY_MARKER.search(new):
        return  # truncated or with repeated blocks replaced: checked by the engine tests
    sources = [new]
    for kind, index in _LINE_MARKER.findall(new):
        if index:
            assert 1 <= int(index) < place, f"line marker to {kind} {index} does not point back"
            sources.append(new_texts[int(index) - 1] or "")
        else:
            sources.extend(t for t in new_texts if t)  # "in the instructions": Responses only
    if len(sources) > 1:
        # Runs of lines went: what they held is in the places the markers name (or above).
        assert fenced_blocks(new) == fenced_blocks(old), "lines inside a fence were replaced"
        _, old_prose = json_blocks(old)
        for number in set(_NUMBER.findall(old_prose)):
            assert any(number in t for t in sources), f"number {number!r} lost"
        for url in set(_URL.findall(old_prose)):
            assert any(url in t for t in sources), f"URL {url!r} lost"
        return
    elided = compress_text(old, level, tool=tool).elided  # type: ignore[arg-type]
    flat_old = " ".join(old.split())
    for text in elided:
        assert " ".join(text.split()) in flat_old, "an elision stands for text that was not there"
    _check_fences(old, new, level)
    old_values, old_prose = json_blocks(old)
    new_values, _ = json_blocks(new)
    if new_values != old_values:  # compacted inside a larger stretch that does not parse (cut)
        anywhere = values_anywhere(new) + tables_in(new)
        assert all(v in anywhere for v in old_values)
    gone = "\n".join(elided)  # aggressive: what a marker stands for
    for number in set(_NUMBER.findall(old_prose)):
        assert number in new or number in gone, f"number {number!r} lost"
    for url in set(_URL.findall(old_prose)):
        assert url in new or url in gone, f"URL {url!r} lost"


_LOG_FENCES = {"", "log", "logs", "text", "txt", "plain", "plaintext", "console", "output", "stdout"}
_ELISION = re.compile(r".* \[×\d+\]|\[… \d+ similar lines …\]")


def _check_fences(old: str, new: str, level: str) -> None:
    """Fenced blocks come out byte for byte; at the aggressive level a log fence (untyped or a log
    language) may only lose lines, each run lost marked where it was."""
    before, after = fenced_blocks(old), fenced_blocks(new)
    assert len(before) == len(after)
    for a, b in zip(before, after, strict=True):
        if a == b:
            continue
        info = a.split("\n", 1)[0].strip().lstrip("`~").strip().split(" ")[0].lower()
        assert level == "aggressive" and info in _LOG_FENCES, f"fenced block changed:\n{b}"
        old_lines = set(a.split("\n"))
        for line in b.split("\n"):
            assert line in old_lines or _ELISION.fullmatch(line), f"line not in the original: {line}"


@pytest.mark.parametrize("level", ["safe", "aggressive"])
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
async def test_compression_is_deterministic_and_idempotent(path: Path, level: str) -> None:
    body, operation = load(path)
    first = await compress(body, operation, level)
    clear_cache()
    assert await compress(body, operation, level) == first
    assert await compress(first, operation, level) == first


@pytest.mark.parametrize("path", AGENT_LOOPS, ids=[p.stem for p in AGENT_LOOPS])
async def test_each_turn_compresses_the_same_way_in_every_later_turn(path: Path) -> None:
    body, operation = load(path)
    full = items_of(await compress(body, operation, "safe"), operation)
    items = items_of(body, operation)
    key = "messages" if operation == "chat" else "input"
    for n in range(1, len(items) + 1):
        prefix = items_of(await compress({**body, key: items[:n]}, operation, "safe"), operation)
        assert prefix == full[:n], f"turn with {n} items compressed differently later"


async def test_no_corpus_text_falls_back() -> None:
    for path in CORPUS:
        body, operation = load(path)
        for level in ("safe", "aggressive"):
            call = Call(dict(body), operation)  # type: ignore[arg-type]
            await Compress(level=level, min_tokens=0).before(call)  # type: ignore[arg-type]
            assert call.state["compress"].fallbacks == [], (path.name, level)


def _saving(paths: list[Path], level: str, results: dict[str, int]) -> float:
    before = sum(results[f"{p.name}:before"] for p in paths)
    return 1 - sum(results[f"{p.name}:{level}"] for p in paths) / before


async def test_savings_reach_the_targets() -> None:
    results: dict[str, int] = {}
    for path in CORPUS:
        body, operation = load(path)
        results[f"{path.name}:before"] = count_request(operation, body)[0]
        for level in ("safe", "aggressive"):
            out = await compress(body, operation, level)
            results[f"{path.name}:{level}"] = count_request(operation, out)[0]
    assert _saving(AGENT_LOOPS, "safe", results) >= 0.15
    assert _saving(REAL, "safe", results) >= 0.16  # issue 12's realistic traffic
    assert _saving(REAL, "aggressive", results) >= 0.25
    assert _saving(CORPUS, "aggressive", results) >= 0.30
    assert all(results[f"{p.name}:safe"] <= results[f"{p.name}:before"] for p in CORPUS)
    assert all(results[f"{p.name}:aggressive"] <= results[f"{p.name}:safe"] for p in CORPUS)


@pytest.mark.parametrize("level", ["safe", "aggressive"])
async def test_a_resent_request_reports_what_its_first_send_did(level: str) -> None:
    # The second send finds every message's remembered step (no text-cache look-up): the bytes
    # and the report (changes, fallbacks, duplicates, truncations, tables) must be the first's.
    for path in CORPUS:
        body, operation = load(path)
        clear_cache()
        reports = []
        sent = []
        for _ in range(2):
            call = Call(copy.deepcopy(body), operation)  # type: ignore[arg-type]
            await Compress(level=level, min_tokens=0).before(call)  # type: ignore[arg-type]
            sent.append(call.request)
            reports.append(call.state["compress"])
        assert sent[1] == sent[0], path.name
        assert reports[1] == reports[0], path.name
