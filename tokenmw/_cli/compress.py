"""``tokenmw compress FILE``: what ``Compress`` does to a request, in tokens and in text.

FILE (``-`` for stdin) holds a JSON request body (chat ``messages`` or Responses ``input``), a JSON
list of chat messages, or plain text. Prints the input tokens before and after, how many texts
changed and why (rewritten, duplicate, truncated, dropped, check failed), and with ``--diff`` a
unified diff of every changed text. ``--json`` prints the compressed request instead.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from tokenmw._compress import Report, compress_text
from tokenmw._core.call import Call, Operation
from tokenmw._tokens.count_cache import cache_for
from tokenmw._tokens.counting import count_request
from tokenmw._tokens.encodings import encoding_for
from tokenmw.hooks.compress import Compress

__all__ = ["run_compress_cli"]

DEFAULT_MODEL = "gpt-4o"


def run_compress_cli(argv: Sequence[str]) -> int:
    """Run ``tokenmw compress``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="tokenmw compress",
        description="Show the input tokens of a request before and after Compress, and what changed.",
    )
    parser.add_argument("file", help="JSON request body, JSON list of messages, or text ('-' = stdin)")
    parser.add_argument("--level", choices=("safe", "aggressive"), default="safe")
    parser.add_argument("--diff", action="store_true", help="show a unified diff of each changed text")
    parser.add_argument("--model", help=f"count for this model (default: the request's or {DEFAULT_MODEL})")
    parser.add_argument("--max-input-tokens", type=int, help="trim the oldest turns to this budget")
    parser.add_argument("--json", action="store_true", help="print the compressed request as JSON")
    args = parser.parse_args(list(argv))
    try:
        text = sys.stdin.read() if args.file == "-" else _read(args.file)
    except OSError as e:
        print(f"tokenmw compress: {e}", file=sys.stderr)
        return 2
    hook = Compress(level=args.level, min_tokens=0, max_input_tokens=args.max_input_tokens)
    request, operation = _as_request(text, args.model)
    out = sys.stdout
    if request is None:
        return _plain_text(text, args, out)
    call = Call(dict(request), operation)
    asyncio.run(hook.before(call))
    if args.json:
        json.dump(call.request, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return 0
    report: Report = call.state[hook.name]
    before, _ = count_request(operation, request)
    after, _ = count_request(operation, call.request)
    what = "chat request" if operation == "chat" else "responses request"
    _print_totals(out, f"{what}, {call.model}, level {args.level}", before, after)
    _print_report(out, report)
    for label, old, new in _changed_texts(operation, request, call.request, report):
        count = cache_for(encoding_for(call.model)).count
        out.write(f"  {label}: {count(old)} -> {count(new)} tokens, {_why(new)}\n")
        if args.diff:
            _print_diff(out, label, old, new)
    return 0


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _as_request(text: str, model: str | None) -> tuple[dict[str, Any] | None, Operation]:
    """The document as a request body and its API; ``None`` for plain text."""
    try:
        doc: Any = json.loads(text)
    except ValueError:
        return None, "chat"
    if isinstance(doc, list) and all(isinstance(m, Mapping) for m in doc):
        doc = {"messages": doc}
    if not isinstance(doc, Mapping) or not ("messages" in doc or "input" in doc):
        return None, "chat"
    request = dict(doc)
    if model is not None or not isinstance(request.get("model"), str):
        request["model"] = model or DEFAULT_MODEL
    return request, ("chat" if "messages" in request else "responses")


def _plain_text(text: str, args: argparse.Namespace, out: TextIO) -> int:
    result = compress_text(text, args.level)
    if args.json:
        out.write(result.text + "\n")
        return 0
    model = args.model or DEFAULT_MODEL
    count = cache_for(encoding_for(model)).count
    _print_totals(out, f"plain text, {model}, level {args.level}", count(text), count(result.text))
    if result.fallback is not None:
        out.write(f"  sent unchanged: the {result.fallback} check failed\n")
    if args.diff and result.text != text:
        _print_diff(out, "text", text, result.text)
    return 0


def _print_totals(out: TextIO, what: str, before: int, after: int) -> None:
    saved = before - after
    pct = 100 * saved / before if before else 0.0
    out.write(f"{what}: {before} -> {after} input tokens (saved {saved}, {pct:.1f}%)\n")


def _print_report(out: TextIO, report: Report) -> None:
    out.write(
        f"  {report.changed} of {report.texts} texts changed; {report.duplicates} duplicates "
        f"replaced; {report.truncated} truncated; {report.dropped} messages dropped\n"
    )
    for reason in sorted(set(report.fallbacks)):
        n = report.fallbacks.count(reason)
        out.write(f"  {n} text(s) sent unchanged: the {reason} check failed\n")


def _changed_texts(
    operation: str, old: Mapping[str, Any], new: Mapping[str, Any], report: Report
) -> list[tuple[str, str, str]]:
    """``(label, old text, new text)`` for every message text that changed."""
    changed: list[tuple[str, str, str]] = []
    if operation == "responses":
        for key in ("instructions",):
            if isinstance(old.get(key), str) and old[key] != new.get(key):
                changed.append((key, old[key], new[key]))
        if isinstance(old.get("input"), str):
            if old["input"] != new.get("input"):
                changed.append(("input", old["input"], new["input"]))
            return changed
    key = "messages" if operation == "chat" else "input"
    old_items = old.get(key)
    new_items = new.get(key)
    if not isinstance(old_items, list) or not isinstance(new_items, list):
        return changed
    kept = [i for i in range(len(old_items)) if i not in report.drop]
    for i, item in zip(kept, new_items, strict=True):
        before, after = _text_of(old_items[i]), _text_of(item)
        if before != after:
            role = item.get("role") or item.get("type") if isinstance(item, Mapping) else None
            changed.append((f"{'message' if key == 'messages' else 'item'} {i + 1} ({role})", before, after))
    return changed


def _text_of(item: Any) -> str:
    if not isinstance(item, Mapping):
        return ""
    content = item.get("content", item.get("output"))
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, Mapping)]
        return "\n".join(t for t in texts if isinstance(t, str))
    return ""


def _why(new: str) -> str:
    if new.startswith("[identical to a block in "):
        return "repeats a block of an earlier message"
    if new.startswith("[identical to ") and " above in " in new:
        return "repeats an earlier part of the same message"
    if new.startswith("[identical to "):
        return "duplicate of an earlier message"
    reasons = []
    if "[block identical to " in new:
        reasons.append("repeated blocks replaced")
    if "lines (" in new and "characters) omitted …]" in new:
        reasons.append("middle cut")
    return ", ".join(reasons) or "rewritten"


def _print_diff(out: TextIO, label: str, old: str, new: str) -> None:
    diff = difflib.unified_diff(
        old.splitlines(), new.splitlines(), f"{label} (before)", f"{label} (after)", lineterm="", n=1
    )
    for line in diff:
        out.write(f"    {line}\n")


if __name__ == "__main__":
    sys.exit(run_compress_cli(sys.argv[1:]))
