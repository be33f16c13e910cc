"""``tokenmw bench`` end to end, small and fast (2 agents, 2 turns, zero latency, 1 round), so the
benchmark never rots. It asserts what ran and what was saved, never a timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tokenmw._cli.main import main

KEYS = {"wall_s", "wall_ratio", "input_tokens", "output_tokens", "cpu_us_per_call", "max_stall_ms"}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:  # type: ignore[type-arg]
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_"))}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    args = ["--agents", "2", "--turns", "2", "--latency-ms", "0", "--ms-per-token", "0", "--rounds", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "tokenmw", "bench", *args, "--json", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, json.loads(Path(path).read_text())


def test_every_mode_ran_the_whole_workload(bench: tuple[str, dict]) -> None:  # type: ignore[type-arg]
    _, document = bench
    modes = document["modes"]
    assert list(modes) == ["raw", "naive", "tokenmw"]
    for figures in modes.values():
        assert set(figures) >= KEYS
        assert figures["calls"] == 4 and figures["failed_calls"] == 0
        assert figures["wall_s"] > 0 and figures["cpu_us_per_call"] > 0
    assert modes["raw"]["wall_ratio"] == 1.0


def test_savings_are_positive(bench: tuple[str, dict]) -> None:  # type: ignore[type-arg]
    modes = bench[1]["modes"]
    raw = modes["raw"]
    for name in ("naive", "tokenmw"):
        assert 0 < modes[name]["input_tokens"] < raw["input_tokens"]
        assert 0 < modes[name]["output_tokens"] < raw["output_tokens"]  # the word limit, followed
        assert modes[name]["input_saved_pct"] > 0


def test_hook_breakdown_comes_from_the_spans(bench: tuple[str, dict]) -> None:  # type: ignore[type-arg]
    tokenmw = bench[1]["modes"]["tokenmw"]
    assert set(tokenmw["hooks_us_per_call"]) == {"compress", "enhance", "limit_response", "count_tokens"}
    assert tokenmw["spans"] > 4  # a call span and hook spans per call
    assert set(bench[1]["modes"]["naive"]["hooks_us_per_call"]) >= {"compress", "count"}


def test_table_is_printed(bench: tuple[str, dict]) -> None:  # type: ignore[type-arg]
    out = bench[0]
    labels = ("wall time (median)", "input tokens (server)", "loop lag, longest", "process CPU per call")
    for label in labels:
        assert label in out
    assert "hook spans, tokenmw.hook.name" in out


def test_bench_is_listed_and_checks_its_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "bench" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["bench", "--agents", "0"])
