"""The text the embedded server answers with: plain English, deterministic, cheap to make.

The reply does not depend on the prompt unless the request asks for it (``x-tokenmw-seed``): hooks
rewrite prompts, and tests compare a wrapped client's answer with an unwrapped one's, so the same
settings must give the same text whatever the prompt became.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tokenmw._tokens.encodings import encoding_for

__all__ = [
    "WORDS",
    "WORD_LIMIT_FILL",
    "Answer",
    "cap_tokens",
    "limited_words",
    "read_request",
    "reply_text",
    "schema_instance",
    "split_deltas",
    "word_limit",
]

_CORPUS = (
    "The middleware counts every prompt once and keeps the answer short. A careful agent sends "
    "only what the model needs to read, and it asks for no more than the task requires. Long tool "
    "outputs are trimmed at the edges, repeated blocks are sent a single time, and code stays "
    "exactly as it was written. Each saved token is money kept and latency avoided, yet the meaning "
    "of the request must never change. When the reply grows too long the client cuts it at the "
    "limit, records why it stopped, and reports the usage it measured. Good budgets are boring: "
    "they hold on the first call, on the hundredth call, and on the call that streams for a minute "
    "before the user closes the window."
)
WORDS: tuple[str, ...] = tuple(_CORPUS.split())


@lru_cache(maxsize=512)
def reply_text(words: int, seed: str | None = None) -> str:
    """``words`` words of the corpus, cycling, starting where ``seed`` points (or at the start)."""
    if words <= 0:
        return ""
    start = zlib.crc32(seed.encode("utf-8", "replace")) % len(WORDS) if seed else 0
    count = len(WORDS)
    return " ".join(WORDS[(start + i) % count] for i in range(words))


@lru_cache(maxsize=1024)
def cap_tokens(encoding_name: str, text: str, cap: int) -> str | None:
    """``text`` cut to its first ``cap`` tokens, or ``None`` when it already fits."""
    tokens = encoding_for(encoding_name).encode_ordinary(text)
    if len(tokens) <= cap:
        return None
    return encoding_for(encoding_name).decode(tokens[: max(cap, 0)])


def split_deltas(text: str) -> list[str]:
    """Stream pieces of one word each; joined, they give ``text`` back exactly."""
    if not text:
        return []
    first, *rest = text.split(" ")
    return [first, *(" " + word for word in rest)]


# -- answers that read the request (``x-tokenmw-answer: auto``) -------------------------------------
#
# Agent frameworks need more than text: a tool call when tools are offered, JSON matching the
# requested schema for structured output. With ``answer="auto"`` the server answers as a model that
# follows the request would: it calls the forced tool, or else the first offered tool the
# conversation has not called yet (so an agent calls its tool, gets the result, then answers); it
# answers a ``json_schema`` format with a document valid against the schema. Still deterministic.


@dataclass(frozen=True, slots=True)
class Answer:
    """What a request that is read asks for: a tool call, or structured text."""

    text: str | None = None
    """A JSON document (structured output)."""
    tool_name: str | None = None
    arguments: str | None = None
    """The tool call's arguments, a JSON document valid against the tool's parameters."""


def read_request(operation: str, request: Mapping[str, Any]) -> Answer | None:
    """The answer ``request`` asks for, or ``None`` for a plain text reply."""
    tool = _tool_to_call(operation, request)
    if tool is not None:
        name, parameters = tool
        return Answer(tool_name=name, arguments=json.dumps(schema_instance(parameters)))
    schema = _structured_schema(operation, request)
    if schema is not None:
        return Answer(text=json.dumps(schema_instance(schema)))
    return None


def _tools(operation: str, request: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The function tools offered: (name, parameters schema), in order."""
    offered = request.get("tools")
    found: list[tuple[str, Any]] = []
    if not isinstance(offered, list):
        return found
    for tool in offered:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            continue
        spec = tool.get("function") if operation == "chat" else tool
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            found.append((spec["name"], spec.get("parameters") or {"type": "object", "properties": {}}))
    return found


def _called(operation: str, request: Mapping[str, Any]) -> set[str]:
    """Names of the tools the conversation already called."""
    names: set[str] = set()
    if operation == "chat":
        for message in request.get("messages") or ():
            for call in (message.get("tool_calls") or ()) if isinstance(message, dict) else ():
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict) and isinstance(function.get("name"), str):
                    names.add(function["name"])
        return names
    items = request.get("input")
    for item in items if isinstance(items, list) else ():
        name = item.get("name") if isinstance(item, dict) and item.get("type") == "function_call" else None
        if isinstance(name, str):
            names.add(name)
    return names


def _tool_to_call(operation: str, request: Mapping[str, Any]) -> tuple[str, Any] | None:
    tools = _tools(operation, request)
    if not tools:
        return None
    choice = request.get("tool_choice")
    if choice == "none":
        return None
    if isinstance(choice, dict):
        forced = choice.get("function", {}).get("name") if operation == "chat" else choice.get("name")
        for tool in tools:
            if tool[0] == forced:
                return tool
    called = _called(operation, request)
    for tool in tools:
        if tool[0] not in called:
            return tool
    return tools[0] if choice == "required" or isinstance(choice, dict) else None


def _structured_schema(operation: str, request: Mapping[str, Any]) -> Any:
    """The JSON schema the request asks the answer to follow (``{}`` for plain JSON), or ``None``."""
    if operation == "chat":
        fmt = request.get("response_format")
        spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
    else:
        text = request.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
        spec = fmt
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "object", "properties": {"answer": {"type": "string"}}}
    if fmt.get("type") == "json_schema" and isinstance(spec, dict):
        return spec.get("schema") or {"type": "object", "properties": {}}
    return None


def schema_instance(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """A small document valid against ``schema`` (the subset structured outputs use: objects,
    arrays, scalars, enums, consts, ``anyOf``, ``$ref`` into ``$defs``)."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 12:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return schema_instance(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            concrete = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return schema_instance((concrete or options)[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        return {name: schema_instance(sub, root, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems") or 1))
        return [schema_instance(schema.get("items") or {"type": "string"}, root, depth + 1)] * count
    if kind == "integer":
        return max(3, int(schema.get("minimum") or 0))
    if kind == "number":
        return max(1.5, float(schema.get("minimum") or 0))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return WORDS[0] if not schema.get("format") else "2025-01-01"


# -- a model that undoes reversible elisions (``x-tokenmw-answer: expand``) --------------------------
#
# With reversible compression the prompt holds markers ``[… omitted … ref=<id>]`` and the request
# offers ``tokenmw_expand``. This "model" asks for each marker's original in turn (one call per
# response, the first ref whose expansion the conversation does not hold yet), then answers.

EXPAND_TOOL = "tokenmw_expand"
_REF = re.compile(r"\bref=([A-Za-z0-9_-]+)\]")


def expand_request(operation: str, request: Mapping[str, Any]) -> Answer | None:
    """A ``tokenmw_expand`` call for the next unexpanded ref, or ``None`` for a plain reply."""
    if EXPAND_TOOL not in {name for name, _ in _tools(operation, request)}:
        return None
    if request.get("tool_choice") == "none":
        return None
    asked = _expanded(operation, request)
    for text in _prompt_texts(operation, request):
        for ref in _REF.findall(text):
            if ref not in asked:
                return Answer(tool_name=EXPAND_TOOL, arguments=json.dumps({"ref": ref}))
    return None


def _expanded(operation: str, request: Mapping[str, Any]) -> set[str]:
    """Refs the conversation already asked ``tokenmw_expand`` for."""
    refs: set[str] = set()
    calls: list[Any] = []
    if operation == "chat":
        for message in request.get("messages") or ():
            if isinstance(message, dict):
                calls += [c.get("function") for c in message.get("tool_calls") or () if isinstance(c, dict)]
    else:
        items = request.get("input")
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and item.get("type") == "function_call":
                calls.append(item)
    for spec in calls:
        if isinstance(spec, dict) and spec.get("name") == EXPAND_TOOL:
            try:
                ref = json.loads(spec.get("arguments") or "{}").get("ref")
            except (ValueError, AttributeError):
                continue
            if isinstance(ref, str):
                refs.add(ref)
    return refs


def _prompt_texts(operation: str, request: Mapping[str, Any]) -> list[str]:
    """Every text the prompt shows the model (contents, text parts, tool outputs)."""
    texts: list[str] = []

    def add(value: Any) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            for part in value:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    texts.append(part["text"])

    if operation == "chat":
        for message in request.get("messages") or ():
            if isinstance(message, dict):
                add(message.get("content"))
        return texts
    add(request.get("instructions"))
    items = request.get("input")
    if isinstance(items, str):
        texts.append(items)
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            add(item.get("content"))
            add(item.get("output"))
    return texts


# -- word limits (``follow_word_limit``) ------------------------------------------------------------
#
# Instruction-following models asked for "at most N words" answer within the limit, usually a
# little under it. The server models that effect so benchmarks can show what a length instruction
# (Enhance's "Answer in at most N words.") does to output tokens and latency; the fill factor is a
# modelling choice, not a measurement of any model.

WORD_LIMIT_FILL = 0.9
"""Share of a requested word limit the modelled answer uses."""

_LIMIT_QUALIFIER = (
    r"(?:at\s+most|no\s+more\s+than|not\s+more\s+than|fewer\s+than|less\s+than|under|up\s+to"
    r"|within|maximum\s+of|max(?:imum)?|in)"
)
_WORD_LIMIT = re.compile(
    rf"\b{_LIMIT_QUALIFIER}\s+(\d{{1,3}}(?:,\d{{3}})*|\d+)[\s-]+words?\b"
    r"|\b(\d{1,3}(?:,\d{3})*|\d+)[\s-]+words?\s+(?:or\s+(?:less|fewer)|max(?:imum)?|at\s+most)\b",
    re.IGNORECASE,
)
_INSTRUCTION_ROLES = frozenset({"system", "developer", "user"})


def word_limit(operation: str, request: Mapping[str, Any]) -> int | None:
    """The smallest "N words" limit the request's instructions ask for ("at most 150 words",
    "in 50 words", "100 words or less", ...), or ``None``. Read from system, developer and user
    text (chat), or ``instructions`` and ``input`` (responses); assistant and tool text is not an
    instruction."""
    found: int | None = None
    for text in _instruction_texts(operation, request):
        if "word" not in text and "Word" not in text and "WORD" not in text:
            continue
        for match in _WORD_LIMIT.finditer(text):
            number = int((match.group(1) or match.group(2)).replace(",", ""))
            if number > 0 and (found is None or number < found):
                found = number
    return found


def limited_words(reply_words: int, limit: int | None) -> int:
    """Words in the modelled answer to a request with word limit ``limit``."""
    if limit is None:
        return reply_words
    return min(reply_words, max(1, int(limit * WORD_LIMIT_FILL)))


def _instruction_texts(operation: str, request: Mapping[str, Any]) -> list[str]:
    texts: list[str] = []
    if operation == "chat":
        items: Any = request.get("messages") or ()
    else:
        instructions = request.get("instructions")
        if isinstance(instructions, str):
            texts.append(instructions)
        items = request.get("input")
        if isinstance(items, str):
            return [*texts, items]
        items = items or ()
    for item in items:
        if not isinstance(item, Mapping) or item.get("role", "user") not in _INSTRUCTION_ROLES:
            continue
        if item.get("type") not in (None, "message"):
            continue
        content = item.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for part in content:
                text = part.get("text") if isinstance(part, Mapping) else None
                if isinstance(text, str):
                    texts.append(text)
    return texts
