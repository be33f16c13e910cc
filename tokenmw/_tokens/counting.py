"""How many input tokens OpenAI bills for a request (openai-cookbook's counting rules, extended).

Counting is split in two: a cheap walk of the request turns it into a ``CountPlan`` (fixed
overhead tokens plus the texts to encode), and the shared ``TokenCache`` turns texts into numbers.
The walk never encodes, so the async path can send only the uncounted texts to a thread, and an
unchanged text is never encoded twice.

Where each number comes from:

- Messages (cookbook "How to count tokens with tiktoken", section 6, checked against the API by
  OpenAI): 3 per message, the tokens of every string value (role included), 1 more for ``name``,
  3 once for reply priming. ``tool_call_id`` is not shown to the model and is not counted.
- Tool definitions: the text OpenAI renders them into (``tools``: a TypeScript ``namespace
  functions`` block joined to the system message), encoded as one text, plus fixed overheads. It
  reproduces every API-measured figure of hmarr/openai-chat-tokens and
  pamelafox/openai-messages-token-helper on the shapes they cover, and the cookbook's (section 7)
  101 on gpt-4o and 105 on gpt-4; the notebook's own per-property constants count 2-6 tokens too
  many on cl100k models. Shapes no public figure covers are flagged (``tools.ESTIMATED_SHAPES``).
- ``tool_choice`` (pamelafox, measured on cl100k models): ``auto`` 0, ``none`` 1, a named function
  7 plus its name. Not measured, so flagged: ``required`` (counted as 1), any choice on o200k
  models, the legacy ``function_call`` (hmarr's rule: ``none`` 1, a name 4 plus the name).
- A legacy ``function`` role message costs 2 fewer than other messages, and an assistant
  ``function_call`` its name and arguments plus 3 (hmarr, measured). Assistant ``tool_calls`` are
  counted by the same rule per call and ``tool`` messages like other messages, both flagged: no
  public figure covers them.
- Images: see ``_images``. Audio, files, hosted tools, ``previous_response_id`` and other parts
  whose tokens cannot be known locally count 0 and flag the plan as an estimate.
- The Responses API counts as the equivalent chat request: ``instructions`` is a system message,
  a ``function_call`` item an assistant message with one tool call, a ``function_call_output`` a
  tool message.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from tokenmw._tokens.count_cache import cache_for
from tokenmw._tokens.encodings import encoding_for, encoding_name_for, is_known_model
from tokenmw._tokens.images import ImageRule, image_rule_for, image_tokens
from tokenmw._tokens.tools import SYSTEM_DISCOUNT, TOOLS_OVERHEAD, function_of, render_functions

__all__ = [
    "COUNTED_KEYS",
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
FUNCTION_MESSAGE = -2
"""A legacy ``role: function`` message costs 2 fewer than ``TOKENS_PER_MESSAGE`` (hmarr, measured)."""

TOOL_CHOICE_NONE = 1
TOOL_CHOICE_NAMED = 7
LEGACY_CHOICE_NAMED = 4
TOOL_CHOICE_REQUIRED = 1
"""Not measured anywhere we know of: assumed to cost what ``none`` costs, and flagged."""

_INSTRUCTIONS_ROLE = "system"
_SYSTEM_PAD = "\n"  # the system message that carries the tools block ends with a newline
_UNCOUNTED_KEYS = frozenset({"tool_call_id"})
_TEXT_PART_KEYS = ("text", "refusal")
_IMAGE_PARTS = frozenset({"image_url", "input_image"})


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
    cl100k: bool
    """Tool-choice overheads were measured on cl100k models only."""
    image: ImageRule


_rules_cache: dict[str | None, _Rules] = {}


def _rules_for(model: str | None) -> _Rules:
    rules = _rules_cache.get(model)
    if rules is None:
        rules = _Rules(
            known=is_known_model(model),
            cl100k=encoding_name_for(model) == "cl100k_base",
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
    block = _tools_block(plan, (tools, functions))
    has_system = False
    if _iterable(messages):
        for message in messages:
            message = _as_mapping(message)
            if message is None:
                continue
            role = message.get("role")
            is_system = role == "system"
            if role == "developer" and block is not None:
                plan.estimated = True  # whether the tools block joins a developer message: not measured
            _add_message(plan, message, rules, pad=block is not None and is_system and not has_system)
            has_system = has_system or is_system
    if block is not None:
        _add_block(plan, block, has_system)
        if tool_choice is not None:
            _add_tool_choice(plan, tool_choice, rules)
        elif function_call is not None:
            _add_legacy_choice(plan, function_call)
    plan.fixed += REPLY_PRIMING
    return plan


def _iterable(value: Any) -> TypeGuard[Iterable[Any]]:
    # The common answers first: an ABC ``isinstance`` costs ~1 us, several times per count.
    if value is None:
        return False
    if type(value) is list or type(value) is tuple:
        return True
    return isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping)


def _as_mapping(obj: Any) -> Mapping[str, Any] | None:
    """A message, part or tool call as a mapping: dicts as they are, SDK objects (a response's
    message sent back as it is) dumped.

    The dump is not cached per object: agents reuse a ``ChatCompletionMessage`` and change its
    ``content``, and a cache keyed by ``id(obj)`` would keep the old count. Anything that could
    tell a changed object from an unchanged one costs what the dump costs (~2 us, measured), so
    the text counts are cached by content (``TokenCache``) and the dump is redone.
    """
    if type(obj) is dict or isinstance(obj, Mapping):  # dict first: an ABC check costs ~1 µs
        return obj
    dump = getattr(obj, "model_dump", None)
    if dump is None:
        return None
    try:
        data = dump(exclude_none=True)
    except Exception:  # not a pydantic model after all
        return None
    return data if isinstance(data, Mapping) else None


def _add_message(plan: CountPlan, message: Mapping[str, Any], rules: _Rules, pad: bool = False) -> None:
    """Add one chat message; ``pad``: it is the system message the tools block joins."""
    texts = plan.texts
    fixed = TOKENS_PER_MESSAGE
    role = message.get("role")
    if role == "function":
        fixed += FUNCTION_MESSAGE
    elif role == "tool":
        plan.estimated = True  # tool results: no public measurement
    for key, value in message.items():
        if isinstance(value, str):
            if key in _UNCOUNTED_KEYS:
                continue
            if pad and key == "content":
                value += _SYSTEM_PAD
            if value:
                texts.append(value)
            if key == "name":
                fixed += TOKENS_PER_NAME
        elif value is None:
            continue
        elif key == "content":
            if isinstance(value, list | tuple):
                if pad:
                    plan.estimated = True  # where the newline goes in a list of parts: not measured
                _add_parts(plan, value, rules)
        elif key == "tool_calls":
            if isinstance(value, list | tuple):
                plan.estimated = True  # rendered like function_call, per call: not measured
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


def _add_parts(plan: CountPlan, parts: list[Any] | tuple[Any, ...], rules: _Rules) -> None:
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


_rendered_blocks: dict[bytes, tuple[str | None, bool]] = {}
"""Rendered tools blocks by the definitions' content (``marshal``): ``(block, estimated)``."""
_MAX_RENDERED = 1024


def _tools_block(plan: CountPlan, groups: tuple[Any, ...]) -> str | None:
    """The rendered block of every function-like tool in ``groups``; hosted tools only flag.

    Agents send the same tool definitions on every turn, and a call is counted several times
    (before and after the hooks, for spans): rendering eight tools costs ~40 µs each time. So
    the block is kept by content: ``marshal.dumps`` (~5 µs for eight tools; ``repr`` or
    ``json.dumps`` cost ~30) serialises plain data faithfully (equal bytes, equal definitions)
    and refuses anything else (SDK objects are rendered every time)."""
    if all(tools is None for tools in groups):
        return None
    try:
        key: bytes | None = marshal.dumps(groups)
    except ValueError:
        key = None
    if key is not None:
        hit = _rendered_blocks.get(key)
        if hit is not None:
            if hit[1]:
                plan.estimated = True
            return hit[0]
    probe = CountPlan()
    block = _render_tools_block(probe, groups)
    if probe.estimated:
        plan.estimated = True
    if key is not None:
        if len(_rendered_blocks) >= _MAX_RENDERED:
            _rendered_blocks.clear()  # bounded; the tool sets in use at once are few
        _rendered_blocks[key] = (block, probe.estimated)
    return block


def _render_tools_block(plan: CountPlan, groups: Iterable[Any]) -> str | None:
    functions: list[tuple[str, Mapping[str, Any]]] = []
    for tools in groups:
        if not _iterable(tools):
            continue
        for tool in tools:
            tool = _as_mapping(tool)
            if tool is None:
                continue
            found = function_of(tool)
            if found is None:
                plan.estimated = True  # hosted tools (web search, file search, ...) add hidden text
            else:
                functions.append(found)
    if not functions:
        return None
    rendered = render_functions(functions)
    if rendered.estimated:
        plan.estimated = True
    return rendered.text


def _add_block(plan: CountPlan, block: str, has_system: bool) -> None:
    plan.texts.append(block)
    plan.fixed += TOOLS_OVERHEAD - (SYSTEM_DISCOUNT if has_system else 0)


def _add_tool_choice(plan: CountPlan, choice: Any, rules: _Rules) -> None:
    if choice == "auto":
        return
    if not rules.cl100k:
        plan.estimated = True  # measured on cl100k models only
    if choice == "none":
        plan.fixed += TOOL_CHOICE_NONE
        return
    if choice == "required":
        plan.fixed += TOOL_CHOICE_REQUIRED
        plan.estimated = True
        return
    if isinstance(choice, Mapping):
        kind = choice.get("type")
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else choice.get("name")  # Responses: flat
        if kind in ("function", None) and isinstance(name, str):
            plan.fixed += TOOL_CHOICE_NAMED
            if name:
                plan.texts.append(name)
            return
    plan.estimated = True  # allowed_tools, custom or hosted tool choices: never measured


def _add_legacy_choice(plan: CountPlan, choice: Any) -> None:
    """``function_call`` of the legacy functions API (hmarr's rule; none of its measured cases)."""
    if choice == "auto":
        return
    plan.estimated = True
    if choice == "none":
        plan.fixed += TOOL_CHOICE_NONE
    elif isinstance(choice, Mapping) and isinstance(choice.get("name"), str):
        plan.fixed += LEGACY_CHOICE_NAMED
        if choice["name"]:
            plan.texts.append(choice["name"])


# -- Responses API -------------------------------------------------------------------------------

# Request fields that bill tokens we cannot see: earlier turns stored server-side, stored prompts.
_UNSEEN_INPUT_KEYS = ("previous_response_id", "conversation", "prompt")

COUNTED_KEYS: dict[str, tuple[str, ...]] = {
    "chat": ("messages", "model", "tools", "tool_choice", "functions", "function_call"),
    "responses": ("model", "tools", "tool_choice", "instructions", "input", *_UNSEEN_INPUT_KEYS),
}
"""The top-level values of a request that its count reads (``plan_request``): a request whose
values under these keys are unchanged counts the same."""


def plan_responses(request: Mapping[str, Any]) -> CountPlan:
    """The counting plan of a Responses API request (``input``, ``instructions``, ``tools``)."""
    model = request.get("model")
    rules = _rules_for(model if isinstance(model, str) else None)
    plan = CountPlan(estimated=not rules.known)
    texts = plan.texts
    block = _tools_block(plan, (request.get("tools"),))
    if block is not None:
        plan.estimated = True  # the chat rendering, assumed: no Responses figure is public
    instructions = request.get("instructions")
    has_system = False
    if isinstance(instructions, str):
        has_system = True
        plan.fixed += TOKENS_PER_MESSAGE
        texts.append(_INSTRUCTIONS_ROLE)
        if block is not None:
            instructions += _SYSTEM_PAD
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
                is_system = item.get("role") == "system"
                _add_item(plan, item, rules, pad=block is not None and is_system and not has_system)
                has_system = has_system or is_system
    if block is not None:
        _add_block(plan, block, has_system)
        choice = request.get("tool_choice")
        if choice is not None:
            _add_tool_choice(plan, choice, rules)
    for key in _UNSEEN_INPUT_KEYS:
        if request.get(key):
            plan.estimated = True
    plan.fixed += REPLY_PRIMING
    return plan


def _add_item(plan: CountPlan, item: Mapping[str, Any], rules: _Rules, pad: bool = False) -> None:
    kind = item.get("type")
    texts = plan.texts
    if kind == "message" or (kind is None and "role" in item):
        plan.fixed += TOKENS_PER_MESSAGE
        role = item.get("role")
        if isinstance(role, str) and role:
            texts.append(role)
        content = item.get("content")
        if pad:
            if isinstance(content, str):
                content += _SYSTEM_PAD
            else:
                plan.estimated = True
        _add_content(plan, content, rules)
        return
    if kind in ("function_call", "custom_tool_call"):
        plan.fixed += TOKENS_PER_MESSAGE + _add_tool_call(plan, item)
        texts.append("assistant")
        plan.estimated = True  # like chat's tool_calls: not measured
        return
    if kind in ("function_call_output", "custom_tool_call_output"):
        plan.fixed += TOKENS_PER_MESSAGE
        texts.append("tool")
        _add_content(plan, item.get("output"), rules)
        plan.estimated = True  # like chat's tool messages: not measured
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
