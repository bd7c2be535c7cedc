"""End to end against the fake Harvest and Xero: a retainer with overage, and an entry that
turns up after its month closed going onto the next month's invoice, marked."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.config import load_config
from core.db import open_database
from core.factory import build_profile
from core.http import CallCounter
from core.periods import Period
from core.sync import SyncEngine
from sandbox.server import Sandbox
from tests.conftest import sandbox_config, write_config
from tests.helpers import eligible, eligible_expense, live_invoices, run_cli

AKL = ZoneInfo("Pacific/Auckland")
TASKS = range(8000001, 8000007)  # the mapped tasks
ACME, NORDISK, TASMAN = 5000001, 5000003, 5000006
CAMPAIGN = 14000007  # Tasman's Marketing Campaign: a fixed fee
OVERAGE = Decimal(5)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _hours(
    sandbox: Sandbox, client: int, period: str = "2026-10", project: int | None = None
) -> Decimal:
    return sum(
        (
            Decimal(str(e["hours"]))
            for e in sandbox.month.time_entries
            if eligible(e, period)
            and e["client"]["id"] == client
            and e["task"]["id"] in TASKS
            and project in (None, e["project"]["id"])
        ),
        Decimal(0),
    )


def _invoices_of(sandbox: Sandbox, number: str) -> list[dict[str, Any]]:
    contact = next(c for c in sandbox.month.xero_contacts if c.get("ContactNumber") == number)
    return [
        inv
        for inv in live_invoices(sandbox.xero.invoices)
        if str(inv["Contact"]["ContactID"]).lower() == contact["ContactID"].lower()
    ]


def _plain(value: Decimal) -> str:
    return f"{value.normalize():f}"


@pytest.mark.usefixtures("tokens")
def test_retainer_with_overage_and_a_late_entry_in_the_fake_xero(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    used = _hours(sandbox, ACME)
    included = used - OVERAGE
    assert included > 0
    data = sandbox_config(sandbox, db_url)
    profile = data["profiles"]["agency-monthly"]
    profile["billing_period"] = {"kind": "monthly", "close_after_days": 3}
    profile["mapping"]["retainers"] = [
        {
            "client": str(ACME),
            "amount": "1000.00",
            "hours": str(included),
            "overage_rate": "150",
            "item_code": "SUPPORT",
            "account_code": "200",
        }
    ]
    profile["mapping"]["fixed_fees"] = [
        {
            "client": str(TASMAN),
            "project": str(CAMPAIGN),
            "item_code": "CONSULT",
            "milestones": [
                {"date": "2026-10-15", "amount": "4000.00", "description": "Campaign: kick-off"},
                {"date": "2026-12-15", "amount": "6000.00", "description": "Campaign: launch"},
            ],
        }
    ]
    config = write_config(tmp_path / "c.yaml", data)
    loaded = load_config(config)
    built = build_profile(loaded, None, CallCounter())
    clock = Clock(datetime(2026, 11, 2, 6, tzinfo=AKL))  # October still open
    sync = SyncEngine(open_database(db_url), built, clock=clock)

    report = sync.run(Period(2026, 10))
    assert report.status == "succeeded", report.errors
    (acme,) = _invoices_of(sandbox, "HV-5000001")
    lines = acme["LineItems"]
    retainer = [li for li in lines if li.get("ItemCode") == "SUPPORT"]
    assert [
        (li["Description"], Decimal(str(li["Quantity"])), Decimal(str(li["UnitAmount"])))
        for li in retainer
    ] == [
        (f"Retainer 2026-10: {_plain(used)} of {_plain(included)} h used", 1, Decimal(1000)),
        (f"Overage 2026-10: 5 h beyond {_plain(included)} h", OVERAGE, Decimal(150)),
    ]
    assert Decimal(str(retainer[1]["LineAmount"])) == Decimal("750.00")  # 5 × 150
    # the retainer covers Acme's hours: no hourly line for any of its tasks
    assert not [li for li in lines if li.get("ItemCode") in {"DESIGN", "DEV", "PM", "QA"}]

    # the fixed fee: October's milestone, and the campaign's hours shown at no charge
    campaign = _hours(sandbox, TASMAN, project=CAMPAIGN)
    assert campaign > 0
    (tasman,) = _invoices_of(sandbox, "HV-5000006")
    fixed = [
        (
            li["Description"],
            Decimal(str(li["Quantity"])),
            Decimal(str(li["UnitAmount"])),
            Decimal(str(li["LineAmount"])),
        )
        for li in tasman["LineItems"]
        if li.get("ItemCode") == "CONSULT"
    ]
    assert (
        "Campaign: kick-off",
        Decimal(1),
        Decimal(4000),
        Decimal("4000.00"),
    ) in fixed
    assert (
        "Hours tracked (fixed fee, not billed) 2026-10",
        campaign,
        Decimal(0),
        Decimal(0),
    ) in fixed

    # a Nørdisk entry for 30 October is approved after October closed (4 Nov 00:00 NZDT)
    template = next(
        e
        for e in sandbox.month.time_entries
        if e["client"]["id"] == NORDISK and eligible(e, "2026-10") and e["task"]["id"] in TASKS
    )
    late = dict(template, id=2199999991, hours=2.5, spent_date="2026-10-30", notes="")
    del late["created_at"], late["updated_at"]
    sandbox.harvest.add_entry(late)
    clock.now = datetime(2026, 11, 4, 0, 0, tzinfo=AKL)
    report = sync.run(Period(2026, 10))
    assert report.entries_pending["late"] == 1
    assert (report.invoices_created, report.invoices_updated) == (0, 0)

    clock.now = datetime(2026, 12, 1, 6, tzinfo=AKL)
    report = sync.run(Period(2026, 11))
    assert report.status == "succeeded", report.errors
    november = [
        inv
        for inv in _invoices_of(sandbox, "HV-5000003")
        if inv["DateString"].startswith("2026-11")
    ]
    assert len(november) == 1
    (line,) = [li for li in november[0]["LineItems"] if "(late, from" in li["Description"]]
    rate = Decimal(str(template["billable_rate"]))
    assert line["Description"] == f"{template['task']['name']} (late, from 2026-10)"
    assert Decimal(str(line["Quantity"])) == Decimal("2.5")
    assert Decimal(str(line["LineAmount"])) == (Decimal("2.5") * rate).quantize(Decimal("0.01"))
    # Acme's November invoice carries the retainer again, for November's hours (none roll
    # over: unused hours lapse by default)
    (acme_nov,) = [
        inv
        for inv in _invoices_of(sandbox, "HV-5000001")
        if inv["DateString"].startswith("2026-11")
    ]
    used_nov = _hours(sandbox, ACME, "2026-11")
    assert [
        (li["Description"], Decimal(str(li["Quantity"])), Decimal(str(li["UnitAmount"])))
        for li in acme_nov["LineItems"]
        if li["Description"].startswith("Retainer")
    ] == [
        (
            f"Retainer 2026-11: {_plain(used_nov)} of {_plain(included)} h used",
            Decimal(1),
            Decimal(1000),
        )
    ]
    # the late entry is billed once: re-running either month changes nothing
    for period in (Period(2026, 10), Period(2026, 11)):
        again = sync.run(period)
        assert (again.invoices_created, again.invoices_updated, again.entries_billed) == (0, 0, 0)


@pytest.mark.usefixtures("tokens")
def test_weekly_periods_sync_into_the_fake_xero_with_their_own_keys_and_dates(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    data = sandbox_config(sandbox, db_url)
    data["profiles"]["agency-monthly"]["billing_period"] = {
        "kind": "weekly",
        "week_start": "sunday",
    }
    config = write_config(tmp_path / "c.yaml", data)
    wrong = run_cli("sync", "--config", config, "--period", "2026-10")
    assert wrong.code == 2 and "is not a weekly period" in wrong.stderr
    assert not sandbox.xero.invoices

    first = run_cli("sync", "--config", config, "--period", "2026-W43", "--json")
    assert first.code == 0, first.stderr
    report = first.json()
    assert report["period"] == "2026-W43" and report["invoices_created"] > 0
    unmapped = set(sandbox.month.unmapped_client_ids)

    def in_week(item: dict[str, Any]) -> bool:
        return "2026-10-18" <= str(item["spent_date"]) <= "2026-10-24"

    expected = sum(  # the week's billable, mapped entries and expenses, worked out here
        1
        for e in sandbox.month.time_entries
        if in_week(e)
        and eligible(e, "2026-10")
        and e["task"]["id"] in TASKS
        and e["client"]["id"] not in unmapped
    ) + sum(
        1
        for x in sandbox.month.expenses
        if in_week(x) and eligible_expense(x, "2026-10") and x["client"]["id"] not in unmapped
    )
    assert report["entries_billed"] == expected > 0
    invoices = live_invoices(sandbox.xero.invoices)
    assert len(invoices) == report["invoices_created"]
    for inv in invoices:  # Sunday 18 – Saturday 24 October: dated the 24th, due 30 days on
        assert inv["Reference"].startswith("hb/agency-monthly/2026-W43/")
        assert inv["DateString"].startswith("2026-10-24")
        assert inv["DueDateString"].startswith("2026-11-23")
    # entries of other weeks wait for theirs
    assert report["entries_pending"]["out_of_period"] > 0

    again = run_cli("sync", "--config", config, "--period", "2026-W43", "--json").json()
    assert (again["invoices_created"], again["invoices_updated"], again["entries_billed"]) == (
        0,
        0,
        0,
    )
    following = run_cli("sync", "--config", config, "--period", "2026-W44", "--json").json()
    assert following["invoices_created"] > 0
    references = [inv["Reference"] for inv in live_invoices(sandbox.xero.invoices)]
    assert len(references) == len(set(references))
    assert (
        sum(r.startswith("hb/agency-monthly/2026-W44/") for r in references)
        == (following["invoices_created"])
    )
