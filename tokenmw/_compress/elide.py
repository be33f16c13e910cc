"""The one place where the aggressive level leaves text out.

Every aggressive rule that drops text (a collapsed run of log lines, the middle of a huge tool
output) calls ``elide`` with the exact text it drops and gets back the marker to write instead.
Keeping that in one function is what makes the elisions auditable and, later, reversible: the
integrity checks accept a lost number only when it is inside an elided original, the compressed
result lists the originals (``Compressed.elided``), and reversible compression (issue 13) changes
this function alone to give each marker a ``ref=<id>`` and store the original under it.
"""

from __future__ import annotations

from . import originals

__all__ = ["elide"]


def elide(original: str, summary: str, sink: list[str]) -> str:
    """The marker that stands for ``original``, text an aggressive rule leaves out.

    ``summary`` says what went, shortly and deterministically (``×12``, ``… 40 similar lines …``,
    ``… 310 lines (14210 characters) omitted …``); the marker is ``[summary]``. ``original`` is
    appended to ``sink``, the list of everything elided from the text being compressed, which the
    checks and ``Compressed.elided`` read.

    This is the single seam for reversible compression: to make markers point at a stored copy,
    store ``original`` here and return ``[summary ref=<id>]``. The marker must stay a pure function
    of ``original`` and ``summary`` (an id derived from the content, never a counter or a clock):
    markers are part of the prefix sent every turn, which must not change between turns.
    """
    sink.append(original)
    ref = originals.note(original)
    return f"[{summary}]" if ref is None else f"[{summary} ref={ref}]"
