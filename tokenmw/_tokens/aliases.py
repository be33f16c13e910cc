"""Model aliases: the names a proxy routes by, mapped to the model behind each.

A LiteLLM proxy serves its models under names of its own (``model_name`` in its config), while the
tokenizer, the price and the context window are those of the deployment behind the name. The proxy
handler registers every alias it routes here, before the hooks run; the encoding and price lookups
read through this table, so each hook counts with the deployment's encoding and window without
knowing that a proxy exists. Outside a proxy the table is empty and each lookup is one dict miss.
"""

from __future__ import annotations

__all__ = ["configured_window", "resolve", "set_alias"]

_MAX_ALIASES = 4096  # a proxy has tens; the bound only stops a flood of made-up names

_targets: dict[str, str] = {}
_windows: dict[str, int] = {}


def set_alias(alias: str, target: str | None, *, context_window: int | None = None) -> None:
    """Count ``alias`` as ``target`` (e.g. ``"claude"`` -> ``"anthropic/claude-sonnet-4"``), with
    ``context_window`` input tokens when the proxy's config states it (``model_info``)."""
    if len(_targets) >= _MAX_ALIASES and alias not in _targets:
        return
    if target and target != alias:
        _targets[alias] = target
    else:
        _targets.pop(alias, None)
    if context_window is not None and context_window > 0:
        _windows[alias] = context_window
    else:
        _windows.pop(alias, None)


def resolve(model: str) -> str:
    """The model behind ``model`` if it is a registered alias, else ``model`` itself."""
    return _targets.get(model, model)


def configured_window(model: str) -> int | None:
    """The context window the proxy's config gives ``model``; ``None`` when it gives none."""
    return _windows.get(model)
