"""Model prices and context windows: genai-prices first, litellm's table where that is installed.

``genai-prices`` (the Pydantic team's maintained price data, MIT) ships its table inside the
package and reads it without the network; it only fetches when its ``UpdatePrices`` is started,
which tokenmw never does. litellm's ``model_prices_and_context_window_backup.json`` (~5k models,
also fine-tune prices) is used for what genai-prices does not know, when litellm is installed; the
file is found with ``find_spec`` (which runs no litellm code: importing litellm costs seconds).

Both are read once per process (~0.3 s for genai-prices, ~50 ms for litellm's file), lazily: on
the first cost or context-window question, in a worker thread from async code, or ahead of time
with ``preload()``. Only the few numbers tokenmw uses are kept per model. Tiered prices (a higher
rate past some prompt length) are taken at their base rate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tokenmw._tokens import aliases
from tokenmw._tokens.files import bundled_path
from tokenmw._tokens.models import fine_tune_base, lookup_names, provider_of, strip_date, strip_provider

__all__ = [
    "ModelPrice",
    "context_window",
    "context_window_async",
    "context_window_source",
    "cost_usd",
    "preload",
    "price_for",
    "price_source",
]

logger = logging.getLogger("tokenmw")

PRICE_FILE = "model_prices_and_context_window_backup.json"
GENAI_PRICES = "genai-prices"
LITELLM = "litellm"


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per token, and the context window, of one model."""

    input: float | None
    output: float | None
    cached_input: float | None
    max_input_tokens: int | None
    source: str = LITELLM
    """Which table the entry came from (``genai-prices`` or ``litellm``)."""


@dataclass(slots=True)
class _Tables:
    genai: Any  # genai_prices' DataSnapshot, or None when the package is not installed
    litellm: dict[str, ModelPrice]


_tables: _Tables | None = None
_load_lock = threading.Lock()
_resolved: dict[str, ModelPrice | None] = {}


def price_file() -> Path | None:
    """Where litellm's table is, or ``None`` when litellm is not installed."""
    path = bundled_path(PRICE_FILE)
    return path if path is not None and path.is_file() else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _genai_snapshot() -> Any:
    try:
        from genai_prices import data_snapshot
    except ImportError:  # not installed (it needs Python >= 3.11)
        return None
    try:
        return data_snapshot.get_snapshot()  # the bundled data; never fetches
    except Exception:
        logger.warning("tokenmw: cannot read genai-prices' table", exc_info=True)
        return None


def _litellm_table() -> dict[str, ModelPrice]:
    table: dict[str, ModelPrice] = {}
    path = price_file()
    if path is None:
        return table
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
    return table


def _load() -> _Tables:
    global _tables
    if _tables is not None:
        return _tables
    with _load_lock:
        if _tables is None:
            tables = _Tables(genai=_genai_snapshot(), litellm=_litellm_table())
            if tables.genai is None and not tables.litellm:
                logger.debug("tokenmw: no price table found; costs and context windows unknown")
            _tables = tables
        return _tables


_preload_thread: threading.Thread | None = None


def preload() -> threading.Thread | None:
    """Read the tables in a daemon thread so the first call does not wait for them (once)."""
    global _preload_thread
    with _load_lock:
        if _tables is not None or _preload_thread is not None:
            return _preload_thread
        _preload_thread = threading.Thread(target=_load, name="tokenmw-prices", daemon=True)
    _preload_thread.start()
    return _preload_thread


def _per_token(value: Any) -> float | None:
    value = getattr(value, "base", value)  # TieredPrices: the rate below the first tier
    try:
        return float(value) / 1_000_000 if value is not None else None
    except (TypeError, ValueError):
        return None


def _from_genai(snapshot: Any, model: str) -> ModelPrice | None:
    """genai-prices' entry for ``model`` (a provider prefix it knows picks the provider)."""
    name = strip_provider(model)
    info = None
    # "azure/gpt-4o": Azure's price; a date it does not know yet: the undated model's.
    for ref, provider in dict.fromkeys(
        (ref, provider) for ref in (name, strip_date(name)) for provider in (provider_of(model), None)
    ):
        try:
            info = snapshot.find_provider_model(ref, None, provider, None)[1]
            break
        except LookupError:
            continue  # a provider or model it does not know
        except Exception:  # a table shape this version does not expect: never fail a call
            logger.debug("tokenmw: genai-prices lookup of %r failed", model, exc_info=True)
            return None
    if info is None:
        return None
    try:
        prices = info.get_prices(datetime.now(tz=timezone.utc))
    except Exception:
        return None
    window = getattr(info, "context_window", None)
    return ModelPrice(
        input=_per_token(getattr(prices, "input_mtok", None)),
        output=_per_token(getattr(prices, "output_mtok", None)),
        cached_input=_per_token(getattr(prices, "cache_read_mtok", None)),
        max_input_tokens=window if isinstance(window, int) and window > 0 else None,
        source=GENAI_PRICES,
    )


def _find(tables: _Tables, model: str) -> ModelPrice | None:
    base = fine_tune_base(strip_provider(model))
    # A fine-tune has its own (higher) price: genai-prices has none, litellm's table has some.
    if tables.genai is not None and base is None:
        found = _from_genai(tables.genai, model)
        if found is not None:
            return found
    for name in lookup_names(model):
        found = tables.litellm.get(name)
        if found is not None:
            return found
    if tables.genai is not None and base is not None:
        return _from_genai(tables.genai, base)  # the base model's price, as a last resort
    return None


def price_for(model: str | None) -> ModelPrice | None:
    """The price entry of a model (exact name, then without provider prefix, fine-tune suffix or
    date); ``None`` when no table knows it. Reads the tables on first use."""
    if not model:
        return None
    model = aliases.resolve(model)
    if model in _resolved:
        return _resolved[model]
    found = _find(_load(), model)
    if len(_resolved) < 4096:
        _resolved[model] = found
    return found


def price_source(model: str | None) -> str | None:
    """Which table priced ``model`` (``genai-prices`` or ``litellm``), or ``None``."""
    price = price_for(model)
    return price.source if price is not None else None


def context_window(model: str | None) -> int | None:
    """The model's maximum input tokens, where the proxy's config or a table knows it."""
    window = aliases.configured_window(model) if model else None
    if window is not None:
        return window
    price = price_for(model)
    return price.max_input_tokens if price is not None else None


def context_window_source(model: str | None) -> str | None:
    """Where ``context_window(model)`` came from, in words (for errors): the proxy's config or
    the price table that knew it; ``None`` when none did."""
    if model and aliases.configured_window(model) is not None:
        return f"the context window of {model} in the proxy's model_info"
    price = price_for(model)
    if price is None or price.max_input_tokens is None:
        return None
    return f"the context window of {model} in {price.source}'s table"


async def context_window_async(model: str | None) -> int | None:
    """``context_window`` that reads the tables in a worker thread the first time."""
    if _tables is None:
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


# A forked child has none of the parent's threads: a pool without its workers, or a lock one of
# them held, would hang the child's first call (gunicorn --preload, multiprocessing, celery).
def _reset_in_child() -> None:
    global _load_lock, _preload_thread
    _load_lock = threading.Lock()
    if _tables is None:
        _preload_thread = None  # it did not finish in the parent, and it is not running here


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
