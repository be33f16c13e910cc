"""One shared ``tiktoken.Encoding`` per encoding per process, loaded offline.

Loading an encoding costs 0.2-0.5 s and, by default, a download. Every optimiser that loads its
own copy pays that again, and a download fails on servers without internet. So this module is the
only place that loads one: once per encoding, under a per-encoding lock so that 32 threads asking
at once still load it once, from (in order) tiktoken's own cache, the copy shipped with tokenmw
(o200k_base, cl100k_base), the copy in an installed litellm wheel (found on disk, never imported:
importing litellm takes seconds), or tiktoken's normal download (see ``offline``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading

import tiktoken

from tokenmw._tokens import aliases
from tokenmw._tokens.models import base_model
from tokenmw._tokens.offline import cached_by_tiktoken, load_encoding

__all__ = ["DEFAULT_ENCODING", "encoding_for", "encoding_for_async", "encoding_name_for", "preload"]

logger = logging.getLogger("tokenmw")

DEFAULT_ENCODING = "o200k_base"
"""Encoding assumed for model names we do not know: every current OpenAI chat model uses it."""

_BLOB_URLS = {
    name: f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    for name in ("o200k_base", "cl100k_base", "p50k_base", "r50k_base")
}
# o200k_harmony is built from the o200k_base file.
_FILE_OF_ENCODING = {"o200k_harmony": "o200k_base"}

# Exact names first, then prefixes (longest first). tiktoken's own prefix map sends ft:gpt-4.1-* to
# cl100k and raises on ft:o4-mini-*, so we keep our own; fine-tunes are looked up by their base.
_EXACT_MODELS = {
    "gpt-4": "cl100k_base",
    "gpt-3.5-turbo": "cl100k_base",
    "gpt-3.5": "cl100k_base",
    "gpt-35-turbo": "cl100k_base",
    "text-davinci-003": "p50k_base",
    "text-davinci-002": "p50k_base",
    "davinci-002": "cl100k_base",
    "babbage-002": "cl100k_base",
}
_MODEL_PREFIXES = tuple(
    sorted(
        {
            "gpt-4o": "o200k_base",
            "gpt-4.1": "o200k_base",
            "gpt-4.5": "o200k_base",
            "gpt-5": "o200k_base",
            "gpt-oss": "o200k_harmony",
            "chatgpt-4o": "o200k_base",
            "o1": "o200k_base",
            "o3": "o200k_base",
            "o4": "o200k_base",
            "codex-": "o200k_base",
            "computer-use": "o200k_base",
            "gpt-4-": "cl100k_base",
            "gpt-3.5-turbo-": "cl100k_base",
            "gpt-35-turbo-": "cl100k_base",
            "text-embedding-3": "cl100k_base",
            "text-embedding-ada": "cl100k_base",
        }.items(),
        key=lambda item: -len(item[0]),
    )
)
_KNOWN_ENCODINGS = frozenset(_BLOB_URLS) | frozenset(_FILE_OF_ENCODING)

_loaded: dict[str, tiktoken.Encoding] = {}
_name_cache: dict[str, str] = {}
_locks_guard = threading.Lock()
_locks: dict[str, threading.Lock] = {}


def encoding_name_for(model_or_encoding: str | None) -> str:
    """Name of the encoding a model (or encoding name) uses; unknown models get ``DEFAULT_ENCODING``."""
    if not model_or_encoding:
        return DEFAULT_ENCODING
    model_or_encoding = aliases.resolve(model_or_encoding)
    cached = _name_cache.get(model_or_encoding)
    if cached is not None:
        return cached
    name = _resolve_name(model_or_encoding) or DEFAULT_ENCODING
    if len(_name_cache) < 4096:
        _name_cache[model_or_encoding] = name
    return name


def is_known_model(model: str | None) -> bool:
    """Whether ``model`` maps to an encoding by name rather than by the default guess."""
    return model is not None and _resolve_name(aliases.resolve(model)) is not None


def _resolve_name(model: str) -> str | None:
    if model in _KNOWN_ENCODINGS:
        return model
    base = base_model(model)  # "openai/gpt-4o" -> "gpt-4o"; "ft:gpt-4o-mini-…:org::id" -> "gpt-4o-mini-…"
    if base in _EXACT_MODELS:
        return _EXACT_MODELS[base]
    for prefix, name in _MODEL_PREFIXES:
        if base.startswith(prefix):
            return name
    return None


def encoding_for(model_or_encoding: str | None = None) -> tiktoken.Encoding:
    """The process-wide shared encoding for a model or encoding name; the same object every time."""
    name = encoding_name_for(model_or_encoding)
    encoding = _loaded.get(name)
    if encoding is not None:
        return encoding
    with _lock_for(name):
        encoding = _loaded.get(name)
        if encoding is None:
            encoding = _load(name)
            _loaded[name] = encoding
    return encoding


async def encoding_for_async(model_or_encoding: str | None = None) -> tiktoken.Encoding:
    """``encoding_for`` that loads in a worker thread, so a first load never stalls the event loop."""
    encoding = _loaded.get(encoding_name_for(model_or_encoding))
    if encoding is not None:
        return encoding
    return await asyncio.to_thread(encoding_for, model_or_encoding)


def loaded(model_or_encoding: str | None = None) -> tiktoken.Encoding | None:
    """The encoding if it is already loaded, else ``None`` (never loads)."""
    return _loaded.get(encoding_name_for(model_or_encoding))


def preload(*names: str) -> threading.Thread | None:
    """Load encodings in a daemon thread so the first call does not wait for them."""
    missing = [n for n in (names or (DEFAULT_ENCODING,)) if encoding_name_for(n) not in _loaded]
    if not missing:
        return None

    def _run() -> None:
        for name in missing:
            try:
                encoding_for(name)
            except Exception:  # preload is best effort; the call path loads again and raises there
                logger.warning("tokenmw: preloading encoding %s failed", name, exc_info=True)

    thread = threading.Thread(target=_run, name="tokenmw-preload", daemon=True)
    thread.start()
    return thread


def _lock_for(name: str) -> threading.Lock:
    with _locks_guard:
        lock = _locks.get(name)
        if lock is None:
            lock = _locks[name] = threading.Lock()
        return lock


def _load(name: str) -> tiktoken.Encoding:
    url = _BLOB_URLS.get(_FILE_OF_ENCODING.get(name, name))
    if url is None or cached_by_tiktoken(url):
        return tiktoken.get_encoding(name)  # tiktoken's own cache first
    return load_encoding(name)  # tokenmw's copy, then litellm's, then tiktoken's download


# A forked child has none of the parent's threads: a pool without its workers, or a lock one of
# them held, would hang the child's first call (gunicorn --preload, multiprocessing, celery).
def _reset_in_child() -> None:
    global _locks_guard, _locks
    _locks_guard = threading.Lock()
    _locks = {}


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
