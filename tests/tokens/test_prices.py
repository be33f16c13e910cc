"""Prices and context windows: genai-prices first, litellm's table for what it lacks, no network."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tokenmw._tokens import prices as _prices

try:
    import genai_prices  # noqa: F401
except ImportError:  # Python 3.10: genai-prices needs 3.11; litellm's table is the only source
    HAS_GENAI_PRICES = False
else:
    HAS_GENAI_PRICES = True
needs_genai_prices = pytest.mark.skipif(not HAS_GENAI_PRICES, reason="genai-prices needs Python >= 3.11")

# OpenAI's published list prices (USD per 1M tokens: input, cached input, output) and windows.
OPENAI_LIST = {
    "gpt-4o": (2.50, 1.25, 10.00, 128_000),
    "gpt-4o-mini": (0.15, 0.075, 0.60, 128_000),
    "o3": (2.00, 0.50, 8.00, 200_000),
}


@needs_genai_prices
@pytest.mark.parametrize("model", sorted(OPENAI_LIST))
def test_openai_models_are_priced_from_genai_prices(model: str) -> None:
    price = _prices.price_for(model)
    assert price is not None and price.source == _prices.GENAI_PRICES
    per_million = (price.input, price.cached_input, price.output)
    assert [round(p * 1e6, 4) for p in per_million if p is not None] == list(OPENAI_LIST[model][:3])
    assert price.max_input_tokens == OPENAI_LIST[model][3]


@pytest.mark.parametrize(
    ("model", "like"),
    [
        ("openai/gpt-4o", "gpt-4o"),  # LiteLLM's provider prefix
        ("azure/gpt-4o", "gpt-4o"),  # a provider genai-prices knows: its own entry
        ("gpt-4o-2024-08-06", "gpt-4o"),  # a dated snapshot
        ("gpt-4o-mini-2099-01-01", "gpt-4o-mini"),  # a date no table knows yet
        ("GPT-4o", "gpt-4o"),
    ],
)
def test_name_spellings_find_the_model(model: str, like: str) -> None:
    price, reference = _prices.price_for(model), _prices.price_for(like)
    assert price is not None and reference is not None
    assert (price.input, price.output) == (reference.input, reference.output)


def test_fine_tunes_use_litellms_fine_tune_price_when_installed() -> None:
    price = _prices.price_for("ft:gpt-4o-mini-2024-07-18:acme::abc123")
    base = _prices.price_for("gpt-4o-mini")
    assert price is not None and base is not None
    assert price.source == _prices.LITELLM
    assert price.input == pytest.approx(2 * base.input)  # fine-tuned inference costs double


def test_what_genai_prices_lacks_comes_from_litellm() -> None:
    price = _prices.price_for("text-embedding-3-small")
    assert price is not None and price.source == _prices.LITELLM


def test_unknown_models_have_no_price_and_no_window() -> None:
    assert _prices.price_for("my-local-llama") is None
    assert _prices.context_window("my-local-llama") is None
    assert _prices.cost_usd("my-local-llama", 10, 0, 10) is None
    assert _prices.price_source(None) is None


_OFFLINE_SCRIPT = textwrap.dedent(
    """
    import socket, sys
    sys.modules["litellm"] = None  # as if litellm were not installed

    def no_network(*args, **kwargs):
        raise OSError("network disabled by the test")

    socket.socket.connect = no_network
    socket.getaddrinfo = no_network

    from tokenmw._tokens import prices
    price = prices.price_for("gpt-4o-mini")
    assert price is not None and price.source == "genai-prices", price
    assert prices.price_for("text-embedding-3-small") is None  # only litellm's table has it
    print(prices.context_window("gpt-4o-mini"), round(prices.cost_usd("gpt-4o-mini", 1000, 0, 100), 8))
    """
)


@needs_genai_prices
def test_genai_prices_alone_and_offline(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _OFFLINE_SCRIPT],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["128000", str(round(1000 * 0.15e-6 + 100 * 0.6e-6, 8))]


@pytest.mark.skipif(HAS_GENAI_PRICES, reason="only where genai-prices cannot be installed")
def test_without_genai_prices_litellms_table_prices_openai_models() -> None:
    price = _prices.price_for("gpt-4o")
    assert price is not None and price.source == "litellm"
    assert round(price.input * 1e6, 4) == OPENAI_LIST["gpt-4o"][0]
