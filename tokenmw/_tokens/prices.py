"""Model prices and context windows, read from the table bundled in the installed litellm wheel.

litellm ships ``model_prices_and_context_window_backup.json`` (~3.5 MB, ~5k models). Importing
litellm to read it costs seconds, so the file is located with ``find_spec`` (which runs no litellm
code) and parsed once per process (~50 ms), lazily: on the first cost or context-window question,
in a worker thread from async code, or ahead of time with ``preload()``. Only the few numbers
tokenmw uses are kept; the parsed JSON is dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenmw._tokens import aliases
from tokenmw._tokens.files import bundled_path

__all__ = ["ModelPrice", "context_window", "context_window_async", "cost_usd", "preload", "price_for"]

logger = logging.getLogger("tokenmw")

PRICE_FILE = "model_prices_and_context_window_backup.json"

_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$|-\d{4}$")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per token, and the context window, of one model."""

    input: float | None
    output: float | None
    cached_input: float | None
    max_input_tokens: int | None


_table: dict[str, ModelPrice] | None = None
_load_lock = threading.Lock()
_resolved: dict[str, ModelPrice | None] = {}


def price_file() -> Path | None:
    """Where the bundled table is, or ``None`` when litellm is not installed."""
    path = bundled_path(PRICE_FILE)
    return path if path is not None and path.is_file() else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _load() -> dict[str, ModelPrice]:
    global _table
    if _table is not None:
        return _table
    with _load_lock:
        if _table is not None:
            return _table
        table: dict[str, ModelPrice] = {}
        path = price_file()
        if path is None:
            logger.debug("tokenmw: no litellm price table found; costs and context windows unknown")
        else:
            try:
                raw = json.loads(path.read_bytes())
            except (OSError, ValueError):
                logger.warning("tokenmw: cannot read the price table %s", path, exc_info=True)
                raw = {}
            for model, entry in raw.items() if isinstance(raw, dict) else ():
                if not isinstance(entry, dict):
                    continue
                window = entry.get("max_input_tokens")
                price = ModelPrice(
                    input=_number(entry.get("input_cost_per_token")),
                    output=_number(entry.get("output_cost_per_token")),
                    cached_input=_number(entry.get("cache_read_input_token_cost")),
                    max_input_tokens=window if isinstance(window, int) and window > 0 else None,
                )
                if price.input is not None or price.max_input_tokens is not None:
                    table[model] = price
        _table = table
        return table


def loaded() -> bool:
    """Whether the table was read already (so lookups never touch the disk)."""
    return _table is not None


_preload_thread: threading.Thread | None = None


def preload() -> threading.Thread | None:
    """Read the table in a daemon thread so the first call does not wait for it (once)."""
    global _preload_thread
    with _load_lock:
        if _table is not None or _preload_thread is not None:
            return _preload_thread
        _preload_thread = threading.Thread(target=_load, name="tokenmw-prices", daemon=True)
    _preload_thread.start()
    return _preload_thread


def _candidates(model: str) -> list[str]:
    names = [model]
    base = model.rsplit("/", 1)[-1]
    if base.startswith("ft:"):  # ft:gpt-4o-mini-2024-07-18:org::id
        fine_tuned = "ft:" + base[3:].split(":", 1)[0]
        names += [fine_tuned, fine_tuned[3:]]
    else:
        names.append(base)
    names += [_DATE_SUFFIX.sub("", n) for n in names]
    names += [n.lower() for n in names]
    return names


def price_for(model: str | None) -> ModelPrice | None:
    """The price entry of a model (exact name, then without provider prefix, fine-tune suffix or
    date); ``None`` when the table does not know it. Reads the table on first use."""
    if not model:
        return None
    model = aliases.resolve(model)
    if model in _resolved:
        return _resolved[model]
    table = _load()
    found = None
    for name in _candidates(model):
        found = table.get(name)
        if found is not None:
            break
    if len(_resolved) < 4096:
        _resolved[model] = found
    return found


def context_window(model: str | None) -> int | None:
    """The model's maximum input tokens, where the proxy's config or the table knows it."""
    window = aliases.configured_window(model) if model else None
    if window is not None:
        return window
    price = price_for(model)
    return price.max_input_tokens if price is not None else None


async def context_window_async(model: str | None) -> int | None:
    """``context_window`` that reads the table in a worker thread the first time."""
    if _table is None:
        await asyncio.to_thread(_load)
    return context_window(model)


def cost_usd(
    model: str | None, input_tokens: int, cached_input_tokens: int, output_tokens: int
) -> float | None:
    """Estimated USD cost of tokens on a model (cached input at its discounted price); ``None``
    when the model has no price."""
    price = price_for(model)
    if price is None or price.input is None:
        return None
    cached = min(cached_input_tokens, input_tokens)
    cached_rate = price.cached_input if price.cached_input is not None else price.input
    return (
        (input_tokens - cached) * price.input + cached * cached_rate + output_tokens * (price.output or 0.0)
    )
