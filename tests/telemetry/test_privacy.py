"""No prompt, reply or API key on spans or in tokenmw's logs, on every path a call can take.

Prompts and replies often hold personal data and keys are credentials: with an SDK configured and
content capture off, none of them may reach a span attribute, a span event or a log record at any
level (DEBUG and tracebacks included). With capture on, content appears only in the documented
attributes (``gen_ai.input.messages``, ``gen_ai.output.messages``, ``gen_ai.system_instructions``)
and the key still nowhere. The calls go through every path: chat, Responses, streams, API errors,
budget refusals, a failing hook, the Azure client and LiteLLM (key in ``api_key`` and in the
``api_base`` userinfo).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import litellm
import openai
import pytest

import tokenmw
from tokenmw import Call, Compress, CountTokens, Enhance, Hook, LimitResponse, Middleware
from tokenmw.server import EmbeddedServer
from tokenmw.telemetry import _semconv as sc

from .._otel import Capture, capture

SECRET = "sk-privacy-7f3a9c1e5b2d4680"
MARKER = "Kestrel-Quorum-8841"
"""In every prompt: it must not leave the request."""
PROMPT = (
    f"My project {MARKER} is confidential. "
    + "Please review the quarterly figures, the incident notes and the hiring plan in detail. " * 40
)
INSTRUCTIONS = f"You work on {MARKER}; answer briefly."
MODEL = "gpt-4o-mini"
CONTENT_ATTRIBUTES = frozenset(
    {sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS}
)


class Failing(Hook):
    """A hook that fails in every request phase (skipped: the call goes on, and is logged)."""

    name = "failing"

    async def before(self, call: Call) -> None:
        raise RuntimeError("failing on purpose")

    async def after(self, call: Call, response: Any) -> Any:
        raise RuntimeError("failing on purpose")


def hooks() -> list[Hook]:
    return [Compress(), Enhance(max_words=50), LimitResponse(max_tokens=30), CountTokens(), Failing()]


class Logs(logging.Handler):
    """Every record of tokenmw's loggers, formatted as a log file would show it (traceback too)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + repr(record.args))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def logs() -> Iterator[Logs]:
    handler = Logs()
    logger = logging.getLogger("tokenmw")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def otel() -> Iterator[Capture]:
    cap = capture()
    cap.clear()
    yield cap
    cap.clear()


# -- the calls ----------------------------------------------------------------------------------------


def chat_text(resp: Any) -> str:
    return str(resp.choices[0].message.content or "")


def openai_calls(client: Any, replies: list[str]) -> None:
    """Chat, Responses, both streamed, and API errors, through one wrapped sync client."""
    messages = [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": PROMPT}]
    replies.append(chat_text(client.chat.completions.create(model=MODEL, messages=messages)))
    replies.append(client.responses.create(model=MODEL, instructions=INSTRUCTIONS, input=PROMPT).output_text)
    stream = client.chat.completions.create(
        model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    replies.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
    events = list(client.responses.create(model=MODEL, input=PROMPT, stream=True))
    replies.append(events[-1].response.output_text)
    for status in ("400", "500"):
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(
                model=MODEL, messages=messages, extra_headers={"x-tokenmw-error": status}
            )
        with pytest.raises(openai.APIStatusError):
            client.responses.create(
                model=MODEL, input=PROMPT, stream=True, extra_headers={"x-tokenmw-error": status}
            )


async def async_calls(client: openai.AsyncOpenAI, replies: list[str]) -> None:
    messages = [{"role": "user", "content": PROMPT}]
    replies.append(chat_text(await client.chat.completions.create(model=MODEL, messages=messages)))
    stream = await client.chat.completions.create(model=MODEL, messages=messages, stream=True)
    replies.append("".join([c.choices[0].delta.content or "" async for c in stream if c.choices]))


def budget_refusals(server: EmbeddedServer) -> None:
    for on_error in ("skip", "raise"):
        mw = Middleware([CountTokens(max_input_tokens=10)], on_hook_error=on_error)  # type: ignore[arg-type]
        raw = openai.OpenAI(api_key=SECRET, base_url=server.base_url, max_retries=0)
        client = mw.wrap(raw)
        with pytest.raises(tokenmw.TokenBudgetExceeded):
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": PROMPT}])
        with pytest.raises(tokenmw.TokenBudgetExceeded):
            client.responses.create(model=MODEL, input=PROMPT, stream=True)
        raw.close()


def azure_calls(server: EmbeddedServer, replies: list[str]) -> None:
    raw = openai.AzureOpenAI(
        api_key=SECRET, azure_endpoint=server.url, api_version="2024-10-21", max_retries=0
    )
    client = Middleware(hooks()).wrap(raw)
    messages = [{"role": "user", "content": PROMPT}]
    replies.append(chat_text(client.chat.completions.create(model=MODEL, messages=messages)))
    stream = client.chat.completions.create(model=MODEL, messages=messages, stream=True)
    replies.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
    raw.close()
    assert server.requests[-1].headers["api-key"] == SECRET  # the key was sent, the Azure way
    assert server.requests[-1].path == f"/openai/deployments/{MODEL}/chat/completions"


def litellm_calls(server: EmbeddedServer, replies: list[str]) -> None:
    completion = tokenmw.wrap_litellm(litellm.completion, Middleware(hooks()))
    base = server.base_url.replace("http://", f"http://user:{SECRET}@")
    messages = [{"role": "user", "content": PROMPT}]
    for api_base in (server.base_url, base):
        resp = completion(model=f"openai/{MODEL}", messages=messages, api_key=SECRET, api_base=api_base)
        replies.append(chat_text(resp))
        chunks = completion(
            model=f"openai/{MODEL}", messages=messages, api_key=SECRET, api_base=api_base, stream=True
        )
        replies.append("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))
    with pytest.raises(litellm.exceptions.InternalServerError):
        completion(
            model=f"openai/{MODEL}",
            messages=messages,
            api_key=SECRET,
            api_base=base,
            extra_headers={"x-tokenmw-error": "500"},
            num_retries=0,
        )


async def every_path(server: EmbeddedServer) -> list[str]:
    """Makes the calls; returns the reply texts the callers got."""
    replies: list[str] = []
    raw = openai.OpenAI(api_key=SECRET, base_url=server.base_url, max_retries=0)
    openai_calls(Middleware(hooks()).wrap(raw), replies)
    raw.close()
    async_raw = openai.AsyncOpenAI(api_key=SECRET, base_url=server.base_url, max_retries=0)
    await async_calls(Middleware(hooks()).wrap(async_raw), replies)
    await async_raw.close()
    budget_refusals(server)
    azure_calls(server, replies)
    litellm_calls(server, replies)
    assert all(replies) and len(replies) == 12
    return replies


def forbidden(replies: list[str]) -> Callable[[str], list[str]]:
    """What must not appear in ``text``: the key, the prompt marker, a piece of any reply."""
    needles = {SECRET, MARKER} | {reply[:24] for reply in replies}

    def found(text: str) -> list[str]:
        return sorted(needle for needle in needles if needle in text)

    return found


# -- the tests ----------------------------------------------------------------------------------------


async def test_no_content_or_key_on_spans_or_logs_by_default(
    otel: Capture, logs: Logs, live_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(sc.CAPTURE_MESSAGE_CONTENT_ENV, raising=False)
    replies = await every_path(live_server)
    found = forbidden(replies)

    spans = otel.spans()
    assert len(spans) > 40  # every path made its call and hook spans
    assert any(event.name == "exception" for span in spans for event in span.events)
    assert found("\n".join(span.to_json() for span in spans)) == []
    assert any("failing on purpose" in line and "Traceback" in line for line in logs.lines)
    assert found(logs.text) == []
    # The test can fail: the key and the prompt did reach the server.
    assert found(str([r.headers for r in live_server.requests])) == [SECRET]
    assert MARKER in str(live_server.requests[0].body)


async def test_with_capture_on_content_only_in_the_documented_attributes(
    otel: Capture, logs: Logs, live_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sc.CAPTURE_MESSAGE_CONTENT_ENV, "true")
    replies = await every_path(live_server)
    found = forbidden(replies)

    spans = otel.spans()
    captured = [span for span in spans if CONTENT_ATTRIBUTES & set(span.attributes or {})]
    assert captured  # capture is on: some spans carry content
    assert any(MARKER in str(span.attributes) for span in captured)
    for span in spans:
        for name, value in (span.attributes or {}).items():
            allowed = name in CONTENT_ATTRIBUTES
            assert SECRET not in str(value), (span.name, name)
            if not allowed:
                assert found(str(value)) == [], (span.name, name)
        for event in span.events:
            assert found(f"{event.name} {dict(event.attributes or {})}") == [], (span.name, event.name)
    assert found(logs.text) == []
