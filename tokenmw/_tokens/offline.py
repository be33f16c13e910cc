"""tiktoken encodings built from files on disk, so that no first count needs the network.

tiktoken downloads an encoding's file on first use and keeps it in its cache directory. A server
without internet, or a fresh container, has no cache, so tokenmw ships the two files current
OpenAI models use (``o200k_base``, ``cl100k_base``; gzip-compressed, 2.4 MB for the 5.3 MB of
files) and also finds the copies in an installed litellm wheel (on disk, never imported).

The encoding is built by tiktoken's own constructor (``tiktoken_ext.openai_public``), run with a
loader that reads the local copy instead of downloading it: tiktoken's regex, special tokens and
expected file hash are used as they are, and the file is checked against that hash exactly as
tiktoken checks its downloads (SHA-256 of the file's bytes). Nothing is written to tiktoken's
cache. A file with no local copy, or one failing the check, goes to tiktoken's normal loader.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
import os
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tiktoken
import tiktoken.load

from tokenmw._tokens.files import bundled_path

__all__ = ["BUNDLED", "cached_by_tiktoken", "load_encoding", "local_copy"]

logger = logging.getLogger("tokenmw")

DATA_DIR = Path(__file__).with_name("data")
BUNDLED = ("o200k_base", "cl100k_base")
"""Encoding files shipped with tokenmw (``data/<name>.tiktoken.gz``)."""

_LITELLM_DIR = "litellm_core_utils/tokenizers"
# litellm keeps tiktoken's cache layout: each file is named by the SHA-1 of its download URL.


def cached_by_tiktoken(url: str) -> bool:
    """Whether tiktoken's own cache holds the file at ``url`` (so loading it needs no network)."""
    # Mirrors tiktoken.load.read_file_cached, which decides where it looks.
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        cache_dir = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        cache_dir = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return bool(cache_dir) and os.path.exists(os.path.join(cache_dir, _url_key(url)))


def _url_key(url: str) -> str:
    return hashlib.sha1(url.encode()).hexdigest()


def local_copy(url: str) -> Path | None:
    """Where a copy of the file at ``url`` is on disk: tokenmw's own first, then litellm's."""
    file_name = url.rsplit("/", 1)[-1]
    ours = DATA_DIR / f"{file_name}.gz"
    if file_name.removesuffix(".tiktoken") in BUNDLED and ours.is_file():
        return ours
    theirs = bundled_path(f"{_LITELLM_DIR}/{_url_key(url)}")
    return theirs if theirs is not None and theirs.is_file() else None


def _read_verified(url: str, expected_hash: str | None) -> bytes | None:
    path = local_copy(url)
    if path is None:
        return None
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile):
        logger.warning("tokenmw: cannot read the encoding file %s", path, exc_info=True)
        return None
    if expected_hash is not None and not tiktoken.load.check_hash(data, expected_hash):
        logger.warning("tokenmw: %s does not match tiktoken's hash for %s; not used", path, url)
        return None
    return data


def _load_tiktoken_bpe(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
    """``tiktoken.load.load_tiktoken_bpe`` that reads a verified local copy when there is one."""
    data = _read_verified(url, expected_hash)
    if data is None:
        return tiktoken.load.load_tiktoken_bpe(url, expected_hash)
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():  # the same format tiktoken parses
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _constructors() -> dict[str, Callable[[], dict[str, Any]]] | None:
    """tiktoken's constructors for OpenAI's encodings, rebound to the local-copy loader.

    Each constructor calls ``load_tiktoken_bpe`` (and ``o200k_harmony`` calls ``o200k_base``)
    through its module's globals: copies of the functions over a copy of those globals use our
    loader without patching anything other code sees.
    """
    try:
        import tiktoken_ext.openai_public as public
    except ImportError:
        return None
    table = getattr(public, "ENCODING_CONSTRUCTORS", None)
    if not isinstance(table, dict) or not hasattr(public, "load_tiktoken_bpe"):
        return None
    namespace = dict(vars(public))
    namespace["load_tiktoken_bpe"] = _load_tiktoken_bpe
    rebound: dict[str, Callable[[], dict[str, Any]]] = {}
    for name, fn in table.items():
        if not isinstance(fn, types.FunctionType):
            continue
        copy = types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)
        namespace[fn.__name__] = copy
        rebound[name] = copy
    return rebound


def load_encoding(name: str) -> tiktoken.Encoding:
    """The encoding ``name``, from a local copy of its file where there is one, else from tiktoken
    (its cache, or a download)."""
    constructor = (_constructors() or {}).get(name)
    if constructor is None:
        return tiktoken.get_encoding(name)
    return tiktoken.Encoding(**constructor())
