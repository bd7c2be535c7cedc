"""Two `hourbridge serve` processes on one PostgreSQL, both firing the same profile every two
seconds, after a third was SIGKILLed mid-push: the runs table shows no overlap, the killed
run's lease is taken over, and the fake Xero holds exactly one invoice per contact."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from core.db import open_database
from core.periods import Period
from core.tables import SyncRunRow
from sandbox.seed import SeedSpec
from sandbox.server import Sandbox, start_sandbox
from tests.conftest import FAST_HARVEST, FAST_XERO, ROOT, sandbox_config, write_config
from tests.helpers import invoices_per_contact, live_invoices

AKL = ZoneInfo("Pacific/Auckland")
RUN_FOR_SECONDS = 15


@pytest.fixture
def this_month_sandbox() -> Iterator[Sandbox]:
    """The seed placed in the month a `period: previous` schedule syncs today."""
    period = Period.containing(datetime.now(UTC), AKL).previous()
    running = start_sandbox(
        SeedSpec(period=str(period)), harvest_settings=FAST_HARVEST, xero_settings=FAST_XERO
    )
    try:
        yield running
    finally:
        running.stop()


def _serve(config: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "core.cli", "serve", "--config", str(config), "--port", "0"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finished_runs(db_url: str) -> int:
    """Runs that held the lease and finished (a run that lost the race fails)."""
    engine = open_database(db_url)
    try:
        with Session(engine) as session:
            rows = session.exec(select(SyncRunRow).where(SyncRunRow.status == "succeeded"))
            return len(rows.all())
    finally:
        engine.dispose()


def _events(stream: IO[str] | str | None) -> list[dict[str, Any]]:
    text = stream if isinstance(stream, str) else (stream.read() if stream else "")
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_two_schedulers_one_profile_no_overlap_and_takeover_after_a_crash(
    this_month_sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("two processes sharing one database: PostgreSQL")
    sandbox = this_month_sandbox
    data = sandbox_config(sandbox, db_url)
    data["targets"]["xero"]["batch_size"] = 10  # several writes, so the kill lands mid-push
    data["profiles"]["agency-monthly"]["schedule"] = {"interval_seconds": 2}
    config = write_config(tmp_path / "c.yaml", data)
    env = {
        "HARVEST_ACCESS_TOKEN": sandbox.harvest.settings.access_token,
        "XERO_ACCESS_TOKEN": sandbox.xero.settings.access_token,
    }
    expected_slots = len(sandbox.month.clients) - len(sandbox.month.unmapped_client_ids)

    # 1. A scheduler is killed in the middle of pushing, holding the profile's lease.
    release = sandbox.xero.hold_after_commit()
    crashed = _serve(config, env)
    try:
        assert sandbox.xero.committed.wait(60), "no write reached the fake"
        crashed.send_signal(signal.SIGKILL)
        crashed.wait(timeout=30)
    finally:
        release.set()
        if crashed.poll() is None:
            crashed.kill()
    killed_at = datetime.now(UTC)
    assert len(live_invoices(sandbox.xero.invoices)) == 10
    crashed_events = _events(crashed.stderr)
    crashed_runs = {e["run_id"] for e in crashed_events if e["event"] == "lease.acquired"}
    assert len(crashed_runs) == 1

    # 2. Two schedulers share the database and fire the same profile every 2 seconds.
    pair = [_serve(config, env), _serve(config, env)]
    try:
        # At least RUN_FOR_SECONDS, and until two runs have finished: SIGTERM stops the run in
        # progress after its batch and starts no other, so the runs that count must be done.
        time.sleep(RUN_FOR_SECONDS)
        deadline = time.monotonic() + 120
        while _finished_runs(db_url) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        for proc in pair:
            proc.send_signal(signal.SIGTERM)
    outputs = [proc.communicate(timeout=90) for proc in pair]
    assert [proc.returncode for proc in pair] == [0, 0], [err[-2000:] for _out, err in outputs]

    # Each process's lease holds, from its own log, never overlap the other's.
    holds: dict[str, list[datetime]] = {}
    for _out, err in outputs:
        for event in _events(err):
            if event["event"] in ("lease.acquired", "lease.released"):
                holds.setdefault(event["run_id"], []).append(
                    datetime.fromisoformat(event["timestamp"])
                )
    intervals = sorted((times[0], times[-1]) for times in holds.values() if len(times) == 2)
    assert len(intervals) >= 2, "the schedulers should have run the profile several times"
    assert intervals[0][0] > killed_at
    for (_s1, end), (start, _e2) in itertools.pairwise(intervals):
        assert start >= end, "two runs of one profile held the lease at once"

    # The runs table: the runs that held the lease never overlap; the crashed one was found
    # and marked interrupted by the run that took its lease over.
    with Session(open_database(db_url)) as session:
        rows = session.exec(select(SyncRunRow).order_by(col(SyncRunRow.started_at))).all()
    crashed_rows = [r for r in rows if r.id in crashed_runs]
    assert [r.status for r in crashed_rows] == ["interrupted"]
    held = [r for r in rows if r.id in holds]
    assert len(held) == len(intervals)
    assert crashed_rows[0].finished_at == held[0].started_at  # found by the first takeover
    for before, after in itertools.pairwise(held):
        assert before.finished_at is not None and after.started_at >= before.finished_at
    lost = [r for r in rows if r.id not in holds and r.id not in crashed_runs]
    assert all(r.status == "failed" and "is being synced by" in r.report for r in lost)
    assert {r.trigger for r in held} == {"schedule"}
    # The SIGTERM stops the run in progress after its batch (interrupted, lease released), so
    # only the last runs may be interrupted; the first, which took the lease over, finished.
    statuses = [r.status for r in held]
    done = statuses.index("interrupted") if "interrupted" in statuses else len(statuses)
    assert done >= 1 and set(statuses[:done]) == {"succeeded"}, [r.report for r in held]
    assert set(statuses[done:]) <= {"interrupted"}, statuses

    # The period is complete, with one invoice per contact: no duplicate from the takeover.
    assert max(invoices_per_contact(sandbox.xero.invoices).values()) == 1
    assert len(live_invoices(sandbox.xero.invoices)) == expected_slots
    first, last = json.loads(held[0].report), json.loads(held[-1].report)
    assert first["invoices_created"] == expected_slots - 10
    assert first["invoices_unchanged"] == 10
    assert last["invoices_created"] == 0
