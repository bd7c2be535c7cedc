"""Progress: the engine reports pull, map and push through a callback; a terminal gets rich
bars, anything else (the scheduler, a pipe) gets log lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import structlog
from rich.console import Console

from core import logging as hblog
from core.config import load_config
from core.db import open_database
from core.factory import build_profile
from core.http import CallCounter
from core.periods import Period
from core.progress import RichProgress, terminal_or_log
from core.sync import ProgressEvent, Stage, SyncEngine
from sandbox.server import Sandbox
from tests.conftest import sandbox_config, write_config
from tests.helpers import run_cli

PERIOD = "2026-10"


@pytest.mark.usefixtures("tokens")
def test_the_engine_reports_each_stage_and_a_terminal_shows_bars(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    calls = CallCounter()
    built = build_profile(load_config(config), None, calls)
    hblog.configure(json=True)  # log to this test's stderr, not an earlier CLI run's
    events: list[ProgressEvent] = []
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    with terminal_or_log(console, structlog.get_logger("test")) as bars:
        assert isinstance(bars, RichProgress)

        def both(event: ProgressEvent) -> None:
            events.append(event)
            bars(event)

        report = SyncEngine(open_database(db_url), built, progress=both).run(Period.parse(PERIOD))
    assert report.status == "succeeded"
    stages = [e.stage for e in events]
    assert stages.index(Stage.PULL) < stages.index(Stage.MAP) < stages.index(Stage.PUSH)
    finals = {e.stage: e for e in events if e.final}
    assert finals[Stage.PULL].done == report.entries_pulled > 0
    assert finals[Stage.PULL].detail == "harvest"
    assert finals[Stage.MAP].done == finals[Stage.MAP].total
    assert finals[Stage.PUSH].done == finals[Stage.PUSH].total == report.invoices_created > 0
    pushed = [e.done for e in events if e.stage is Stage.PUSH]
    assert pushed == list(range(report.invoices_created + 1))
    shown = screen.getvalue()
    assert "pulling harvest" in shown and "mapping" in shown and "pushing" in shown
    count = report.invoices_created
    assert f"{count}/{count}" in shown


@pytest.mark.usefixtures("tokens")
def test_off_a_terminal_progress_is_logged(sandbox: Sandbox, db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    result = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    progress = [line for line in lines if line["event"] == "sync.progress"]
    finals = {(p["stage"], p["final"]): p for p in progress}
    assert finals[("pull", True)]["done"] == report["entries_pulled"]
    assert finals[("push", True)]["done"] == finals[("push", True)]["total"]
    assert finals[("push", True)]["total"] == report["invoices_created"]
    assert {p["stage"] for p in progress} == {"pull", "map", "push"}
    # every line of the run carries its run id and profile, progress lines included
    assert all(p["run_id"] == report["run_id"] for p in progress)
    assert all(p["profile"] == "agency-monthly" for p in progress)
    assert len(progress) < 40  # throttled: not one line per entry
