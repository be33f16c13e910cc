"""The ``tokenmw`` command: dispatch, and the demo end to end (small, against the embedded server)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tokenmw._cli.main import main


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("serve", "demo", "count", "compress", "bench"):
        assert command in out


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_no_command_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: tokenmw" in capsys.readouterr().out


def run_demo(*args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    """``tokenmw demo ARGS`` in a subprocess, with no OPENAI_/OTEL_ variables but ``env_extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OTEL_"))}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env.update(env_extra)
    result = subprocess.run(
        [sys.executable, "-m", "tokenmw", "demo", *args], capture_output=True, text=True, timeout=180, env=env
    )
    assert result.returncode == 0, result.stderr
    return result


def test_demo_runs_and_reports() -> None:
    result = run_demo("--agents", "3", "--turns", "3", "--latency", "0")
    out = result.stdout
    assert "3 agents x 3 turns = 9 calls" in out
    assert "embedded server" in out
    for hook in ("compress", "enhance", "limit_response", "count_tokens"):
        assert hook in out, out
    calls_row = next(line for line in out.splitlines() if line.startswith("calls"))
    assert calls_row.split()[1:3] == ["9", "9"]


def test_demo_uses_the_endpoint_named_by_openai_base_url(server) -> None:  # type: ignore[no-untyped-def]
    server.reset()
    # A compatible server that needs no key.
    result = run_demo("--agents", "2", "--turns", "1", "--rounds", "1", OPENAI_BASE_URL=server.base_url)
    assert server.base_url in result.stdout
    assert len(server.requests) >= 4  # warm-up and both runs reached the named server
