"""Fetch the example's traces back from Jaeger and print each span tree with hook durations.

    python examples/jaeger/fetch_traces.py [--service tokenmw-example] [--minutes 15]

Uses Jaeger v2's query API, ``GET /api/v3/traces`` (OTLP-JSON in ``result.resourceSpans``), with
the standard library only. ``format_traces`` does the printing and works on any OTLP-JSON export.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

# Attributes worth a glance next to a span's name, in this order.
SHOWN = (
    "tokenmw.tokens.before",
    "tokenmw.tokens.after",
    "tokenmw.tokens.saved",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.response.finish_reasons",
    "tokenmw.hook.skipped",
    "error.type",
)
SHORT = {
    "tokenmw.tokens.before": "before",
    "tokenmw.tokens.after": "after",
    "tokenmw.tokens.saved": "saved",
    "gen_ai.usage.input_tokens": "in",
    "gen_ai.usage.output_tokens": "out",
    "gen_ai.response.finish_reasons": "finish",
    "tokenmw.hook.skipped": "skipped",
    "error.type": "error",
}


def _hex_id(value: str) -> str:
    """OTLP-JSON ids are hex; protobuf's own JSON mapping (some servers) gives base64."""
    if len(value) in (16, 32) and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    try:
        return base64.b64decode(value, validate=True).hex()
    except ValueError:
        return value


def _value(value: dict[str, Any]) -> Any:
    """The Python value of an OTLP-JSON ``AnyValue``."""
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "intValue" in value:
        return int(value["intValue"])  # 64-bit integers are strings in OTLP-JSON
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"].get("values", [])]
    return None


def _attributes(span: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: _value(a.get("value", {})) for a in span.get("attributes", [])}


def _spans(export: dict[str, Any]) -> list[dict[str, Any]]:
    """Every span of an OTLP-JSON export (``resourceSpans`` or Jaeger's ``result`` around it),
    with its service name."""
    resource_spans = export.get("result", export).get("resourceSpans", [])
    out = []
    for rs in resource_spans:
        resource = {a["key"]: _value(a["value"]) for a in rs.get("resource", {}).get("attributes", [])}
        service = resource.get("service.name", "?")
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                out.append({**span, "service": service})
    return out


def _line(span: dict[str, Any], depth: int) -> str:
    start, end = int(span.get("startTimeUnixNano", 0)), int(span.get("endTimeUnixNano", 0))
    attrs = _attributes(span)
    notes = []
    for key in SHOWN:
        if key in attrs:
            value = attrs[key]
            if isinstance(value, list):
                value = ",".join(str(v) for v in value)
            notes.append(f"{SHORT[key]}={value}")
    hook = attrs.get("tokenmw.hook.name")
    label = f"{hook} {attrs.get('tokenmw.hook.phase', '')}".strip() if hook else span["name"]
    text = f"{'  ' * depth}{label:<{max(40 - 2 * depth, 1)}} {(end - start) / 1e6:9.3f} ms"
    return text + ("  " + " ".join(notes) if notes else "")


def _start(span: dict[str, Any]) -> int:
    return int(span.get("startTimeUnixNano", 0))


def _tree(spans: list[dict[str, Any]]) -> list[str]:
    """The lines of one trace: each span under its parent, siblings by start time."""
    ids = {_hex_id(s["spanId"]) for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for span in spans:
        parent = _hex_id(span["parentSpanId"]) if span.get("parentSpanId") else None
        children[parent if parent in ids else None].append(span)  # orphans print as roots
    lines: list[str] = []
    stack = [(span, 1) for span in sorted(children[None], key=_start, reverse=True)]
    while stack:
        span, depth = stack.pop()
        lines.append(_line(span, depth))
        kids = sorted(children.get(_hex_id(span["spanId"]), []), key=_start, reverse=True)
        stack.extend((kid, depth + 1) for kid in kids)
    return lines


def format_traces(export: dict[str, Any]) -> str:
    """Each trace of an OTLP-JSON export as an indented span tree: one line per span with its
    duration; hook spans show the hook and phase, and tokens before/after/saved where set."""
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in _spans(export):
        by_trace[_hex_id(span["traceId"])].append(span)
    blocks = []
    for trace_id, spans in sorted(by_trace.items(), key=lambda item: min(map(_start, item[1]))):
        header = f"trace {trace_id} ({spans[0]['service']}, {len(spans)} spans)"
        blocks.append("\n".join([header, *_tree(spans)]))
    return "\n\n".join(blocks)


def _decode(body: str) -> list[dict[str, Any]]:
    """The JSON documents of a response body: one, or one per line when the API streams."""
    decoder = json.JSONDecoder()
    docs, pos = [], 0
    while pos < len(body):
        if body[pos].isspace():
            pos += 1
            continue
        doc, pos = decoder.raw_decode(body, pos)
        docs.append(doc)
    return docs


def fetch(base_url: str, service: str, minutes: float) -> dict[str, Any]:
    """The service's traces of the last ``minutes`` from Jaeger's ``/api/v3/traces``, merged into
    one OTLP-JSON export."""
    now = datetime.now(timezone.utc)
    query = urllib.parse.urlencode(
        {
            "query.service_name": service,
            "query.start_time_min": (now - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
            "query.start_time_max": (now + timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
            "query.search_depth": 100,
        }
    )
    with urllib.request.urlopen(f"{base_url.rstrip('/')}/api/v3/traces?{query}", timeout=30) as reply:
        body = reply.read().decode()
    merged: list[Any] = []
    for doc in _decode(body):
        if "error" in doc:
            raise RuntimeError(f"Jaeger answered: {doc['error']}")
        merged.extend(doc.get("result", doc).get("resourceSpans", []))
    return {"resourceSpans": merged}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jaeger", default="http://localhost:16686", help="Jaeger query base URL")
    parser.add_argument("--service", default="tokenmw-example")
    parser.add_argument("--minutes", type=float, default=15, help="how far back to look")
    args = parser.parse_args(argv)
    try:
        export = fetch(args.jaeger, args.service, args.minutes)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            print(f"No traces of {args.service!r} in the last {args.minutes:g} minutes.", file=sys.stderr)
            return 1
        raise
    except urllib.error.URLError as error:
        print(f"Cannot reach Jaeger at {args.jaeger}: {error.reason} (is it up?)", file=sys.stderr)
        return 1
    if not export["resourceSpans"]:
        print(f"No traces of {args.service!r} in the last {args.minutes:g} minutes.", file=sys.stderr)
        return 1
    print(format_traces(export))
    return 0


if __name__ == "__main__":
    sys.exit(main())
