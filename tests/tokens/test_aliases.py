"""Proxy model names resolve to the model behind them, for encodings, prices and windows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tokenmw._tokens import aliases, encodings, prices


@pytest.fixture
def alias() -> Iterator[None]:
    yield
    aliases.set_alias("team-fast", None)
    aliases.set_alias("team-claude", None)


def test_an_alias_counts_and_prices_as_its_deployment(alias: None) -> None:
    assert encodings.encoding_name_for("team-fast") == encodings.DEFAULT_ENCODING  # unknown name
    assert not encodings.is_known_model("team-fast")
    aliases.set_alias("team-fast", "openai/gpt-3.5-turbo")
    assert encodings.encoding_name_for("team-fast") == "cl100k_base"
    assert encodings.is_known_model("team-fast")
    assert prices.context_window("team-fast") == prices.context_window("gpt-3.5-turbo")


def test_the_proxys_configured_window_wins_and_unknown_models_stay_unknown(alias: None) -> None:
    aliases.set_alias("team-claude", "anthropic/claude-from-the-future", context_window=64)
    assert prices.context_window("team-claude") == 64
    assert not encodings.is_known_model("team-claude")  # counted with the closest encoding
    aliases.set_alias("team-claude", "anthropic/claude-from-the-future")
    assert prices.context_window("team-claude") is None
