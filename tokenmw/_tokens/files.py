"""Data files shipped in the installed litellm wheel, found without importing litellm.

litellm bundles tiktoken's encoding files and a model price table; importing it to reach them
would cost seconds and a network attempt, so the package is located on disk instead
(``find_spec`` on a top-level name does not execute the package).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["bundled_path"]


def bundled_path(relative: str) -> Path | None:
    """The path of ``relative`` inside the installed litellm package, or ``None``."""
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.exists():
            return candidate
    return None
