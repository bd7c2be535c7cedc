"""The CLI: bad input gets one clear line, exit 2, and no call reaches any service."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from sandbox.server import Sandbox
from tests.conftest import sandbox_config, write_config
from tests.helpers import run_cli


def _no_calls(sandbox: Sandbox) -> None:
    assert sum(sandbox.harvest.calls.values()) == 0
    assert sum(sandbox.xero.calls.values()) == 0


@pytest.mark.parametrize(
    ("breakage", "key"),
    [
        ("missing_env", "targets.xero.access_token"),
        ("unknown_key", "sources.harvest.page_size"),
        ("wrong_type", "targets.xero.batch_size"),
    ],
)
def test_broken_config_exits_2_with_one_line_and_zero_calls(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, breakage: str, key: str
) -> None:
    monkeypatch.setenv("HARVEST_ACCESS_TOKEN", sandbox.harvest.settings.access_token)
    monkeypatch.setenv("XERO_ACCESS_TOKEN", sandbox.xero.settings.access_token)
    data = sandbox_config(sandbox, f"sqlite:///{tmp_path / 'hb.db'}")
    if breakage == "missing_env":
        monkeypatch.delenv("XERO_ACCESS_TOKEN")
    elif breakage == "unknown_key":
        data["sources"]["harvest"]["page_size"] = 100
    else:
        data["targets"]["xero"]["batch_size"] = "fifty"
    config = write_config(tmp_path / "c.yaml", data)
    result = run_cli("sync", "--config", config, "--period", "2026-10")
    assert result.code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert key in lines[0]
    assert str(config) in lines[0]
    _no_calls(sandbox)
    assert not (tmp_path / "hb.db").exists()  # nothing written either


def test_bad_period_and_missing_file_exit_2(sandbox: Sandbox, tmp_path: Path) -> None:
    missing = run_cli("sync", "--config", tmp_path / "nope.yaml")
    assert missing.code == 2
    assert "nope.yaml: cannot read" in missing.stderr
    _no_calls(sandbox)


@pytest.mark.usefixtures("tokens")
def test_bad_period_is_a_usage_error(sandbox: Sandbox, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.yaml", sandbox_config(sandbox, f"sqlite:///{tmp_path / 'hb.db'}")
    )
    result = run_cli("sync", "--config", config, "--period", "October")
    assert result.code == 2
    assert "--period" in result.stderr and "YYYY-MM" in result.stderr
    _no_calls(sandbox)


def test_refused_credentials_stop_the_run_with_a_clear_message(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARVEST_ACCESS_TOKEN", "wrong-token")
    monkeypatch.setenv("XERO_ACCESS_TOKEN", sandbox.xero.settings.access_token)
    config = write_config(
        tmp_path / "c.yaml", sandbox_config(sandbox, f"sqlite:///{tmp_path / 'hb.db'}")
    )
    result = run_cli("sync", "--config", config, "--period", "2026-10", "--json")
    assert result.code == 1
    report = result.json()
    assert report["status"] == "failed"
    assert report["errors"] and "harvest: HTTP 401: credentials refused" in report["errors"][0]
    assert "wrong-token" not in result.stdout + result.stderr
    assert sandbox.harvest.calls and sum(sandbox.harvest.calls.values()) == 1  # no retry on 401
    assert sum(sandbox.xero.calls.values()) == 0


@pytest.mark.usefixtures("tokens")
def test_preview_writes_nothing_and_runs_are_listed(sandbox: Sandbox, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.yaml", sandbox_config(sandbox, f"sqlite:///{tmp_path / 'hb.db'}")
    )
    preview = run_cli("preview", "--config", config, "--period", "2026-10")
    assert preview.code == 0, preview.stderr
    assert "would push" in preview.stdout
    assert "unmapped" in preview.stdout
    assert sandbox.xero.invoice_writes() == 0
    assert sandbox.xero.invoices == {}

    sync = run_cli("sync", "--config", config, "--period", "2026-10", "--json")
    run_id = sync.json()["run_id"]
    listing = run_cli("runs", "list", "--config", config, "--json")
    assert listing.code == 0
    ids = [r["run_id"] for r in listing.json_list()]
    assert run_id in ids and len(ids) == 2
    shown = run_cli("runs", "show", run_id, "--config", config, "--json")
    assert shown.json()["invoices_created"] == sync.json()["invoices_created"]
    unknown = run_cli("runs", "show", "nope", "--config", config)
    assert unknown.code == 2


def test_every_command_has_help() -> None:
    for args in (
        ["--help"],
        ["sync", "--help"],
        ["preview", "--help"],
        ["runs", "list", "--help"],
        ["runs", "show", "--help"],
        ["sandbox", "--help"],
    ):
        result = run_cli(*args)
        assert result.code == 0
        assert "Usage" in result.stdout


@pytest.mark.usefixtures("tokens")
def test_mappings_unmapped_names_what_waits_with_hours_and_value(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "c.yaml", sandbox_config(sandbox, f"sqlite:///{tmp_path / 'hb.db'}")
    )
    result = run_cli("mappings", "unmapped", "--config", config, "--period", "2026-10", "--json")
    assert result.code == 0, result.stderr
    items = {i["missing"]: i for i in result.json_list()}
    month = sandbox.month
    for client_id in month.unmapped_client_ids:
        client = next(c for c in month.clients if c["id"] == client_id)
        entries = [
            e
            for e in month.time_entries
            if e["client"]["id"] == client_id
            and e["is_closed"]
            and e["billable"]
            and not e["is_billed"]
            and not e["is_running"]
            and e["spent_date"].startswith("2026-10")
        ]
        expenses = [
            x
            for x in month.expenses
            if x["client"]["id"] == client_id
            and x["is_closed"]
            and x["billable"]
            and not x["is_billed"]
            and x["spent_date"].startswith("2026-10")
        ]
        value = sum(
            (Decimal(str(e["hours"])) * Decimal(str(e["billable_rate"])) for e in entries),
            Decimal(0),
        ) + sum((Decimal(str(x["total_cost"])) for x in expenses), Decimal(0))
        item = items[f"client {client_id} {client['name']!r}"]
        assert item["entries"] == len(entries) + len(expenses)
        assert Decimal(item["value"][client["currency"]]) == value
    assert sandbox.xero.invoice_writes() == 0  # a look, not a sync
    table = run_cli("mappings", "unmapped", "--config", config, "--period", "2026-10")
    assert "value at stake" in table.stdout
