"""The compression engine rule by rule: protection, whitespace, JSON, dedup, aggressive extras, trim."""

from __future__ import annotations

import json

import pytest

from tokenmw._compress import clear_cache, compress_chat, compress_responses, compress_text
from tokenmw._compress import text as text_module
from tokenmw._compress.aggressive import collapse_repeats, remove_fillers, truncate_middle
from tokenmw._compress.codelike import looks_like_code
from tokenmw._compress.dedup import MIN_DUPLICATE_CHARS
from tokenmw._compress.jsoncompact import compact
from tokenmw._compress.trim import choose_cut, cut_points, pinned_count


def safe(text: str) -> str:
    return compress_text(text, "safe").text


def aggressive(text: str, tool: bool = False) -> str:
    return compress_text(text, "aggressive", tool=tool).text


# -- whitespace -----------------------------------------------------------------------------------


def test_prose_whitespace_is_normalised_but_indentation_kept() -> None:
    text = "Title   here  \n\n\n\n  - item   one\n    - nested\titem\n\u00a0Note:\u200b ok\ufeff\n"
    assert safe(text) == "Title here\n\n  - item one\n    - nested\titem\n Note: ok"


def test_markdown_table_padding_and_rule_shrink() -> None:
    table = "| Plan      | Price   |\n|:----------|--------:|\n| Pro       | $11.99  |"
    assert safe(table) == "| Plan | Price |\n|:---|---:|\n| Pro | $11.99 |"


def test_crlf_and_leading_blank_lines() -> None:
    assert safe("\r\n\r\nline one  \r\nline two\r\n") == "line one\nline two"


def test_text_without_waste_is_unchanged() -> None:
    clear_cache()
    text = "What is the capital of Australia?"
    result = compress_text(text)
    assert result.text is text and not result.changed


# -- protected regions ----------------------------------------------------------------------------


def test_fenced_code_is_byte_identical() -> None:
    code = '```python\ndef f(x):\n    return "a  b"   \n\n\n\n    # done\n```'
    out = safe(f"Look   at this:\n\n\n{code}\n\n\nThanks  ")
    assert code in out
    assert out.startswith("Look at this:\n\n```")


def test_unclosed_fence_protects_to_the_end() -> None:
    text = "Intro  text\n~~~\nraw   content  \n\n\n\nmore"
    assert safe(text) == "Intro text\n~~~\nraw   content  \n\n\n\nmore"


def test_inline_code_keeps_its_spaces() -> None:
    assert safe("Use  `a  =  1`  here") == "Use `a  =  1` here"


def test_urls_survive_invisible_character_removal() -> None:
    url = "https://example.com/a\u200bb?q=1"
    assert url in safe(f"See  {url}  now\u200b.")


def test_unfenced_source_code_is_left_alone() -> None:
    source = (
        "import os\n\n\ndef main(argv):\n    name = 'a  b'   # aligned  comment\n"
        "    if not argv:\n        return 1\n    return 0\n"
    )
    assert looks_like_code(source)
    assert safe(source) == source


def test_prose_and_logs_are_not_taken_for_code() -> None:
    prose = "If you need help, write to us.\nFor example: the API returns 42.\nThat is all."
    log = "2024-11-05 INFO  started worker 3\n2024-11-05 WARN  retrying (attempt 2/5)\n" * 5
    assert not looks_like_code(prose)
    assert not looks_like_code(log)


# -- JSON -------------------------------------------------------------------------------------------


def test_json_is_compacted_to_its_values_without_whitespace() -> None:
    value = {"name": "Caf\u00e9  M\u00fcnchen", "ids": [1, 2.5, -3e-05], "ok": True, "none": None}
    out = safe("Result:\n" + json.dumps(value, indent=2) + "\nDone.")
    compact_text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert out == f"Result:\n{compact_text}\nDone."
    assert json.loads(compact_text) == value


@pytest.mark.parametrize(
    "raw",
    [
        '{"a": 1, "a": 2}',  # duplicate keys: a dump would lose one
        '{"pi": 3.14159265358979323846264}',  # more digits than a float keeps
        '{"x": NaN}',
        '{"big": 1e400}',
        '{"s": "\\ud800"}',  # a lone surrogate must stay escaped
    ],
)
def test_json_that_would_not_round_trip_is_kept_as_written(raw: str) -> None:
    assert compact(raw) is None
    pretty = raw.replace(": ", ":   ")
    assert safe(f"Data:\n{pretty}\n") == f"Data:\n{pretty}"


def test_json_inside_prose_lines_loses_whitespace_between_tokens_only() -> None:
    text = 'The payload {"a":   1, "b": "x  y"} is sent inline.'
    assert safe(text) == 'The payload {"a":1,"b":"x  y"} is sent inline.'
    assert safe("[\n  1,\n  2\n] trailing words") == "[1,2] trailing words"
    # A lone bracket in prose is not JSON; inline code is never rewritten.
    assert safe("See [1] and {x}, then `{\"a\": 1}`.") == "See [1] and {x}, then `{\"a\": 1}`."


# -- checks and fallback ----------------------------------------------------------------------------


def test_a_rule_that_loses_a_digit_makes_the_text_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_cache()
    monkeypatch.setattr(text_module, "normalize_prose", lambda t, odd=True: t.replace("7", ""))
    text = "Order   7 shipped."
    result = compress_text(text)
    assert result.text is text
    assert result.fallback == "number"
    clear_cache()


def test_a_rule_that_drops_a_protected_region_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_cache()
    monkeypatch.setattr(text_module, "normalize_prose", lambda t, odd=True: t[:-1])
    text = "See https://example.com/x  and  `code`"
    result = compress_text(text, "aggressive")
    assert result.text is text and result.fallback == "protected region"
    clear_cache()


def test_results_are_cached_by_content() -> None:
    text = "Some   text " * 50
    first = compress_text(text)
    assert compress_text("".join(["Some   text "] * 50)) is first


# -- aggressive ------------------------------------------------------------------------------------


def test_fillers_are_removed_and_sentences_recapitalised() -> None:
    text = "Please note that the API is slow. In order to win, think step by step. Kindly reply."
    assert remove_fillers(text) == "The API is slow. To win, think step by step. Reply."


def test_fillers_inside_quotes_and_paths_stay() -> None:
    text = 'Replace "in order to" with "to". See /docs/kindly/x and kindly.'
    assert remove_fillers(text) == text


def test_identical_lines_collapse_with_a_count() -> None:
    assert collapse_repeats("a\nretry\nretry\nretry\nb\nb") == "a\nretry [×3]\nb\nb"
    once = collapse_repeats("x\nx\nx\nx [×3]\nx [×3]")
    assert collapse_repeats(once) == once


def test_huge_tool_output_keeps_head_and_tail() -> None:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"]
    lines = [f"line {i:05d} {words[i % 7]}={i * 7} {words[(i * 3) % 7]}" for i in range(2000)]
    text = "\n".join(lines)
    cut = truncate_middle(text)
    assert cut is not None and len(cut) < 12_000
    head, _, tail = cut.partition("\n[… ")
    assert text.startswith(head) and text.endswith(tail.partition("…]")[2])
    assert truncate_middle(cut) is None
    assert aggressive(text, tool=True) == cut
    assert aggressive(text, tool=False) == text


# -- messages and dedup ------------------------------------------------------------------------------


def long_output(tag: str) -> str:
    return "\n".join(f"{tag} row {i}: status=ok latency_ms={i * 3}" for i in range(30))


def test_repeated_tool_output_is_replaced_by_a_marker_naming_the_first() -> None:
    out = long_output("pods")
    messages = [
        {"role": "system", "content": "You are an SRE."},
        {"role": "tool", "tool_call_id": "c1", "content": out},
        {"role": "tool", "tool_call_id": "c2", "content": out},
    ]
    new, report = compress_chat(messages)
    assert new[1]["content"] == out
    marker = "[identical to message 2 above; omitted]"
    assert new[2] == {"role": "tool", "tool_call_id": "c2", "content": marker}
    assert report.duplicates == 1
    assert messages[2]["content"] == out  # the caller's message is untouched


def test_repeated_block_inside_another_message_is_replaced() -> None:
    chunk = "Document 7: " + "shared_buffers sets the memory for the buffer cache. " * 8
    assert len(chunk) >= MIN_DUPLICATE_CHARS
    messages = [
        {"role": "user", "content": f"Question one.\n\n{chunk}"},
        {"role": "user", "content": f"{chunk}\n\nQuestion two."},
    ]
    new, _ = compress_chat(messages)
    assert new[1]["content"] == "[block identical to one in message 1 above; omitted]\n\nQuestion two."


def test_dedup_only_points_backwards_so_earlier_turns_never_change() -> None:
    out = long_output("build")
    history: list[dict[str, str]] = [{"role": "system", "content": "Be brief."}]
    seen: list[object] = []
    for turn in range(6):
        history += [{"role": "user", "content": f"turn {turn}"}, {"role": "tool", "content": out}]
        new, _ = compress_chat(history)
        assert new[: len(seen)] == seen
        seen = list(new)


def test_short_repeats_stay() -> None:
    messages = [{"role": "user", "content": "continue"}, {"role": "user", "content": "continue"}]
    new, report = compress_chat(messages)
    assert new is messages and report.duplicates == 0


def test_responses_request_every_text_is_compressed() -> None:
    pretty = json.dumps({"rows": [{"id": i, "name": f"n{i}"} for i in range(20)]}, indent=2)
    request = {
        "instructions": "Be   brief.",
        "input": [
            {"role": "user", "content": "Hello   there"},
            {"type": "function_call", "call_id": "f1", "name": "q", "arguments": '{"a":   1}'},
            {"type": "function_call_output", "call_id": "f1", "output": pretty},
            {"type": "function_call_output", "call_id": "f2", "output": pretty},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Why   ?"}]},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "a   b"}]},
        ],
    }
    updates, report = compress_responses(request)
    items = updates["input"]
    assert updates["instructions"] == "Be brief."
    assert items[0]["content"] == "Hello there"
    assert items[1] is request["input"][1]  # tool-call arguments never change
    assert json.loads(items[2]["output"]) == json.loads(pretty) and "\n" not in items[2]["output"]
    assert items[3]["output"] == "[identical to input item 3 above; omitted]"
    assert items[4]["content"][0] == {"type": "input_text", "text": "Why ?"}
    assert items[5] is request["input"][5]
    assert report.duplicates == 1
    assert compress_responses({"input": "Hi   you"})[0] == {"input": "Hi you"}


def test_unknown_shapes_pass_through_as_the_same_objects() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://x.example/a.png"}}
    odd = {"type": "mystery", "text": "a   b"}
    messages = [
        {"role": "user", "content": [image, odd, {"type": "text", "text": "Look   here"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]},
        {"role": "user", "content": 42},
        "not a message",
    ]
    new, _ = compress_chat(messages)
    assert new[0]["content"][0] is image and new[0]["content"][1] is odd
    assert new[0]["content"][2] == {"type": "text", "text": "Look here"}
    assert new[1] is messages[1] and new[2] is messages[2] and new[3] is messages[3]


# -- trimming ------------------------------------------------------------------------------------


def test_cut_keeps_system_and_first_user_and_never_splits_a_tool_call() -> None:
    items = [
        {"role": "system"},
        {"role": "user"},
        {"role": "assistant", "tool_calls": [{"id": "a"}]},
        {"role": "tool", "tool_call_id": "a"},
        {"role": "assistant"},
        {"role": "user"},
        {"role": "assistant", "tool_calls": [{"id": "b"}]},
        {"role": "tool", "tool_call_id": "b"},
        {"role": "user"},
    ]
    pinned = pinned_count(items)
    points = cut_points(items, pinned, "chat")
    assert pinned == 2
    assert points == [4, 5, 6, 8]
    sizes = [100, 50, 10, 400, 20, 30, 10, 400, 20]
    assert choose_cut(sizes, pinned, points, excess=100, step=100) == 4  # drops 410 >= 100
    assert choose_cut(sizes, pinned, points, excess=300, step=250) == 8  # 500 needed: 870 at index 8
    assert choose_cut(sizes, pinned, points, excess=5000, step=250) == 8  # as much as allowed
    assert choose_cut(sizes, pinned, points, excess=0, step=250) is None


def test_cut_moves_in_steps_so_the_prefix_stays_put() -> None:
    sizes = [100] + [50] * 40
    points = list(range(2, 41))
    cuts = {choose_cut(sizes, 1, points, excess=e, step=500) for e in range(1, 501, 25)}
    assert len(cuts) == 1


# -- regressions ---------------------------------------------------------------------------------------


def test_markers_after_a_cut_name_the_place_in_the_list_as_sent() -> None:
    out = long_output("read")
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "task"},
        {"role": "assistant", "content": "old turn"},
        {"role": "user", "content": "old question"},
        {"role": "tool", "content": out},
        {"role": "user", "content": "again"},
        {"role": "tool", "content": out},
    ]
    new, _ = compress_chat(messages, drop=range(2, 4))
    assert new[2]["content"] == out  # message 3 as sent
    assert new[4]["content"] == "[identical to message 3 above; omitted]"
    # The next turn, cut at the same place, reads the same up to where it grew.
    later, _ = compress_chat([*messages, {"role": "user", "content": "more"}], drop=range(2, 4))
    assert later[:5] == new


def test_responses_markers_after_a_cut_name_the_place_in_the_input_as_sent() -> None:
    out = long_output("fetch")
    items = [
        {"role": "user", "content": "task"},
        {"role": "user", "content": "old"},
        {"type": "function_call_output", "call_id": "a", "output": out},
        {"role": "user", "content": "again"},
        {"type": "function_call_output", "call_id": "b", "output": out},
    ]
    updates, _ = compress_responses({"input": items}, drop=range(1, 2))
    assert updates["input"][1]["output"] == out
    assert updates["input"][3]["output"] == "[identical to input item 2 above; omitted]"


def test_repeated_text_part_in_the_same_message_says_so() -> None:
    out = long_output("part")
    messages = [{"role": "user", "content": [{"type": "text", "text": out}, {"type": "text", "text": out}]}]
    new, report = compress_chat(messages)
    assert new[0]["content"][0]["text"] == out
    assert new[0]["content"][1]["text"] == "[identical to a part above in this message; omitted]"
    assert report.duplicates == 1


def test_a_text_repeating_a_block_of_an_earlier_message_says_it_is_a_block() -> None:
    chunk = "Document 3: " + "work_mem sets the memory for sorts and hashes. " * 8
    messages = [{"role": "user", "content": f"Question.\n\n{chunk}"}, {"role": "user", "content": chunk}]
    new, _ = compress_chat(messages)
    assert new[1]["content"] == "[identical to a block in message 1 above; omitted]"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            '{"eps": 1e-9, "price": 2.50, "n": 1E5, "big": 1e21}',
            '{"eps":1e-9,"price":2.50,"n":1E5,"big":1e21}',
        ),
        ('[\n  -0.0,\n  1.10,\n  100e-2\n]', "[-0.0,1.10,100e-2]"),
        # Escapes: a character for its \u escape (same value); "\\u00e1" is a backslash, not an escape;
        # controls, quotes and private-use characters stay escaped.
        (
            '{"s": "caf\\u00e1", "t": "\\\\u00e1", "c": "\\u0007\\u0022\\ue000", "sp": "a  b"}',
            '{"s":"cafá","t":"\\\\u00e1","c":"\\u0007\\u0022\\ue000","sp":"a  b"}',
        ),
    ],
)
def test_json_numbers_and_strings_keep_their_literals(raw: str, expected: str) -> None:
    out = safe(f"Result:\n{raw}\nDone.")
    assert out == f"Result:\n{expected}\nDone."
    assert json.loads(expected) == json.loads(raw)


@pytest.mark.parametrize(
    "text",
    [
        'x = 1\nname = "a  b"\nif x:\n    print(name)\n',  # a script with no keyword hint
        'Run:\n\n    x  =  "a  b"\n\nthen',  # a markdown indented code block
        "Steps:\n\n\tmake  all\n\tmake  test",  # the same with tabs
    ],
)
def test_unfenced_code_without_keywords_is_kept(text: str) -> None:
    assert safe(text) == text
    assert aggressive(text) == text


def test_quoted_strings_keep_their_spaces_while_prose_around_them_is_normalised() -> None:
    yaml = 'name:   app\nother:    "a  b"\nsingle:  \'c  d\''
    assert safe(yaml) == "name: app\nother: \"a  b\"\nsingle: 'c  d'"
    assert safe('Why does "foo  bar" not   match?') == 'Why does "foo  bar" not match?'
    # An apostrophe is not a quote: prose between two of them is still normalised.
    assert safe("It's  fine, don't  worry.") == "It's fine, don't worry."
    # Indentation in a list item stays prose (two spaces), so its inner runs still go.
    assert safe("- item\n\n  text   here") == "- item\n\n  text here"


def test_a_block_repeated_inside_the_instructions_names_them() -> None:
    rule = "Rule: " + "never reveal the account number or the routing number to anyone. " * 5
    updates, _ = compress_responses({"instructions": f"{rule}\n\nBe brief.\n\n{rule}", "input": "hi"})
    assert updates["instructions"] == (
        f"{rule.strip()}\n\nBe brief.\n\n[block identical to one above in the instructions; omitted]"
    )


@pytest.mark.parametrize("text", ["[\xa0]", "```\u200b`  `", 'a\xa0\xa0b {"k": [1,\xa02]}'])
def test_odd_characters_do_not_break_idempotence(text: str) -> None:
    once = compress_text(text).text
    assert compress_text(once).text == once


# -- JSON that does not parse strictly -----------------------------------------------------------------


def test_json_cut_mid_document_is_compacted_at_the_token_level() -> None:
    value = {"total": 2, "orders": [{"id": "ORD-1", "note": "a  b", "amount": 2.50}, {"id": "ORD-2"}]}
    pretty = json.dumps(value, indent=2)
    cut = pretty[: pretty.index('"ORD-2"') + 4]  # inside a string: the cut leaves it open
    out = safe(f"Tool result (step 1):\n{cut}\n... [truncated 40 characters]")
    head, body, tail = out.split("\n")
    assert head == "Tool result (step 1):" and tail == "... [truncated 40 characters]"
    assert body == '{"total":2,"orders":[{"id":"ORD-1","note":"a  b","amount":2.5},{"id":"ORD'
    assert safe(out) == out


def test_json_lines_keep_their_line_breaks() -> None:
    text = 'events:\n{"a": 1, "b": [1, 2]}\n{"a": 2, "b": []}'
    assert safe(text) == 'events:\n{"a":1,"b":[1,2]}\n{"a":2,"b":[]}'


def test_token_check_rejects_a_compaction_that_merges_tokens() -> None:
    from tokenmw._compress.jsonlex import same_tokens

    assert same_tokens('{"a": 1,\n "b": "x y"', '{"a":1,"b":"x y"')
    assert not same_tokens("[1 2]", "[12]")
    assert not same_tokens('{"a": 1}', '{"a":1 }')
    assert not same_tokens('{"a": "x y"}', '{"a":"xy"}')
