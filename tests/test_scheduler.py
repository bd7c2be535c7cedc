"""The scheduler: cron in the organisation's timezone, which month a run syncs, `run-now` and
`serve` end to end against the sandbox (same code path and lease as `hourbridge sync`)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from core.config import HourbridgeConfig, ScheduleConfig, load_config
from core.db import open_database
from core.errors import ConfigError
from core.lease import Lease
from core.periods import Period
from sandbox.server import Sandbox
from scheduler.schedule import next_fire_times, period_for
from tests.conftest import ROOT, example_config, sandbox_config, write_config
from tests.helpers import live_invoices, run_cli

AKL = ZoneInfo("Pacific/Auckland")
ENV = {"HARVEST_ACCESS_TOKEN": "h-secret-1", "XERO_ACCESS_TOKEN": "x-secret-2"}


def _config(tmp_path: Path, schedules: dict[str, dict[str, Any] | None]) -> HourbridgeConfig:
    """The example config with one profile per entry of ``schedules`` (None: no schedule)."""
    data = example_config()
    base = data["profiles"]["agency-monthly"]
    data["profiles"] = {}
    for name, schedule in schedules.items():
        data["profiles"][name] = {**base, **({"schedule": schedule} if schedule else {})}
    return load_config(write_config(tmp_path / "c.yaml", data), ENV).config


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# -- next_fire_times: pure, in the organisation's timezone ------------------------------------


def test_next_fire_times_are_in_the_organisation_timezone(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        {"monthly": {"cron": "0 6 1 * *"}, "daily": {"cron": "30 7 * * 1-5"}, "manual": None},
    )
    # 2026-08-15 12:00 UTC = 2026-08-16 00:00 NZST (+12), a Sunday.
    fires = next_fire_times(config, _utc(2026, 8, 15, 12))
    assert set(fires) == {"monthly", "daily"}  # no schedule, no job
    # 1 September 06:00 NZST (+12:00) = 31 August 18:00 UTC
    assert fires["monthly"].astimezone(UTC) == _utc(2026, 8, 31, 18)
    assert fires["monthly"].utcoffset() == timedelta(hours=12)
    # Monday 17 August 07:30 NZST = Sunday 16 August 19:30 UTC
    assert fires["daily"].astimezone(UTC) == _utc(2026, 8, 16, 19, 30)


def test_next_fire_time_across_the_dst_change_in_auckland(tmp_path: Path) -> None:
    """NZ daylight time starts 2026-09-27 02:00 → 03:00 (+12:00 → +13:00)."""
    config = _config(tmp_path, {"monthly": {"cron": "0 6 1 * *"}, "daily": {"cron": "0 6 * * *"}})
    # Saturday 26 September 07:00 NZST = 25 September 19:00 UTC
    now = _utc(2026, 9, 25, 19)
    fires = next_fire_times(config, now)
    # 1 October 06:00 NZDT (+13:00) = 30 September 17:00 UTC (not 18:00, as in winter)
    assert fires["monthly"].astimezone(UTC) == _utc(2026, 9, 30, 17)
    assert fires["monthly"].utcoffset() == timedelta(hours=13)
    # Sunday 27 September 06:00 NZDT = 26 September 17:00 UTC: 22 hours later, not 23
    assert fires["daily"].astimezone(UTC) == _utc(2026, 9, 26, 17)
    assert fires["daily"] - now == timedelta(hours=22)


def test_weekdays_are_numbered_as_in_cron_sunday_is_0_and_7(tmp_path: Path) -> None:
    """APScheduler 3 numbers weekdays from Monday; a crontab's 0 (or 7) is Sunday."""
    config = _config(
        tmp_path,
        {
            "sun0": {"cron": "0 9 * * 0"},
            "sun7": {"cron": "0 9 * * 7"},
            "mon": {"cron": "0 9 * * 1"},
            "sat": {"cron": "0 9 * * mon-fri,6"},
            "odd": {"cron": "0 9 * * */2"},  # sun, tue, thu, sat
        },
    )
    # Wednesday 19 August 2026 10:00 NZST
    fires = next_fire_times(config, datetime(2026, 8, 19, 10, tzinfo=AKL))
    days = {name: f"{when:%a %d}" for name, when in fires.items()}
    assert days == {
        "sun0": "Sun 23",
        "sun7": "Sun 23",
        "mon": "Mon 24",
        "sat": "Thu 20",
        "odd": "Thu 20",
    }


def test_a_fire_time_equal_to_now_is_next_and_naive_now_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, {"monthly": {"cron": "0 6 1 * *"}})
    at = datetime(2026, 11, 1, 6, tzinfo=AKL)
    assert next_fire_times(config, at)["monthly"].astimezone(UTC) == at.astimezone(UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire_times(config, datetime(2026, 11, 1, 6))


# -- which billing month a run syncs -----------------------------------------------------------


def test_period_previous_and_current_are_months_in_the_organisation_timezone() -> None:
    # 2026-11-01 06:00 in Auckland is still 31 October in UTC.
    moment = datetime(2026, 11, 1, 6, tzinfo=AKL)
    assert moment.astimezone(UTC).month == 10
    previous = ScheduleConfig(cron="0 6 1 * *", period="previous")
    current = ScheduleConfig(cron="0 6 1 * *", period="current")
    assert period_for(previous, moment, AKL) == Period(2026, 10)
    assert period_for(current, moment, AKL) == Period(2026, 11)
    assert period_for(None, moment, AKL) == Period(2026, 10)  # run-now without a schedule
    assert period_for(previous, datetime(2027, 1, 1, 6, tzinfo=AKL), AKL) == Period(2026, 12)


# -- config -------------------------------------------------------------------------------------


def _error(tmp_path: Path, schedule: Any) -> str:
    data = example_config()
    data["profiles"]["agency-monthly"]["schedule"] = schedule
    path = write_config(tmp_path / "bad.yaml", data)
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


@pytest.mark.parametrize(
    "cron", ["0 6 1 *", "61 6 1 * *", "0 6 1 * * *", "every day", "0 6 * * 8", "0 6 * * 5-2"]
)
def test_a_bad_cron_is_a_one_line_error_naming_the_key(tmp_path: Path, cron: str) -> None:
    message = _error(tmp_path, {"cron": cron})
    assert "profiles.agency-monthly.schedule.cron: invalid crontab" in message


def test_schedule_keys_are_checked(tmp_path: Path) -> None:
    assert "profiles.agency-monthly.schedule.crn: unknown key" in _error(
        tmp_path, {"cron": "0 6 1 * *", "crn": "x"}
    )
    assert "profiles.agency-monthly.schedule.period" in _error(
        tmp_path, {"cron": "0 6 1 * *", "period": "next"}
    )
    assert "profiles.agency-monthly.schedule.cron" in _error(tmp_path, {"period": "current"})
    defaults = ScheduleConfig(cron="0 6 1 * *")
    assert (defaults.period, defaults.misfire_grace_seconds) == ("previous", 3600)


def test_the_commented_schedule_example_is_valid() -> None:
    lines = (ROOT / "config.example.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("    # schedule:")
    block = []
    for line in lines[start + 1 :]:
        if not line.startswith("    #   "):
            break
        block.append(line[len("    #   ") :])
    schedule = ScheduleConfig.model_validate(yaml.safe_load("\n".join(block)))
    assert schedule.cron == "0 6 1 * *"


# -- run-now, end to end ------------------------------------------------------------------------


def _scheduled_config(sandbox: Sandbox, db_url: str, tmp_path: Path, cron: str) -> Path:
    data = sandbox_config(sandbox, db_url)
    data["profiles"]["agency-monthly"]["schedule"] = {"cron": cron, "period": "previous"}
    return write_config(tmp_path / "c.yaml", data)


@pytest.mark.usefixtures("tokens")
def test_run_now_syncs_once_and_a_second_run_creates_nothing(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _scheduled_config(sandbox, db_url, tmp_path, "0 6 1 * *")
    first = run_cli("run-now", "agency-monthly", "--config", config, "--period", "2026-10")
    assert first.code == 0, first.stderr
    report = first.json()
    assert report["status"] == "succeeded"
    assert (report["profile"], report["period"]) == ("agency-monthly", "2026-10")
    assert report["invoices_created"] > 0
    created = len(live_invoices(sandbox.xero.invoices))
    assert created == report["invoices_created"]

    second = run_cli("run-now", "agency-monthly", "--config", config, "--period", "2026-10")
    assert second.code == 0, second.stderr
    again = second.json()
    assert again["status"] == "succeeded"
    assert again["invoices_created"] == 0
    assert len(live_invoices(sandbox.xero.invoices)) == created
    listed = run_cli("runs", "list", "--config", config, "--json").json_list()
    assert {r["run_id"] for r in listed} == {report["run_id"], again["run_id"]}


@pytest.mark.usefixtures("tokens")
def test_run_now_with_an_unknown_profile_exits_2_with_one_line(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _scheduled_config(sandbox, db_url, tmp_path, "0 6 1 * *")
    result = run_cli("run-now", "nope", "--config", config)
    assert result.code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "no profile named 'nope'" in lines[0] and "agency-monthly" in lines[0]
    assert result.stdout == ""
    assert sum(sandbox.harvest.calls.values()) == 0
    assert sum(sandbox.xero.calls.values()) == 0


@pytest.mark.usefixtures("tokens")
def test_run_now_bad_period_exits_2(sandbox: Sandbox, db_url: str, tmp_path: Path) -> None:
    config = _scheduled_config(sandbox, db_url, tmp_path, "0 6 1 * *")
    result = run_cli("run-now", "agency-monthly", "--config", config, "--period", "Oct")
    assert result.code == 2
    assert "--period" in result.stderr
    assert sum(sandbox.harvest.calls.values()) == 0


@pytest.mark.usefixtures("tokens")
def test_run_now_respects_the_profile_lease(sandbox: Sandbox, db_url: str, tmp_path: Path) -> None:
    config = _scheduled_config(sandbox, db_url, tmp_path, "0 6 1 * *")
    lease = Lease(open_database(db_url), "agency-monthly", lambda: datetime.now(UTC))
    lease.acquire()  # another process is syncing this profile
    try:
        result = run_cli("run-now", "agency-monthly", "--config", config, "--period", "2026-10")
    finally:
        lease.release()
    assert result.code == 1
    report = result.json()
    assert report["status"] == "failed"
    assert "is being synced by" in report["errors"][0]
    assert sum(sandbox.harvest.calls.values()) == 0
    assert sandbox.xero.invoices == {}


def test_serve_without_any_schedule_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    config = write_config(tmp_path / "c.yaml", example_config())
    result = run_cli("serve", "--config", config)
    assert result.code == 2
    assert "no profile has a schedule" in result.stderr


def test_serve_and_run_now_have_help() -> None:
    serve = run_cli("serve", "--help")
    assert serve.code == 0 and "--run-at-start" in serve.stdout
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", serve.stdout).split())
    assert "Run every scheduled profile once at start, then keep the schedule." in words
    run_now = run_cli("run-now", "--help")
    assert run_now.code == 0 and "PROFILE" in run_now.stdout


# -- serve, end to end in a subprocess ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("tokens")
def test_serve_runs_at_start_then_stops_cleanly_on_sigterm(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    # This cron won't fire during the test: only --run-at-start makes a run happen.
    config = _scheduled_config(sandbox, db_url, tmp_path, "0 6 1 1 *")
    before = datetime.now(AKL)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core.cli",
            "serve",
            "--config",
            str(config),
            "--run-at-start",
            "--port",
            "0",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started: list[dict[str, Any]] = []
    try:
        # SIGTERM once the run has ended: serve stops cleanly while idle. (SIGTERM during a run
        # stops it after its batch in flight: tests/test_shutdown.py.)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            listed = run_cli("runs", "list", "--config", config, "--json")
            if listed.code == 0 and [r for r in listed.json_list() if r["finished_at"]]:
                started = listed.json_list()
                break
            time.sleep(0.1)
        assert proc.poll() is None, "serve exited early"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    assert len(started) == 1, stderr
    finished = run_cli("runs", "list", "--config", config, "--json").json_list()
    assert len(finished) == 1, finished
    run = finished[0]
    assert run["profile"] == "agency-monthly" and run["status"] == "succeeded"
    # scheduled runs sync the month before "now" in the organisation's timezone
    after = datetime.now(AKL)
    expected = {str(Period(t.year, t.month).previous()) for t in (before, after)}
    assert run["period"] in expected
    # Every January 1st at 06:00 in Auckland: the next run printed at start
    printed = re.search(r"agency-monthly: next run at (\S+)", stdout)
    assert printed, stdout
    next_run = datetime.fromisoformat(printed.group(1))
    assert (next_run.month, next_run.day, next_run.hour, next_run.minute) == (1, 1, 6, 0)
    assert next_run.utcoffset() == timedelta(hours=13)  # NZDT in January
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    assert names[0] == "schedule.start"
    assert "schedule.next_run" in names
    assert names.index("schedule.run_done") < names.index("schedule.stopped")
    done = [e for e in events if e["event"] == "schedule.run_done"]
    assert [(e["profile"], e["status"]) for e in done] == [("agency-monthly", "succeeded")]
    assert done[0]["run_id"] == run["run_id"]
    assert "x-secret" not in stderr and sandbox.xero.settings.access_token not in stderr
