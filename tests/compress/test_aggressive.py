"""The aggressive level's rules that leave text out: log fences, similar lines, emphasis, the middle
of huge tool outputs; and the one function every elision goes through."""

from __future__ import annotations

import json

from tokenmw._compress import compress_text
from tokenmw._compress import elide as elide_module
from tokenmw._compress.aggressive import strip_emphasis, truncate_middle

HEARTBEAT = "2024-05-13T08:42:00.000Z INFO  [scheduler-1] c.h.a.health.Heartbeat - heartbeat ok"


def aggressive(text: str, tool: bool = False) -> str:
    return compress_text(text, "aggressive", tool=tool).text


def served(i: int) -> str:
    return f"2024-05-13T08:41:{i:02d}.{i * 37 % 1000:03d}Z INFO POST /v1/authorize 200 in {40 + i * 13} ms"


def test_untyped_fence_logs_collapse_and_code_fences_stay() -> None:
    log = "\n".join([served(1), *[HEARTBEAT] * 5, *[served(i) for i in range(2, 9)], "ERROR timeout"])
    out = aggressive(f"Logs:\n```\n{log}\n```\nCode:\n```python\n{log}\n```")
    fenced_log = out.split("```")[1]
    assert f"{HEARTBEAT} [×5]" in fenced_log
    assert f"{served(2)}\n[… 5 similar lines …]\n{served(8)}\nERROR timeout" in fenced_log
    assert f"```python\n{log}\n```" in out  # a language fence is code: byte for byte
    assert compress_text(f"```\n{log}\n```", "safe").text == f"```\n{log}\n```"


def test_similar_lines_collapse_in_tool_outputs_only() -> None:
    text = "\n".join(served(i) for i in range(10))
    assert aggressive(text, tool=True) == f"{served(0)}\n[… 8 similar lines …]\n{served(9)}"
    assert aggressive(text) == text  # prose of a user or system message: only identical runs


def test_every_elision_goes_through_elide_and_is_listed(monkeypatch: object) -> None:
    calls: list[tuple[str, str]] = []
    real = elide_module.elide

    def spy(original: str, summary: str, sink: list[str]) -> str:
        calls.append((original, summary))
        return real(original, summary, sink)

    import tokenmw._compress.aggressive as aggressive_module
    import tokenmw._compress.logs as logs_module

    for module in (aggressive_module, logs_module):
        monkeypatch.setattr(module, "elide", spy)  # type: ignore[attr-defined]
    beat = " ".join(HEARTBEAT.split())  # prose is whitespace-normalised before lines collapse
    text = "\n".join([*[beat] * 4, *[served(i) for i in range(6)]])
    result = compress_text(text + "\n" + "x" * 10, "aggressive", tool=True)
    assert calls == [
        ("\n".join([beat] * 3), "×4"),
        ("\n".join(served(i) for i in range(1, 5)), "… 4 similar lines …"),
    ]
    assert result.elided == tuple(original for original, _ in calls)


def test_middle_of_a_huge_compact_json_output_is_cut_at_a_comma() -> None:
    rows = [{"id": i, "sku": f"SKU-{i:04d}", "name": f"item {i}", "stock": i * 3} for i in range(600)]
    text = json.dumps(rows, separators=(",", ":"))  # one line: no line ends to cut at
    sink: list[str] = []
    cut = truncate_middle(text, sink)
    assert cut is not None and len(cut) < 11_000
    head, _, rest = cut.partition("[… ")
    marker, _, tail = rest.partition(" characters omitted …]")
    assert head.endswith(",") and text.startswith(head) and text.endswith(tail)
    assert sink == [text[len(head) : len(text) - len(tail)]] and int(marker) == len(sink[0])
    assert truncate_middle(cut) is None


def test_bold_is_stripped_but_not_inside_identifiers_or_lists() -> None:
    assert (
        strip_emphasis("**Never** output secrets; __always__ redact.")
        == "Never output secrets; always redact."
    )
    text = "Use snake__case__names, * bullets *, and 2**10**3."
    assert strip_emphasis(text) == text
    out = aggressive("Rules:\n- **Do not** run `rm  **x**` on `**/*.py`.")
    assert out == "Rules:\n- Do not run `rm  **x**` on `**/*.py`."


def test_uniform_json_array_becomes_a_table_that_reads_back_to_the_same_value() -> None:
    from tokenmw._compress.tables import parse

    raw = (
        '[{"id": 1, "title": "Fix | pipe", "price": 2.50, "ok": true, "tags": ["a"]},\n'
        ' {"id": 2, "title": "true", "price": 1e3, "ok": false, "tags": []},\n'
        ' {"id": 3, "title": " edge ", "price": -0.5, "ok": null, "tags": [{"k": 1.10}]}]'
    )
    out = compress_text(f"Result:\n{raw}", "aggressive")
    table = out.text.split("\n", 1)[1]
    assert table == (
        "[table: 3 objects]\nid|title|price|ok|tags\n"
        '1|"Fix | pipe"|2.50|true|["a"]\n2|"true"|1e3|false|[]\n3|" edge "|-0.5|null|[{"k":1.10}]'
    )
    assert parse(table) == json.loads(raw) and out.tables == 1
    assert compress_text(out.text, "aggressive").text == out.text
    assert compress_text(f"Result:\n{raw}", "safe").text.startswith('Result:\n[{"id":1,')  # safe: JSON


def test_mixed_arrays_stay_json() -> None:
    raw = '[{"id": 1, "a": 2}, {"id": 2}, {"id": 3, "a": 4}]'
    assert (
        compress_text(f"Result:\n{raw}", "aggressive").text
        == 'Result:\n[{"id":1,"a":2},{"id":2},{"id":3,"a":4}]'
    )
