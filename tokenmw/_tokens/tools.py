"""Function definitions as the model reads them, and what is known exactly about their cost.

OpenAI does not send the JSON schema of a tool to the model: it renders every function as a
TypeScript type inside a ``namespace functions { ... }`` block appended to the system prompt
(hmarr/openai-chat-tokens, ``src/functions.ts``, inferred from API-measured counts and confirmed
by OpenAI staff on their forum). Counting that text reproduces every API-measured figure we know
of for the shapes below, on both encodings (the cookbook's weather example: 101 on gpt-4o, 105 on
gpt-4); the notebook's own per-property constants are 2-6 tokens high on cl100k models.

Around the block (hmarr, pamelafox/openai-messages-token-helper, both checked against the API):
``TOOLS_OVERHEAD`` tokens once; 4 fewer when the request has a system message, whose first one
then ends with a newline before the block (``"Hello:"`` and ``"Hello"`` cost the same: ``":\\n"``
is one token); ``tool_choice`` ``"none"`` 1, a named function 7 plus its name (tools API).

Shapes no public API-measured figure covers are rendered the same way and flagged as estimates:
see ``ESTIMATED_SHAPES``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ESTIMATED_SHAPES",
    "SYSTEM_DISCOUNT",
    "TOOLS_OVERHEAD",
    "RenderedTools",
    "function_of",
    "render_functions",
]

TOOLS_OVERHEAD = 9
"""Tokens the tools block adds besides its text (the system message that carries it, its heading)."""
SYSTEM_DISCOUNT = 4
"""Tokens fewer when the request already has a system message: the block joins it."""

ESTIMATED_SHAPES = (
    "more than one function (no published figure)",
    "a nested object, or an array of objects (figures disagree by 1-3 tokens)",
    "a numeric enum (off by 1 against the API)",
    "a property without a description (figures disagree by 1 token)",
    "schema keywords other than type, description, enum, items, properties, required",
    "strict functions, custom (free-form) tools",
)
"""Tool shapes counted by the same rendering but flagged as estimates, and why."""

_KNOWN_PROPERTY_KEYS = frozenset({"type", "description", "enum", "items", "properties", "required"})
_KNOWN_PARAMETER_KEYS = frozenset({"type", "properties", "required"})
_KNOWN_FUNCTION_KEYS = frozenset({"name", "description", "parameters", "type"})
_MAX_DEPTH = 8


@dataclass(slots=True)
class RenderedTools:
    """The ``namespace functions`` text of a request's functions, and whether it is exact."""

    text: str
    functions: int
    estimated: bool


def function_of(tool: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """``(kind, definition)`` of a function-like tool in chat's nested, Responses' flat or legacy
    ``functions`` form; ``None`` for hosted tools (web search, file search, ...)."""
    kind = tool.get("type")
    kind = kind if isinstance(kind, str) else "function"
    if kind not in ("function", "custom"):
        return None
    fn = tool.get(kind)
    if not isinstance(fn, Mapping):
        fn = tool
    return (kind, fn) if isinstance(fn.get("name"), str) else None


def render_functions(tools: Iterable[tuple[str, Mapping[str, Any]]]) -> RenderedTools:
    """The block OpenAI puts in the prompt for these function definitions."""
    renderer = _Renderer()
    lines = ["namespace functions {", ""]
    count = 0
    for kind, fn in tools:
        count += 1
        if kind != "function" or not _KNOWN_FUNCTION_KEYS.issuperset(fn) or fn.get("strict"):
            renderer.estimated = True
        description = fn.get("description")
        if isinstance(description, str) and description:
            lines.append(f"// {description}")
        parameters = fn.get("parameters")
        properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
        if isinstance(parameters, Mapping) and not _KNOWN_PARAMETER_KEYS.issuperset(parameters):
            renderer.estimated = True
        name = fn["name"]
        if isinstance(properties, Mapping) and properties:
            lines.append(f"type {name} = (_: {{")
            lines.append(renderer.properties(parameters, 0, 0))  # type: ignore[arg-type]
            lines.append("}) => any;")
        else:
            lines.append(f"type {name} = () => any;")
        lines.append("")
    lines.append("} // namespace functions")
    return RenderedTools("\n".join(lines), count, renderer.estimated or count > 1)


class _Renderer:
    __slots__ = ("estimated",)

    def __init__(self) -> None:
        self.estimated = False

    def properties(self, schema: Mapping[str, Any], indent: int, depth: int) -> str:
        required = schema.get("required")
        required = required if isinstance(required, list) else ()
        properties = schema.get("properties")
        lines: list[str] = []
        for key, prop in properties.items() if isinstance(properties, Mapping) else ():
            if not isinstance(prop, Mapping):
                self.estimated = True
                prop = {}
            if not _KNOWN_PROPERTY_KEYS.issuperset(prop):
                self.estimated = True
            description = prop.get("description")
            if isinstance(description, str) and description:
                lines.append(f"// {description}")
            else:
                self.estimated = True
            optional = "" if key in required else "?"
            lines.append(f"{key}{optional}: {self.type_of(prop, indent, depth)},")
        return "\n".join(" " * indent + line for line in lines)

    def type_of(self, prop: Mapping[str, Any], indent: int, depth: int) -> str:
        kind = prop.get("type")
        enum = prop.get("enum")
        if kind == "string":
            if isinstance(enum, list):
                return " | ".join(f'"{item}"' for item in enum)
            return "string"
        if kind in ("number", "integer"):
            if isinstance(enum, list):
                self.estimated = True
                return " | ".join(json.dumps(item) for item in enum)
            return "number"
        if kind in ("boolean", "null"):
            return str(kind)
        if kind == "object":
            self.estimated = True
            if depth >= _MAX_DEPTH:
                return "object"
            return "\n".join(["{", self.properties(prop, indent + 2, depth + 1), "}"])
        if kind == "array":
            items = prop.get("items")
            if isinstance(items, Mapping):
                return f"{self.type_of(items, indent, depth + 1)}[]"
            self.estimated = True
            return "any[]"
        if kind is not None or enum is not None:
            self.estimated = True  # a list of types, an enum without a type, ...
        return "any"
