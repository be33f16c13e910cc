"""What the embedded server saw and did: the server-side truth tests assert against.

A client-side test can only say what the client believed; these records say what reached the wire,
e.g. that a stream the client abandoned really stopped being written.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Billed", "Recorder", "RequestRecord", "StreamRecord"]


@dataclass(slots=True, frozen=True)
class Billed:
    """The usage the server billed for one answered request (its own count: see ``_billing``)."""

    input_tokens: int
    output_tokens: int
    reported: bool
    """Whether the response carries this usage (a chat stream without ``include_usage`` does not:
    billed all the same, as the API does; a stream the client leaves early never delivers it, see
    the ``StreamRecord`` with the same id)."""
    response_id: str
    """The ``id`` of the completion or response, which the client sees: ties an answer to its request."""


@dataclass(slots=True)
class RequestRecord:
    """One HTTP request as received."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: Any
    """The parsed JSON body; ``None`` when there was none or it was not JSON."""
    client_port: int = 0
    """The client's port: equal for two requests when the connection was kept alive."""
    received_at: float = field(default_factory=time.time)
    billed: Billed | None = None
    """What the server billed; ``None`` when it answered with an error (nothing is billed)."""
    delay: float = 0.0
    """Seconds the server waited to model the answer's time (``response_delay``)."""


@dataclass(slots=True)
class StreamRecord:
    """One streamed response, updated while it is written."""

    id: str
    path: str
    chunks_total: int
    """SSE events the whole stream has (``data: [DONE]`` included for chat)."""
    chunks_sent: int = 0
    disconnected: bool = False
    """The client went away before the stream ended; the server stopped writing."""
    completed: bool = False
    """Every event was written."""
    _done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        """Whether the server is done with the stream (completed or disconnected)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server is done with the stream; ``False`` on timeout."""
        return self._done.wait(timeout)

    def finish(self, *, disconnected: bool) -> None:
        """Mark the stream as over (called by the server)."""
        self.disconnected = disconnected
        self.completed = not disconnected and self.chunks_sent == self.chunks_total
        self._done.set()


class Recorder:
    """Bounded, thread-safe logs of requests and streams; oldest entries drop first."""

    def __init__(self, max_records: int = 1000) -> None:
        self._lock = threading.Lock()
        self._requests: deque[RequestRecord] = deque(maxlen=max_records)
        self._streams: deque[StreamRecord] = deque(maxlen=max_records)

    def add_request(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def add_stream(self, record: StreamRecord) -> None:
        with self._lock:
            self._streams.append(record)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    @property
    def streams(self) -> list[StreamRecord]:
        with self._lock:
            return list(self._streams)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._streams.clear()
