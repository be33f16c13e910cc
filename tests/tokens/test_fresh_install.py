"""``pip install tokenmw`` in a new virtualenv: no litellm, and counting and prices work offline.

The test builds the wheel of this checkout, installs it with its runtime dependencies into a
fresh venv, makes the network impossible there (a ``sitecustomize`` that refuses every socket
connect, no tiktoken cache, an empty temp dir), and counts a request and prices it. The wheels of
the dependencies, at the versions this environment has, are kept in pytest's cache directory, so
only the first run downloads them; later runs install with ``--no-index`` from there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.fresh_venv

_SITECUSTOMIZE = textwrap.dedent(
    """
    import socket

    def _no_network(*args, **kwargs):
        raise OSError("tokenmw fresh-install test: the network is off")

    socket.socket.connect = _no_network
    socket.socket.connect_ex = _no_network
    socket.getaddrinfo = _no_network
    """
)

_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys
    import tokenmw
    from tokenmw._tokens import prices

    weather = [{
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string",
                                 "description": "The city and state, e.g. San Francisco, CA"},
                    "unit": {"type": "string", "description": "The unit of temperature to return",
                             "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["location"],
            },
        },
    }]
    messages = [
        {"role": "system",
         "content": "You are a helpful assistant that can answer to questions about the weather."},
        {"role": "user", "content": "What's the weather like in San Francisco?"},
    ]
    try:
        import socket
        socket.create_connection(("pypi.org", 443), timeout=2)
        network = True
    except OSError:
        network = False
    print(json.dumps({
        "network": network,
        "litellm": importlib.util.find_spec("litellm") is not None,
        "gpt-4o": tokenmw.count_tokens(messages, "gpt-4o", tools=weather),
        "gpt-4": tokenmw.count_tokens(messages, "gpt-4", tools=weather),
        "cost": prices.cost_usd("gpt-4o-mini", 1000, 0, 100),
        "source": prices.price_source("gpt-4o-mini"),
        "window": prices.context_window("gpt-4o"),
    }))
    """
)


def _runtime_closure() -> dict[str, str]:
    """``name -> version`` of every distribution tokenmw needs at run time, as installed here."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pending = [Requirement(r) for r in project["dependencies"]]
    found: dict[str, str] = {}
    while pending:
        requirement = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = requirement.name.lower().replace("_", "-")
        if name in found:
            continue
        dist = metadata.distribution(requirement.name)
        found[name] = dist.version
        pending.extend(Requirement(r) for r in dist.requires or ())
    return found


def _pin_of(wheel: Path) -> str:
    name, version = wheel.name.split("-")[:2]
    return f"{name.lower().replace('_', '-')}=={version}"


def _pip(*args: str, python: Path | None = None) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    if python is not None:
        command += ["--python", str(python)]
    subprocess.run([*command, *args], check=True, capture_output=True, text=True, timeout=600)


def test_fresh_install_counts_and_prices_offline_without_litellm(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    if sys.version_info < (3, 11):
        pytest.skip("genai-prices (the price table) needs Python 3.11")
    # pytest's cache keeps the downloaded wheels between runs; without it (`-p no:cacheprovider`,
    # as `make test-other-pythons` runs) they go to this test's own temporary directory.
    cache = getattr(pytestconfig, "cache", None)
    wheelhouse = Path(cache.mkdir("fresh-install-wheels")) if cache is not None else tmp_path / "wheels"
    wheelhouse.mkdir(exist_ok=True)
    pins = [f"{name}=={version}" for name, version in sorted(_runtime_closure().items())]
    assert not any(pin.startswith("litellm==") for pin in pins), pins
    have = {_pin_of(wheel) for wheel in wheelhouse.glob("*.whl")}
    missing = [pin for pin in pins if pin.lower() not in have]
    if missing:  # first run only: pip's own cache makes it quick after that
        _pip("download", "--no-deps", "--only-binary=:all:", "-d", str(wheelhouse), *missing)

    _pip("wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT))
    (wheel,) = (tmp_path / "dist").glob("tokenmw-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # Resolved from the wheelhouse alone: a runtime dependency missing from it (litellm) fails here.
    _pip("install", "--no-index", "--no-compile", "--find-links", str(wheelhouse), str(wheel), python=python)

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    empty_tmp = tmp_path / "tmp"
    empty_tmp.mkdir()
    dropped = ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR", "PYTHONPATH", "LITELLM_LOCAL_MODEL_COST_MAP")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env.update(PYTHONPATH=str(site), TMPDIR=str(empty_tmp))  # tiktoken's default cache: empty
    result = subprocess.run(
        [str(python), "-c", _SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["network"] is False
    assert report["litellm"] is False
    assert (report["gpt-4o"], report["gpt-4"]) == (101, 105)  # the cookbook's API-verified figures
    assert report["cost"] == pytest.approx(1000 * 0.15e-6 + 100 * 0.6e-6)  # OpenAI's list price
    assert report["source"] == "genai-prices"
    assert report["window"] == 128_000
    assert list(empty_tmp.iterdir()) == []  # nothing downloaded or cached
