"""The agent framework tests run in their own venv (``make test-frameworks``, ``.venv-frameworks``).

instructor 1.17 caps ``jiter`` below what the newest openai needs, so installing the frameworks
beside the main suite would silently downgrade openai there; the main suite keeps the newest openai
and these modules are collected only when ``TOKENMW_FRAMEWORKS=1`` (set by the make target). The
run's summary names the openai and framework versions it ran on.
"""

from __future__ import annotations

import os
from importlib import metadata
from typing import Any

if os.environ.get("TOKENMW_FRAMEWORKS") != "1":
    collect_ignore_glob = ["test_*.py"]

_PACKAGES = (
    "openai",
    "openai-agents",
    "langchain-openai",
    "langchain-core",
    "pydantic-ai-slim",
    "instructor",
)


def _versions() -> str:
    versions = []
    for name in _PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return "tokenmw frameworks ran on: " + ", ".join(versions)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if os.environ.get("TOKENMW_FRAMEWORKS") == "1":
        terminalreporter.write_line(_versions())
