"""One HTTP connection of the embedded server: parse, route, answer in one write.

The per-request work is kept small because benchmarks time the raw client against this server:
the response (headers and body) leaves in a single ``sendall``, stream events are written as they
are made, and a pause between events watches the socket so a client that hangs up is noticed at
once rather than at the next failed write.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import select
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

from tokenmw._tokens.encodings import encoding_for
from tokenmw.server import _billing
from tokenmw.server import _payloads as payloads
from tokenmw.server._records import Billed, Recorder, RequestRecord, StreamRecord
from tokenmw.server._reply import (
    Answer,
    cap_tokens,
    expand_request,
    limited_words,
    read_request,
    reply_text,
    split_deltas,
    word_limit,
)
from tokenmw.server._settings import (
    RequestSettings,
    ServerSettings,
    SettingsError,
    request_settings,
    response_delay,
)


class _ServerState(Protocol):
    """What a handler reads from the server that owns it."""

    settings: ServerSettings
    recorder: Recorder

__all__ = ["Handler"]

logger = logging.getLogger("tokenmw.server")

_ids = itertools.count(1)
_ID_SALT = os.urandom(3).hex()

# Raised by socket writes and peeks when the client has gone away.
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "not_found"),
    409: ("invalid_request_error", "conflict"),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


class ClientGone(Exception):
    """The client closed the connection."""


class BadRequest(Exception):
    """A request the API would answer with 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def _new_id(prefix: str) -> str:
    return f"{prefix}{_ID_SALT}{next(_ids):010x}"


class Handler(BaseHTTPRequestHandler):
    """Serves ``/v1/chat/completions``, ``/v1/responses`` and ``/v1/models``."""

    protocol_version = "HTTP/1.1"
    server: _ServerState  # type: ignore[assignment]
    _record: RequestRecord
    """The request being answered (its ``delay`` is filled in when the server waits)."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)

    # -- routing -----------------------------------------------------------------------------------

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        headers = {name.lower(): value for name, value in self.headers.items()}
        raw = self._read_body()
        body: Any = None
        parse_error = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                parse_error = True
        record = RequestRecord(method, path, headers, body, self.client_address[1])
        self._record = record
        self.server.recorder.add_request(record)
        try:
            settings = request_settings(self.server.settings, headers)
            if settings.error_status is not None:
                self._pause(settings.latency)
                self._send_error(settings.error_status, "Error requested by the x-tokenmw-error header.")
                return
            route = _AZURE_PATH.sub(r"/v1\1", path)
            if method == "POST" and route in _POST_ROUTES:
                if parse_error or not isinstance(body, dict):
                    raise BadRequest(
                        "We could not parse the JSON body of your request. (HINT: This likely means you "
                        "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)"
                    )
                _POST_ROUTES[route](self, body, settings)
            elif method == "GET" and path == "/v1/models":
                self._send_json(200, payloads.models_list(int(time.time())))
            else:
                self._send_error(404, f"Invalid URL ({method} {path})", code="unknown_url")
        except SettingsError as exc:
            self._send_error(400, str(exc), param=exc.header)
        except BadRequest as exc:
            self._send_error(400, str(exc), param=exc.param)
        except (ClientGone, *_GONE):
            self.close_connection = True
        except Exception as exc:  # the server must answer, and tests must see why
            logger.exception("tokenmw server: error handling %s %s", method, path)
            self._send_error(500, f"tokenmw embedded server error: {exc!r}", type_="server_error")

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError:
            self.close_connection = True
            return b""
        return self.rfile.read(size) if size > 0 else b""

    # -- endpoints ---------------------------------------------------------------------------------

    def _chat(self, request: dict[str, Any], settings: RequestSettings) -> None:
        model = _require_model(request)
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("Missing required parameter: 'messages'.", "messages")
        if not all(isinstance(m, dict) for m in messages):
            raise BadRequest("Invalid type for 'messages': expected an array of objects.", "messages")
        cap = _cap(request, "max_completion_tokens", "max_tokens")
        encoding = encoding_for(model)
        count = _counter(encoding.name)
        prompt_tokens = _billing.input_tokens(encoding.name, request, settings.usage_offset)
        answer = read_request("chat", request) if settings.answer == "auto" else None
        if settings.answer == "expand":
            answer = expand_request("chat", request)
        id_ = _new_id("chatcmpl-")
        created = int(time.time())
        if answer is not None and answer.tool_name is not None:
            self._chat_tool(request, id_, created, model, prompt_tokens, count, answer, settings)
            return
        if answer is not None and answer.text is not None:
            text, completion_tokens, cut = answer.text, count(answer.text), False
        else:
            words = _reply_words("chat", request, settings)
            text, completion_tokens, cut = _reply(encoding.name, count, settings, cap, words)
        completion_tokens = _output(completion_tokens, settings)
        finish_reason = "length" if cut else "stop"
        usage = payloads.chat_usage(prompt_tokens, completion_tokens)
        options = request.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self._bill(prompt_tokens, completion_tokens, id_, not request.get("stream") or include_usage)
        if not request.get("stream"):
            self._pause_for(settings, completion_tokens)
            body = payloads.chat_completion(id_, created, model, text, finish_reason, usage)
            self._send_json(200, body, id_)
            return
        deltas = split_deltas(text)
        events = payloads.chat_stream(
            id_, created, model, deltas, finish_reason, usage if include_usage else None
        )
        total = payloads.chat_stream_length(len(deltas), include_usage)
        self._stream(events, StreamRecord(id_, "/v1/chat/completions", total), settings, completion_tokens)

    def _chat_tool(
        self,
        request: dict[str, Any],
        id_: str,
        created: int,
        model: str,
        prompt_tokens: int,
        count: Callable[[str], int],
        answer: Answer,
        settings: RequestSettings,
    ) -> None:
        name, arguments = answer.tool_name or "", answer.arguments or "{}"
        completion_tokens = _output(count(name) + count(arguments), settings)
        usage = payloads.chat_usage(prompt_tokens, completion_tokens)
        call_id = _new_id("call_")
        options = request.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self._bill(prompt_tokens, completion_tokens, id_, not request.get("stream") or include_usage)
        if not request.get("stream"):
            self._pause_for(settings, completion_tokens)
            body = payloads.chat_tool_call(id_, created, model, call_id, name, arguments, usage)
            self._send_json(200, body, id_)
            return
        pieces = split_deltas(arguments)
        events = payloads.chat_tool_stream(
            id_, created, model, call_id, name, pieces, usage if include_usage else None
        )
        total = payloads.chat_stream_length(len(pieces), include_usage)
        self._stream(events, StreamRecord(id_, "/v1/chat/completions", total), settings, completion_tokens)

    def _responses(self, request: dict[str, Any], settings: RequestSettings) -> None:
        _require_model(request)
        items = request.get("input")
        if items is not None and not isinstance(items, str | list):
            raise BadRequest("Invalid type for 'input': expected a string or an array.", "input")
        cap = _cap(request, "max_output_tokens")
        encoding = encoding_for(request["model"])
        count = _counter(encoding.name)
        billed_input = _billing.input_tokens(encoding.name, request, settings.usage_offset)
        answer = read_request("responses", request) if settings.answer == "auto" else None
        if settings.answer == "expand":
            answer = expand_request("responses", request)
        id_ = _new_id("resp_")
        if answer is not None and answer.tool_name is not None:
            self._responses_tool(request, id_, billed_input, count, answer, settings)
            return
        if answer is not None and answer.text is not None:
            text, output_tokens, cut = answer.text, count(answer.text), False
        else:
            words = _reply_words("responses", request, settings)
            text, output_tokens, cut = _reply(encoding.name, count, settings, cap, words)
        output_tokens = _output(output_tokens, settings)
        self._bill(billed_input, output_tokens, id_, True)
        status = "incomplete" if cut else "completed"
        message_id = _new_id("msg_")
        final = payloads.response_object(
            id_,
            int(time.time()),
            request,
            status=status,
            output=[payloads.output_message(message_id, text, status)],
            usage=payloads.responses_usage(billed_input, output_tokens),
        )
        if not request.get("stream"):
            self._pause_for(settings, output_tokens)
            self._send_json(200, payloads.response_body(final), id_)
            return
        deltas = split_deltas(text)
        events = payloads.responses_stream(final, message_id, text, deltas)
        total = payloads.responses_stream_length(len(deltas))
        self._stream(events, StreamRecord(id_, "/v1/responses", total), settings, output_tokens)

    def _responses_tool(
        self,
        request: dict[str, Any],
        id_: str,
        input_tokens: int,
        count: Callable[[str], int],
        answer: Answer,
        settings: RequestSettings,
    ) -> None:
        name, arguments = answer.tool_name or "", answer.arguments or "{}"
        output_tokens = _output(count(name) + count(arguments), settings)
        self._bill(input_tokens, output_tokens, id_, True)
        item = payloads.function_call_item(_new_id("fc_"), _new_id("call_"), name, arguments, "completed")
        final = payloads.response_object(
            id_,
            int(time.time()),
            request,
            status="completed",
            output=[item],
            usage=payloads.responses_usage(input_tokens, output_tokens),
        )
        if not request.get("stream"):
            self._pause_for(settings, output_tokens)
            self._send_json(200, payloads.response_body(final), id_)
            return
        pieces = split_deltas(arguments)
        events = payloads.responses_tool_stream(final, item, pieces)
        self._stream(events, StreamRecord(id_, "/v1/responses", len(pieces) + 7), settings, output_tokens)

    def _bill(self, input_tokens: int, output_tokens: int, response_id: str, reported: bool) -> None:
        """Keep what this request is billed on its record, for tests to compare with the client."""
        self._record.billed = Billed(input_tokens, output_tokens, reported, response_id)

    # -- writing -----------------------------------------------------------------------------------

    def _send_json(self, status: int, body: bytes, request_id: str | None = None) -> None:
        head = (
            f"HTTP/1.1 {status} {_reason(status)}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"x-request-id: {request_id or _new_id('req_')}\r\n"
        )
        if self.close_connection:
            head += "Connection: close\r\n"
        self.wfile.write(head.encode("latin-1") + b"\r\n" + body)

    def _send_error(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type_: str | None = None,
    ) -> None:
        default_type, default_code = _ERROR_TYPES.get(status, ("server_error", None))
        body = payloads.error_body(message, type_ or default_type, param=param, code=code or default_code)
        self._send_json(status, body)

    def _stream(
        self,
        events: Iterator[bytes],
        record: StreamRecord,
        settings: RequestSettings,
        output_tokens: int = 0,
    ) -> None:
        """Write SSE events as HTTP/1.1 chunks (so the connection is reused), one event per write.

        The base latency comes before the first event; the time to write ``output_tokens`` is
        spread over the pauses between events."""
        self.server.recorder.add_stream(record)
        head = (
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/event-stream; charset=utf-8\r\n"
            "Cache-Control: no-cache\r\n"
            "Transfer-Encoding: chunked\r\n"
            f"x-request-id: {record.id}\r\n"
        )
        if self.close_connection:
            head += "Connection: close\r\n"
        pending = head.encode("latin-1") + b"\r\n"
        write = self.wfile.write
        gaps = max(record.chunks_total - 1, 1)
        between = settings.chunk_delay + settings.latency_per_token * output_tokens / gaps
        self._record.delay = response_delay(settings, output_tokens)
        try:
            self._pause(settings.latency)
            for index, event in enumerate(events):
                if index:
                    self._pause(between)
                frame = b"%x\r\n%s\r\n" % (len(event), event)
                if index == record.chunks_total - 1:
                    frame += b"0\r\n\r\n"  # end of body, in the same write as the last event
                write(pending + frame)
                pending = b""
                record.chunks_sent += 1
            if pending or record.chunks_sent < record.chunks_total:  # generator shorter than announced
                write(pending + b"0\r\n\r\n")
        except (ClientGone, *_GONE):
            self.close_connection = True
            record.finish(disconnected=True)
            return
        except Exception:
            # Headers are out: an error body would corrupt the stream, so cut it; the client errors.
            logger.exception("tokenmw server: error while streaming %s", record.id)
            self.close_connection = True
            record.finish(disconnected=False)
            return
        record.finish(disconnected=False)

    def _pause_for(self, settings: RequestSettings, output_tokens: int) -> None:
        """Wait as long as the modelled answer takes to write (recorded on the request's record)."""
        delay = response_delay(settings, output_tokens)
        self._record.delay = delay
        self._pause(delay)

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, raising ``ClientGone`` as soon as the client closes the connection."""
        if seconds <= 0:
            return
        deadline = time.monotonic() + seconds
        sock = self.connection
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            readable, _, _ = select.select([sock], [], [], left)
            if not readable:
                return
            try:
                peeked = sock.recv(1, socket.MSG_PEEK)
            except _GONE:
                raise ClientGone from None
            if not peeked:
                raise ClientGone
            # Bytes from the client mid-response (not expected from HTTP/1.1 clients): just wait.
            time.sleep(max(0.0, deadline - time.monotonic()))
            return


# Azure OpenAI's paths (``AzureOpenAI(azure_endpoint=server.url, ...)``): the deployment is in the
# path, the key in an ``api-key`` header; answered as the OpenAI paths are.
_AZURE_PATH = re.compile(r"^/openai(?:/deployments/[^/]+)?(/chat/completions|/responses)$")

_POST_ROUTES = {
    "/v1/chat/completions": Handler._chat,
    "/v1/responses": Handler._responses,
}


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _require_model(request: Mapping[str, Any]) -> str:
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", "model")
    return model


def _cap(request: Mapping[str, Any], *names: str) -> int | None:
    """The smallest output cap among ``names`` present in the request."""
    cap: int | None = None
    for name in names:
        value = request.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadRequest(
                f"Invalid '{name}': integer below minimum value. Expected a value >= 1, but got {value!r}.",
                name,
            )
        cap = value if cap is None else min(cap, value)
    return cap


def _counter(encoding_name: str) -> Callable[[str], int]:
    """The server's own output counter for one encoding."""
    return lambda text: _billing.text_tokens(encoding_name, text)


def _output(tokens: int, settings: RequestSettings) -> int:
    return max(tokens + settings.output_offset, 0)


def _reply_words(operation: str, request: Mapping[str, Any], settings: RequestSettings) -> int:
    """Words in the plain reply: fewer when the prompt asks for a word limit and the server
    follows word limits."""
    if not settings.follow_word_limit:
        return settings.reply_words
    return limited_words(settings.reply_words, word_limit(operation, request))


def _reply(
    encoding_name: str,
    count: Callable[[str], int],
    settings: RequestSettings,
    cap: int | None,
    words: int | None = None,
) -> tuple[str, int, bool]:
    """The reply text, its token count, and whether the output cap cut it."""
    text = reply_text(settings.reply_words if words is None else words, settings.seed)
    if cap is not None and not settings.ignore_max_tokens:
        cut = cap_tokens(encoding_name, text, cap)
        if cut is not None:
            return cut, cap, True
    return text, count(text), False
