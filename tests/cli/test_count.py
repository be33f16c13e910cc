"""``tokenmw count``: messages, request bodies and plain text, from a file or stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tokenmw._cli.count import count_document, run_count_cli
from tokenmw._tokens.encodings import encoding_for

from ..tokens.test_counting import COOKBOOK_MESSAGES, COOKBOOK_TOOL_MESSAGES, COOKBOOK_TOOLS


def write(tmp_path: Path, content: object) -> str:
    path = tmp_path / "doc.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = run_count_cli(list(argv))
    out, err = capsys.readouterr()
    return status, out.strip(), err


def test_messages_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, COOKBOOK_MESSAGES)
    assert run(capsys, path)[:2] == (0, "124")
    assert run(capsys, path, "--model", "gpt-4")[:2] == (0, "129")


def test_chat_request_body_uses_its_model_and_tools(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {"model": "gpt-4", "messages": COOKBOOK_TOOL_MESSAGES, "tools": COOKBOOK_TOOLS}
    path = write(tmp_path, body)
    assert run(capsys, path)[:2] == (0, "105")
    assert run(capsys, path, "--model", "gpt-4o")[:2] == (0, "101")


def test_responses_request_body(tmp_path: Path) -> None:
    result = count_document(json.dumps({"model": "gpt-4o", "input": "Hello there"}))
    assert result.read_as == "responses request"
    assert result.tokens == count_document(json.dumps([{"role": "user", "content": "Hello there"}])).tokens


def test_plain_text_counts_the_text_alone() -> None:
    text = "Hello world, this is plain text."
    result = count_document(text)
    assert result.read_as == "plain text"
    assert result.tokens == len(encoding_for("gpt-4o").encode_ordinary(text))
    assert not result.estimated


def test_estimates_are_labelled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, COOKBOOK_MESSAGES)
    status, out, _ = run(capsys, path, "--model", "my-local-llama")
    assert (status, out) == (0, "124 (estimated)")


def test_tool_shapes_without_an_api_figure_are_labelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nested = {
        "type": "function",
        "function": {
            "name": "create_order",
            "description": "Create an order",
            "parameters": {
                "type": "object",
                "properties": {
                    "address": {
                        "type": "object",
                        "description": "Where to ship",
                        "properties": {"city": {"type": "string", "description": "City"}},
                    }
                },
            },
        },
    }
    exact = write(tmp_path, {"model": "gpt-4", "messages": COOKBOOK_TOOL_MESSAGES, "tools": COOKBOOK_TOOLS})
    assert run(capsys, exact)[1] == "105"
    body = {"model": "gpt-4", "messages": COOKBOOK_TOOL_MESSAGES, "tools": [*COOKBOOK_TOOLS, nested]}
    status, out, _ = run(capsys, write(tmp_path, body))
    assert status == 0 and out.endswith(" (estimated)") and int(out.split()[0]) > 105


def test_stdin_and_verbose() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tokenmw", "count", "-", "-v"],
        input=json.dumps(COOKBOOK_MESSAGES),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "124"
    assert "messages" in result.stderr and "o200k_base" in result.stderr


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "/nonexistent/file.json")
    assert status == 2
    assert "cannot read" in err


@pytest.mark.parametrize("content", ["", "[1, 2]", '"just a string"', "{not json", "<|endoftext|>"])
def test_odd_files_count_as_text(content: str) -> None:
    result = count_document(content)
    assert result.read_as == "plain text"
    assert result.tokens >= 0
