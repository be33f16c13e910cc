"""Reading and rebuilding API response objects without knowing their classes.

openai and LiteLLM responses are pydantic models: ``replace`` copies one with some fields changed
(``model_copy``), keeping its type and every other field, and never changes the original, which
other code may hold. Plain dicts are handled as dicts. Nothing here imports ``openai`` or
``litellm``: a type is found from an object already in hand (a field's annotation, the package an
event's class comes from).
"""

from __future__ import annotations

import sys
from typing import Any, get_args

from tokenmw._wire.fields import get_field as get

__all__ = [
    "TEXT_ITEMS",
    "build",
    "cut_part",
    "empty_delta",
    "event_like",
    "get",
    "replace",
    "trim_logprobs",
]

TEXT_ITEMS = frozenset({"message", "reasoning"})
"""Responses output items that are text or reasoning; any other kind is a tool call of some sort."""


def replace(obj: Any, **changes: Any) -> Any:
    """A shallow copy of ``obj`` with ``changes``: same type, every other field kept."""
    if isinstance(obj, dict):
        return {**obj, **changes}
    copy = obj.model_copy(update=changes)
    for name, value in changes.items():
        # LiteLLM keeps some fields as plain attributes, which model_copy(update=) does not reach.
        if getattr(copy, name, None) is not value:
            setattr(copy, name, value)
    return copy


def empty_delta(delta: Any) -> Any:
    """A delta carrying nothing, as in the API's finish chunk."""
    if delta is None or isinstance(delta, dict):
        return {}
    try:
        return type(delta)()
    except Exception:  # a delta type with required fields
        return replace(delta, content=None, role=None, tool_calls=None)


def _model_in(annotation: Any) -> Any:
    """The pydantic model class in a field's annotation (``Optional[X]`` -> ``X``), or ``None``."""
    if isinstance(annotation, type) and hasattr(annotation, "model_validate"):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def build(owner: Any, field: str, values: dict[str, Any]) -> Any:
    """A value for ``owner.field`` made from plain ``values``, of the type the field declares."""
    if isinstance(owner, dict):
        return values
    fields = getattr(type(owner), "model_fields", None) or {}
    info = fields.get(field)
    cls = _model_in(info.annotation) if info is not None else _sibling_model(owner, field)
    if cls is None:
        return _Plain(values)  # a type that declares no such field, nor a class for it
    try:
        return cls.model_validate(values)
    except ValueError:  # a version of the type that requires more than we know: fields unchecked
        return cls.model_construct(**values)


def _sibling_model(owner: Any, field: str) -> Any:
    """The model class named after ``field`` (``usage`` -> ``Usage``) in the module of ``owner``'s
    class: LiteLLM's stream chunks keep ``usage`` as a plain attribute, but a LiteLLM proxy
    serializes it, so it must be the real ``Usage`` model rather than a stand-in."""
    module = sys.modules.get(type(owner).__module__)
    cls = getattr(module, "".join(part.title() for part in field.split("_")), None)
    return cls if isinstance(cls, type) and hasattr(cls, "model_validate") else None


class _Plain:
    """Attribute access to plain values, for objects whose type we cannot find."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def model_dump(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__dict__!r})"


def event_like(sample: Any, class_name: str, fields: dict[str, Any]) -> Any:
    """A stream event of the kind ``fields["type"]`` names, made like ``sample`` (a sibling event).

    The event classes are looked up, by name, in the package ``sample``'s class comes from, which
    is loaded already (nothing is imported); a source that has no such class gets a copy of
    ``sample`` with the fields replaced, which reads the same by ``.type``.
    """
    if isinstance(sample, dict):
        return fields
    package = sys.modules.get(type(sample).__module__.rpartition(".")[0])
    cls = getattr(package, class_name, None)
    if isinstance(cls, type) and hasattr(cls, "model_construct"):
        return cls.model_construct(**fields)
    return replace(sample, **fields)


def cut_part(part: Any, text: str) -> Any:
    """An ``output_text`` part holding ``text``; annotations and logprobs past the cut go."""
    changes: dict[str, Any] = {"text": text}
    annotations = get(part, "annotations")
    if annotations:
        changes["annotations"] = [a for a in annotations if (get(a, "end_index") or 0) <= len(text)]
    logprobs = get(part, "logprobs")
    if logprobs:
        changes["logprobs"] = _trim_tokens(logprobs, len(text))
    return replace(part, **changes)


def trim_logprobs(logprobs: Any, length: int) -> Any:
    """Chat ``logprobs`` for the first ``length`` characters of the content."""
    content = get(logprobs, "content") if logprobs is not None else None
    if not content:
        return logprobs
    return replace(logprobs, content=_trim_tokens(content, length))


def _trim_tokens(entries: list[Any], length: int) -> list[Any]:
    kept: list[Any] = []
    seen = 0
    for entry in entries:
        seen += len(get(entry, "token") or "")
        if seen > length:
            break
        kept.append(entry)
    return kept
