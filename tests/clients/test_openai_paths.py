"""Every openai method that sends a chat completion or a Responses request runs the chain once.

Each test calls one method of a wrapped client, sync and async, and proves from the server's
recorded request that the chain ran (the recording hook saw exactly one call, Enhance's instruction
is on the wire exactly once) and that the method's own result is intact. The server reads the
request (``x-tokenmw-answer: auto``), so structured output and tool calls come back as a model
would send them.
"""

from __future__ import annotations

import contextlib
import gc
import json
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pydantic
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

import tokenmw
from tokenmw._clients.streams import ATTR_BODY_UNSEEN
from tokenmw.server import EmbeddedServer

from .._billed import server_billed
from .._otel import Capture, capture
from .._probe import AUTO, Recorder, enhanced, probe_middleware, wire_requests
from ..conftest import MESSAGES

MODEL = "gpt-4o-mini"


class City(pydantic.BaseModel):
    name: str
    population: int
    landmarks: list[str]


CITY_TOOL = openai.pydantic_function_tool(City, name="record_city")


@pytest.fixture
def client(live_server: EmbeddedServer) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(api_key="test-key", base_url=live_server.base_url, max_retries=0, default_headers=AUTO)
    yield c
    c.close()


@pytest.fixture
async def aclient(live_server: EmbeddedServer) -> AsyncIterator[openai.AsyncOpenAI]:
    c = openai.AsyncOpenAI(
        api_key="test-key", base_url=live_server.base_url, max_retries=0, default_headers=AUTO
    )
    yield c
    await c.close()


def ran_once(
    recorder: Recorder, server: EmbeddedServer, operation: str, *, stream: bool = False
) -> dict[str, Any]:
    """The chain ran exactly once for exactly one request, which carries Enhance's instruction."""
    assert recorder.calls == [(operation, stream)]
    [body] = wire_requests(server)
    assert enhanced(body), body
    if stream:
        assert recorder.ends == ["completed"], recorder.ends
    return body


def check_city(city: Any) -> None:
    assert isinstance(city, City)
    assert city.name and city.population > 0 and city.landmarks


# -- chat completions -----------------------------------------------------------------------------


def test_chat_create(client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    resp = mw.wrap(client).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert isinstance(resp, ChatCompletion) and resp.choices[0].message.content
    ran_once(recorder, live_server, "chat")
    assert recorder.responses == [resp]


async def test_chat_create_stream_async(aclient: openai.AsyncOpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    stream = await mw.wrap(aclient).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    chunks = [c async for c in stream]
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    ran_once(recorder, live_server, "chat", stream=True)
    assert recorder.chunks == len(chunks)


def test_chat_parse(client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    resp = mw.wrap(client).chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=City)
    check_city(resp.choices[0].message.parsed)
    body = ran_once(recorder, live_server, "chat")
    assert body["response_format"]["type"] == "json_schema"  # hooks saw the schema parse() made
    assert mw.usage.calls == 1 and mw.usage.output_tokens == resp.usage.completion_tokens  # type: ignore[union-attr]
    assert mw.usage.input_tokens_reported == server_billed(live_server).input_tokens


async def test_chat_parse_async(aclient: openai.AsyncOpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    resp = await mw.wrap(aclient).chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=City)
    check_city(resp.choices[0].message.parsed)
    ran_once(recorder, live_server, "chat")


def test_chat_parse_tool_arguments(client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    resp = mw.wrap(client).chat.completions.parse(model=MODEL, messages=MESSAGES, tools=[CITY_TOOL])
    [tool_call] = resp.choices[0].message.tool_calls or []
    check_city(tool_call.function.parsed_arguments)
    ran_once(recorder, live_server, "chat")


def test_chat_stream_helper(client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    with mw.wrap(client).chat.completions.stream(
        model=MODEL, messages=MESSAGES, response_format=City
    ) as stream:
        types = [event.type for event in stream]
        final = stream.get_final_completion()
    assert "content.delta" in types and "content.done" in types
    check_city(final.choices[0].message.parsed)
    ran_once(recorder, live_server, "chat", stream=True)
    assert recorder.chunks == types.count("chunk")  # on_chunk saw the underlying chunks


async def test_chat_stream_helper_async(aclient: openai.AsyncOpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    async with mw.wrap(aclient).chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        deltas = [event.delta async for event in stream if event.type == "content.delta"]
        final = await stream.get_final_completion()
    assert "".join(deltas) == final.choices[0].message.content
    ran_once(recorder, live_server, "chat", stream=True)
    assert recorder.chunks > len(deltas)


def test_chat_stream_helper_until_done_with_tools(client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    with mw.wrap(client).chat.completions.stream(model=MODEL, messages=MESSAGES, tools=[CITY_TOOL]) as stream:
        stream.until_done()
        final = stream.get_final_completion()
    [tool_call] = final.choices[0].message.tool_calls or []
    check_city(tool_call.function.parsed_arguments)
    ran_once(recorder, live_server, "chat", stream=True)


def test_chat_stream_helper_left_early_ends_the_call_once(
    client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    recorder, mw = probe_middleware()
    with mw.wrap(client).chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        for _ in stream:
            break
    assert recorder.ends == ["closed"]  # when the helper closed the response, not at collection
    del stream
    gc.collect()
    assert recorder.ends == ["closed"] and mw.usage.calls == 1


# -- the beta namespace ---------------------------------------------------------------------------


def test_beta_chat_parse_and_stream(client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    beta = mw.wrap(client).beta.chat.completions
    check_city(beta.parse(model=MODEL, messages=MESSAGES, response_format=City).choices[0].message.parsed)
    ran_once(recorder, live_server, "chat")
    live_server.reset()
    recorder.calls.clear()
    with beta.stream(model=MODEL, messages=MESSAGES) as stream:
        assert stream.get_final_completion().choices[0].message.content
    ran_once(recorder, live_server, "chat", stream=True)


async def test_beta_chat_create_and_responses_async(
    aclient: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    recorder, mw = probe_middleware()
    wrapped = mw.wrap(aclient)
    resp = await wrapped.beta.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert resp.choices[0].message.content
    ran_once(recorder, live_server, "chat")
    live_server.reset()
    recorder.calls.clear()
    beta = await wrapped.beta.responses.create(model=MODEL, input="Summarise the news.")
    assert beta.output[0].content[0].text  # type: ignore[union-attr]
    ran_once(recorder, live_server, "responses")


# -- responses --------------------------------------------------------------------------------------


async def test_responses_create_async(aclient: openai.AsyncOpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    resp = await mw.wrap(aclient).responses.create(model=MODEL, input="Summarise the news.")
    assert isinstance(resp, Response) and resp.output_text
    ran_once(recorder, live_server, "responses")


def test_responses_create_stream(client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    events = list(mw.wrap(client).responses.create(model=MODEL, input="Hi", stream=True))
    assert events[-1].type == "response.completed"
    ran_once(recorder, live_server, "responses", stream=True)
    assert mw.usage.output_tokens == events[-1].response.usage.output_tokens  # type: ignore[union-attr]
    assert mw.usage.input_tokens_reported == server_billed(live_server).input_tokens


def test_responses_parse(client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    resp = mw.wrap(client).responses.parse(model=MODEL, input="Describe Paris.", text_format=City)
    check_city(resp.output_parsed)
    body = ran_once(recorder, live_server, "responses")
    assert body["text"]["format"]["type"] == "json_schema"


async def test_responses_parse_async(aclient: openai.AsyncOpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    resp = await mw.wrap(aclient).responses.parse(model=MODEL, input="Describe Paris.", text_format=City)
    check_city(resp.output_parsed)
    ran_once(recorder, live_server, "responses")


def test_responses_stream_helper(client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    with mw.wrap(client).responses.stream(model=MODEL, input="Describe Paris.", text_format=City) as stream:
        types = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.output_text.delta" in types and types[-1] == "response.completed"
    check_city(final.output_parsed)
    ran_once(recorder, live_server, "responses", stream=True)
    assert recorder.chunks == len(types)  # on_chunk saw every event


async def test_responses_stream_helper_async(
    aclient: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    recorder, mw = probe_middleware()
    async with mw.wrap(aclient).responses.stream(model=MODEL, input="Hi") as stream:
        await stream.until_done()
        final = await stream.get_final_response()
    assert final.output_text
    ran_once(recorder, live_server, "responses", stream=True)
    assert mw.usage.output_tokens == final.usage.output_tokens  # type: ignore[union-attr]


# -- with_raw_response -------------------------------------------------------------------------------


def test_raw_chat_parse(client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    raw = mw.wrap(client).chat.completions.with_raw_response.parse(
        model=MODEL, messages=MESSAGES, response_format=City
    )
    assert raw.headers.get("x-request-id")
    parsed = raw.parse()
    check_city(parsed.choices[0].message.parsed)
    assert recorder.responses == [parsed]  # the hooks' result is what the raw response parses to
    ran_once(recorder, live_server, "chat")


async def test_raw_responses_parse_async(aclient: openai.AsyncOpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    raw = await mw.wrap(aclient).responses.with_raw_response.parse(
        model=MODEL, input="Describe Paris.", text_format=City
    )
    check_city(raw.parse().output_parsed)
    ran_once(recorder, live_server, "responses")


# -- with_streaming_response -------------------------------------------------------------------------


async def test_streaming_response_parsed_async(
    aclient: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    """openai-agents' streamed Responses turn: with_streaming_response, then parse() and iterate."""
    recorder, mw = probe_middleware()
    async with mw.wrap(aclient).responses.with_streaming_response.create(
        model=MODEL, input="Hi", stream=True
    ) as response:
        assert recorder.calls == [("responses", True)]  # request phases ran before the body is read
        events = [event async for event in await response.parse()]
    assert events[-1].type == "response.completed"
    ran_once(recorder, live_server, "responses", stream=True)
    assert recorder.chunks == len(events)
    assert mw.usage.calls == 1
    assert mw.usage.output_tokens == events[-1].response.usage.output_tokens  # type: ignore[union-attr]
    assert mw.usage.input_tokens_reported == server_billed(live_server).input_tokens


def test_streaming_response_read_raw_still_ends_the_call(
    client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    otel: Capture = capture()
    otel.clear()
    recorder, mw = probe_middleware()
    with mw.wrap(client).chat.completions.with_streaming_response.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    usage = json.loads(lines[-1][len("data: ") :])["usage"]
    ran_once(recorder, live_server, "chat", stream=True)
    assert recorder.chunks == 0  # per-chunk hooks could not see a raw read
    assert mw.usage.calls == 1
    assert mw.usage.output_tokens == usage["completion_tokens"]  # the stream's own usage, recorded
    [span] = [s for s in otel.spans() if s.name == f"chat {MODEL}"]
    assert (span.attributes or {}).get(ATTR_BODY_UNSEEN) is True


async def test_streaming_response_not_streamed_async(
    aclient: openai.AsyncOpenAI, live_server: EmbeddedServer
) -> None:
    recorder, mw = probe_middleware()
    async with mw.wrap(aclient).chat.completions.with_streaming_response.create(
        model=MODEL, messages=MESSAGES
    ) as response:
        parsed = await response.parse()
        raw = json.loads(await response.read())
    assert parsed.choices[0].message.content == raw["choices"][0]["message"]["content"]
    assert recorder.responses == [parsed]
    ran_once(recorder, live_server, "chat")


# -- copies, context managers, other endpoints -----------------------------------------------------


def test_with_block_and_copies_stay_wrapped(client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    wrapped = mw.wrap(client)
    with wrapped.with_options(timeout=5) as inner:
        assert isinstance(inner, openai.OpenAI)
        inner.copy(max_retries=1).chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=City)
    ran_once(recorder, live_server, "chat")


async def test_async_with_block_stays_wrapped(live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    async with mw.wrap(openai.AsyncOpenAI(api_key="k", base_url=live_server.base_url)) as client:
        assert isinstance(client, openai.AsyncOpenAI)
        await client.responses.create(model=MODEL, input="Hi")
    ran_once(recorder, live_server, "responses")


def test_other_endpoints_pass_through(client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    with pytest.raises(openai.NotFoundError):  # the embedded server has no embeddings endpoint
        mw.wrap(client).embeddings.create(model="text-embedding-3-small", input="hello")
    assert recorder.calls == [] and mw.usage.calls == 0
    assert [r.path for r in live_server.requests] == ["/v1/embeddings"]


def test_retries_stay_inside_one_chain_run(live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    client = mw.wrap(
        openai.OpenAI(api_key="k", base_url=live_server.base_url, max_retries=2).with_options(timeout=5)
    )
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model=MODEL, messages=MESSAGES, extra_headers={"x-tokenmw-error": "500"}
        )
    assert recorder.calls == [("chat", False)]  # one logical call
    bodies = wire_requests(live_server)
    assert len(bodies) == 3 and all(enhanced(b) for b in bodies)  # each retry sends the hooked request


def test_extra_body_is_part_of_the_request_hooks_see(
    client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    seen: list[Any] = []

    class Peek(tokenmw.Hook):
        async def before(self, call: tokenmw.Call) -> None:
            seen.append(call.request.get("max_completion_tokens"))

    mw = tokenmw.Middleware([Peek(), tokenmw.LimitResponse(max_tokens=50)])
    mw.wrap(client).chat.completions.create(
        model=MODEL, messages=MESSAGES, extra_body={"max_completion_tokens": 20}
    )
    assert seen == [20]
    [body] = wire_requests(live_server)
    assert body["max_completion_tokens"] == 20  # LimitResponse never raises a lower cap


def test_limit_response_never_cuts_structured_output(
    client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    recorder, mw = probe_middleware(tokenmw.LimitResponse(max_tokens=3))
    resp = mw.wrap(client).chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=City)
    check_city(resp.choices[0].message.parsed)
    body = ran_once(recorder, live_server, "chat")
    assert "max_completion_tokens" not in body


def test_hooks_may_change_the_messages_of_parse(client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    class Redact(tokenmw.Hook):
        async def before(self, call: tokenmw.Call) -> None:
            call.request["messages"] = [
                {**m, "content": m["content"].replace("Paris", "[city]")} for m in call.request["messages"]
            ]

    mw = tokenmw.Middleware([Redact()])
    resp = mw.wrap(client).chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=City)
    check_city(resp.choices[0].message.parsed)
    [body] = wire_requests(live_server)
    assert body["messages"][-1]["content"] == "Tell me about the weather in [city]."


def test_a_stream_a_wrap_hook_discards_does_not_end_the_call(
    client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    class SendTwice(tokenmw.Hook):
        """Sends twice and keeps the second stream (as a hedging hook keeps the faster one)."""

        def __init__(self) -> None:
            self.discarded: list[Any] = []

        async def wrap(self, call: tokenmw.Call, call_next: tokenmw.CallNext) -> Any:
            self.discarded.append(await call_next(call))
            return await call_next(call)

    hook = SendTwice()
    recorder, mw = probe_middleware(hook)
    with mw.wrap(client).chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        hook.discarded[0].close()  # the loser's connection closes while the kept stream is unread
        assert recorder.ends == []
        text = stream.get_final_completion().choices[0].message.content
    assert text and text.startswith("The middleware")
    assert recorder.ends == ["completed"] and mw.usage.calls == 1
    assert len(wire_requests(live_server)) == 2


# -- calls the chain cannot run for: sent unchanged, and the user is told --------------------------


@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ChainBypassWarning`` is given once per kind and process: each test starts with none given."""
    from tokenmw._clients import openai as integration

    monkeypatch.setattr(integration, "_warned", set())


@contextlib.contextmanager
def bypass_warnings() -> Iterator[list[str]]:
    """The messages of the ``ChainBypassWarning``s given inside the block (filled when it ends)."""
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield found
    found.extend(str(w.message) for w in caught if issubclass(w.category, tokenmw.ChainBypassWarning))


@pytest.mark.usefixtures("fresh_warnings")
def test_legacy_completions_warn_once_and_go_out_unchanged(
    client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    recorder, mw = probe_middleware()
    wrapped = mw.wrap(client)
    with bypass_warnings() as found:
        for _ in range(2):
            with pytest.raises(openai.NotFoundError):  # the embedded server has no /completions
                wrapped.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say  hello.")
    [message] = found
    assert "legacy completions" in message and "does not run the middleware chain" in message
    assert recorder.calls == [] and mw.usage.calls == 0
    assert [r.path for r in live_server.requests] == ["/v1/completions"] * 2
    assert all(r.body["prompt"] == "Say  hello." for r in live_server.requests)  # not compressed


@pytest.mark.usefixtures("fresh_warnings")
def test_responses_compact_warns_once(client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    wrapped = mw.wrap(client)
    with bypass_warnings() as found:
        for _ in range(2):
            with pytest.raises(openai.NotFoundError):  # the embedded server does not compact
                wrapped.responses.compact(model=MODEL, input="Say  hello.")
    [message] = found
    assert "responses.compact()" in message and recorder.calls == []
    assert [r.body["input"] for r in live_server.requests] == ["Say  hello."] * 2  # as made


@pytest.mark.usefixtures("fresh_warnings")
def test_assistants_runs_warn_once(client: openai.OpenAI, live_server: EmbeddedServer) -> None:
    recorder, mw = probe_middleware()
    threads = mw.wrap(client).beta.threads
    with bypass_warnings() as found:
        with pytest.raises(openai.NotFoundError):
            threads.runs.create(thread_id="thread_1", assistant_id="asst_1")
        with pytest.raises(openai.NotFoundError):
            threads.create_and_run(assistant_id="asst_1")
    [message] = found
    assert "Assistants runs" in message and recorder.calls == []
    assert [r.path for r in live_server.requests] == ["/v1/threads/thread_1/runs", "/v1/threads/runs"]


@pytest.mark.usefixtures("fresh_warnings")
def test_assistants_calls_that_run_no_model_do_not_warn(client: openai.OpenAI) -> None:
    runs = probe_middleware()[1].wrap(client).beta.threads.runs
    with bypass_warnings() as found:
        with pytest.raises(openai.NotFoundError):
            runs.cancel(run_id="run_1", thread_id="thread_1")
        with pytest.raises(openai.NotFoundError):
            runs.update(run_id="run_1", thread_id="thread_1", metadata={"k": "v"})
    assert found == []
    with bypass_warnings() as found, pytest.raises(openai.NotFoundError):
        runs.submit_tool_outputs(run_id="run_1", thread_id="thread_1", tool_outputs=[])
    assert len(found) == 1  # continuing a run calls the model


@pytest.mark.usefixtures("fresh_warnings")
def test_supported_calls_and_other_endpoints_do_not_warn(
    client: openai.OpenAI, live_server: EmbeddedServer
) -> None:
    _, mw = probe_middleware()
    wrapped = mw.wrap(client)
    with bypass_warnings() as found:
        wrapped.chat.completions.create(model=MODEL, messages=MESSAGES)
        wrapped.responses.create(model=MODEL, input="hello")
        with pytest.raises(openai.NotFoundError):
            wrapped.embeddings.create(model="text-embedding-3-small", input="hello")
    assert found == []


@pytest.mark.parametrize(
    ("api", "named", "path"),
    [
        ("responses", "Responses over WebSocket", "/v1/responses"),
        ("realtime", "the Realtime API", "/v1/realtime"),
    ],
)
@pytest.mark.usefixtures("fresh_warnings")
async def test_websocket_apis_warn_once_and_go_out_unchanged(api: str, named: str, path: str) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    received: list[dict[str, Any]] = []
    paths: list[str] = []

    async def handler(connection: ServerConnection) -> None:
        paths.append(connection.request.path if connection.request else "")
        async for message in connection:
            received.append(json.loads(message))

    recorder, mw = probe_middleware()
    event = (
        {"type": "response.create", "model": MODEL, "input": "Say  hello."}
        if api == "responses"
        else {"type": "response.create", "response": {"instructions": "Say  hello."}}
    )
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        raw = openai.AsyncOpenAI(
            api_key="test-key",
            base_url="http://127.0.0.1:9/v1",
            websocket_base_url=f"ws://127.0.0.1:{port}/v1",
        )
        wrapped = mw.wrap(raw)
        with bypass_warnings() as found:
            for _ in range(2):
                manager = (
                    wrapped.responses.connect()
                    if api == "responses"
                    else wrapped.realtime.connect(model=MODEL)
                )
                async with manager as connection:
                    await connection.send(event)  # type: ignore[arg-type]
        await raw.close()
    [message] = found
    assert named in message
    assert [p.split("?")[0] for p in paths] == [path] * 2
    assert received == [event, event]  # as the caller made it: no hook touched it
    assert recorder.calls == [] and mw.usage.calls == 0
