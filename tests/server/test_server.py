"""The embedded server, driven by the real openai clients over loopback HTTP."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tokenmw._tokens.count_cache import cache_for
from tokenmw._tokens.counting import count_tokens, plan_request
from tokenmw._tokens.encodings import encoding_for
from tokenmw.server import EmbeddedServer, ServerSettings, _billing, run_cli
from tokenmw.server._cli import build_parser
from tokenmw.server._reply import reply_text

MODEL = "gpt-4o-mini"
WORDS = ServerSettings().reply_words
MESSAGES: Any = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say something about token budgets, please."},
]
ROOT = Path(__file__).resolve().parents[2]


def tokens(text: str, model: str = MODEL) -> list[int]:
    return encoding_for(model).encode_ordinary(text)


def responses_input_tokens(request: dict[str, Any]) -> int:
    plan = plan_request("responses", request)
    return plan.fixed + cache_for(encoding_for(request["model"])).count_all(plan.texts)


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def server_rule(request: dict[str, Any], offset: int = 0) -> int:
    """The server's documented billing rule, written out again here so the test can fail."""
    total = 5 + offset
    for name in ("instructions", "messages", "input", "tools", "tool_choice"):
        value = request.get(name)
        if isinstance(value, list):
            total += (6 if name == "tools" else 4) * len(value)
        total += sum(len(tokens(text, request["model"])) for text in strings(value))
    return total


def raw_post(server: EmbeddedServer, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


# -- chat completions ------------------------------------------------------------------------------


def test_chat_completion_has_the_reply_and_real_usage(
    live_server: EmbeddedServer, sync_client: OpenAI
) -> None:
    completion = sync_client.chat.completions.create(model=MODEL, messages=MESSAGES)

    text = reply_text(WORDS)
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == text
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    request = {"model": MODEL, "messages": MESSAGES}
    assert usage.prompt_tokens == server_rule(request)
    # Its own count, not tokenmw's: tests can tell what the API reported from what was counted.
    assert usage.prompt_tokens != count_tokens(MESSAGES, model=MODEL)
    assert usage.completion_tokens == len(tokens(text))
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0

    (record,) = live_server.requests
    assert (record.method, record.path) == ("POST", "/v1/chat/completions")
    assert record.body == {"model": MODEL, "messages": MESSAGES}
    assert record.headers["authorization"] == "Bearer test-key"
    assert record.billed is not None
    assert (record.billed.input_tokens, record.billed.output_tokens) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert record.billed.reported and record.billed.response_id == completion.id


def test_usage_follows_the_model_encoding(sync_client: OpenAI) -> None:
    completion = sync_client.chat.completions.create(model="gpt-4", messages=MESSAGES)

    assert completion.usage is not None
    assert completion.usage.prompt_tokens == server_rule({"model": "gpt-4", "messages": MESSAGES})
    assert completion.usage.completion_tokens == len(tokens(reply_text(WORDS), "gpt-4"))


def test_connection_is_kept_alive(live_server: EmbeddedServer, sync_client: OpenAI) -> None:
    for _ in range(3):
        sync_client.chat.completions.create(model=MODEL, messages=MESSAGES)

    ports = {record.client_port for record in live_server.requests}
    assert len(live_server.requests) == 3
    assert len(ports) == 1


def test_chat_stream_yields_words_then_finish_without_usage(
    live_server: EmbeddedServer, sync_client: OpenAI
) -> None:
    chunks = list(sync_client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))

    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == reply_text(WORDS)
    assert all(c.object == "chat.completion.chunk" and len(c.choices) == 1 for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert all(c.usage is None for c in chunks)
    assert len({c.id for c in chunks}) == 1

    (record,) = live_server.streams
    assert record.wait(5)
    assert record.completed and not record.disconnected
    assert record.chunks_sent == record.chunks_total == len(chunks) + 1  # + data: [DONE]


def test_chat_stream_ends_with_usage_chunk_when_asked(sync_client: OpenAI) -> None:
    chunks = list(
        sync_client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )

    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens == server_rule({"model": MODEL, "messages": MESSAGES})
    assert last.usage.completion_tokens == len(tokens(reply_text(WORDS)))
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks[:-1])


async def test_async_client_streams_and_reuses_the_connection(
    live_server: EmbeddedServer, async_client: AsyncOpenAI
) -> None:
    for _ in range(2):
        stream = await async_client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == reply_text(WORDS)

    assert all(r.wait(5) and r.completed for r in live_server.streams)
    assert len({r.client_port for r in live_server.requests}) == 1


async def test_concurrent_async_calls_all_answered(
    live_server: EmbeddedServer, async_client: AsyncOpenAI
) -> None:
    results = await asyncio.gather(
        *(
            async_client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"question {i}"}]
            )
            for i in range(8)
        )
    )

    assert [r.choices[0].message.content for r in results] == [reply_text(WORDS)] * 8
    bodies = sorted(r.body["messages"][0]["content"] for r in live_server.requests)
    assert bodies == sorted(f"question {i}" for i in range(8))


# -- responses -------------------------------------------------------------------------------------


def test_responses_create_parses_into_a_completed_response(sync_client: OpenAI) -> None:
    request: dict[str, Any] = {"model": MODEL, "input": "Summarise the budget.", "instructions": "Be brief."}
    response = sync_client.responses.create(**request)

    text = reply_text(WORDS)
    assert isinstance(response, openai.types.responses.Response)
    assert response.status == "completed"
    assert response.incomplete_details is None
    assert response.output_text == text
    message = response.output[0]
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    assert response.usage is not None
    assert response.usage.input_tokens == server_rule(request)
    assert response.usage.input_tokens != responses_input_tokens(request)
    assert response.usage.output_tokens == len(tokens(text))
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0


def test_responses_stream_event_sequence(live_server: EmbeddedServer, sync_client: OpenAI) -> None:
    request: dict[str, Any] = {"model": MODEL, "input": [{"role": "user", "content": "Hello"}]}
    events = list(sync_client.responses.create(**request, stream=True))

    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == WORDS
    assert "".join(deltas) == reply_text(WORDS)
    final = events[-1].response
    assert final.status == "completed"
    assert final.output_text == reply_text(WORDS)
    assert final.usage is not None
    assert final.usage.input_tokens == server_rule(request)
    (billed,) = [r.billed for r in live_server.requests]
    assert billed is not None and billed.reported and billed.response_id == final.id
    assert (billed.input_tokens, billed.output_tokens) == (
        final.usage.input_tokens,
        final.usage.output_tokens,
    )
    (record,) = live_server.streams
    assert record.wait(5) and record.completed and record.chunks_sent == len(events)


async def test_async_responses_stream(async_client: AsyncOpenAI) -> None:
    stream = await async_client.responses.create(model=MODEL, input="Hi", stream=True)
    types = [event.type async for event in stream]

    assert types[0] == "response.created"
    assert types[-1] == "response.completed"


# -- output caps -----------------------------------------------------------------------------------


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_chat_output_cap_is_honoured(sync_client: OpenAI, param: str) -> None:
    cap: dict[str, Any] = {param: 5}
    completion = sync_client.chat.completions.create(model=MODEL, messages=MESSAGES, **cap)

    expected = encoding_for(MODEL).decode(tokens(reply_text(WORDS))[:5])
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == expected
    assert completion.usage is not None and completion.usage.completion_tokens == 5


def test_chat_stream_output_cap_is_honoured(sync_client: OpenAI) -> None:
    chunks = list(
        sync_client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            max_tokens=7,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == encoding_for(MODEL).decode(tokens(reply_text(WORDS))[:7])
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7


def test_responses_output_cap_makes_an_incomplete_response(sync_client: OpenAI) -> None:
    response = sync_client.responses.create(model=MODEL, input="Hi", max_output_tokens=16)

    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == encoding_for(MODEL).decode(tokens(reply_text(WORDS))[:16])
    assert response.usage is not None and response.usage.output_tokens == 16

    events = list(sync_client.responses.create(model=MODEL, input="Hi", max_output_tokens=16, stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.status == "incomplete"
    assert events[-1].response.usage is not None and events[-1].response.usage.output_tokens == 16


def test_output_cap_ignored_by_setting(live_server: EmbeddedServer, sync_client: OpenAI) -> None:
    live_server.settings.ignore_max_tokens = True
    completion = sync_client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)

    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == reply_text(WORDS)


def test_output_cap_ignored_by_header(sync_client: OpenAI) -> None:
    response = sync_client.responses.create(
        model=MODEL,
        input="Hi",
        max_output_tokens=16,
        extra_headers={"x-tokenmw-ignore-max-tokens": "true"},
    )

    assert response.status == "completed"
    assert response.output_text == reply_text(WORDS)


# -- per-request headers and settings ------------------------------------------------------------


def test_reply_words_and_seed_headers(sync_client: OpenAI) -> None:
    def ask(headers: dict[str, str]) -> str:
        completion = sync_client.chat.completions.create(
            model=MODEL, messages=MESSAGES, extra_headers=headers
        )
        return completion.choices[0].message.content or ""

    assert len(ask({"x-tokenmw-reply-words": "5"}).split()) == 5
    seeded = ask({"x-tokenmw-seed": "alpha"})
    assert seeded == ask({"x-tokenmw-seed": "alpha"})
    assert seeded != ask({})
    assert len(seeded.split()) == WORDS


def test_settings_change_at_run_time(live_server: EmbeddedServer, sync_client: OpenAI) -> None:
    live_server.settings.reply_words = 3
    completion = sync_client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert completion.choices[0].message.content == reply_text(3)


def test_error_header_gives_that_status(sync_client: OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        sync_client.chat.completions.create(
            model=MODEL, messages=MESSAGES, extra_headers={"x-tokenmw-error": "429"}
        )
    assert caught.value.status_code == 429
    assert caught.value.code == "rate_limit_exceeded"


# -- bad requests ----------------------------------------------------------------------------------


def test_missing_messages_is_a_bad_request(sync_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sync_client.chat.completions.create(model=MODEL, messages=[])
    assert caught.value.param == "messages"


def test_missing_model_is_a_bad_request(sync_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sync_client.responses.create(model="", input="Hi")
    assert caught.value.param == "model"


def test_bad_header_value_is_a_bad_request(sync_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sync_client.chat.completions.create(
            model=MODEL, messages=MESSAGES, extra_headers={"x-tokenmw-reply-words": "many"}
        )
    assert caught.value.param == "x-tokenmw-reply-words"


def test_invalid_output_cap_is_a_bad_request(sync_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sync_client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=0)
    assert caught.value.param == "max_tokens"


def test_malformed_json_gets_an_openai_error_body(live_server: EmbeddedServer) -> None:
    status, body = raw_post(live_server, "/v1/chat/completions", b"{not json")

    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert "parse the JSON body" in body["error"]["message"]
    assert live_server.requests[-1].body is None


def test_unknown_path_is_not_found(live_server: EmbeddedServer, sync_client: OpenAI) -> None:
    status, body = raw_post(live_server, "/v1/embeddings", b"{}")
    assert status == 404
    assert body["error"]["message"] == "Invalid URL (POST /v1/embeddings)"

    with pytest.raises(openai.NotFoundError):
        sync_client.embeddings.create(model="text-embedding-3-small", input="x")


def test_models_list(sync_client: OpenAI) -> None:
    ids = [model.id for model in sync_client.models.list()]

    assert MODEL in ids


# -- streams the sync_client abandons -------------------------------------------------------------------


def test_client_closing_a_slow_stream_stops_the_server(
    live_server: EmbeddedServer, sync_client: OpenAI
) -> None:
    live_server.settings.chunk_delay = 0.02
    live_server.settings.reply_words = 400
    stream = sync_client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    received = [next(stream) for _ in range(3)]
    stream.close()

    (record,) = live_server.streams
    assert record.wait(5)
    assert record.disconnected and not record.completed
    assert len(received) <= record.chunks_sent < record.chunks_total


async def test_async_client_closing_a_slow_responses_stream(
    live_server: EmbeddedServer, async_client: AsyncOpenAI
) -> None:
    stream = await async_client.responses.create(
        model=MODEL,
        input="Hi",
        stream=True,
        extra_headers={"x-tokenmw-chunk-delay": "0.02", "x-tokenmw-reply-words": "400"},
    )
    async for event in stream:
        if event.type == "response.output_text.delta":
            break
    await stream.close()

    (record,) = live_server.streams
    assert await asyncio.to_thread(record.wait, 5)
    assert record.disconnected
    assert record.chunks_sent < record.chunks_total


def test_client_timing_out_during_latency_is_recorded(live_server: EmbeddedServer) -> None:
    impatient = OpenAI(api_key="test", base_url=live_server.base_url, max_retries=0, timeout=0.2)
    with impatient, pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, extra_headers={"x-tokenmw-latency": "5"}
        )

    (record,) = live_server.streams
    assert record.wait(5)
    assert record.disconnected
    assert record.chunks_sent == 0


# -- lifecycle -------------------------------------------------------------------------------------


def test_stop_closes_kept_alive_connections() -> None:
    server = EmbeddedServer(reply_words=2).start()
    with OpenAI(api_key="test", base_url=server.base_url, max_retries=0, timeout=2) as c:
        assert c.chat.completions.create(model=MODEL, messages=MESSAGES).choices[0].message.content
        server.stop()
        server.stop()  # idempotent
        with pytest.raises(openai.APIConnectionError):
            c.chat.completions.create(model=MODEL, messages=MESSAGES)


def test_reset_forgets_records(live_server: EmbeddedServer, sync_client: OpenAI) -> None:
    list(sync_client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    assert live_server.requests and live_server.streams

    live_server.reset()

    assert live_server.requests == [] and live_server.streams == []


def test_base_url_needs_a_started_server() -> None:
    with pytest.raises(RuntimeError):
        _ = EmbeddedServer().base_url


# -- command line ----------------------------------------------------------------------------------


def test_cli_parser_defaults_and_options() -> None:
    parser = build_parser()
    defaults = parser.parse_args([])
    assert (defaults.host, defaults.port, defaults.reply_words) == ("127.0.0.1", 8799, 60)
    assert defaults.ignore_max_tokens is False

    args = parser.parse_args(
        [
            "--port",
            "0",
            "--reply-words",
            "7",
            "--latency",
            "0.5",
            "--chunk-delay",
            "0.1",
            "--ignore-max-tokens",
        ]
    )
    assert (args.port, args.reply_words, args.latency, args.chunk_delay) == (0, 7, 0.5, 0.1)
    assert args.ignore_max_tokens is True

    with pytest.raises(SystemExit):
        parser.parse_args(["--latency", "-1"])


def test_run_cli_serves_until_interrupted() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    code = "import sys; from tokenmw.server import run_cli; sys.exit(run_cli(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--reply-words", "4", "--ignore-max-tokens"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with OpenAI(api_key="test", base_url=base_url, max_retries=0, timeout=5) as c:
            completion = c.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=1)
        assert completion.choices[0].message.content == reply_text(4)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_run_cli_reports_a_port_in_use(
    live_server: EmbeddedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["--port", str(live_server.port)]) == 1
    assert "tokenmw serve" in capsys.readouterr().err


# -- the server's own usage ------------------------------------------------------------------------


def test_usage_offsets_by_header_and_setting(live_server: EmbeddedServer, sync_client: OpenAI) -> None:
    request: dict[str, Any] = {"model": MODEL, "messages": MESSAGES}
    plain = sync_client.chat.completions.create(**request)
    shifted = sync_client.chat.completions.create(
        **request, extra_headers={"x-tokenmw-usage-offset": "100", "x-tokenmw-output-offset": "7"}
    )
    live_server.settings.usage_offset = -3
    lowered = sync_client.responses.create(model=MODEL, input="Hello")

    assert plain.usage is not None and shifted.usage is not None and lowered.usage is not None
    assert shifted.usage.prompt_tokens == plain.usage.prompt_tokens + 100
    assert shifted.usage.completion_tokens == plain.usage.completion_tokens + 7
    assert lowered.usage.input_tokens == server_rule({"model": MODEL, "input": "Hello"}, offset=-3)
    assert [r.billed.input_tokens for r in live_server.requests if r.billed] == [
        plain.usage.prompt_tokens,
        shifted.usage.prompt_tokens,
        lowered.usage.input_tokens,
    ]


def test_tools_are_billed_by_the_server_rule(sync_client: OpenAI) -> None:
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    completion = sync_client.chat.completions.create(model=MODEL, messages=MESSAGES, tools=tools)

    assert completion.usage is not None
    request = {"model": MODEL, "messages": MESSAGES, "tools": tools}
    assert completion.usage.prompt_tokens == server_rule(request)
    assert completion.usage.prompt_tokens != count_tokens(MESSAGES, model=MODEL, tools=tools)


def test_stream_without_usage_is_billed_but_not_reported(
    live_server: EmbeddedServer, sync_client: OpenAI
) -> None:
    chunks = list(sync_client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    with pytest.raises(openai.RateLimitError):
        sync_client.chat.completions.create(
            model=MODEL, messages=MESSAGES, extra_headers={"x-tokenmw-error": "429"}
        )

    streamed, failed = live_server.requests
    assert streamed.billed is not None and not streamed.billed.reported
    assert streamed.billed.response_id == chunks[0].id
    assert streamed.billed.input_tokens == server_rule({"model": MODEL, "messages": MESSAGES, "stream": True})
    assert failed.billed is None


def test_a_pathologically_deep_body_is_billed_without_crashing(sync_client: OpenAI) -> None:
    deep: Any = "leaf"
    for _ in range(200):
        deep = [deep]
    completion = sync_client.responses.create(
        model=MODEL, input=[{"role": "user", "content": "hi"}], metadata=None, extra_body={"tools": deep}
    )
    assert completion.usage is not None and completion.usage.input_tokens > _billing.INPUT_BASE


def test_azure_paths_are_answered_like_the_openai_ones(live_server: EmbeddedServer) -> None:
    azure = openai.AzureOpenAI(
        api_key="azure-key", azure_endpoint=live_server.url, api_version="2024-10-21", max_retries=0
    )
    completion = azure.chat.completions.create(model="my-deployment", messages=MESSAGES)
    response = azure.responses.create(model="my-deployment", input="Hello")
    azure.close()

    assert completion.choices[0].message.content == reply_text(WORDS)
    assert response.output_text == reply_text(WORDS)
    chat, responses = live_server.requests
    assert chat.path == "/openai/deployments/my-deployment/chat/completions"
    assert responses.path == "/openai/responses"
    assert chat.headers["api-key"] == "azure-key"
    status, _ = raw_post(live_server, "/openai/deployments/x/embeddings", b"{}")
    assert status == 404
