"""Telemetry with the real SDK: the call span, hook spans, their links, and the metrics.

Real clients on the embedded server, spans in the SDK's in-memory exporter, metrics in its
in-memory reader (see ``tests/_otel.py``: one SDK per process).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from tokenmw import Call, Compress, CountTokens, Enhance, Hook, LimitResponse, Middleware, TokenBudgetExceeded
from tokenmw.server import EmbeddedServer
from tokenmw.telemetry import _semconv as sc
from tokenmw.telemetry import _spans as tel

from .._otel import Capture, capture
from ..conftest import MESSAGES

CALL = "chat gpt-4o-mini"
OVER_THE_CAP = {"x-tokenmw-ignore-max-tokens": "true", "x-tokenmw-reply-words": "300"}
"""The embedded server's reply ignores ``max_tokens``, as some providers' do: LimitResponse cuts it."""


@pytest.fixture
def otel() -> Iterator[Capture]:
    cap = capture()
    cap.clear()
    tel.set_usage_reporting("auto")
    yield cap
    tel.set_usage_reporting("auto")


class Shorten(Hook):
    """Drops the system message (a real saving, so tokens before/after differ) and notes it."""

    name = "shorten"

    async def before(self, call: Call) -> None:
        before = await call.input_tokens()
        call.request["messages"] = [m for m in call.request["messages"] if m["role"] != "system"]
        tel.annotate_tokens(before, await call.input_tokens(), rule="drop_system")

    async def after(self, call: Call, response: Any) -> Any:
        return response


class Around(Hook):
    """A wrap hook: two segments, one before and one after the rest of the chain."""

    name = "around"

    async def wrap(self, call: Call, call_next: Any) -> Any:
        return await call_next(call)


class Exploding(Hook):
    name = "exploding"

    async def before(self, call: Call) -> None:
        raise KeyError("no such thing")


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def hook_spans(cap: Capture) -> list[ReadableSpan]:
    return [s for s in cap.spans() if s.name.startswith("tokenmw.")]


def assert_child(child: ReadableSpan, parent: ReadableSpan) -> None:
    assert child.context.trace_id == parent.context.trace_id
    assert child.parent is not None and child.parent.span_id == parent.context.span_id


def check_call_span(span: ReadableSpan, server: EmbeddedServer, response_id: str, *, stream: bool) -> None:
    a = attrs(span)
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert a[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert a[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert a[sc.GEN_AI_REQUEST_STREAM] is stream
    assert a[sc.SERVER_ADDRESS] == "127.0.0.1"
    assert a[sc.SERVER_PORT] == server.port
    assert a[sc.GEN_AI_RESPONSE_ID] == response_id
    assert a[sc.GEN_AI_RESPONSE_MODEL].startswith("gpt-4o-mini")
    assert sc.ERROR_TYPE not in a


# -- spans: async, sync, worker-thread hop ---------------------------------------------------------


async def test_async_call_span_and_hook_spans(
    otel: Capture, async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    client = Middleware([Shorten(), Around(), CountTokens()]).wrap(async_client)
    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        resp = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, max_completion_tokens=50, temperature=0.2, top_p=0.9
        )
    call_span = otel.span(CALL)
    check_call_span(call_span, live_server, resp.id, stream=False)
    a = attrs(call_span)
    assert a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert a[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert a[sc.GEN_AI_REQUEST_TOP_P] == 0.9
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == (resp.choices[0].finish_reason,)
    assert resp.usage is not None
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == resp.usage.prompt_tokens
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == resp.usage.completion_tokens
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 0
    assert a[sc.TOKENMW_TOKENS_SAVED] == a[sc.TOKENMW_TOKENS_BEFORE] - a[sc.TOKENMW_TOKENS_AFTER] > 0
    assert_child(call_span, caller)  # type: ignore[arg-type]

    hooks = hook_spans(otel)
    phases = sorted((attrs(s)[sc.TOKENMW_HOOK_NAME], attrs(s)[sc.TOKENMW_HOOK_PHASE]) for s in hooks)
    assert phases == [
        ("around", "wrap"),
        ("around", "wrap"),  # a segment before call_next and one after it
        # no ("count_tokens", "after"): with usage reported it has nothing to do and does not run
        ("count_tokens", "on_send"),
        ("shorten", "after"),
        ("shorten", "before"),
    ]
    for s in hooks:
        assert s.kind is SpanKind.INTERNAL
        assert_child(s, call_span)
    shorten = next(s for s in hooks if s.name == "tokenmw.shorten.before")
    sa = attrs(shorten)
    assert sa[sc.TOKENMW_TOKENS_SAVED] == sa[sc.TOKENMW_TOKENS_BEFORE] - sa[sc.TOKENMW_TOKENS_AFTER] > 0
    assert sa["tokenmw.rule"] == "drop_system"
    counted = attrs(next(s for s in hooks if s.name == "tokenmw.count_tokens.on_send"))
    assert counted[sc.TOKENMW_TOKENS_AFTER] == a[sc.TOKENMW_TOKENS_AFTER]
    # Hook spans measure the hook's own work: none of them covers the model call.
    wraps = sorted((s for s in hooks if s.name == "tokenmw.around.wrap"), key=lambda s: s.start_time or 0)
    assert (wraps[0].end_time or 0) <= (wraps[1].start_time or 0)


def test_sync_call_is_child_of_the_callers_span(
    otel: Capture, sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    client = Middleware([Shorten()]).wrap(sync_client)
    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=30)
    call_span = otel.span(CALL)
    check_call_span(call_span, live_server, resp.id, stream=False)
    assert attrs(call_span)[sc.GEN_AI_REQUEST_MAX_TOKENS] == 30
    assert_child(call_span, caller)  # type: ignore[arg-type]
    assert_child(otel.span("tokenmw.shorten.before"), call_span)
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing leaked into the caller's context


async def test_sync_client_in_a_running_loop_hops_threads_with_the_context(
    otel: Capture, sync_client: openai.OpenAI
) -> None:
    # A sync client inside async code runs its call on a worker thread (no nested loops).
    client = Middleware([Shorten()]).wrap(sync_client)
    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    call_span = otel.span(CALL)
    assert_child(call_span, caller)  # type: ignore[arg-type]
    assert_child(otel.span("tokenmw.shorten.before"), call_span)


async def test_concurrent_calls_get_their_own_traces(otel: Capture, async_client: openai.AsyncOpenAI) -> None:
    client = Middleware([Shorten()]).wrap(async_client)
    tracer = trace.get_tracer("test")

    async def one(i: int) -> int:
        with tracer.start_as_current_span(f"caller {i}") as caller:
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            return caller.get_span_context().trace_id

    trace_ids = await asyncio.gather(*(one(i) for i in range(4)))
    assert len(set(trace_ids)) == 4
    for i, trace_id in enumerate(trace_ids):
        names = {s.name for s in otel.spans() if s.context.trace_id == trace_id}
        assert names == {f"caller {i}", CALL, "tokenmw.shorten.before", "tokenmw.shorten.after"}


def test_responses_api_span(otel: Capture, sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    client = Middleware([Shorten()]).wrap(sync_client)
    resp = client.responses.create(model="gpt-4o-mini", input="Summarise the news.", max_output_tokens=20)
    a = attrs(otel.span(CALL))
    assert a[sc.GEN_AI_RESPONSE_ID] == resp.id
    assert a[sc.GEN_AI_REQUEST_MAX_TOKENS] == 20
    assert resp.usage is not None
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == resp.usage.input_tokens
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == resp.usage.output_tokens
    expected = "length" if resp.status == "incomplete" else "stop"
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == (expected,)


# -- streams -----------------------------------------------------------------------------------------


def test_sync_stream_span_ends_with_the_stream(
    otel: Capture, sync_client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    client = Middleware([Shorten(), CountTokens()]).wrap(sync_client)
    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        assert [s.name for s in otel.spans() if s.name == CALL] == []  # still open
        chunks = list(stream)
    call_span = otel.span(CALL)
    check_call_span(call_span, live_server, chunks[0].id, stream=True)
    a = attrs(call_span)
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    usage = chunks[-1].usage
    assert usage is not None
    assert a[sc.GEN_AI_USAGE_INPUT_TOKENS] == usage.prompt_tokens
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == usage.completion_tokens
    assert sc.TOKENMW_OUTPUT_ESTIMATED not in a
    assert_child(call_span, caller)  # type: ignore[arg-type]
    assert_child(otel.span("tokenmw.shorten.before"), call_span)


async def test_async_stream_without_usage_chunk_reports_estimated_output(
    otel: Capture, async_client: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    client = Middleware([CountTokens()]).wrap(async_client)
    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, max_tokens=5
        )
        chunks = [c async for c in stream]
    call_span = otel.span(CALL)
    check_call_span(call_span, live_server, chunks[0].id, stream=True)
    a = attrs(call_span)
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("length",)
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    assert a[sc.TOKENMW_OUTPUT_ESTIMATED] is True
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in a  # the API reported none
    assert_child(call_span, caller)  # type: ignore[arg-type]


def test_stream_closed_early_ends_the_span(otel: Capture, sync_client: openai.OpenAI) -> None:
    client = Middleware([Shorten()]).wrap(sync_client)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    first = next(stream)
    stream.close()
    a = attrs(otel.span(CALL))
    assert a[sc.GEN_AI_RESPONSE_ID] == first.id
    assert sc.GEN_AI_RESPONSE_FINISH_REASONS not in a  # it never finished
    assert sc.ERROR_TYPE not in a


def test_responses_stream_span(otel: Capture, sync_client: openai.OpenAI) -> None:
    client = Middleware([Shorten()]).wrap(sync_client)
    events = list(client.responses.create(model="gpt-4o-mini", input="Hi", stream=True))
    final = events[-1].response  # type: ignore[union-attr]
    a = attrs(otel.span(CALL))
    assert a[sc.GEN_AI_RESPONSE_ID] == final.id
    assert a[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == final.usage.output_tokens


# -- failures ------------------------------------------------------------------------------------------


def test_skipped_hook_span(otel: Capture, sync_client: openai.OpenAI) -> None:
    client = Middleware([Exploding(), Shorten()]).wrap(sync_client)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    call_span = otel.span(CALL)
    assert call_span.status.status_code is StatusCode.UNSET
    broken = otel.span("tokenmw.exploding.before")
    a = attrs(broken)
    assert a[sc.TOKENMW_HOOK_SKIPPED] is True
    assert a[sc.ERROR_TYPE] == "KeyError"
    assert broken.status.status_code is StatusCode.ERROR
    assert [e.name for e in broken.events] == ["exception"]
    assert_child(broken, call_span)
    assert_child(otel.span("tokenmw.shorten.before"), call_span)  # the next hook still ran


def test_builtin_hooks_note_on_their_own_spans(otel: Capture, sync_client: openai.OpenAI) -> None:
    # The built-in hooks' spans are not made current (they start no spans of their own): what
    # they note must still land on their phase's span, never on the call span.
    hooks = [Compress(min_tokens=0), Enhance(max_words=50), LimitResponse(max_tokens=64), CountTokens()]
    Middleware(hooks).wrap(sync_client).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    call_span = otel.span(CALL)
    expected = {
        "tokenmw.compress.before": "tokenmw.compress.level",
        "tokenmw.enhance.before": "tokenmw.enhance.added",
        "tokenmw.limit_response.before": "tokenmw.limit.request_max_tokens",
        "tokenmw.count_tokens.on_send": "tokenmw.budget.limit",
    }
    for name, key in expected.items():
        span = otel.span(name)
        assert key in attrs(span), name
        assert key not in attrs(call_span), key
        assert_child(span, call_span)
    assert attrs(otel.span("tokenmw.enhance.before"))[sc.TOKENMW_TOKENS_AFTER] > attrs(
        otel.span("tokenmw.enhance.before")
    )[sc.TOKENMW_TOKENS_BEFORE]
    # The reply kept to the cap and usage came back: neither ``after`` phase had work, and a
    # phase that does not run has no span.
    names = {s.name for s in otel.spans()}
    assert not names & {"tokenmw.limit_response.after", "tokenmw.count_tokens.after"}

    # A provider that ignores the cap: LimitResponse.after cuts the reply, on its own span.
    otel.clear()
    reply = Middleware(hooks).wrap(sync_client).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers=OVER_THE_CAP
    )
    after = attrs(otel.span("tokenmw.limit_response.after"))
    assert after["tokenmw.limit.truncated"] is True
    assert after["tokenmw.limit.output_tokens"] > 64  # what the provider produced
    assert reply.choices[0].finish_reason == "length"
    assert "tokenmw.limit.truncated" not in attrs(otel.span(CALL))


def test_builtin_phase_spans_keep_their_times_and_failures(
    otel: Capture, sync_client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A built-in hook's span is made when its phase ends (DeferredSpan): it must still start when
    # the phase started, in order with the other phases, inside the call span, and carry a
    # failure the way a live span does (skipped, error type, status, the exception event).
    import tokenmw.hooks.compress as compress_hook

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(compress_hook, "compress_chat", broken)
    hooks = [Compress(min_tokens=0), Enhance(max_words=50), LimitResponse(max_tokens=64), CountTokens()]
    Middleware(hooks).wrap(sync_client).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers=OVER_THE_CAP  # an ``after`` with work
    )
    call_span = otel.span(CALL)
    order = ["compress.before", "enhance.before", "limit_response.before", "count_tokens.on_send"]
    spans = [otel.span(f"tokenmw.{name}") for name in order]
    for span in spans:
        assert span.start_time is not None and span.end_time is not None
        assert call_span.start_time is not None and call_span.end_time is not None
        assert call_span.start_time <= span.start_time <= span.end_time <= call_span.end_time
        assert_child(span, call_span)
    for earlier, later in itertools.pairwise(spans):
        assert earlier.end_time is not None and later.start_time is not None
        assert earlier.end_time <= later.start_time
    failed = spans[0]
    a = attrs(failed)
    assert a[sc.TOKENMW_HOOK_SKIPPED] is True
    assert a[sc.ERROR_TYPE] == "KeyError"
    assert failed.status.status_code is StatusCode.ERROR
    assert [e.name for e in failed.events] == ["exception"]
    assert failed.events[0].attributes is not None
    assert failed.events[0].attributes["exception.type"] == "KeyError"
    after = otel.span("tokenmw.limit_response.after")
    assert after.start_time is not None and spans[-1].end_time is not None
    assert after.start_time >= spans[-1].end_time  # after the model answered


def test_refusal_marks_the_hook_span_as_failed(otel: Capture, sync_client: openai.OpenAI) -> None:
    # A deliberate refusal is not a hook failure (nothing recorded as skipped), but its span ends
    # in error, as under ``trace.use_span``.
    client = Middleware([CountTokens(max_input_tokens=1)]).wrap(sync_client)
    with pytest.raises(TokenBudgetExceeded):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    refused = otel.span("tokenmw.count_tokens.on_send")
    assert refused.status.status_code is StatusCode.ERROR
    assert refused.status.description is not None
    assert refused.status.description.startswith("TokenBudgetExceeded")
    assert sc.TOKENMW_HOOK_SKIPPED not in attrs(refused)
    assert otel.span(CALL).status.status_code is StatusCode.ERROR


def test_hook_span_is_current_inside_the_phase(otel: Capture, sync_client: openai.OpenAI) -> None:
    class Traced(Hook):
        name = "traced"

        async def before(self, call: Call) -> None:
            with trace.get_tracer("test").start_as_current_span("inside before"):
                pass

        async def after(self, call: Call, response: Any) -> Any:
            trace.get_current_span().set_attribute("test.seen", True)
            return response

    Middleware([Traced()]).wrap(sync_client).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert_child(otel.span("inside before"), otel.span("tokenmw.traced.before"))
    assert attrs(otel.span("tokenmw.traced.after"))["test.seen"] is True
    assert "test.seen" not in attrs(otel.span(CALL))
    assert trace.get_current_span() is trace.INVALID_SPAN  # every phase's context was detached


def test_raising_hook_fails_the_call_span(otel: Capture, sync_client: openai.OpenAI) -> None:
    client = Middleware([Exploding()], on_hook_error="raise").wrap(sync_client)
    with pytest.raises(KeyError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert attrs(otel.span("tokenmw.exploding.before"))[sc.TOKENMW_HOOK_SKIPPED] is False
    call_span = otel.span(CALL)
    assert attrs(call_span)[sc.ERROR_TYPE] == "KeyError"
    assert call_span.status.status_code is StatusCode.ERROR


def test_api_error_on_call_span_and_duration_metric(otel: Capture, sync_client: openai.OpenAI) -> None:
    client = Middleware([Shorten()]).wrap(sync_client)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-tokenmw-error": "500"}
        )
    call_span = otel.span(CALL)
    assert attrs(call_span)[sc.ERROR_TYPE] == "InternalServerError"
    assert call_span.status.status_code is StatusCode.ERROR
    points = otel.metric_points()
    [duration] = points[sc.METRIC_OPERATION_DURATION]
    assert duration.attributes[sc.ERROR_TYPE] == "InternalServerError"
    assert sc.METRIC_TOKEN_USAGE not in points


# -- metrics -----------------------------------------------------------------------------------------


def test_metrics(otel: Capture, sync_client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    client = Middleware([Shorten(), CountTokens()]).wrap(sync_client)
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert resp.usage is not None
    points = otel.metric_points()

    [duration] = points[sc.METRIC_OPERATION_DURATION]
    assert duration.count == 1 and duration.sum > 0
    assert tuple(duration.explicit_bounds) == sc.OPERATION_DURATION_BUCKETS
    assert duration.explicit_bounds[0] == 0.01 and duration.explicit_bounds[-1] == 81.92
    common = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        sc.GEN_AI_RESPONSE_MODEL: resp.model,
        sc.SERVER_ADDRESS: "127.0.0.1",
        sc.SERVER_PORT: live_server.port,
    }
    assert dict(duration.attributes) == common

    usage = {p.attributes[sc.GEN_AI_TOKEN_TYPE]: p for p in points[sc.METRIC_TOKEN_USAGE]}
    assert usage["input"].sum == resp.usage.prompt_tokens
    assert usage["output"].sum == resp.usage.completion_tokens
    assert dict(usage["input"].attributes) == {**common, sc.GEN_AI_TOKEN_TYPE: "input"}
    assert tuple(usage["input"].explicit_bounds) == sc.TOKEN_USAGE_BUCKETS
    assert usage["input"].explicit_bounds[-1] == 67108864

    [saved] = points[sc.METRIC_TOKENS_SAVED]
    call_attrs = attrs(otel.span(CALL))
    assert saved.value == call_attrs[sc.TOKENMW_TOKENS_SAVED] > 0

    hooks = {(p.attributes[sc.TOKENMW_HOOK_NAME], p.attributes[sc.TOKENMW_HOOK_PHASE]): p
             for p in points[sc.METRIC_HOOK_DURATION]}
    assert set(hooks) == {("shorten", "before"), ("shorten", "after"), ("count_tokens", "on_send"),
                          }
    assert all(p.count == 1 and p.sum >= 0 for p in hooks.values())
    assert tuple(hooks["shorten", "before"].explicit_bounds) == sc.HOOK_DURATION_BUCKETS


async def test_stream_metrics(otel: Capture, async_client: openai.AsyncOpenAI) -> None:
    client = Middleware([Shorten()]).wrap(async_client)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    points = otel.metric_points()
    [duration] = points[sc.METRIC_OPERATION_DURATION]
    assert duration.attributes[sc.GEN_AI_RESPONSE_MODEL] == chunks[0].model
    usage = {p.attributes[sc.GEN_AI_TOKEN_TYPE]: p.sum for p in points[sc.METRIC_TOKEN_USAGE]}
    assert chunks[-1].usage is not None
    assert usage == {"input": chunks[-1].usage.prompt_tokens, "output": chunks[-1].usage.completion_tokens}


# -- usage reported by another instrumentation --------------------------------------------------------


def usage_spans(cap: Capture) -> list[str]:
    return [s.name for s in cap.spans() if sc.GEN_AI_USAGE_INPUT_TOKENS in attrs(s)]


def test_usage_reported_once_when_the_client_is_instrumented(
    otel: Capture, sync_client: openai.OpenAI
) -> None:
    openai_v2 = pytest.importorskip("opentelemetry.instrumentation.openai_v2")
    instrumentor = openai_v2.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    try:
        client = Middleware([Shorten()]).wrap(sync_client)
        with trace.get_tracer("test").start_as_current_span("caller"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        instrumentor.uninstrument()
    calls = [s for s in otel.spans() if s.name == CALL]
    [ours_span] = [s for s in calls if s.instrumentation_scope and s.instrumentation_scope.name == "tokenmw"]
    [theirs_span] = [s for s in calls if s is not ours_span]
    # tokenmw runs where every request method meets (the client's post()), inside the resource
    # method the instrumentation wraps: ours nests under theirs, in the same trace.
    assert_child(ours_span, theirs_span)
    assert sc.GEN_AI_USAGE_INPUT_TOKENS in attrs(theirs_span)
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in attrs(ours_span)
    assert len(usage_spans(otel)) == 1
    # Nor the gen_ai.client metrics twice: only their scope recorded token usage.
    data = otel.reader.get_metrics_data()
    assert data is not None
    scopes = {
        sm.scope.name
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == sc.METRIC_TOKEN_USAGE
    }
    assert "tokenmw" not in scopes and scopes


def test_usage_reporting_switch(otel: Capture, sync_client: openai.OpenAI) -> None:
    client = Middleware([Shorten()]).wrap(sync_client)
    tel.set_usage_reporting("never")
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert usage_spans(otel) == []
    tel.set_usage_reporting("always")
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert usage_spans(otel) == [CALL]
    with pytest.raises(ValueError):
        tel.set_usage_reporting("sometimes")  # type: ignore[arg-type]


# -- content and secrets ---------------------------------------------------------------------------------


def test_no_message_text_by_default(otel: Capture, sync_client: openai.OpenAI) -> None:
    client = Middleware([Shorten()]).wrap(sync_client)
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    dump = exported_text(otel)
    assert "Paris" not in dump
    assert str(resp.choices[0].message.content)[:40] not in dump


def test_message_text_when_opted_in(
    otel: Capture, sync_client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sc.CAPTURE_MESSAGE_CONTENT_ENV, "true")
    client = Middleware([Shorten()]).wrap(sync_client)
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = attrs(otel.span(CALL))
    # The request as sent: Shorten dropped the system message.
    assert json.loads(a[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": MESSAGES[-1]["content"]}]}
    ]
    assert json.loads(a[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": resp.choices[0].message.content}],
            "finish_reason": resp.choices[0].finish_reason,
        }
    ]
    otel.clear()
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    output = json.loads(attrs(otel.span(CALL))[sc.GEN_AI_OUTPUT_MESSAGES])
    assert output[0]["parts"] == [{"type": "text", "content": text}]
    otel.clear()
    client.responses.create(model="gpt-4o-mini", input="Hello there", instructions="Be brief.")
    a = attrs(otel.span(CALL))
    assert json.loads(a[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "Hello there"
    assert json.loads(a[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]


SECRET = "sk-tokenmw-secret-0123456789"


def exported_text(cap: Capture) -> str:
    """Everything the spans would export, as text."""
    return "\n".join(span.to_json() for span in cap.spans())


def test_api_key_never_on_spans(
    otel: Capture, live_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sc.CAPTURE_MESSAGE_CONTENT_ENV, "true")  # even with content on
    raw = openai.OpenAI(api_key=SECRET, base_url=live_server.base_url, max_retries=0)
    client = Middleware([Shorten()]).wrap(raw)
    client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-api-key": SECRET}, user="someone"
    )
    list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    raw.close()
    assert live_server.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # it was sent
    assert len(otel.spans()) == 5
    assert SECRET not in exported_text(otel)


async def test_litellm_style_call_server_from_api_base_and_no_key(otel: Capture) -> None:
    # LiteLLM receives the key and the endpoint as arguments; the chain must copy neither whole.
    async def send(call: Call) -> dict[str, Any]:
        return {"id": "chatcmpl-1", "model": "claude-x", "choices": [{"finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3,
                          "prompt_tokens_details": {"cached_tokens": 7}}}

    request = {
        "model": "anthropic/claude-x",
        "messages": [{"role": "user", "content": "hi"}],
        "api_key": SECRET,
        "api_base": f"https://user:{SECRET}@llm.example.com:8443/v1",
    }
    await Middleware([Shorten()]).run(Call(request, "chat", provider="anthropic"), send)
    span = otel.span("chat anthropic/claude-x")
    a = attrs(span)
    assert a[sc.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert a[sc.SERVER_ADDRESS] == "llm.example.com"
    assert a[sc.SERVER_PORT] == 8443
    assert a[sc.GEN_AI_RESPONSE_MODEL] == "claude-x"
    assert a[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 7
    assert SECRET not in exported_text(otel)


# -- the switch itself ------------------------------------------------------------------------------------


def test_active_agrees_with_the_public_api(otel: Capture) -> None:
    assert tel.sdk_configured()
    assert tel._tracer_provider_set() is not isinstance(
        trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    )


def run_script(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_without_an_sdk_no_spans_and_late_providers_are_found() -> None:
    # A fresh process: no provider at first, then a tracer provider, then a meter provider.
    out = run_script(
        """
        import asyncio
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import tokenmw
        from tokenmw.telemetry import _spans as tel

        class Hook(tokenmw.Hook):
            name = "h"
            async def before(self, call): pass

        async def send(call):
            return {"id": "x", "model": "m", "choices": []}

        def run():
            call = tokenmw.Call({"model": "gpt-4o-mini", "messages": []}, "chat")
            asyncio.run(tokenmw.Middleware([Hook()]).run(call, send))

        run()
        print("none", tel.sdk_configured(), len(tel._calls), len(tel._hooks))
        # Metrics only: hook durations are measured although no span records.
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        run()
        names = sorted(m.name for rm in reader.get_metrics_data().resource_metrics
                       for sm in rm.scope_metrics for m in sm.metrics)
        print("metrics", tel.sdk_configured(), tel._tracer is None, names)
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        run()
        names = sorted(s.name for s in exporter.get_finished_spans())
        print("traces", names, len(tel._calls), len(tel._hooks))
        """
    )
    lines = out.splitlines()
    assert lines[0] == "none False 0 0"
    assert lines[1] == (
        "metrics True True ['gen_ai.client.operation.duration', 'tokenmw.hook.duration']"
    )
    assert lines[2] == "traces ['chat gpt-4o-mini', 'tokenmw.h.before'] 0 0"


# -- tokenmw.telemetry.setup in a process that has providers already --------------------------------


def test_setup_leaves_installed_providers_alone(
    otel: Capture, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tokenmw import telemetry

    installed = telemetry.setup("another-service", endpoint="http://127.0.0.1:9")
    assert installed.tracer_provider is None and installed.meter_provider is None
    assert trace.get_tracer_provider() is otel.tracer_provider
    assert "tracer provider is installed already" in caplog.text
    assert installed.force_flush()  # nothing of its own to flush

    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    caplog.clear()
    assert telemetry.setup("x") == telemetry.Telemetry()
    assert caplog.text == ""


def test_captured_messages_keep_roles_text_and_tool_calls_only() -> None:
    from tokenmw.telemetry import _content as content

    image = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg"
    args = '{"x":1}'
    request = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                         {"type": "image_url", "image_url": {"url": image}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "look", "arguments": args}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
        ],
        "api_key": SECRET,
    }
    [attr] = content.input_attributes("chat", request).values()
    assert json.loads(attr) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is this?"}, {"type": "image_url"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "look",
                                         "arguments": args}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "a cat"}]},
    ]
    assert image not in attr and SECRET not in attr


def test_the_private_opentelemetry_globals_tokenmw_reads_are_still_there() -> None:
    # tokenmw reads the API's provider globals directly (telemetry/_spans.py); if a release of
    # opentelemetry-api moves them, the public getters take over and this test says so.
    from opentelemetry import metrics, trace

    assert hasattr(trace, "_TRACER_PROVIDER")
    assert hasattr(metrics._internal, "_METER_PROVIDER")
    assert hasattr(metrics._internal, "_ProxyMeterProvider")
    assert tel._FAST_TRACE and tel._FAST_METER
