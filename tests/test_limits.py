"""Limit headers: Xero's X-MinLimit-Remaining and X-DayLimit-Remaining are read from every
answer; the minute budget follows them, the report, status and metrics show the day quota
left, and a close day quota raises an alert."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.alerts import AlertReason, build_alert
from core.http import BudgetExhaustedError, CallCounter, Limit, LocalBudgets, RateBudget
from core.opsconfig import AlertsConfig
from core.report import ErrorClass, RunReport, classify_exception
from sandbox.server import Sandbox
from tests.conftest import sandbox_config, write_config
from tests.helpers import run_cli


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_minute_budget_follows_what_the_provider_says_is_left() -> None:
    clock = FakeClock()
    budget = RateBudget(60, 60.0, clock=clock, sleep=clock.sleep)
    assert budget.acquire() == 0.0
    budget.observe_remaining(3)  # another app spent most of this minute
    for _ in range(3):
        assert budget.acquire() == 0.0
    waited = budget.acquire()  # the fourth waits for the window to roll over
    assert waited == pytest.approx(60.0)
    assert clock.slept == [pytest.approx(60.0)]
    budget.observe_remaining(1000)  # more than our own limit: never loosens it
    sent = 0
    while budget.acquire() == 0.0:
        sent += 1
    assert sent == 59


def test_the_day_budget_follows_what_xero_says_is_left_and_stops_the_run() -> None:
    clock = FakeClock()
    budget = LocalBudgets(clock=clock, sleep=clock.sleep)(
        "xero", "tenant-1", [Limit(60, 61.0, "minute"), Limit(5000, 86400.0, "day")]
    )
    assert budget.acquire() == 0.0
    budget.observe("day", 1)  # X-DayLimit-Remaining: other apps spent the rest of the day
    budget.observe("app_minute", 0)  # a window we keep no budget for: ignored
    assert budget.acquire() == 0.0
    with pytest.raises(BudgetExhaustedError) as info:
        budget.acquire()  # a day away: not slept through, the run stops saying when
    assert clock.slept == []
    assert str(info.value) == (
        "xero (tenant-1): the call quota of 5000 per day is used up; it frees up in 86400 s: "
        "run again then"
    )
    assert classify_exception(info.value) is ErrorClass.RATE_LIMITED


def test_limit_headers_are_parsed_per_window() -> None:
    counter = CallCounter()
    found = counter.note_limits(
        "xero",
        {"X-MinLimit-Remaining": "57", "X-DayLimit-Remaining": "4990", "X-Other": "1"},
    )
    assert found == {"minute": 57, "day": 4990}
    counter.note_limits("xero", {"X-DayLimit-Remaining": "4989", "X-AppMinLimit-Remaining": "x"})
    assert counter.remaining == {"xero": {"minute": 57, "day": 4989}}


def test_a_close_day_quota_alerts() -> None:
    settings = AlertsConfig.model_validate(
        {"webhook_url": "https://hooks.example.com/x", "day_quota_below": 500}
    )
    report = RunReport(run_id="r", profile="p", period="2026-10", dry_run=False)
    report.status = "succeeded"
    report.api_remaining = {"xero": {"minute": 50, "day": 499}}
    alert = build_alert(report, settings, config_path=Path("c.yaml"))
    assert alert is not None and alert.reasons == (AlertReason.QUOTA,)
    assert "xero has 499 calls left today" in alert.text
    report.api_remaining = {"xero": {"minute": 50, "day": 500}}
    assert build_alert(report, settings, config_path=Path("c.yaml")) is None


@pytest.mark.usefixtures("tokens")
def test_a_sync_reports_the_quota_xero_says_is_left(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    result = run_cli("sync", "--config", config, "--period", "2026-10", "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    per_day = sandbox.xero.settings.per_day
    calls = sum(sandbox.xero.calls.values())
    assert report["api_remaining"]["xero"]["day"] == per_day - calls
    assert "harvest" not in report["api_remaining"]  # Harvest sends no such headers
    status = run_cli("status", "--config", config, "--json").json()
    assert status["profiles"][0]["quota_left_today"]["xero"] == per_day - calls
