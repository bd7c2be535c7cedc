"""Stopping on request (issue 6, "Shutdown"): SIGTERM or SIGINT lets the batch in flight finish,
records the run as interrupted, releases the lease; the next run resumes from the ledger."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from core.alerts import build_alert
from core.config import load_config
from core.db import open_database
from core.factory import build_profile
from core.http import CallCounter
from core.opsconfig import AlertsConfig
from core.periods import Period
from core.report import RunReport
from core.sync import ProgressEvent, Stage, SyncEngine
from core.tables import InvoiceRow, LeaseRow, LedgerRow, LedgerState, SyncRunRow
from sandbox.seed import SeedSpec
from sandbox.server import Sandbox, running_sandbox
from tests.conftest import FAST_HARVEST, FAST_XERO, ROOT, sandbox_config, write_config
from tests.helpers import invoices_per_contact, live_invoices, run_cli

PERIOD = "2026-10"
PROFILE = "agency-monthly"
BATCH = 2
AKL = ZoneInfo("Pacific/Auckland")
STOP_NOTICE_MARK = "stopping after the batch in flight"


def _small_sandbox(monkeypatch: pytest.MonkeyPatch, period: str) -> Iterator[Sandbox]:
    """A small agency month in ``period``, with its tokens in the environment."""
    spec = SeedSpec(period=period, clients=8, entries=200)  # 6 invoices: three batches
    with running_sandbox(spec, harvest_settings=FAST_HARVEST, xero_settings=FAST_XERO) as box:
        monkeypatch.setenv("HARVEST_ACCESS_TOKEN", box.harvest.settings.access_token)
        monkeypatch.setenv("XERO_ACCESS_TOKEN", box.xero.settings.access_token)
        yield box


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """This module's own, small: quick runs of a few batches."""
    yield from _small_sandbox(monkeypatch, PERIOD)


@pytest.fixture
def previous_month_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """The small seed placed in the month a `period: previous` schedule syncs today."""
    yield from _small_sandbox(
        monkeypatch, str(Period.containing(datetime.now(UTC), AKL).previous())
    )


def _expected_slots(sandbox: Sandbox) -> int:
    return len(sandbox.month.clients) - len(sandbox.month.unmapped_client_ids)


def _config(sandbox: Sandbox, db_url: str, tmp_path: Path, **profile: Any) -> Path:
    data = sandbox_config(sandbox, db_url)
    data["targets"]["xero"]["batch_size"] = BATCH  # several batches, few invoices each
    data["profiles"][PROFILE].update(profile)
    return write_config(tmp_path / "c.yaml", data)


def _engine_run(
    config: Path, db: Engine, stop: threading.Event | None = None, *, stop_at: Stage | None = None
) -> RunReport:
    """One run through the engine; ``stop`` is set at the first event of ``stop_at`` (for
    PUSH: once the first batch has been answered, before its first result is recorded)."""
    built = build_profile(load_config(config), None, CallCounter(), engine=db)
    flag = stop if stop is not None else threading.Event()

    def progress(event: ProgressEvent) -> None:
        if event.stage is stop_at and (event.stage is not Stage.PUSH or event.done == 1):
            flag.set()

    engine = SyncEngine(db, built, progress=progress, stop=flag.is_set)
    return engine.run(Period.parse(PERIOD))


def _ledger(db: Engine) -> tuple[list[LedgerRow], list[InvoiceRow], list[LeaseRow]]:
    with Session(db) as session:
        return (
            list(session.exec(select(LedgerRow)).all()),
            list(session.exec(select(InvoiceRow)).all()),
            list(session.exec(select(LeaseRow)).all()),
        )


# -- the engine ---------------------------------------------------------------------------------


def test_a_stop_during_the_first_batch_finishes_it_and_leaves_the_rest_for_the_next_run(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _config(sandbox, db_url, tmp_path)
    db = open_database(db_url)
    slots = _expected_slots(sandbox)
    assert slots > 2 * BATCH  # so more than one batch is left

    first = _engine_run(config, db, stop_at=Stage.PUSH)

    assert first.status == "interrupted"
    assert first.errors == []
    assert first.invoices_created == BATCH  # the whole batch in flight, not just its first
    assert first.invoices_left == slots - BATCH
    assert any(f"{slots - BATCH} invoice(s) not sent" in w for w in first.warnings)
    sent = {inv["Reference"] for inv in live_invoices(sandbox.xero.invoices)}
    assert len(sent) == BATCH
    assert {inv.key for inv in first.invoices} == sent

    rows, invoices, leases = _ledger(db)
    assert leases == []  # released
    assert all(inv.pushed_hash is None for inv in invoices)  # no write claimed in flight
    assert {r.state for r in rows} == {LedgerState.CONFIRMED.value}
    assert {r.invoice_key for r in rows} == sent  # nothing billed on an invoice never sent
    assert len(rows) == first.entries_billed > 0
    with Session(db) as session:
        run = session.get(SyncRunRow, first.run_id)
        assert run is not None
        assert run.status == "interrupted" and run.finished_at is not None
    shown = run_cli("runs", "show", first.run_id, "--config", config)
    assert shown.code == 0, shown.stderr
    assert f"({slots - BATCH} invoice(s) left unsent)" in " ".join(shown.stdout.split())
    status = run_cli("status", "--config", config)
    assert "interrupted before it finished" in " ".join(status.stdout.split())

    second = _engine_run(config, db)

    assert second.status == "succeeded", second.errors
    assert second.invoices_created == slots - BATCH
    assert second.invoices_unchanged == BATCH
    assert second.invoices_left == 0
    assert len(live_invoices(sandbox.xero.invoices)) == slots
    assert max(invoices_per_contact(sandbox.xero.invoices).values()) == 1
    rows, invoices, leases = _ledger(db)
    assert leases == []
    assert {r.state for r in rows} == {LedgerState.CONFIRMED.value}
    assert len(rows) == first.entries_billed + second.entries_billed  # each entry billed once
    billed_on = {r.invoice_key for r in rows}
    assert billed_on == {inv["Reference"] for inv in live_invoices(sandbox.xero.invoices)}


def test_a_stop_before_the_push_sends_and_claims_nothing(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _config(sandbox, db_url, tmp_path)
    db = open_database(db_url)
    slots = _expected_slots(sandbox)

    first = _engine_run(config, db, stop_at=Stage.MAP)

    assert first.status == "interrupted"
    assert first.invoices_left == slots and first.invoices_created == 0
    assert first.entries_pulled > 0  # the pull was complete, and is kept
    assert any("before pushing" in w for w in first.warnings)
    assert sandbox.xero.invoices == {}
    rows, _invoices, leases = _ledger(db)
    assert rows == [] and leases == []

    second = _engine_run(config, db)
    assert second.status == "succeeded" and second.invoices_created == slots
    assert max(invoices_per_contact(sandbox.xero.invoices).values()) == 1


def test_a_stop_asked_before_the_run_pulls_nothing(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _config(sandbox, db_url, tmp_path)
    db = open_database(db_url)
    stop = threading.Event()
    stop.set()
    report = _engine_run(config, db, stop)
    assert report.status == "interrupted"
    assert report.entries_pulled == 0
    assert any("before pulling harvest" in w for w in report.warnings)
    assert sum(sandbox.harvest.calls.values()) == 0
    assert sandbox.xero.invoices == {}
    assert _ledger(db)[2] == []


def test_an_interrupted_run_alerts_only_for_invoices_it_saw_rejected() -> None:
    settings = AlertsConfig.model_validate({"webhook_url": "https://hooks.example.com/x"})
    here = Path("/etc/hb.yaml")
    stopped = RunReport(
        run_id="r1", profile="p", period=PERIOD, dry_run=False, status="interrupted"
    )
    stopped.invoices_left = 4
    assert build_alert(stopped, settings, config_path=here) is None
    stopped.invoices_failed = 1
    alert = build_alert(stopped, settings, config_path=here)
    assert alert is not None and [r.value for r in alert.reasons] == ["partial"]
    assert "stopped on request" in alert.text and "4 left for the next run" in alert.text


# -- real processes -----------------------------------------------------------------------------


class _Stderr:
    """Reads a process's stderr in a thread; ``seen`` is set once a line contains ``mark``."""

    def __init__(self, stream: IO[str] | None, mark: str) -> None:
        assert stream is not None
        self.lines: list[str] = []
        self.seen = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(stream, mark), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str], mark: str) -> None:
        for line in stream:
            self.lines.append(line)
            if mark in line:
                self.seen.set()

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "core.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _env(sandbox: Sandbox) -> dict[str, str]:
    return {
        "HARVEST_ACCESS_TOKEN": sandbox.harvest.settings.access_token,
        "XERO_ACCESS_TOKEN": sandbox.xero.settings.access_token,
    }


@pytest.mark.slow
def test_sigterm_stops_serve_after_the_batch_in_flight_then_a_run_finishes_the_period(
    previous_month_sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    sandbox = previous_month_sandbox
    # The cron won't fire during the test: only --run-at-start makes a run happen.
    config = _config(
        sandbox, db_url, tmp_path, schedule={"cron": "0 6 1 1 *", "period": "previous"}
    )
    slots = _expected_slots(sandbox)
    release = sandbox.xero.hold_after_commit()  # the first batch lands; its answer waits
    proc = _start(
        ["serve", "--config", str(config), "--run-at-start", "--port", "0"], _env(sandbox)
    )
    stderr = _Stderr(proc.stderr, '"schedule.stopping"')
    try:
        assert sandbox.xero.committed.wait(60), "no write reached the fake"
        proc.send_signal(signal.SIGTERM)
        assert stderr.seen.wait(30), "serve did not see the signal"  # stop is set: now answer
    finally:
        release.set()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log = stderr.text()
    assert proc.returncode == 0, log[-3000:]
    assert len(live_invoices(sandbox.xero.invoices)) == BATCH  # nothing after the held batch

    db = open_database(db_url)
    with Session(db) as session:
        runs = list(session.exec(select(SyncRunRow)).all())
    assert [r.status for r in runs] == ["interrupted"], log[-3000:]
    report = RunReport.from_json(runs[0].report)
    assert (report.invoices_created, report.invoices_left) == (BATCH, slots - BATCH)
    assert runs[0].trigger == "schedule" and runs[0].finished_at is not None
    assert _ledger(db)[2] == []  # the lease was released
    assert '"sync.interrupted"' in log and '"schedule.stopped"' in log

    rerun = run_cli("run-now", PROFILE, "--config", config)
    assert rerun.code == 0, rerun.stderr
    again = rerun.json()
    assert again["invoices_created"] == slots - BATCH
    assert again["invoices_unchanged"] == BATCH
    assert len(live_invoices(sandbox.xero.invoices)) == slots
    assert max(invoices_per_contact(sandbox.xero.invoices).values()) == 1


@pytest.mark.slow
def test_ctrl_c_stops_sync_after_the_batch_with_exit_3_and_a_second_signal_forces_exit(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _config(sandbox, db_url, tmp_path)
    slots = _expected_slots(sandbox)
    sync = ["sync", "--config", str(config), "--period", PERIOD, "--json"]

    # 1. One SIGINT: the held batch is recorded, the run ends interrupted, exit code 3.
    release = sandbox.xero.hold_after_commit()
    proc = _start(sync, _env(sandbox))
    stderr = _Stderr(proc.stderr, STOP_NOTICE_MARK)
    try:
        assert sandbox.xero.committed.wait(60), "no write reached the fake"
        proc.send_signal(signal.SIGINT)
        assert stderr.seen.wait(30), "sync did not see the signal"
    finally:
        release.set()
        try:
            stdout, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, _ = proc.communicate()
    assert proc.returncode == 3, stderr.text()[-3000:]
    report = RunReport.from_json(stdout)
    assert report.status == "interrupted"
    assert (report.invoices_created, report.invoices_left) == (BATCH, slots - BATCH)
    assert len(live_invoices(sandbox.xero.invoices)) == BATCH

    # 2. Two SIGTERMs: the second ends the process at once, mid-batch, as a kill would.
    release = sandbox.xero.hold_after_commit()
    proc = _start(sync, _env(sandbox))
    stderr = _Stderr(proc.stderr, STOP_NOTICE_MARK)
    try:
        assert sandbox.xero.committed.wait(60), "no write reached the fake"
        proc.send_signal(signal.SIGTERM)
        assert stderr.seen.wait(30), "sync did not see the signal"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGTERM
    assert len(live_invoices(sandbox.xero.invoices)) == 2 * BATCH

    # 3. The next run settles the forced one's batch by key and sends the rest, once each.
    rerun = run_cli(*sync)
    assert rerun.code == 0, rerun.stderr
    assert rerun.json()["invoices_created"] == slots - 2 * BATCH
    assert len(live_invoices(sandbox.xero.invoices)) == slots
    assert max(invoices_per_contact(sandbox.xero.invoices).values()) == 1
    listed = run_cli("runs", "list", "--config", config, "--json").json_list()
    assert sorted(r["status"] for r in listed) == ["interrupted", "interrupted", "succeeded"]
