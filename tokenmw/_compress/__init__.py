"""The compression engine: pure, deterministic functions of text and messages, no tokenizer.

``text`` compresses one text (protect code/JSON/URLs, rewrite prose, restore, check, cache);
``dedup`` replaces repeats across a request; ``messages`` walks chat and Responses requests;
``trim`` picks where to cut old turns given sizes the caller counted. ``hooks/compress.py`` is the
only user; it owns counting and telemetry.
"""

from tokenmw._compress.messages import Report, compress_chat, compress_responses
from tokenmw._compress.text import Compressed, Level, clear_cache, compress_text

__all__ = [
    "Compressed",
    "Level",
    "Report",
    "clear_cache",
    "compress_chat",
    "compress_responses",
    "compress_text",
]
