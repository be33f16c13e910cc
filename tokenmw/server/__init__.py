"""A local OpenAI-compatible HTTP server (stdlib only) for tokenmw's demo, tests and benchmarks.

It answers like the API, over real HTTP, so the real ``openai`` client runs end to end::

    from openai import OpenAI
    from tokenmw.server import EmbeddedServer

    with EmbeddedServer(reply_words=40) as server:
        client = OpenAI(api_key="any", base_url=server.base_url)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        server.requests[-1].body  # what reached the wire

Endpoints: ``POST /v1/chat/completions`` and ``POST /v1/responses`` (both with ``stream``), and
``GET /v1/models``, and Azure OpenAI's paths for the first two (``/openai/deployments/NAME/...``).
Any ``Authorization`` (or ``api-key``) is accepted. Other paths get a 404 and a bad body a 400,
both with an OpenAI error body, so the client raises ``NotFoundError`` / ``BadRequestError``.

The reply is plain English, the same text for the same settings whatever the prompt (hooks rewrite
prompts; tests compare wrapped and unwrapped clients). Usage is the server's own, independent of
tokenmw's counter so that tests can tell what the API reported from what tokenmw counted
(``_billing``): input tokens are a fixed base, a few tokens per message, item and tool, and the
tokens of every string value in the input fields; output tokens are the tokens of what was written;
both in the model's encoding, plus the offsets below. What each request was billed is on its
record (``server.requests[-1].billed``). A request's output cap (``max_completion_tokens``/
``max_tokens``, ``max_output_tokens``) cuts the reply to that many tokens with
``finish_reason="length"`` (chat) or ``status="incomplete"`` and a closing
``response.incomplete`` event (responses), unless
``ignore_max_tokens`` is set.

Per-request overrides, as request headers (e.g. ``extra_headers=`` on ``create()``):

``x-tokenmw-reply-words: N``
    words in the reply.
``x-tokenmw-latency: SECONDS``
    wait before the first byte.
``x-tokenmw-chunk-delay: SECONDS``
    wait between stream events.
``x-tokenmw-ignore-max-tokens: true|false``
    ignore the request's output cap.
``x-tokenmw-latency-per-token: SECONDS``
    wait this much more per output token (a model's time grows with what it writes; streams
    spend it between events). ``server.requests[i].delay`` is the wait the server modelled.
``x-tokenmw-follow-word-limit: true|false``
    answer a prompt that asks for "at most N words" (or "in N words", "N words or less") with
    ``0.9 * N`` words when that is fewer than the reply's: a model of how instruction-following
    models shorten their answers, not a measurement.
``x-tokenmw-seed: TEXT``
    start the reply at another place in the text (a different, still deterministic reply).
``x-tokenmw-usage-offset: N`` / ``x-tokenmw-output-offset: N``
    add N to the input / output tokens billed (``ServerSettings.usage_offset`` / ``output_offset``
    server-wide).
``x-tokenmw-error: STATUS``
    answer with that HTTP error status (400-599) and an OpenAI error body.
``x-tokenmw-answer: text|auto``
    ``auto`` reads the request, as agent frameworks need: a tool call when function tools are
    offered (the forced one, else the first the conversation has not called yet), JSON valid
    against the schema for a ``json_schema`` format (``response_format`` / ``text.format``);
    otherwise the plain reply. ``ServerSettings.answer`` sets it server-wide.

What the server saw is on the server object: ``server.requests`` (``RequestRecord``: method, path,
lower-case headers, parsed body, ``billed``: a ``Billed`` with the input and output tokens, whether
the response reported them, and the response id the client sees) and ``server.streams``
(``StreamRecord``: chunks sent of the total, ``disconnected``, ``completed``;
``record.wait(timeout)`` blocks until the server is done with it).
A client that closes a stream early is noticed during the pause between events, and the server
stops generating. ``server.reset()`` clears both logs.

From a shell: ``tokenmw serve`` or ``python -m tokenmw.server`` (``--port``, ``--reply-words``,
``--latency``, ``--latency-per-token``, ``--follow-word-limit``, ``--chunk-delay``,
``--ignore-max-tokens``).
"""

from tokenmw.server._cli import run_cli
from tokenmw.server._process import server_process
from tokenmw.server._records import Billed, RequestRecord, StreamRecord
from tokenmw.server._server import EmbeddedServer, serve
from tokenmw.server._settings import ServerSettings

__all__ = [
    "Billed",
    "EmbeddedServer",
    "RequestRecord",
    "ServerSettings",
    "StreamRecord",
    "run_cli",
    "serve",
    "server_process",
]
