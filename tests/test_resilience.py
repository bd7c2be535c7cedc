"""Resilience: a burst of injected 429s and 5xxs from Harvest and Xero is absorbed, the run
completes, and its report and run events count the retries (sleep injected: no real wait)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from core import logging as hblog
from core.config import load_config
from core.db import open_database
from core.factory import build_profile
from core.http import CallCounter, RetryPolicy
from core.periods import Period
from core.sync import SyncEngine
from core.tables import RunEventRow
from sandbox.server import Sandbox
from tests.conftest import sandbox_config, write_config
from tests.helpers import live_invoices, run_cli


@pytest.mark.usefixtures("tokens")
def test_a_burst_of_429_and_5xx_is_absorbed_and_the_retries_are_counted(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    loaded = load_config(config)
    hblog.configure(json=True)  # log to this test's stderr, not an earlier CLI run's
    waits: list[float] = []
    calls = CallCounter()
    policy = RetryPolicy(max_attempts=6, sleep=waits.append)
    built = build_profile(loaded, None, calls, policy)
    engine = open_database(db_url)

    sandbox.harvest.fail_next(429, count=2, retry_after=7)
    sandbox.harvest.fail_next(502)
    sandbox.xero.fail_next(429, count=3, retry_after=2)
    sandbox.xero.fail_next(503, count=2)
    report = SyncEngine(engine, built, api_calls=calls.as_dict, counter=calls).run(
        Period.parse("2026-10")
    )

    assert report.status == "succeeded", report.errors
    assert report.invoices_created == len(live_invoices(sandbox.xero.invoices)) > 0
    assert report.api_retries == {"harvest": 3, "xero": 5}
    assert report.api_rate_limited == {"harvest": 2, "xero": 3}
    # Retry-After was honoured: the server's 7 s and 2 s, never really slept
    assert waits.count(7.0) == 2 and waits.count(2.0) == 3
    assert len(waits) == 8
    # retries are not failures
    assert sum(report.error_classes.values()) == len(report.unmapped)

    with Session(engine) as session:
        events = session.exec(
            select(RunEventRow)
            .where(RunEventRow.run_id == report.run_id, RunEventRow.kind == "retry")
            .order_by(col(RunEventRow.id))
        ).all()
    assert [(e.subject, e.entries, e.error_class) for e in events] == [
        ("harvest", 3, "rate_limited"),
        ("xero", 5, "rate_limited"),
    ]
    assert events[1].message == "5 retries absorbed (3 rate-limited)"

    shown = run_cli("runs", "show", report.run_id, "--config", config)
    assert "retries absorbed: xero: 5 retries absorbed (3 rate-limited)" in shown.stdout
    as_json = json.loads(
        run_cli("runs", "show", report.run_id, "--config", config, "--json").stdout
    )
    assert as_json["api_retries"] == {"harvest": 3, "xero": 5}
