"""The mapping benchmark runs and prints its figures (a smoke test: no timing is asserted)."""

from __future__ import annotations

import importlib.util
import json
import sys
from decimal import Decimal
from types import ModuleType

import pytest

from tests.conftest import ROOT


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "mapping_pipeline", ROOT / "benchmarks" / "mapping_pipeline.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_runs_and_prints_its_figures(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _benchmark()
    assert bench.main(["--n", "1000", "--chunk", "300", "--database-url", db_url, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["entries"] == 1000 and result["unmapped"] == 0
    assert result["pipeline_entries_per_second"] > 0 and result["floor_entries_per_second"] > 0
    assert result["ratio_to_floor"] > 0 and result["peak_memory_mb"] > 0
    assert result["invoices"] > 0 and result["lines"] >= result["invoices"]
    assert Decimal(result["subtotal"]) > 0
    assert bench.main(["--n", "50"]) == 0
    text = capsys.readouterr().out
    for name in ("floor_entries_per_second", "pipeline_entries_per_second", "ratio_to_floor",
                 "peak_memory_mb"):  # fmt: skip
        assert name in text
