"""Operator commands end to end: `runs retry --failed-only`, `status` and `runs prune`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from core.config import load_config
from core.db import open_database
from core.report import RunReport
from core.tables import InvoiceRow, LedgerRow, RunEventRow, SyncRunRow
from sandbox.server import Sandbox
from scheduler.status import build_status
from tests.conftest import example_config, sandbox_config, write_config
from tests.helpers import eligible, live_invoices, run_cli

PERIOD = "2026-10"
ACME = "5000001"


@pytest.mark.usefixtures("tokens")
def test_retry_failed_only_pushes_just_the_failed_invoice_as_a_linked_run(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    data = sandbox_config(sandbox, db_url)
    rule = data["profiles"]["agency-monthly"]["mapping"]["clients"][ACME]
    rule["tax_type"] = "NOSUCHTAX"
    config = write_config(tmp_path / "c.yaml", data)
    first = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert first["status"] == "partial" and first["invoices_failed"] == 1
    failed_key = next(i["key"] for i in first["invoices"] if i["action"] == "failed")
    drafts = len(live_invoices(sandbox.xero.invoices))

    # The cause is fixed; meanwhile another client's entry changed in Harvest. A --failed-only
    # retry pushes Acme's invoice and leaves the other (now stale) DRAFT alone.
    rule["tax_type"] = "ZERORATEDOUTPUT"
    write_config(config, data)
    other = next(
        e
        for e in sandbox.month.time_entries
        if e["client"]["id"] == 5000004 and eligible(e, PERIOD)
    )
    sandbox.harvest.edit_entry(other["id"], hours=other["hours"] + 1.0)

    retried = run_cli("runs", "retry", first["run_id"], "--config", config, "--failed-only")
    assert retried.code == 0, retried.stderr
    assert "retrying only the 1 invoice(s)" in " ".join(retried.stderr.split())
    assert failed_key in retried.stderr.replace("\n", "")
    assert "1 created, 0 updated" in retried.stdout
    assert len(live_invoices(sandbox.xero.invoices)) == drafts + 1

    runs = run_cli("runs", "list", "--config", config, "--json").json_list()
    newest = runs[0]
    assert (newest["trigger"], newest["retry_of"], newest["status"]) == (
        "retry",
        first["run_id"],
        "succeeded",
    )
    assert runs[1]["trigger"] == "manual" and runs[1]["retry_of"] is None
    table = run_cli("runs", "list", "--config", config)
    assert "retry of" in table.stdout and "manual" in table.stdout  # ids may wrap in cells

    # a normal sync then brings the other DRAFT up to date, and creates nothing
    after = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert (after["invoices_created"], after["invoices_updated"]) == (0, 1)

    # nothing failed in a succeeded run: nothing to retry
    again = run_cli("runs", "retry", newest["run_id"], "--config", config, "--failed-only")
    assert again.code == 0 and "nothing to retry" in again.stderr
    missing = run_cli("runs", "retry", "nope", "--config", config)
    assert missing.code == 2 and "no run 'nope'" in missing.stderr


def _from_period_on(item: dict[str, Any]) -> bool:
    """Billable, approved, not billed in Harvest, not running, spent in the period or later."""
    return bool(
        item["is_closed"]
        and item["billable"]
        and not item["is_billed"]
        and not item.get("is_running", False)
        and str(item["spent_date"]) >= f"{PERIOD}-01"
    )


@pytest.mark.usefixtures("tokens")
def test_status_shows_last_and_next_run_waiting_money_and_quota(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    data = sandbox_config(sandbox, db_url)
    data["profiles"]["agency-monthly"]["schedule"] = {"cron": "0 6 1 * *"}
    config = write_config(tmp_path / "c.yaml", data)
    before = run_cli("status", "--config", config, "--json").json()
    assert before["profiles"][0]["last_run"] is None
    report = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()

    status = run_cli("status", "--config", config, "--json")
    assert status.code == 0, status.stderr
    profile = status.json()["profiles"][0]
    assert profile["profile"] == "agency-monthly"
    assert profile["last_run"]["run_id"] == report["run_id"]
    assert profile["next_run"].endswith("+13:00") and "-01T06:00:00" in profile["next_run"]
    assert profile["api_calls_today"]["xero"] == report["api_calls"]["xero"]
    # what Xero's last answer said is left (X-DayLimit-Remaining) beats our own count
    assert profile["quota_left_today"]["xero"] == report["api_remaining"]["xero"]["day"]
    assert profile["token_expires"] == {"harvest": None, "xero": None}

    # "ready": billable, approved, on no invoice: the unmapped clients' entries and expenses
    # of the months pulled (the period and after), valued exactly at the tracker's rates
    engine = open_database(db_url)
    with Session(engine) as session:
        billed = {(r.source, r.source_id) for r in session.exec(select(LedgerRow)).all()}
    expected: dict[str, Decimal] = {}
    count = 0
    for e in sandbox.month.time_entries:
        if _from_period_on(e) and ("harvest", str(e["id"])) not in billed:
            count += 1
            cur = e["client"]["currency"]
            amount = Decimal(str(e["hours"])) * Decimal(str(e["billable_rate"]))
            expected[cur] = expected.get(cur, Decimal("0")) + amount
    for x in sandbox.month.expenses:
        if (_from_period_on(x) and not x.get("is_running")) and (
            "harvest",
            f"expense-{x['id']}",
        ) not in billed:
            count += 1
            cur = x["client"]["currency"]
            expected[cur] = expected.get(cur, Decimal("0")) + Decimal(str(x["total_cost"]))
    assert profile["pending_entries"]["ready"] == count > 0
    assert {c: Decimal(v) for c, v in profile["pending"]["ready"].items()} == expected

    text = run_cli("status", "--config", config)
    assert "agency-monthly" in text.stdout and "waiting (ready):" in text.stdout
    assert f"run {report['run_id']}" in text.stdout
    assert "left of the day quota" in text.stdout


@pytest.mark.usefixtures("tokens")
def test_prune_removes_old_run_events_only(sandbox: Sandbox, db_url: str, tmp_path: Path) -> None:
    data = sandbox_config(sandbox, db_url)
    data["retention_days"] = 30
    config = write_config(tmp_path / "c.yaml", data)
    old = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    engine = open_database(db_url)
    long_ago = datetime.now(UTC) - timedelta(days=45)
    with Session(engine) as session:
        run = session.get(SyncRunRow, old["run_id"])
        assert run is not None
        run.started_at = long_ago
        session.add(run)
        for event in session.exec(select(RunEventRow)).all():
            event.created_at = long_ago
            session.add(event)
        session.commit()
    new = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    with Session(engine) as session:
        invoices_before = len(session.exec(select(InvoiceRow)).all())
        ledger_before = len(session.exec(select(LedgerRow)).all())
        old_events = len(
            session.exec(select(RunEventRow).where(RunEventRow.run_id == old["run_id"])).all()
        )
        new_events = len(
            session.exec(select(RunEventRow).where(RunEventRow.run_id == new["run_id"])).all()
        )
    assert old_events > 0 and new_events > 0

    counted = run_cli("runs", "prune", "--config", config, "--dry-run")
    assert counted.code == 0 and f"would delete {old_events} run events" in counted.stdout
    pruned = run_cli("runs", "prune", "--config", config)
    assert pruned.code == 0 and f"deleted {old_events} run events" in pruned.stdout
    assert "older than 30 days" in pruned.stdout
    with Session(engine) as session:
        left = session.exec(select(RunEventRow)).all()
        assert {e.run_id for e in left} == {new["run_id"]} and len(left) == new_events
        assert len(session.exec(select(SyncRunRow)).all()) == 2  # runs are kept
        assert len(session.exec(select(InvoiceRow)).all()) == invoices_before
        assert len(session.exec(select(LedgerRow)).all()) == ledger_before
    shown = run_cli("runs", "show", old["run_id"], "--config", config)
    assert shown.code == 0
    assert run_cli("runs", "prune", "--config", config, "--older-than-days", "0").code == 2


def sandbox_config_offline(db_url: str) -> dict[str, Any]:
    data = example_config()
    data["database"]["url"] = db_url
    return data


def test_without_limit_headers_the_quota_left_is_counted_from_our_runs(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'hb.db'}"
    data = sandbox_config_offline(db_url)
    config = write_config(tmp_path / "c.yaml", data)
    loaded = load_config(config, {"HARVEST_ACCESS_TOKEN": "h", "XERO_ACCESS_TOKEN": "x"})
    engine = open_database(db_url)
    now = datetime.now(UTC)
    report = RunReport(run_id="r1", profile="agency-monthly", period=PERIOD, dry_run=False)
    report.status = "succeeded"
    report.api_calls = {"harvest": 3, "xero": 40}
    with Session(engine) as session:
        session.add(
            SyncRunRow(
                id="r1",
                profile="agency-monthly",
                period=PERIOD,
                status="succeeded",
                started_at=now,
                finished_at=now,
                report=report.to_json(),
            )
        )
        session.commit()
    [status] = build_status(loaded, engine, now)
    assert status.calls_today == {"harvest": 3, "xero": 40}
    assert status.quota_left == {"xero": 5000 - 40}


@pytest.mark.usefixtures("tokens")
def test_a_run_left_running_by_a_dead_process_is_marked_interrupted_and_can_be_retried(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    engine = open_database(db_url)
    then = datetime.now(UTC) - timedelta(hours=1)
    dead = RunReport(run_id="d" * 32, profile="agency-monthly", period=PERIOD, dry_run=False)
    with Session(engine) as session:
        session.add(
            SyncRunRow(
                id=dead.run_id,
                profile="agency-monthly",
                period=PERIOD,
                status="running",
                started_at=then,
                report=dead.to_json(),
            )
        )
        session.commit()
    report = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert report["status"] == "succeeded"
    with Session(engine) as session:
        old = session.get(SyncRunRow, dead.run_id)
        new = session.get(SyncRunRow, report["run_id"])
        assert old is not None and new is not None
        assert old.status == "interrupted" and old.finished_at == new.started_at
    listed = run_cli("runs", "list", "--config", config, "--status", "interrupted", "--json")
    assert [r["run_id"] for r in listed.json_list()] == [dead.run_id]

    retried = run_cli("runs", "retry", dead.run_id, "--config", config, "--failed-only")
    assert retried.code == 0, retried.stderr
    assert "interrupted as a whole" in retried.stderr and "retrying all" in retried.stderr
    assert "0 created" in retried.stdout and "unchanged" in retried.stdout
