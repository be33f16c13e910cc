"""``benchmarks/bench_scale.py`` reports every cache tokenmw keeps: it must keep up with them."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import tokenmw

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "bench_scale.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scale", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cache_report_reads_the_caches_after_real_calls() -> None:
    # A call through the hooks fills the caches the report reads (a renamed or removed cache
    # would raise here instead of in a long benchmark run).
    tokenmw.count_tokens([{"role": "user", "content": "Which orders from AMS1 are delayed?"}], "gpt-4o")
    sizes = load_script().cache_sizes()
    assert set(sizes) >= {"token counts (per encoding)", "compressed texts", "compressed request prefixes"}
    assert re.search(r"o200k_base: [1-9]", sizes["token counts (per encoding)"])
