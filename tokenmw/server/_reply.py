"""The text the embedded server answers with: plain English, deterministic, cheap to make.

The reply does not depend on the prompt unless the request asks for it (``x-tokenmw-seed``): hooks
rewrite prompts, and tests compare a wrapped client's answer with an unwrapped one's, so the same
settings must give the same text whatever the prompt became.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

from tokenmw._tokens.encodings import encoding_for

__all__ = ["WORDS", "cap_tokens", "reply_text", "split_deltas"]

_CORPUS = (
    "The middleware counts every prompt once and keeps the answer short. A careful agent sends "
    "only what the model needs to read, and it asks for no more than the task requires. Long tool "
    "outputs are trimmed at the edges, repeated blocks are sent a single time, and code stays "
    "exactly as it was written. Each saved token is money kept and latency avoided, yet the meaning "
    "of the request must never change. When the reply grows too long the client cuts it at the "
    "limit, records why it stopped, and reports the usage it measured. Good budgets are boring: "
    "they hold on the first call, on the hundredth call, and on the call that streams for a minute "
    "before the user closes the window."
)
WORDS: tuple[str, ...] = tuple(_CORPUS.split())


@lru_cache(maxsize=512)
def reply_text(words: int, seed: str | None = None) -> str:
    """``words`` words of the corpus, cycling, starting where ``seed`` points (or at the start)."""
    if words <= 0:
        return ""
    start = zlib.crc32(seed.encode("utf-8", "replace")) % len(WORDS) if seed else 0
    count = len(WORDS)
    return " ".join(WORDS[(start + i) % count] for i in range(words))


@lru_cache(maxsize=1024)
def cap_tokens(encoding_name: str, text: str, cap: int) -> str | None:
    """``text`` cut to its first ``cap`` tokens, or ``None`` when it already fits."""
    tokens = encoding_for(encoding_name).encode_ordinary(text)
    if len(tokens) <= cap:
        return None
    return encoding_for(encoding_name).decode(tokens[: max(cap, 0)])


def split_deltas(text: str) -> list[str]:
    """Stream pieces of one word each; joined, they give ``text`` back exactly."""
    if not text:
        return []
    first, *rest = text.split(" ")
    return [first, *(" " + word for word in rest)]
