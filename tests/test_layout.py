"""The package's shape: no import cycles, and a README that names every module.

The layer contract itself is import-linter's (``lint-imports`` in ``make test``, configured in
pyproject.toml); this adds what it does not check: cycles inside a layer, function-level imports
included, and the README's layout section keeping up with the tree.
"""

from __future__ import annotations

import re
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Every module that can reach itself, with one path that shows how."""
    found = []
    for start in sorted(modules):
        for imported in graph.find_modules_directly_imported_by(start):
            if imported in modules and graph.chain_exists(imported, start):
                chain = graph.find_shortest_chain(imported, start) or ()
                found.append([start, *chain])
                break
    return found


def test_no_import_cycles_anywhere_in_tokenmw() -> None:
    graph = grimp.build_graph("tokenmw", exclude_type_checking_imports=True)
    # The root package re-exports the public names, so every module "imports" it through its
    # parent package; only the modules themselves can form a cycle worth naming.
    modules = {m for m in graph.modules if m != "tokenmw" and not m.endswith("__main__")}
    assert _cycles(graph, modules) == []


def test_readme_layout_names_every_module() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`((?:tokenmw/)?[\w/]+\.py)`", section))
    modules = {
        str(p.relative_to(ROOT / "tokenmw"))
        for p in (ROOT / "tokenmw").rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    }
    missing = sorted(m for m in modules if m not in named and f"tokenmw/{m}" not in named)
    assert missing == [], f"README's layout section does not name: {missing}"
