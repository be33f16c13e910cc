"""Fenced code blocks found without tokenmw's own code: the integrity checks of the compression
tests and of ``benchmarks/bench_compress.py`` must not trust the engine they check."""

from __future__ import annotations

__all__ = ["fenced_blocks"]


def fenced_blocks(text: str) -> list[str]:
    """Every fenced block (``` or ~~~), fence lines included; an unclosed one runs to the end."""
    blocks, current, fence = [], [], ""
    for line in text.split("\n"):
        stripped = line.strip()
        if not fence:
            if stripped[:3] in ("```", "~~~") and not (stripped[0] == "`" and "`" in stripped.lstrip("`")):
                fence = stripped[: len(stripped) - len(stripped.lstrip(stripped[0]))]
                current = [line]
        else:
            current.append(line)
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                blocks.append("\n".join(current))
                fence = ""
    if fence:
        blocks.append("\n".join(current))
    return blocks
