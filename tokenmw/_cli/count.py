"""``tokenmw count FILE``: the input tokens of a request, a list of messages, or plain text.

FILE (``-`` for stdin) may hold a JSON list of chat messages, a JSON request body (chat
``messages`` or Responses ``input``), or anything else, counted as plain text. The count printed
is what OpenAI bills for the request's input; " (estimated)" follows it when part of it could
only be estimated (remote images, an unknown model, hosted tools, tool shapes no public API
measurement covers: see ``tokenmw._tokens.tools.ESTIMATED_SHAPES``, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from tokenmw._tokens.count_cache import cache_for
from tokenmw._tokens.counting import count_plan, plan_chat, plan_request
from tokenmw._tokens.encodings import encoding_for, encoding_name_for, is_known_model

__all__ = ["DocumentCount", "count_document", "run_count_cli"]

DEFAULT_MODEL = "gpt-4o"


class DocumentCount(NamedTuple):
    """The count of one document, and how it was read."""

    tokens: int
    estimated: bool
    read_as: str
    model: str


def count_document(text: str, model: str | None = None) -> DocumentCount:
    """Count a document: JSON messages, a JSON request body, or plain text."""
    try:
        doc: Any = json.loads(text)
    except ValueError:
        doc = None
        parsed = False
    else:
        parsed = True
    if parsed and isinstance(doc, Mapping):
        request = dict(doc)
        if model is not None:
            request["model"] = model
        elif not isinstance(request.get("model"), str):
            request["model"] = DEFAULT_MODEL
        if "input" in request and "messages" not in request:
            plan, what = plan_request("responses", request), "responses request"
        elif "messages" in request:
            plan, what = plan_request("chat", request), "chat request"
        elif "role" in request:
            plan, what = plan_chat([request], model=request["model"]), "one message"
        else:
            return _plain(text, model)
        chosen = request["model"]
        return DocumentCount(count_plan(plan, chosen), plan.estimated, what, chosen)
    if parsed and isinstance(doc, list) and all(isinstance(m, Mapping) for m in doc):
        chosen = model or DEFAULT_MODEL
        plan = plan_chat(doc, model=chosen)
        return DocumentCount(count_plan(plan, chosen), plan.estimated, "messages", chosen)
    return _plain(text, model)


def _plain(text: str, model: str | None) -> DocumentCount:
    chosen = model or DEFAULT_MODEL
    tokens = cache_for(encoding_for(chosen)).count(text)
    return DocumentCount(tokens, not is_known_model(chosen), "plain text", chosen)


def run_count_cli(argv: Sequence[str] | None = None) -> int:
    """Run ``tokenmw count``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="tokenmw count",
        description="Count the input tokens OpenAI bills for a request, a list of messages, or text.",
    )
    parser.add_argument("file", help="JSON messages, a JSON request body, or plain text; '-' for stdin")
    parser.add_argument(
        "--model",
        help=f"model to count for (default: the request's model, else {DEFAULT_MODEL})",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="also say how the file was read")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            with open(args.file, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
    except OSError as error:
        print(f"tokenmw count: cannot read {args.file}: {error.strerror or error}", file=sys.stderr)
        return 2
    result = count_document(text, args.model)
    print(f"{result.tokens} (estimated)" if result.estimated else result.tokens)
    if args.verbose:
        print(
            f"read as {result.read_as}; model {result.model}, encoding {encoding_name_for(result.model)}",
            file=sys.stderr,
        )
    return 0
