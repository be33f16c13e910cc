"""The compression engine: pure, deterministic functions of text and messages, no tokenizer.

``text`` compresses one text (protect code/JSON/URLs, rewrite prose, restore, check, cache), with
``jsoncompact``/``jsonlex`` for JSON that parses and JSON tokens that do not (cut, inside prose), and
at the aggressive level ``logs`` (collapsed log lines), ``tables`` (uniform JSON arrays) and
``elide`` (the one function every aggressive elision goes through);
``dedup`` and ``lines`` replace repeats across a request (whole texts and blocks; runs of lines);
``history`` remembers the index after each request prefix, so a turn only indexes its new messages;
``messages`` walks chat and Responses requests;
``trim`` picks where to cut old turns given sizes the caller counted. ``hooks/compress.py`` is the
only user; it owns counting and telemetry.
"""

from . import originals as _originals
from . import text as _text
from .history import clear_history, remembered
from .messages import Report, compress_chat, compress_responses
from .text import Compressed, Level, compress_text, is_cached

__all__ = [
    "Compressed",
    "Level",
    "Report",
    "clear_cache",
    "compress_chat",
    "compress_responses",
    "compress_text",
    "is_cached",
    "originals",
    "remembered",
]


def clear_cache() -> None:
    """Forget every cached result: compressed texts and remembered request prefixes (tests,
    benchmarks)."""
    _text.clear_cache()
    clear_history()
    _originals.clear()
