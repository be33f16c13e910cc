"""Up to the wire: spans exported over OTLP/HTTP by the real exporter, decoded from protobuf.

Docker cannot run here, so Jaeger is replaced by what it would receive: an OTLP/HTTP receiver on
127.0.0.1 that decodes ``ExportTraceServiceRequest`` / ``ExportMetricsServiceRequest``. The
exporting side runs in a subprocess (the global providers can be set once per process), through
``tokenmw.telemetry.setup``, the Jaeger example app, or ``setup_from_env``. The example's
``fetch_traces.py`` is checked on what was received, as Jaeger's query API would return it.
"""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "jaeger"
SECRET = "sk-otlp-secret-9876543210"
HOOKS = {"compress", "enhance", "limit_response", "count_tokens"}


class Receiver:
    """An OTLP/HTTP receiver: keeps every decoded export request and the raw bodies."""

    def __init__(self) -> None:
        self.traces: list[ExportTraceServiceRequest] = []
        self.metrics: list[ExportMetricsServiceRequest] = []
        self.bodies: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.bodies.append(body)
                reply: Any
                if self.path == "/v1/traces":
                    receiver.traces.append(ExportTraceServiceRequest.FromString(body))
                    reply = ExportTraceServiceResponse()
                elif self.path == "/v1/metrics":
                    receiver.metrics.append(ExportMetricsServiceRequest.FromString(body))
                    reply = ExportMetricsServiceResponse()
                else:
                    self.send_error(404)
                    return
                data = reply.SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def spans(self) -> list[tuple[str, Span]]:
        """(service name, span) for every span received."""
        out: list[tuple[str, Span]] = []
        for request in self.traces:
            for rs in request.resource_spans:
                attrs = {a.key: a.value.string_value for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    out.extend((attrs.get("service.name", ""), span) for span in ss.spans)
        return out

    def metric_names(self) -> set[str]:
        return {
            m.name
            for request in self.metrics
            for rm in request.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        }

    def otlp_json(self) -> dict[str, Any]:
        """What was received as one OTLP-JSON document with hex ids, the way Jaeger's
        ``/api/v3/traces`` answers (``result.resourceSpans``)."""
        resource_spans: list[Any] = []
        for request in self.traces:
            doc = MessageToDict(request)  # protobuf's JSON mapping: base64 ids
            for rs in doc.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        for key in ("traceId", "spanId", "parentSpanId"):
                            if span.get(key):
                                span[key] = base64.b64decode(span[key]).hex()
                resource_spans.append(rs)
        return {"result": {"resourceSpans": resource_spans}}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def attrs(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in span.attributes:
        kind = a.value.WhichOneof("value")
        value = getattr(a.value, kind)
        out[a.key] = list(v.string_value for v in value.values) if kind == "array_value" else value
    return out


def run_python(args: list[str], env: dict[str, str] | None = None) -> str:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    full_env.update(env or {})
    full_env.setdefault("OTEL_METRIC_EXPORT_INTERVAL", "600000")  # exported at shutdown only
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=180, env=full_env, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def by_name(spans: list[tuple[str, Span]], name: str) -> list[Span]:
    return [s for _, s in spans if s.name == name]


# -- tokenmw.telemetry.setup, sync and async, over the wire ----------------------------------------


SCRIPT = """
import asyncio, json, sys
import openai
from opentelemetry import trace
import tokenmw
from tokenmw.server import EmbeddedServer
from tokenmw.telemetry import setup

telemetry = setup(service_name="otlp-wire-test", endpoint=sys.argv[1])

class Exploding(tokenmw.Hook):
    name = "exploding"
    async def before(self, call):
        raise KeyError("broken")

def middleware():
    return tokenmw.Middleware([
        Exploding(), tokenmw.Compress(), tokenmw.Enhance(max_words=100),
        tokenmw.LimitResponse(max_tokens=300), tokenmw.CountTokens(),
    ])

tracer = trace.get_tracer("wire-test")
out = {}
with EmbeddedServer() as server:
    out["port"] = server.port
    sync = middleware().wrap(openai.OpenAI(api_key=sys.argv[2], base_url=server.base_url))
    with tracer.start_as_current_span("sync caller"):
        out["sync_id"] = sync.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello there"}]).id

    async def streamed():
        client = middleware().wrap(openai.AsyncOpenAI(api_key=sys.argv[2], base_url=server.base_url))
        with tracer.start_as_current_span("async caller"):
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], stream=True,
                stream_options={"include_usage": True})
            chunks = [c async for c in stream]
        return chunks[0].id, chunks[-1].usage.completion_tokens

    out["stream_id"], out["stream_output"] = asyncio.run(streamed())
telemetry.shutdown()
print(json.dumps(out))
"""


def test_spans_and_metrics_reach_an_otlp_receiver(receiver: Receiver) -> None:
    out = json.loads(run_python(["-c", textwrap.dedent(SCRIPT), receiver.url, SECRET]).splitlines()[-1])
    spans = receiver.spans()
    assert {service for service, _ in spans} == {"otlp-wire-test"}
    for caller_name, response_id, stream in (
        ("sync caller", out["sync_id"], False),
        ("async caller", out["stream_id"], True),
    ):
        [caller] = by_name(spans, caller_name)
        [call] = [
            s for s in by_name(spans, "chat gpt-4o-mini") if s.trace_id == caller.trace_id
        ]
        assert call.parent_span_id == caller.span_id
        assert call.kind == Span.SPAN_KIND_CLIENT
        a = attrs(call)
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.provider.name"] == "openai"
        assert a["gen_ai.request.model"] == "gpt-4o-mini"
        assert a["gen_ai.request.stream"] is stream
        assert a["gen_ai.request.max_tokens"] == 300  # set by LimitResponse, as sent
        assert a["server.address"] == "127.0.0.1"
        assert a["server.port"] == out["port"]
        assert a["gen_ai.response.id"] == response_id
        assert a["gen_ai.usage.input_tokens"] > 0
        assert a["gen_ai.usage.output_tokens"] > 0
        assert a["tokenmw.tokens.before"] > 0
        hooks = [s for _, s in spans if s.trace_id == caller.trace_id and s.name.startswith("tokenmw.")]
        assert {attrs(s)["tokenmw.hook.name"] for s in hooks} == HOOKS | {"exploding"}
        for hook in hooks:
            assert hook.parent_span_id == call.span_id
            assert hook.kind == Span.SPAN_KIND_INTERNAL
        [broken] = [s for s in hooks if s.name == "tokenmw.exploding.before"]
        assert attrs(broken)["tokenmw.hook.skipped"] is True
        assert attrs(broken)["error.type"] == "KeyError"
        assert broken.status.code == broken.status.STATUS_CODE_ERROR
    stream_call = next(s for s in by_name(spans, "chat gpt-4o-mini") if attrs(s)["gen_ai.request.stream"])
    assert attrs(stream_call)["gen_ai.usage.output_tokens"] == out["stream_output"]
    assert attrs(stream_call)["gen_ai.response.finish_reasons"] == ["stop"]
    assert {
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "tokenmw.tokens.saved",
        "tokenmw.hook.duration",
    } <= receiver.metric_names()
    assert not any(SECRET.encode() in body for body in receiver.bodies)


def test_setup_from_env_exports_only_when_asked(receiver: Receiver) -> None:
    script = textwrap.dedent(
        """
        import asyncio
        import tokenmw
        from tokenmw.telemetry import _spans as tel
        from tokenmw.telemetry import setup_from_env

        telemetry = setup_from_env("named-in-code")
        print(telemetry is not None, tel.sdk_configured())

        async def send(call):
            return {"id": "r1", "model": "gpt-4o-mini", "choices": [{"finish_reason": "stop"}]}

        call = tokenmw.Call({"model": "gpt-4o-mini", "messages": []}, "chat")
        asyncio.run(tokenmw.Middleware([tokenmw.CountTokens()]).run(call, send))
        if telemetry:
            telemetry.shutdown()
        """
    )
    assert run_python(["-c", script]).split() == ["False", "False"]
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "named-in-env",
        "OTEL_METRICS_EXPORTER": "none",
    }
    assert run_python(["-c", script], env).split() == ["True", "True"]
    spans = receiver.spans()
    assert sorted(s.name for _, s in spans) == [
        "chat gpt-4o-mini",
        "tokenmw.count_tokens.after",  # the response has no usage: ``after`` counts the reply
        "tokenmw.count_tokens.on_send",
    ]
    assert {service for service, _ in spans} == {"named-in-env"}
    assert receiver.metrics == []


# -- the Jaeger example, and its fetch_traces.py -------------------------------------------------


def load_fetch_traces() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_traces", EXAMPLE / "fetch_traces.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_jaeger_example_app_sends_its_trace(receiver: Receiver) -> None:
    output = run_python([str(EXAMPLE / "app.py")], {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
    assert "embedded server" in output
    spans = receiver.spans()
    assert {service for service, _ in spans} == {"tokenmw-example"}
    callers = by_name(spans, "answer question") + by_name(spans, "stream an answer")
    assert len(callers) == 4
    assert len({c.trace_id for c in callers}) == 4  # one trace per question
    for caller in callers:
        [call] = [s for s in by_name(spans, "chat gpt-4o-mini") if s.trace_id == caller.trace_id]
        assert call.parent_span_id == caller.span_id
        hooks = [s for _, s in spans if s.trace_id == caller.trace_id and s.name.startswith("tokenmw.")]
        assert {attrs(s)["tokenmw.hook.name"] for s in hooks} == HOOKS
        assert all(h.parent_span_id == call.span_id for h in hooks)
    compress = by_name(spans, "tokenmw.compress.before")[0]
    assert attrs(compress)["tokenmw.tokens.saved"] > 0  # the example's prompt has room to shrink

    # What fetch_traces.py prints for it, from Jaeger's answer (OTLP-JSON with hex ids).
    text = load_fetch_traces().format_traces(receiver.otlp_json())
    blocks = text.split("\n\n")
    assert len(blocks) == 4
    first = blocks[0].splitlines()
    assert first[0].startswith(f"trace {callers[0].trace_id.hex()} (tokenmw-example, ")
    assert first[1].lstrip().startswith("answer question")
    assert first[2].startswith("    chat gpt-4o-mini")
    hook_lines = [line.strip() for line in first[3:]]
    assert [line.split("  ")[0].strip() for line in hook_lines] == [
        "compress before",
        "enhance before",
        "limit_response before",
        "count_tokens on_send",
    ]  # the ``after`` phases had nothing to do (usage came back, the reply kept to the cap)
    assert all(line.startswith("      ") for line in first[3:])  # nested under the call
    assert " ms" in hook_lines[0] and "saved=" in hook_lines[0]


def otlp_span(
    trace_id: str, span_id: str, name: str, start_ms: int, end_ms: int, parent: str = "", **attributes: Any
) -> dict[str, Any]:
    def value(v: Any) -> dict[str, Any]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, list):
            return {"arrayValue": {"values": [value(x) for x in v]}}
        return {"stringValue": v}

    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "startTimeUnixNano": str(start_ms * 1_000_000),
        "endTimeUnixNano": str(end_ms * 1_000_000),
        "attributes": [{"key": k.replace("__", "."), "value": value(v)} for k, v in attributes.items()],
    }


def test_format_traces_on_handmade_otlp_json() -> None:
    fetch_traces = load_fetch_traces()
    t1, t2 = "0af7651916cd43dd8448eb211c80319c", "AAAAAAAAAAAAAAAAAAAAAQ=="  # hex, and base64 of ...01
    spans = [
        # Out of order, as exports come; the second trace uses base64 ids (protobuf JSON mapping).
        otlp_span(t1, "00000000000000b2", "tokenmw.compress.before", 1001, 1003, "00000000000000a2",
                  tokenmw__hook__name="compress", tokenmw__hook__phase="before",
                  tokenmw__tokens__before=120, tokenmw__tokens__after=90, tokenmw__tokens__saved=30),
        otlp_span(t1, "00000000000000a1", "answer question", 1000, 1250),
        otlp_span(t1, "00000000000000a2", "chat gpt-4o-mini", 1001, 1240, "00000000000000a1",
                  gen_ai__usage__input_tokens=90, gen_ai__usage__output_tokens=55,
                  gen_ai__response__finish_reasons=["stop"]),
        otlp_span(t1, "00000000000000b3", "tokenmw.broken.before", 1003, 1004, "00000000000000a2",
                  tokenmw__hook__name="broken", tokenmw__hook__phase="before",
                  tokenmw__hook__skipped=True, error__type="KeyError"),
        otlp_span(t2, "AAAAAAAAAAE=", "chat gpt-4o", 2000, 2100, "AAAAAAAAAAk="),  # parent not exported
    ]
    export = {
        "result": {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                    "scopeSpans": [{"spans": spans}],
                }
            ]
        }
    }
    assert fetch_traces.format_traces(export).splitlines() == [
        "trace 0af7651916cd43dd8448eb211c80319c (svc, 4 spans)",
        "  answer question                          250.000 ms",
        "    chat gpt-4o-mini                       239.000 ms  in=90 out=55 finish=stop",
        "      compress before                        2.000 ms  before=120 after=90 saved=30",
        "      broken before                          1.000 ms  skipped=True error=KeyError",
        "",
        "trace 00000000000000000000000000000001 (svc, 1 spans)",
        "  chat gpt-4o                              100.000 ms",
    ]


def test_fetch_queries_jaegers_v3_api() -> None:
    """``fetch`` against a stand-in for Jaeger's query endpoint (Docker cannot run here): the
    query it sends, and an answer streamed as one JSON document per line."""
    fetch_traces = load_fetch_traces()
    seen: list[str] = []
    spans = [otlp_span("ab" * 16, "cd" * 8, name, 1, 2) for name in ("one", "two")]
    docs = [{"result": {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}} for span in spans]

    class Jaeger(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = "\n".join(json.dumps(d) for d in docs).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Jaeger)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        export = fetch_traces.fetch(f"http://127.0.0.1:{httpd.server_address[1]}/", "tokenmw-example", 15)
    finally:
        httpd.shutdown()
        httpd.server_close()
    url = urllib.parse.urlsplit(seen[0])
    assert url.path == "/api/v3/traces"
    query = urllib.parse.parse_qs(url.query)
    assert query["query.service_name"] == ["tokenmw-example"]
    start_min, start_max = query["query.start_time_min"][0], query["query.start_time_max"][0]
    # RFC 3339 in UTC, a 15-minute window (plus a minute of slack) ending now.
    assert start_min.endswith("Z") and start_max.endswith("Z")
    window = datetime.fromisoformat(start_max[:-1]) - datetime.fromisoformat(start_min[:-1])
    assert window.total_seconds() == pytest.approx(16 * 60, abs=1)
    assert [s["name"] for rs in export["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]] == [
        "one",
        "two",
    ]
