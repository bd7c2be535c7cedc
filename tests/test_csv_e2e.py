"""CSV exports as a source: importing the same file, or an overlapping one, bills each row once."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, write_config
from tests.helpers import run_cli

FIXTURES = ROOT / "tests" / "fixtures" / "csv"


def csv_config(tmp_path: Path, db_url: str, paths: list[str]) -> dict[str, Any]:
    return {
        "database": {"url": db_url},
        "organisation": {"timezone": "Europe/Zurich"},
        "sources": {
            "exports": {
                "type": "csv",
                "paths": paths,
                "format": "toggl",
                "currency": "EUR",
                "timezone": "Europe/Zurich",
                "approved": "all",
                "default_rate": "100",
            }
        },
        "targets": {"files": {"type": "xero_csv", "directory": "out", "billed_when": "written"}},
        "profiles": {
            "monthly": {
                "source": "exports",
                "target": "files",
                "mapping": {
                    "clients": {
                        "Café Ñandú GmbH": {"contact_name": "Café Ñandú GmbH"},
                        "Nordlicht AB": {"contact_name": "Nordlicht AB"},
                    },
                    "default_task": {"account_code": "200"},
                    "default_tax_type": "OUTPUT2",
                },
            }
        },
    }


def test_the_same_and_an_overlapping_export_bill_each_row_once(tmp_path: Path, db_url: str) -> None:
    for name in ("toggl-october.csv", "toggl-week-41.csv"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    config = write_config(tmp_path / "c.yaml", csv_config(tmp_path, db_url, ["toggl-october.csv"]))
    first = run_cli("sync", "--config", config, "--period", "2026-10", "--json")
    assert first.code == 0, first.stdout + first.stderr
    report = first.json()
    billed = report["entries_billed"]
    assert billed > 0 and report["invoices_created"] == 2
    written = (tmp_path / "out").glob("*.csv")
    data = next(written).read_bytes()

    # the same file again, then with an overlapping weekly export beside it
    again = run_cli("sync", "--config", config, "--period", "2026-10", "--json").json()
    assert (again["entries_billed"], again["invoices_created"], again["invoices_updated"]) == (
        0,
        0,
        0,
    )
    write_config(config, csv_config(tmp_path, db_url, ["toggl-october.csv", "toggl-week-41.csv"]))
    overlap = run_cli("sync", "--config", config, "--period", "2026-10", "--json").json()
    assert overlap["entries_changed"] == []
    assert (
        overlap["entries_billed"],
        overlap["invoices_created"],
        overlap["invoices_updated"],
    ) == (
        0,
        0,
        0,
    )
    assert next((tmp_path / "out").glob("*.csv")).read_bytes() == data


@pytest.mark.parametrize("broken", ["harvest-bad-hours.csv"])
def test_a_bad_row_stops_the_run_naming_file_line_and_column(
    tmp_path: Path, db_url: str, broken: str
) -> None:
    shutil.copy(FIXTURES / "broken" / broken, tmp_path / broken)
    data = csv_config(tmp_path, db_url, [broken])
    data["sources"]["exports"]["format"] = "harvest"
    data["sources"]["exports"]["approved"] = "column"
    config = write_config(tmp_path / "c.yaml", data)
    result = run_cli("sync", "--config", config, "--period", "2026-10", "--json")
    assert result.code == 1
    [error] = result.json()["errors"]
    assert error.startswith(f'exports: {broken}: line 3: column "Hours"')
    assert not (tmp_path / "out").exists()  # nothing half-written
