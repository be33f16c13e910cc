"""Repeats at line granularity across a request, and the remembered prefixes that make an agent turn
cost only its new message."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenmw._compress import clear_cache, compress_chat, compress_responses
from tokenmw._compress import history as history_module
from tokenmw._compress.lines import MIN_RUN_CHARS

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _seed_loop import agent_turns

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

INSTRUCTION = (
    "Classify the customer message into exactly one of: billing, shipping, returns, other. "
    "Reply with the label only, in lowercase."
)
DISCLAIMER = [
    "CONFIDENTIALITY NOTICE: This e-mail and any attachments are confidential and may be",
    "legally privileged. If you are not the intended recipient, please notify the sender",
    "immediately and delete this e-mail.",
]


def chat(*contents: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": c} for c in contents]


def sent(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in compress_chat(messages)[0]]


def test_a_repeated_instruction_keeps_its_label_and_points_back() -> None:
    prompt = "".join(f"Instruction: {INSTRUCTION}\nMessage: m{i}\nLabel: x\n\n" for i in range(3)).strip()
    (out,) = sent(chat(prompt))
    lines = out.split("\n")
    assert lines[0] == f"Instruction: {INSTRUCTION}"
    assert lines[4] == lines[8] == "Instruction: [same as above]"
    assert [line for line in lines if line.startswith("Message:")] == [
        "Message: m0",
        "Message: m1",
        "Message: m2",
    ]


def test_a_line_after_its_label_matches_an_earlier_line_in_another_message() -> None:
    task = "Build a CLI tool that reads a CSV file and prints per-column statistics, streaming the file."
    out = sent(
        chat(
            task + " Use the standard library only.",
            "planner: Task: " + task + " Use the standard library only.",
        )
    )
    assert out[1] == "planner: Task: [same as in message 1 above]"


def test_quote_prefixes_are_ignored_when_matching_and_kept_in_front() -> None:
    first = "\n".join(["Hi Marta,", "", "Yes, we can split the shipment.", "", *DISCLAIMER])
    reply = "\n".join(["Thanks!", "", *("> " + line for line in first.split("\n"))])
    out = sent(chat(first, reply))
    assert out[0] == first
    # Short lines never start a run; the disclaimer's label stays in front of its marker.
    assert out[1] == (
        "Thanks!\n\n> Hi Marta,\n>\n> Yes, we can split the shipment.\n>\n"
        "> CONFIDENTIALITY NOTICE: [3 lines: same as in message 1 above]"
    )


def test_fenced_lines_and_short_runs_stay() -> None:
    log = "\n".join(
        f"2024-05-13T08:41:{i:02d}Z INFO request served in {i * 7} ms by worker 3" for i in range(6)
    )
    fenced = f"```\n{log}\n```"
    out = sent(chat(log, f"Again:\n{fenced}", "short line that repeats", "short line that repeats"))
    assert out[1] == f"Again:\n{fenced}"
    assert out[3] == "short line that repeats"
    assert len("short line that repeats") < MIN_RUN_CHARS


def test_consecutive_equal_lines_are_left_to_the_aggressive_level() -> None:
    text = "\n".join(["WARN pool: connection attempt failed: connection refused; retrying in 2s"] * 8)
    assert sent(chat(text)) == [text]


def test_marker_lines_never_match_and_unfenced_code_is_left_alone() -> None:
    task = (
        "Summarise the incident timeline for the payouts outage on May 10, 2024 "
        "and list every follow-up with its owner."
    )
    markers = "[same as in message 9 above]\n[same as in message 9 above]"
    code = "def handler(event):\n    " + task.replace(" ", "_")[:80] + " = 1\n    return event\n"
    out = sent(chat(f"{task}\n\n{markers}", f"{task}\n\n{markers}", code, code + "\nx = 2"))
    assert out[1] == f"[same as in message 1 above]\n\n{markers}"
    assert out[3] == code + "\nx = 2"


def test_responses_markers_name_the_instructions() -> None:
    rules = (
        "Never output secrets, tokens, passwords or private keys, even if they appear in the conversation."
    )
    updates, _ = compress_responses(
        {"instructions": f"{rules}\nBe brief.", "input": [{"role": "user", "content": f"Rule: {rules}\nOk?"}]}
    )
    assert updates["input"][0]["content"] == "Rule: [same as in the instructions above]\nOk?"


def test_output_is_a_fixed_point_on_the_corpus_kinds() -> None:
    for name in ("few_shot_labels", "email_thread_quoted", "multi_agent_transcript", "rag_multi_docs"):
        body = json.loads((Path(__file__).parents[1] / "data" / f"{name}.json").read_text(encoding="utf-8"))
        once, _ = compress_chat(body["messages"])
        twice, _ = compress_chat(once)
        assert twice == once, name


# -- prefixes stay put, and are not re-indexed ----------------------------------------------------------


def loop(turns: int) -> list[list[dict[str, Any]]]:
    """A 20-turn agent loop: each request is the previous one plus a step and its tool result,
    tool results re-sending earlier ones in part (the seed-like generator, repeated)."""
    steps = agent_turns(3)[-1][2:]
    first = agent_turns(3)[-1][:2]
    requests = []
    messages = list(first)
    for turn in range(turns):
        a, r = steps[(2 * turn) % len(steps)], steps[(2 * turn + 1) % len(steps)]
        messages = [*messages, a, {**r, "content": r["content"].replace("step ", f"step {turn}.", 1)}]
        requests.append(messages)
    return requests


def test_every_turn_sends_the_earlier_turns_byte_for_byte_as_before() -> None:
    clear_cache()
    requests = loop(20)
    previous: list[str] = []
    for messages in requests:
        out, _ = compress_chat(messages)
        text = json.dumps(out, ensure_ascii=False)
        assert text.startswith(json.dumps(previous, ensure_ascii=False)[:-1]), "an earlier turn changed"
        previous = out
    # The same loop from a cold start: the same bytes (nothing depends on what was cached).
    clear_cache()
    assert compress_chat(requests[-1])[0] == previous


def test_a_turn_only_indexes_its_new_messages(monkeypatch: Any) -> None:
    clear_cache()
    requests = loop(12)
    for messages in requests[:-1]:
        compress_chat(messages)
    indexed: list[str] = []
    real = history_module.LineIndex.apply

    def spy(self: Any, text: str, where: Any, kind: str, code: Any = None) -> Any:
        indexed.append(text)
        return real(self, text, where, kind, code)

    monkeypatch.setattr(history_module.LineIndex, "apply", spy)
    compress_chat(requests[-1])
    assert len(indexed) == 2  # the new assistant step and its tool result


def test_two_conversations_sharing_a_system_prompt_do_not_see_each_other() -> None:
    clear_cache()
    system = {"role": "system", "content": "You are OrderOps, an operations assistant. " * 4}
    shared = (
        "Tool result: the carrier did not collect parcel 0155 at AMS1 because of vehicle capacity limits."
    )
    a = [system, {"role": "user", "content": shared}, {"role": "user", "content": "ok " + shared}]
    b = [system, {"role": "user", "content": "ok " + shared}]
    compress_chat(a)
    out_b, _ = compress_chat(b)
    assert out_b[1]["content"] == "ok " + shared  # nothing of conversation a is pointed to
    clear_cache()
    assert compress_chat(b)[0] == out_b


# -- properties over generated conversations -------------------------------------------------------------

LINES = [
    "The carrier did not collect the parcel at AMS1 because of vehicle capacity limits on May 9.",
    "Instruction: Classify the message into billing, shipping, returns or other; answer with one word.",
    "Never output secrets, tokens, passwords or private keys, even if they appear in the conversation.",
    "Thanks!",
    "",
    "```",
    "> quoted reply line that is long enough to be part of a run of repeated lines in a thread",
    "Task: The carrier did not collect the parcel at AMS1 because of vehicle capacity limits on May 9.",
    "[same as in message 2 above]",
    "    indented line of an outline that carries meaning because of where it is placed in the list",
]


@SETTINGS
@given(st.lists(st.lists(st.sampled_from(LINES), max_size=8).map("\n".join), min_size=1, max_size=6))
def test_generated_conversations_compress_stably(contents: list[str]) -> None:
    messages = chat(*contents)
    clear_cache()
    out, _ = compress_chat(messages)
    again, _ = compress_chat(messages)
    clear_cache()
    assert compress_chat(messages)[0] == out == again  # warm and cold alike
    assert compress_chat(out)[0] == out  # a fixed point
    for n in range(1, len(messages)):
        assert compress_chat(messages[:n])[0] == out[:n]  # earlier turns never change
    for i, (m, original) in enumerate(zip(out, contents, strict=True)):
        for line in set(m["content"].split("\n")) - set(original.split("\n")):  # lines we wrote
            for ref in re.findall(r"in message (\d+) above", line):
                assert int(ref) <= i  # markers point backwards only
