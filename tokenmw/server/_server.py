"""The embedded server's lifecycle: bind, serve in a daemon thread, stop cleanly.

Stopping also shuts the connections clients keep alive: their handler threads would otherwise sit
in a blocking read until the client process exits, and a test suite starts many servers.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from tokenmw._tokens.encodings import preload
from tokenmw.server._handler import Handler
from tokenmw.server._records import Recorder, RequestRecord, StreamRecord
from tokenmw.server._settings import ServerSettings

__all__ = ["EmbeddedServer", "serve"]

_POLL_INTERVAL = 0.05
"""How often the accept loop checks for ``stop()``: bounds how long stopping takes."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    # The default backlog of 5 drops the SYNs of a burst of new connections (a 1 s retransmit each).
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops a kept-alive connection is normal here (tests close clients and
        # abandon streams); anything else is a server bug worth its traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def __init__(self, address: tuple[str, int], settings: ServerSettings, recorder: Recorder) -> None:
        self.settings = settings
        self.recorder = recorder
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        # Small writes (stream events, one-write responses) must leave now, not after a delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._connections_lock:
            self._connections.add(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class EmbeddedServer:
    """A local OpenAI-compatible HTTP server for demos, tests and benchmarks.

    ``with EmbeddedServer() as server: OpenAI(base_url=server.base_url, api_key="x")``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        reply_words: int = 60,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        ignore_max_tokens: bool = False,
        max_records: int = 1000,
        latency_per_token: float = 0.0,
        follow_word_limit: bool = False,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.settings = ServerSettings(
            reply_words=reply_words,
            latency=latency,
            chunk_delay=chunk_delay,
            ignore_max_tokens=ignore_max_tokens,
            latency_per_token=latency_per_token,
            follow_word_limit=follow_word_limit,
        )
        """Server-wide behaviour; change it at run time (``server.settings.latency = 0.2``)."""
        self._recorder = Recorder(max_records)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._serving_in_caller = False

    # -- lifecycle ---------------------------------------------------------------------------------

    def bind(self) -> None:
        """Open the listening socket (``start`` does this); afterwards ``port`` is known."""
        if self._httpd is None:
            self._httpd = _HTTPServer((self.host, self._requested_port), self.settings, self._recorder)
            # The first request would otherwise wait ~0.5 s for the tokenizer.
            preload()

    def start(self) -> EmbeddedServer:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._thread is not None:
            return self
        self.bind()
        assert self._httpd is not None
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"tokenmw-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``stop()`` (from another thread) or Ctrl-C."""
        self.bind()
        assert self._httpd is not None
        self._serving_in_caller = True
        try:
            self._httpd.serve_forever(poll_interval=_POLL_INTERVAL)
        finally:
            self._serving_in_caller = False
            self._close()

    def stop(self) -> None:
        """Stop serving, close every connection and the socket; safe to call twice."""
        httpd = self._httpd
        if httpd is None:
            return
        if self._serving_in_caller:  # serve_forever() closes everything when it returns
            httpd.shutdown()
            return
        if self._thread is not None:
            httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._close()

    def _close(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.close_connections()
            httpd.server_close()

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the one the OS chose when constructed with ``port=0``)."""
        if self._httpd is None:
            raise RuntimeError("EmbeddedServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give an OpenAI client: ``http://host:port/v1``."""
        return self.url + "/v1"

    # -- observations ------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Requests received, oldest first (bounded by ``max_records``)."""
        return self._recorder.requests

    @property
    def streams(self) -> list[StreamRecord]:
        """Streamed responses, oldest first; each is updated live while it is written."""
        return self._recorder.streams

    def reset(self) -> None:
        """Forget recorded requests and streams (settings are kept)."""
        self._recorder.reset()


def serve(
    host: str = "127.0.0.1",
    port: int = 8799,
    *,
    reply_words: int = 60,
    latency: float = 0.0,
    chunk_delay: float = 0.0,
    ignore_max_tokens: bool = False,
    max_records: int = 1000,
    ready: Callable[[EmbeddedServer], None] | None = None,
    latency_per_token: float = 0.0,
    follow_word_limit: bool = False,
) -> None:
    """Run an ``EmbeddedServer`` in the calling thread until Ctrl-C (``KeyboardInterrupt``).

    ``ready`` is called with the bound server before the first request is accepted (to print its
    address, or to hand it to another thread that may ``stop()`` it).
    """
    server = EmbeddedServer(
        host,
        port,
        reply_words=reply_words,
        latency=latency,
        chunk_delay=chunk_delay,
        ignore_max_tokens=ignore_max_tokens,
        max_records=max_records,
        latency_per_token=latency_per_token,
        follow_word_limit=follow_word_limit,
    )
    server.bind()
    if ready is not None:
        ready(server)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
