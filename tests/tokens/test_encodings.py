from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import tokenmw
from tokenmw._tokens import encodings as _tokenizer


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("ft:gpt-4.1-mini:acme::abc123", "o200k_base"),  # tiktoken says cl100k here
        ("ft:o4-mini-2025-04-16:acme::x", "o200k_base"),  # tiktoken raises here
        ("o3-mini", "o200k_base"),
        ("gpt-5-nano", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("cl100k_base", "cl100k_base"),
        ("some-local-llama", "o200k_base"),
        (None, "o200k_base"),
    ],
)
def test_model_to_encoding(model: str | None, encoding: str) -> None:
    assert _tokenizer.encoding_name_for(model) == encoding


def test_unknown_model_is_flagged_as_unknown() -> None:
    assert _tokenizer.is_known_model("gpt-4o")
    assert not _tokenizer.is_known_model("some-local-llama")


def test_same_object_across_32_threads() -> None:
    # cl100k may not be loaded yet in this process: the threads race on the first load.
    barrier = threading.Barrier(32)
    seen: list[object] = []
    lock = threading.Lock()

    def load() -> None:
        barrier.wait()
        enc = tokenmw.encoding_for("gpt-4")
        with lock:
            seen.append(enc)

    threads = [threading.Thread(target=load) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 32
    assert len({id(e) for e in seen}) == 1
    assert seen[0] is tokenmw.encoding_for("cl100k_base")


async def test_async_load_returns_the_shared_object() -> None:
    enc = await _tokenizer.encoding_for_async("gpt-4o-mini")
    assert enc is tokenmw.encoding_for("o200k_base")


_OFFLINE_SCRIPT = textwrap.dedent(
    """
    import socket, sys

    def no_network(*args, **kwargs):
        raise OSError("network disabled by the test")

    socket.socket.connect = no_network
    socket.create_connection = no_network
    socket.getaddrinfo = no_network
    import requests
    requests.get = no_network  # tiktoken downloads with requests.get
    requests.Session.request = no_network

    import tokenmw
    for name in ("gpt-4o", "gpt-4", "p50k_base"):
        enc = tokenmw.encoding_for(name)
        assert enc.encode_ordinary("hello world") , name
    assert "litellm" not in sys.modules, "tokenmw must not import litellm"
    print("loaded", tokenmw.encoding_for("gpt-4o").name, tokenmw.encoding_for("gpt-4").name)
    """
)


def test_encodings_load_offline_without_importing_litellm(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["TIKTOKEN_CACHE_DIR"] = str(tmp_path / "empty-cache")  # nothing cached
    result = subprocess.run(
        [sys.executable, "-c", _OFFLINE_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "loaded o200k_base cl100k_base" in result.stdout
    assert not (tmp_path / "empty-cache").exists()  # built from local copies; tiktoken's cache untouched


def test_preload_loads_in_the_background() -> None:
    thread = _tokenizer.preload("p50k_base")
    if thread is not None:
        thread.join(timeout=60)
    assert _tokenizer.loaded("p50k_base") is not None
