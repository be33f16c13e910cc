"""How many input tokens OpenAI bills for a request (openai-cookbook's counting rules, extended).

Counting is split in two: a cheap walk of the request turns it into a ``CountPlan`` (fixed
overhead tokens plus the texts to encode), and the shared ``TokenCache`` turns texts into numbers.
The walk never encodes, so the async path can send only the uncounted texts to a thread, and an
unchanged text is never encoded twice.

Where each number comes from:

- Messages (cookbook "How to count tokens with tiktoken", section 6, checked against the API by
  OpenAI): 3 per message, the tokens of every string value (role included), 1 more for ``name``,
  3 once for reply priming. ``tool_call_id`` is not shown to the model and is not counted.
- Tool definitions (same notebook, section 7, checked against the API): per function ``func_init``
  (7 on o200k models, 10 on cl100k ones) plus ``name:description``; per function with properties
  3, then per property 3 plus ``key:type:description``; an enum -3, then per item 3 plus the item;
  12 once after all functions. Nested object properties are counted with the same rule and flagged
  as an estimate (the notebook stops at the first level).
- ``tool_choice`` (hmarr/openai-chat-tokens, measured against the API): ``auto`` 0, ``none`` 1, a
  named function 4 plus its name. ``required`` was never measured: it is counted as 1 and flagged.
- Assistant ``tool_calls``: the function name and arguments, plus 3 per call (the same library's
  measurement of the older ``function_call``, the format tool calls replaced).
- Images: see ``_images``. Audio, files, hosted tools, ``previous_response_id`` and other parts
  whose tokens cannot be known locally count 0 and flag the plan as an estimate.
- The Responses API counts as the equivalent chat request: ``instructions`` is a system message,
  a ``function_call`` item an assistant message with one tool call, a ``function_call_output`` a
  tool message.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from tokenmw._tokens.count_cache import cache_for
from tokenmw._tokens.encodings import encoding_for, encoding_name_for, is_known_model
from tokenmw._tokens.images import ImageRule, image_rule_for, image_tokens

__all__ = [
    "CountPlan",
    "count_plan",
    "count_request",
    "count_tokens",
    "plan_chat",
    "plan_request",
    "plan_responses",
]

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
TOKENS_PER_TOOL_CALL = 3

FUNC_INIT_O200K = 7
FUNC_INIT_CL100K = 10
PROP_INIT = 3
PROP_KEY = 3
ENUM_INIT = -3
ENUM_ITEM = 3
FUNC_END = 12

TOOL_CHOICE_NONE = 1
TOOL_CHOICE_NAMED = 4
TOOL_CHOICE_REQUIRED = 1
"""Not measured anywhere we know of: assumed to cost what ``none`` costs, and flagged."""

_MAX_SCHEMA_DEPTH = 8
_INSTRUCTIONS_ROLE = "system"
_UNCOUNTED_KEYS = frozenset({"tool_call_id"})
_TEXT_PART_KEYS = ("text", "refusal")
_IMAGE_PARTS = frozenset({"image_url", "input_image"})
_FUNCTION_TOOLS = frozenset({"function", None})
_CUSTOM_TOOLS = frozenset({"custom"})


@dataclass(slots=True)
class CountPlan:
    """Tokens of a request: ``fixed`` plus the encoded length of each of ``texts``."""

    fixed: int = 0
    texts: list[str] = field(default_factory=list)
    estimated: bool = False
    """True when part of the count is a guess (a remote image of unknown size, an unknown model)."""


@dataclass(frozen=True, slots=True)
class _Rules:
    known: bool
    func_init: int
    image: ImageRule


_rules_cache: dict[str | None, _Rules] = {}


def _rules_for(model: str | None) -> _Rules:
    rules = _rules_cache.get(model)
    if rules is None:
        cl100k = encoding_name_for(model) == "cl100k_base"
        rules = _Rules(
            known=is_known_model(model),
            func_init=FUNC_INIT_CL100K if cl100k else FUNC_INIT_O200K,
            image=image_rule_for(model),
        )
        if len(_rules_cache) < 4096:
            _rules_cache[model] = rules
    return rules


# -- chat completions ----------------------------------------------------------------------------


def plan_chat(
    messages: Iterable[Mapping[str, Any]],
    tools: Iterable[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
    model: str | None = None,
    *,
    functions: Iterable[Mapping[str, Any]] | None = None,
    function_call: Any = None,
) -> CountPlan:
    """The counting plan of a chat completions request (``functions``/``function_call``: the
    legacy spelling of ``tools``/``tool_choice``)."""
    rules = _rules_for(model)
    plan = CountPlan(estimated=not rules.known)
    if _iterable(messages):
        for message in messages:
            message = _as_mapping(message)
            if message is not None:
                _add_message(plan, message, rules)
    has_tools = False
    for defs in (tools, functions):
        if _iterable(defs):
            has_tools = _add_tools(plan, defs, rules) or has_tools
    if has_tools:
        _add_tool_choice(plan, tool_choice if tool_choice is not None else function_call)
    plan.fixed += REPLY_PRIMING
    return plan


def _iterable(value: Any) -> TypeGuard[Iterable[Any]]:
    return isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping)


# Objects of the openai SDK (a response's message, Responses output items) are often sent back as
# they are: their dump is kept per object (~3 us each otherwise, on every count of every turn).
_dumps: dict[int, tuple[weakref.ref[Any], Mapping[str, Any]]] = {}
_MAX_DUMPS = 65_536


def _forget(key: int) -> Callable[[weakref.ref[Any]], None]:
    def forget(_: weakref.ref[Any]) -> None:
        _dumps.pop(key, None)

    return forget


def _as_mapping(obj: Any) -> Mapping[str, Any] | None:
    if isinstance(obj, Mapping):
        return obj
    dump = getattr(obj, "model_dump", None)
    if dump is None:
        return None
    key = id(obj)
    hit = _dumps.get(key)
    if hit is not None and hit[0]() is obj:
        return hit[1]
    try:
        data = dump(exclude_none=True)
        ref = weakref.ref(obj, _forget(key))
    except Exception:  # not a pydantic model after all, or not weak-referenceable
        return None
    if isinstance(data, Mapping) and len(_dumps) < _MAX_DUMPS:
        _dumps[key] = (ref, data)
    return data if isinstance(data, Mapping) else None


def _add_message(plan: CountPlan, message: Mapping[str, Any], rules: _Rules) -> None:
    texts = plan.texts
    fixed = TOKENS_PER_MESSAGE
    for key, value in message.items():
        if isinstance(value, str):
            if key in _UNCOUNTED_KEYS:
                continue
            if value:
                texts.append(value)
            if key == "name":
                fixed += TOKENS_PER_NAME
        elif value is None:
            continue
        elif key == "content":
            if isinstance(value, list):
                _add_parts(plan, value, rules)
        elif key == "tool_calls":
            if isinstance(value, list):
                for tool_call in value:
                    tool_call = _as_mapping(tool_call)
                    if tool_call is not None:
                        fn = tool_call.get("function") or tool_call.get("custom")
                        if isinstance(fn, Mapping):
                            fixed += _add_tool_call(plan, fn)
        elif key == "function_call":
            if isinstance(value, Mapping):
                fixed += _add_tool_call(plan, value)
        elif key == "audio":
            plan.estimated = True  # a reference to earlier audio output
    plan.fixed += fixed


def _add_tool_call(plan: CountPlan, fn: Mapping[str, Any]) -> int:
    for key in ("name", "arguments", "input"):
        value = fn.get(key)
        if isinstance(value, str) and value:
            plan.texts.append(value)
    return TOKENS_PER_TOOL_CALL


def _add_parts(plan: CountPlan, parts: list[Any], rules: _Rules) -> None:
    texts = plan.texts
    for part in parts:
        if isinstance(part, str):
            if part:
                texts.append(part)
            continue
        part = _as_mapping(part)
        if part is None:
            continue
        for key in _TEXT_PART_KEYS:
            text = part.get(key)
            if isinstance(text, str):
                if text:
                    texts.append(text)
                break
        else:
            kind = part.get("type")
            if isinstance(kind, str) and kind in _IMAGE_PARTS:
                _add_image(plan, part, rules)
            else:  # audio, files, and parts we do not know: not countable here
                plan.estimated = True


def _add_image(plan: CountPlan, part: Mapping[str, Any], rules: _Rules) -> None:
    image = part.get("image_url")
    detail = part.get("detail")
    if isinstance(image, Mapping):
        detail = image.get("detail", detail)
        image = image.get("url")
    tokens, exact = image_tokens(image if isinstance(image, str) else None, detail, rules.image)
    plan.fixed += tokens
    if not exact:
        plan.estimated = True


# -- tools ---------------------------------------------------------------------------------------


def _add_tools(plan: CountPlan, tools: Iterable[Any], rules: _Rules) -> bool:
    """Add tool definitions (chat's nested or Responses' flat form); whether any was counted."""
    counted = 0
    texts = plan.texts
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        kind = tool.get("type")
        if not isinstance(kind, str):
            kind = None
        fn = tool.get("function")
        if not isinstance(fn, Mapping):
            fn = tool.get("custom")
        if not isinstance(fn, Mapping):
            fn = tool  # Responses tools and legacy ``functions`` are flat
        name = fn.get("name")
        if (kind not in _FUNCTION_TOOLS and kind not in _CUSTOM_TOOLS) or not isinstance(name, str):
            plan.estimated = True  # hosted tools (web search, file search, ...) add hidden text
            continue
        if kind in _CUSTOM_TOOLS:
            plan.estimated = True  # free-form tools: rendered like functions, never measured
        counted += 1
        plan.fixed += rules.func_init
        description = fn.get("description")
        description = description if isinstance(description, str) else ""
        texts.append(f"{name}:{_strip_period(description)}")
        parameters = fn.get("parameters")
        if isinstance(parameters, Mapping):
            properties = parameters.get("properties")
            if isinstance(properties, Mapping) and properties:
                _add_properties(plan, properties, 0)
    if counted:
        plan.fixed += FUNC_END
    return counted > 0


def _add_properties(plan: CountPlan, properties: Mapping[str, Any], depth: int) -> None:
    texts = plan.texts
    fixed = PROP_INIT
    for key, prop in properties.items():
        fixed += PROP_KEY
        if not isinstance(prop, Mapping):
            texts.append(f"{key}::")
            plan.estimated = True
            continue
        kind = prop.get("type")
        if not isinstance(kind, str):
            plan.estimated = True  # unions, $ref, anyOf: not covered by the notebook's rule
            kind = "|".join(k for k in kind if isinstance(k, str)) if isinstance(kind, list) else ""
        description = prop.get("description")
        description = description if isinstance(description, str) else ""
        enum = prop.get("enum")
        if isinstance(enum, list):
            fixed += ENUM_INIT
            for item in enum:
                fixed += ENUM_ITEM
                texts.append(item if isinstance(item, str) else json.dumps(item))
        texts.append(f"{key}:{kind}:{_strip_period(description)}")
        nested = prop.get("properties")
        if not isinstance(nested, Mapping):
            items = prop.get("items")
            nested = items.get("properties") if isinstance(items, Mapping) else None
        if isinstance(nested, Mapping) and nested and depth < _MAX_SCHEMA_DEPTH:
            plan.estimated = True
            _add_properties(plan, nested, depth + 1)
    plan.fixed += fixed


def _strip_period(text: str) -> str:
    return text[:-1] if text.endswith(".") else text


def _add_tool_choice(plan: CountPlan, choice: Any) -> None:
    if choice is None or choice == "auto":
        return
    if choice == "none":
        plan.fixed += TOOL_CHOICE_NONE
        return
    if choice == "required":
        plan.fixed += TOOL_CHOICE_REQUIRED
        plan.estimated = True
        return
    if isinstance(choice, Mapping):
        fn = choice.get("function") or choice.get("custom")
        name = fn.get("name") if isinstance(fn, Mapping) else choice.get("name")
        if isinstance(name, str):
            plan.fixed += TOOL_CHOICE_NAMED
            if name:
                plan.texts.append(name)
            return
    plan.estimated = True  # allowed_tools, hosted tool choices: never measured


# -- Responses API -------------------------------------------------------------------------------

# Request fields that bill tokens we cannot see: earlier turns stored server-side, stored prompts.
_UNSEEN_INPUT_KEYS = ("previous_response_id", "conversation", "prompt")


def plan_responses(request: Mapping[str, Any]) -> CountPlan:
    """The counting plan of a Responses API request (``input``, ``instructions``, ``tools``)."""
    model = request.get("model")
    rules = _rules_for(model if isinstance(model, str) else None)
    plan = CountPlan(estimated=not rules.known)
    texts = plan.texts
    instructions = request.get("instructions")
    if isinstance(instructions, str):
        plan.fixed += TOKENS_PER_MESSAGE
        texts.append(_INSTRUCTIONS_ROLE)
        if instructions:
            texts.append(instructions)
    items = request.get("input")
    if isinstance(items, str):
        plan.fixed += TOKENS_PER_MESSAGE
        texts.append("user")
        if items:
            texts.append(items)
    elif isinstance(items, list):
        for item in items:
            item = _as_mapping(item)
            if item is not None:
                _add_item(plan, item, rules)
    tools = request.get("tools")
    if _iterable(tools) and _add_tools(plan, tools, rules):
        _add_tool_choice(plan, request.get("tool_choice"))
    for key in _UNSEEN_INPUT_KEYS:
        if request.get(key):
            plan.estimated = True
    plan.fixed += REPLY_PRIMING
    return plan


def _add_item(plan: CountPlan, item: Mapping[str, Any], rules: _Rules) -> None:
    kind = item.get("type")
    texts = plan.texts
    if kind == "message" or (kind is None and "role" in item):
        plan.fixed += TOKENS_PER_MESSAGE
        role = item.get("role")
        if isinstance(role, str) and role:
            texts.append(role)
        _add_content(plan, item.get("content"), rules)
        return
    if kind in ("function_call", "custom_tool_call"):
        plan.fixed += TOKENS_PER_MESSAGE + _add_tool_call(plan, item)
        texts.append("assistant")
        return
    if kind in ("function_call_output", "custom_tool_call_output"):
        plan.fixed += TOKENS_PER_MESSAGE
        texts.append("tool")
        _add_content(plan, item.get("output"), rules)
        return
    # Reasoning items, item references, hosted tool calls (web search, computer use, MCP, ...):
    # what they add to the prompt is not public.
    plan.estimated = True


def _add_content(plan: CountPlan, content: Any, rules: _Rules) -> None:
    if isinstance(content, str):
        if content:
            plan.texts.append(content)
    elif isinstance(content, list):
        _add_parts(plan, content, rules)


# -- whole requests ------------------------------------------------------------------------------


def plan_request(operation: str, request: Mapping[str, Any]) -> CountPlan:
    """The counting plan of a ``create()`` request of either API."""
    if not isinstance(request, Mapping):
        return CountPlan(fixed=REPLY_PRIMING, estimated=True)
    if operation == "responses":
        return plan_responses(request)
    model = request.get("model")
    return plan_chat(
        request.get("messages") or (),
        tools=request.get("tools"),
        tool_choice=request.get("tool_choice"),
        model=model if isinstance(model, str) else None,
        functions=request.get("functions"),
        function_call=request.get("function_call"),
    )


def count_plan(plan: CountPlan, model: str | None) -> int:
    """The tokens of a plan, encoding (inline) only texts never counted before."""
    return plan.fixed + cache_for(encoding_for(model)).count_all(plan.texts)


def count_request(operation: str, request: Mapping[str, Any]) -> tuple[int, bool]:
    """``(tokens, estimated)`` of a whole ``create()`` request of either API."""
    plan = plan_request(operation, request)
    model = request.get("model") if isinstance(request, Mapping) else None
    return count_plan(plan, model if isinstance(model, str) else None), plan.estimated


def count_tokens(
    messages: Iterable[Mapping[str, Any]],
    model: str = "gpt-4o",
    tools: Iterable[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
) -> int:
    """The number of input tokens OpenAI bills for a chat request (tools and images included)."""
    return count_plan(plan_chat(messages, tools=tools, tool_choice=tool_choice, model=model), model)
