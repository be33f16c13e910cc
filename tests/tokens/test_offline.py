"""Encodings from the files shipped with tokenmw: checked like tiktoken's downloads, parsed alike."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import tiktoken.load

from tokenmw._tokens import offline


def _expected_hashes(monkeypatch: pytest.MonkeyPatch, name: str) -> dict[str, str | None]:
    """The (url, expected hash) pairs tiktoken's own constructor of ``name`` asks for."""
    asked: dict[str, str | None] = {}

    def record(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        asked[url] = expected_hash
        return {}

    with monkeypatch.context() as patch:
        patch.setattr(offline, "_load_tiktoken_bpe", record)
        constructors = offline._constructors()
        assert constructors is not None
        constructors[name]()
    return asked


@pytest.mark.parametrize("name", offline.BUNDLED)
def test_shipped_files_pass_tiktokens_hash_check(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    asked = _expected_hashes(monkeypatch, name)
    assert len(asked) == 1
    ((url, expected),) = asked.items()
    assert expected is not None and len(expected) == 64
    assert offline.local_copy(url) == offline.DATA_DIR / f"{name}.tiktoken.gz"
    assert offline._read_verified(url, expected) is not None


@pytest.mark.parametrize("name", offline.BUNDLED)
def test_shipped_files_parse_to_tiktokens_ranks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    ((url, expected),) = _expected_hashes(monkeypatch, name).items()
    plain = tmp_path / f"{name}.tiktoken"
    plain.write_bytes(gzip.decompress((offline.DATA_DIR / f"{name}.tiktoken.gz").read_bytes()))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken reads the file as it is, caches nothing
    assert offline._load_tiktoken_bpe(url, expected) == tiktoken.load.load_tiktoken_bpe(str(plain), expected)


def test_a_tampered_copy_is_not_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ((url, expected),) = _expected_hashes(monkeypatch, "cl100k_base").items()
    data = gzip.decompress((offline.DATA_DIR / "cl100k_base.tiktoken.gz").read_bytes())
    (tmp_path / "cl100k_base.tiktoken.gz").write_bytes(gzip.compress(data.replace(b" 100\n", b" 101\n", 1)))
    monkeypatch.setattr(offline, "DATA_DIR", tmp_path)
    monkeypatch.setattr(offline, "bundled_path", lambda relative: None)  # no litellm copy either
    fallbacks: list[Any] = []

    def tiktoken_loader(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        fallbacks.append((url, expected_hash))
        return {b"x": 0}

    monkeypatch.setattr(tiktoken.load, "load_tiktoken_bpe", tiktoken_loader)
    assert offline._read_verified(url, expected) is None
    assert offline._load_tiktoken_bpe(url, expected) == {b"x": 0}
    assert fallbacks == [(url, expected)]  # tiktoken's own loader (its cache, or a download)


@pytest.mark.parametrize(
    ("name", "hello_world", "vocab"),
    [("o200k_base", [24912, 2375], 200019), ("cl100k_base", [15339, 1917], 100277)],
)
def test_built_encodings_are_tiktokens(name: str, hello_world: list[int], vocab: int) -> None:
    text = "Résumé: naïve café ☕ — 2,048 tokens\n\tdef f(x): return x**2  # <|endoftext|> 中文"
    ours = offline.load_encoding(name)
    assert (ours.name, ours.n_vocab) == (name, vocab)
    assert ours.encode_ordinary("hello world") == hello_world
    assert ours.decode(ours.encode_ordinary(text)) == text
    assert ours.encode("<|endoftext|>", allowed_special="all") == [ours.eot_token]


_NO_LITELLM_SCRIPT = textwrap.dedent(
    """
    import socket, sys
    sys.modules["litellm"] = None  # as if litellm were not installed: find_spec finds nothing

    def no_network(*args, **kwargs):
        raise OSError("network disabled by the test")

    socket.socket.connect = no_network
    socket.getaddrinfo = no_network

    import tokenmw
    from tokenmw._tokens import offline
    assert offline.bundled_path("model_prices_and_context_window_backup.json") is None
    print(tokenmw.count_tokens([{"role": "user", "content": "hello world"}], "gpt-4o"),
          tokenmw.count_tokens([{"role": "user", "content": "hello world"}], "gpt-4"))
    """
)


def test_shipped_files_suffice_without_litellm_or_network(tmp_path: Path) -> None:
    env = dict(os.environ, TIKTOKEN_CACHE_DIR=str(tmp_path / "empty-cache"))
    result = subprocess.run(
        [sys.executable, "-c", _NO_LITELLM_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["9", "9"]  # 3 + "user" 1 + "hello world" 2 + 3 priming
    assert not (tmp_path / "empty-cache").exists()


def test_tiktokens_own_cache_comes_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tokenmw._tokens import encodings

    url = encodings._BLOB_URLS["o200k_base"]
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    calls: list[str] = []
    monkeypatch.setattr(encodings.tiktoken, "get_encoding", lambda name: calls.append(name) or name)
    monkeypatch.setattr(encodings, "load_encoding", lambda name: f"local {name}")
    assert not offline.cached_by_tiktoken(url)
    assert encodings._load("o200k_base") == "local o200k_base"  # nothing cached: our copy
    (tmp_path / offline._url_key(url)).write_bytes(b"cached")
    assert offline.cached_by_tiktoken(url)
    assert encodings._load("o200k_base") == "o200k_base" and calls == ["o200k_base"]  # tiktoken's
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # caching disabled: never "cached"
    assert not offline.cached_by_tiktoken(url)
