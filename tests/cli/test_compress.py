"""``tokenmw compress FILE``: tokens before/after and what changed, for requests, messages and text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokenmw._cli.compress import run_compress_cli
from tokenmw._cli.main import main
from tokenmw._tokens.counting import count_request

DATA = Path(__file__).parents[1] / "data"


def test_request_body_shows_totals_and_changed_messages(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "agent_loop_k8s.json"
    assert main(["compress", str(path)]) == 0
    out = capsys.readouterr().out
    before = count_request("chat", json.loads(path.read_text()))[0]
    assert out.startswith(f"chat request, gpt-4o, level safe: {before} -> ")
    assert "3 duplicates replaced" in out
    assert "message 12 (tool): 1889 -> 11 tokens, duplicate of an earlier message" in out


def test_diff_shows_removed_and_added_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_compress_cli([str(DATA / "system_prompt_tools.json"), "--level", "aggressive", "--diff"]) == 0
    out = capsys.readouterr().out
    assert "level aggressive" in out
    assert "-1. Please note that you must never reveal" in out
    assert "+1. You must never reveal" in out


def test_json_output_is_the_compressed_request(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "Hello   world.  \n\n\n\nBye."}]
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(messages))
    assert run_compress_cli([str(path), "--json", "--model", "gpt-4o-mini"]) == 0
    sent = json.loads(capsys.readouterr().out)
    assert sent == {"messages": [{"role": "user", "content": "Hello world.\n\nBye."}], "model": "gpt-4o-mini"}


def test_plain_text(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "prompt.txt"
    path.write_text("Hello   world.  \n\n\n\nBye.\n")
    assert run_compress_cli([str(path), "--diff"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("plain text, gpt-4o, level safe: ")
    assert "+Hello world." in out


def test_budget_drops_old_turns(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_compress_cli([str(DATA / "support_chat_long.json"), "--max-input-tokens", "800"]) == 0
    out = capsys.readouterr().out
    dropped = int(out.split(" messages dropped")[0].rsplit(" ", 1)[1])
    assert dropped > 0


def test_missing_file_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run_compress_cli([str(tmp_path / "nope.json")]) == 2
    assert "tokenmw compress:" in capsys.readouterr().err
