"""``tokenmw bench`` end to end, small and fast: the workload runs in all three modes (never timed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tokenmw._cli.main import main

KEYS = {"wall_s", "wall_ratio", "input_tokens", "output_tokens", "cpu_us_per_call", "max_stall_ms"}


def test_bench_runs_three_modes_and_writes_the_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_"))}
    args = ["--agents", "3", "--turns", "2", "--latency-ms", "0", "--ms-per-token", "0", "--rounds", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "tokenmw", "bench", *args, "--json", str(out), "--quiet"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    modes = json.loads(out.read_text())["modes"]
    assert list(modes) == ["raw", "naive", "tokenmw"]
    for name, figures in modes.items():
        assert set(figures) >= KEYS, name
        assert figures["calls"] == 6, name
        assert figures["failures"] == 0, name
    raw, naive, tokenmw = modes["raw"], modes["naive"], modes["tokenmw"]
    assert 0 < tokenmw["input_tokens"] < raw["input_tokens"]
    assert 0 < naive["input_tokens"] < raw["input_tokens"]
    assert tokenmw["output_tokens"] < raw["output_tokens"]  # the word limit, followed by the server
    assert tokenmw["input_saved_pct"] > 0
    assert set(tokenmw["hook_us_per_call"]) == {"compress", "enhance", "limit_response", "count_tokens"}
    assert tokenmw["call_spans"] == 6
    assert raw["hook_us_per_call"] == {}
    for name in ("raw", "naive", "tokenmw"):
        assert any(line.startswith(name) for line in result.stdout.splitlines()), result.stdout


def test_bench_is_listed_and_rejects_bad_flags(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--help"]) == 0
    assert "bench" in capsys.readouterr().out
    env = {**os.environ}
    result = subprocess.run(
        [sys.executable, "-m", "tokenmw", "bench", "--agents", "0"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2
    assert "--agents" in result.stderr
