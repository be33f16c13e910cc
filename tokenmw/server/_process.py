"""The embedded server in a child process, for timings that must not share the client's GIL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["server_process"]


@contextmanager
def server_process(
    *,
    latency: float = 0.0,
    reply_words: int = 60,
    chunk_delay: float = 0.0,
    latency_per_token: float = 0.0,
    follow_word_limit: bool = False,
) -> Iterator[str]:
    """Run ``tokenmw serve`` on a free port in a child process; yields its base URL.

    A server in the same process competes with the client for the GIL, which adds noise (and the
    server's own work) to every client-side timing; a real API runs elsewhere too.
    """
    command = [
        sys.executable, "-m", "tokenmw.server", "--port", "0", "--latency", str(latency),
        "--reply-words", str(reply_words), "--chunk-delay", str(chunk_delay),
    ]  # fmt: skip
    if latency_per_token:
        command += ["--latency-per-token", str(latency_per_token)]
    if follow_word_limit:
        command.append("--follow-word-limit")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("http"):
            raise RuntimeError(f"the embedded server did not start (exit status {process.poll()})")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)
