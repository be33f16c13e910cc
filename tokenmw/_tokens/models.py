"""Model names as callers write them, reduced to the name our tables know.

Requests name models in many spellings: ``gpt-4o``, ``openai/gpt-4o`` (LiteLLM, proxies),
``azure/my-deployment``, ``ft:gpt-4o-mini-2024-07-18:acme::abc123`` (fine-tunes),
``gpt-4o-2024-08-06`` (dated snapshots). Every table tokenmw keeps (encodings, image rules,
reasoning models, prices) is looked up by the same reduction, so it lives here, once.
"""

from __future__ import annotations

import re

__all__ = ["base_model", "fine_tune_base", "lookup_names", "provider_of", "strip_date", "strip_provider"]

_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$|-\d{4}$")
_FINE_TUNE = "ft:"


def provider_of(model: str) -> str | None:
    """The provider prefix of a LiteLLM-style name (``anthropic/claude-3-5`` -> ``anthropic``)."""
    return model.split("/", 1)[0] if "/" in model else None


def strip_provider(model: str) -> str:
    """The name without any ``provider/`` (or ``router/provider/``) prefix."""
    return model.rsplit("/", 1)[-1]


def fine_tune_base(name: str) -> str | None:
    """The base model of a fine-tune id (``ft:gpt-4o-mini-2024-07-18:org::id`` ->
    ``gpt-4o-mini-2024-07-18``), or ``None`` when ``name`` is not one."""
    if not name.startswith(_FINE_TUNE):
        return None
    return name[len(_FINE_TUNE) :].split(":", 1)[0]


def strip_date(name: str) -> str:
    """The name without a snapshot date suffix (``-2024-08-06`` or ``-0613``)."""
    return _DATE_SUFFIX.sub("", name)


def base_model(model: str) -> str:
    """The lower-case model a name refers to: no provider prefix, a fine-tune's base model; the
    date suffix is kept (prefix tables match dated names anyway)."""
    name = strip_provider(model)
    return (fine_tune_base(name) or name).lower()


def lookup_names(model: str) -> list[str]:
    """Names to try in a table keyed by model, most specific first: as given, without provider
    prefix, a fine-tune as ``ft:<base>`` then its base, each also without date and lower-cased."""
    names = [model]
    name = strip_provider(model)
    base = fine_tune_base(name)
    if base is not None:
        names += [_FINE_TUNE + base, base]
    else:
        names.append(name)
    names += [strip_date(n) for n in names]
    names += [n.lower() for n in names]
    return list(dict.fromkeys(names))
