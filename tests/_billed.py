"""What the embedded server billed, read from its own request records.

The server counts usage its own way (``tokenmw/server/_billing.py``), never with tokenmw's counter,
so a test that compares ``mw.usage`` with these figures fails if tokenmw stores a local count where
the API's belongs, and a test that compares local counts with ``count_tokens`` fails if it stores
the API's where a local count belongs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tokenmw.server import EmbeddedServer, RequestRecord, StreamRecord


@dataclass(frozen=True, slots=True)
class BilledTotals:
    """Sums over answered requests."""

    requests: int
    input_tokens: int
    output_tokens: int
    input_tokens_reported: int
    """Only the requests whose response carried the usage (what the client could read)."""
    output_tokens_reported: int


def billed(records: Iterable[RequestRecord], streams: Iterable[StreamRecord] = ()) -> BilledTotals:
    """Totals of what the server billed for ``records`` (errors bill nothing). A stream in
    ``streams`` that the client left early never delivered its usage: billed, not reported."""
    rows = [r.billed for r in records if r.billed is not None]
    cut = {s.id for s in streams if s.disconnected}
    reported = [b for b in rows if b.reported and b.response_id not in cut]
    return BilledTotals(
        requests=len(rows),
        input_tokens=sum(b.input_tokens for b in rows),
        output_tokens=sum(b.output_tokens for b in rows),
        input_tokens_reported=sum(b.input_tokens for b in reported),
        output_tokens_reported=sum(b.output_tokens for b in reported),
    )


def server_billed(server: EmbeddedServer) -> BilledTotals:
    """Totals over every request the server has recorded since its last ``reset()``."""
    return billed(server.requests, server.streams)


def last_billed(server: EmbeddedServer) -> tuple[int, int]:
    """(input, output) tokens billed for the server's last answered request."""
    for record in reversed(server.requests):
        if record.billed is not None:
            return record.billed.input_tokens, record.billed.output_tokens
    raise AssertionError("the server billed no request")
