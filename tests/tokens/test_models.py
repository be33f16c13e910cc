"""The one model-name normaliser every table lookup goes through."""

from __future__ import annotations

import pytest

from tokenmw._tokens.models import base_model, fine_tune_base, lookup_names, provider_of, strip_date


@pytest.mark.parametrize(
    ("model", "base"),
    [
        ("gpt-4o", "gpt-4o"),
        ("openai/gpt-4o", "gpt-4o"),
        ("openrouter/openai/gpt-4o-mini", "gpt-4o-mini"),
        ("azure/GPT-4o", "gpt-4o"),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "gpt-4o-mini-2024-07-18"),
        ("openai/ft:o4-mini-2025-04-16:acme:run:x", "o4-mini-2025-04-16"),
        ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),  # dates stay: prefix tables match them
    ],
)
def test_base_model(model: str, base: str) -> None:
    assert base_model(model) == base


def test_provider_prefix() -> None:
    assert provider_of("anthropic/claude-3-5-sonnet") == "anthropic"
    assert provider_of("openrouter/openai/gpt-4o") == "openrouter"
    assert provider_of("gpt-4o") is None


def test_dates_and_fine_tunes() -> None:
    assert strip_date("gpt-4o-2024-08-06") == "gpt-4o"
    assert strip_date("gpt-4-0613") == "gpt-4"
    assert strip_date("gpt-4.1") == "gpt-4.1"
    assert fine_tune_base("gpt-4o") is None


def test_lookup_names_most_specific_first() -> None:
    assert lookup_names("openai/ft:gpt-4o-mini-2024-07-18:acme::abc") == [
        "openai/ft:gpt-4o-mini-2024-07-18:acme::abc",
        "ft:gpt-4o-mini-2024-07-18",
        "gpt-4o-mini-2024-07-18",
        "ft:gpt-4o-mini",
        "gpt-4o-mini",
    ]
    assert lookup_names("GPT-4o") == ["GPT-4o", "gpt-4o"]
