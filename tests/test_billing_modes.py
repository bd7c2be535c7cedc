"""Hand-worked cases: billing periods (weekly, semi-monthly, custom; DST), closing and late
entries, retainers (under and over their hours, rollover, lapse) and fixed fees.

Each case lists its entries and agreement and the invoice lines worked out by hand, with the
arithmetic in a comment. The cases go through the real resolver, billing modes and invoice
builder; the engine cases run the real sync engine on SQLite with an injected clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from connectors.importfiles import invoice_number
from connectors.quickbooks.target import _KEY as QBO_KEY
from connectors.quickbooks.target import doc_number
from core.billing import plan_modes
from core.closing import placement
from core.config import ScheduleConfig, load_config
from core.db import create_db_engine, migrate, open_database
from core.errors import ConfigError
from core.invoices import InvoicePlan, build_lines
from core.model import EntryKind, Ref, SourceEntry
from core.periods import MONTHLY, Period, PeriodConfig, PeriodScheme
from core.sync import Profile, SyncEngine
from core.tables import InvoiceRow, LedgerRow, RetainerBalanceRow
from mapping.billing import RetainerUsage
from mapping.resolver import MappedEntry, Resolver
from mapping.rules import MappingRules
from scheduler.schedule import period_for
from tests.conftest import ROOT, example_config, write_config
from tests.helpers import run_cli
from tests.test_billing_properties import MemorySource, MemoryTarget

AKL = ZoneInfo("Pacific/Auckland")
NYC = ZoneInfo("America/New_York")
OCT, NOV = Period(2026, 10), Period(2026, 11)
PROJECTS = {"P1": "Brand", "P2": "Web"}


def entry(
    source_id: str,
    day: date,
    hours: str,
    *,
    client: str = "C1",
    project: str = "P1",
    rate: str = "100",
    source: str = "harvest",
) -> SourceEntry:
    return SourceEntry(
        source=source,
        source_id=source_id,
        kind=EntryKind.TIME,
        spent_date=day,
        quantity=Decimal(hours),
        unit_price=Decimal(rate),
        currency="NZD",
        client=Ref(client, f"Client {client}"),
        project=Ref(project, PROJECTS[project]),
        task=Ref("T1", "Design"),
        user=Ref("U1", "Ana"),
        notes="",
        billable=True,
        approved=True,
        billed_in_source=False,
        running=False,
        updated_at=datetime(2026, 11, 1, tzinfo=UTC),
    )


def oct_(day: int) -> date:
    return date(2026, 10, day)


# ---- periods ----------------------------------------------------------------------------


def scheme(**config: Any) -> PeriodScheme:
    return PeriodConfig.model_validate(config).scheme()


def test_weekly_periods_start_on_the_configured_day_in_the_organisations_timezone() -> None:
    sunday = scheme(kind="weekly", week_start="sunday")
    # NZ daylight saving starts Sunday 2026-09-27 at 02:00 (NZST +12 → NZDT +13).
    # 2026-09-26 11:30 UTC is Saturday 23:30 NZST: the week from Sunday 20 September;
    # 12:30 UTC is Sunday 00:30 NZST: the next week, named after the ISO week of its 4th day
    # (Wednesday 30 September, ISO week 40).
    before = sunday.containing(datetime(2026, 9, 26, 11, 30, tzinfo=UTC), AKL)
    after = sunday.containing(datetime(2026, 9, 26, 12, 30, tzinfo=UTC), AKL)
    assert (before.start, before.end, str(before)) == (
        date(2026, 9, 20),
        date(2026, 9, 26),
        "2026-W39",
    )
    assert (after.start, after.end, str(after)) == (
        date(2026, 9, 27),
        date(2026, 10, 3),
        "2026-W40",
    )
    assert before.next() == after and after.previous() == before
    assert sunday.parse("2026-W40") == after
    # the Monday default is the ISO week itself
    iso = scheme(kind="weekly").parse("2026-W43")
    assert (iso.start, iso.end) == (date(2026, 10, 19), date(2026, 10, 25))
    # closing a week 1 day after its end: 00:00 on Monday 28 September, which is NZDT (+13)
    closing = scheme(kind="weekly", week_start="sunday", close_after_days=1)
    week = closing.parse("2026-W39")
    assert closing.closes_at(week, AKL) == datetime(2026, 9, 27, 11, 0, tzinfo=UTC)
    assert not closing.is_closed(week, datetime(2026, 9, 27, 10, 59, tzinfo=UTC), AKL)
    assert closing.is_closed(week, datetime(2026, 9, 27, 11, 0, tzinfo=UTC), AKL)


def test_semi_monthly_halves_meet_at_the_16th_and_at_local_midnight_across_dst() -> None:
    halves = scheme(kind="semi-monthly")
    # New York leaves daylight saving on Sunday 2026-11-01 at 02:00 (EDT -4 → EST -5).
    # 03:59 UTC is 23:59 EDT on 31 October: the second half of October; 04:00 UTC is
    # midnight, 1 November: the first half of November.
    assert str(halves.containing(datetime(2026, 11, 1, 3, 59, tzinfo=UTC), NYC)) == "2026-10-H2"
    assert str(halves.containing(datetime(2026, 11, 1, 4, 0, tzinfo=UTC), NYC)) == "2026-11-H1"
    # 16 November starts at 05:00 UTC (EST)
    assert str(halves.containing(datetime(2026, 11, 16, 4, 59, tzinfo=UTC), NYC)) == "2026-11-H1"
    assert str(halves.containing(datetime(2026, 11, 16, 5, 0, tzinfo=UTC), NYC)) == "2026-11-H2"
    feb = halves.parse("2026-02-H2")
    assert (feb.start, feb.end) == (date(2026, 2, 16), date(2026, 2, 28))  # to the month's end
    assert str(feb.next()) == "2026-03-H1" and str(halves.parse("2026-01-H1").previous()) == (
        "2025-12-H2"
    )


def test_custom_periods_every_n_days_or_explicit_ranges() -> None:
    fortnights = scheme(kind="custom", every_days=14, anchor="2026-01-05")
    # 2026-10-07 is 275 days after the anchor: 19 whole fortnights (266 days) → 28 September
    p = fortnights.parse("2026-10-07")
    assert (p.start, p.end, str(p)) == (date(2026, 9, 28), date(2026, 10, 11), "2026-09-28")
    assert fortnights.find(date(2026, 1, 4)) == fortnights.parse("2025-12-22")  # before anchor
    ranges = scheme(
        kind="custom",
        ranges=[
            {"from": "2026-10-01", "until": "2026-10-20"},
            {"from": "2026-10-21", "until": "2026-11-30"},
        ],
    )
    assert str(ranges.parse("2026-11-02")) == "2026-10-21"
    assert ranges.find(date(2026, 12, 1)) is None
    with pytest.raises(ValueError, match="no custom period holds 2026-12-01"):
        ranges.parse("2026-12-01")


@pytest.mark.parametrize(
    ("config", "text", "message"),
    [
        ({}, "2026-W43", "is not a monthly period: write YYYY-MM (for example 2026-10)"),
        ({"kind": "weekly"}, "2026-10", "is not a weekly period: write YYYY-Www"),
        ({"kind": "weekly"}, "2026-W54", "is not a weekly period"),
        ({"kind": "semi-monthly"}, "2026-10-H3", "write YYYY-MM-H1 or YYYY-MM-H2"),
        ({"kind": "custom", "every_days": 7, "anchor": "2026-01-05"}, "2026-10", "a date"),
    ],
)
def test_a_period_in_the_wrong_notation_is_refused_naming_the_right_one(
    config: dict[str, Any], text: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        scheme(**config).parse(text)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"kind": "weekly", "every_days": 7}, "belong to kind: custom"),
        ({"kind": "monthly", "week_start": "sunday"}, "week_start belongs to kind: weekly"),
        ({"kind": "custom"}, "give either every_days with anchor, or ranges"),
        ({"kind": "custom", "every_days": 7}, "every_days and anchor go together"),
        (
            {
                "kind": "custom",
                "ranges": [
                    {"from": "2026-10-01", "until": "2026-10-10"},
                    {"from": "2026-10-12", "until": "2026-10-20"},
                ],
            },
            "without gaps or overlaps: one ends 2026-10-10, the next starts 2026-10-12",
        ),
    ],
)
def test_inconsistent_period_settings_are_refused(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PeriodConfig.model_validate(config)


def test_monthly_stays_what_it_was() -> None:
    assert MONTHLY.parse("2026-10") == Period(2026, 10) == Period.parse("2026-10")
    assert str(Period(2026, 10)) == "2026-10" and Period(2026, 10).end == date(2026, 10, 31)


def test_a_late_entry_is_placed_on_the_next_open_period() -> None:
    closing = scheme(close_after_days=5)
    oct_closed = datetime(2026, 11, 5, 11, 0, tzinfo=UTC)  # 6 Nov 00:00 NZDT: October closed
    oct_open = oct_closed - timedelta(seconds=1)
    spent = oct_(30)
    assert placement(closing, spent, OCT, oct_open, AKL, on_our_invoice=False).here
    waits = placement(closing, spent, OCT, oct_closed, AKL, on_our_invoice=False)
    assert (waits.here, waits.waits_late) == (False, True)
    # on October's invoice already: it stays there
    assert placement(closing, spent, OCT, oct_closed, AKL, on_our_invoice=True).here
    late = placement(closing, spent, NOV, oct_closed, AKL, on_our_invoice=False)
    assert (late.here, late.late_from) == (True, OCT)
    # once November has closed too, December is the next open period
    nov_closed = datetime(2026, 12, 6, 0, 0, tzinfo=AKL)
    assert not placement(closing, spent, NOV, nov_closed, AKL, on_our_invoice=False).here
    dec = placement(closing, spent, Period(2026, 12), nov_closed, AKL, on_our_invoice=False)
    assert dec.late_from == OCT
    # without a close day periods never close
    assert not placement(MONTHLY, spent, NOV, nov_closed, AKL, on_our_invoice=False).here


# ---- billing modes ----------------------------------------------------------------------

BASE: dict[str, Any] = {
    "clients": {"C1": {"contact_number": "C-1"}},
    "tasks": {"T1": {"item_code": "DESIGN"}},
}
RETAINER: dict[str, Any] = {
    "client": "C1",
    "currency": "NZD",
    "amount": "2000",
    "hours": "20",
    "overage_rate": "150",
    "item_code": "RETAINER",
}
FIXED_FEE: dict[str, Any] = {
    "client": "C1",
    "currency": "NZD",
    "item_code": "FIXED",
    "milestones": [
        {"date": "2026-10-20", "amount": "5000", "description": "Milestone 1: design signed off"},
        {"date": "2026-11-20", "amount": "3000", "description": "Milestone 2: launch"},
    ],
}

# (description, quantity, unit price, amount)
Line = tuple[str, str, str, str]


@dataclass
class Case:
    name: str
    entries: list[SourceEntry]
    rules: dict[str, Any]
    lines: list[Line]
    period: Period = OCT
    rolled_in: str = "0"
    prior: RetainerUsage | None = None
    seq: int = 1
    usage: tuple[str, str, str] | None = None  # (used, overage, rolled out)
    covered: int = field(default=0)


CASES = [
    Case(
        "retainer under its hours: the fixed amount, nothing more",
        [entry("1", oct_(5), "5"), entry("2", oct_(6), "7.5")],
        {"retainers": [RETAINER]},
        [("Retainer 2026-10: 12.5 of 20 h used", "1", "2000", "2000.00")],  # 1 × 2000
        usage=("12.5", "0", "0"),  # unused 7.5 h lapse by default
        covered=2,
    ),
    Case(
        "retainer over its hours: overage at its rate",
        [entry("1", oct_(5), "15"), entry("2", oct_(6), "8.5")],
        {"retainers": [RETAINER]},
        [
            ("Retainer 2026-10: 23.5 of 20 h used", "1", "2000", "2000.00"),
            ("Overage 2026-10: 3.5 h beyond 20 h", "3.5", "150", "525.00"),  # 23.5-20 = 3.5 × 150
        ],
        usage=("23.5", "3.5", "0"),
        covered=2,
    ),
    Case(
        "retainer line even with no hours",
        [],
        {"retainers": [RETAINER]},
        [("Retainer 2026-10: 0 of 20 h used", "1", "2000", "2000.00")],
        usage=("0", "0", "0"),
    ),
    Case(
        "unused hours roll over, capped",
        [entry("1", oct_(5), "12")],
        {"retainers": [{**RETAINER, "unused": "roll_over", "rollover_cap_hours": "5"}]},
        [("Retainer 2026-10: 12 of 20 h used", "1", "2000", "2000.00")],
        usage=("12", "0", "5"),  # 8 h unused, capped at 5
        covered=1,
    ),
    Case(
        "rolled-over hours are available the next period",
        [entry("1", date(2026, 11, 3), "24")],
        {"retainers": [{**RETAINER, "unused": "roll_over", "rollover_cap_hours": "5"}]},
        [("Retainer 2026-11: 24 of 25 h used", "1", "2000", "2000.00")],  # 20 + 5 in
        period=NOV,
        rolled_in="5",
        usage=("24", "0", "1"),  # 25 - 24 = 1 h rolls on
        covered=1,
    ),
    Case(
        "overage only beyond the rolled-over hours too",
        [entry("1", date(2026, 11, 3), "27")],
        {"retainers": [{**RETAINER, "unused": "roll_over"}]},
        [
            ("Retainer 2026-11: 27 of 25 h used", "1", "2000", "2000.00"),
            ("Overage 2026-11: 2 h beyond 25 h", "2", "150", "300.00"),  # (27 - 25) × 150
        ],
        period=NOV,
        rolled_in="5",
        usage=("27", "2", "0"),
        covered=1,
    ),
    Case(
        "lapse: unused hours are gone",
        [entry("1", oct_(5), "12")],
        {"retainers": [{**RETAINER, "unused": "lapse"}]},
        [("Retainer 2026-10: 12 of 20 h used", "1", "2000", "2000.00")],
        usage=("12", "0", "0"),
        covered=1,
    ),
    Case(
        "hours count as rounded: 6 minutes up to 15, twice",
        [entry("1", oct_(5), "0.1"), entry("2", oct_(6), "0.1")],
        {"retainers": [RETAINER], "rounding": {"increment_minutes": 15}},
        [("Retainer 2026-10: 0.5 of 20 h used", "1", "2000", "2000.00")],  # 15 + 15 min
        usage=("0.5", "0", "0"),
        covered=2,
    ),
    Case(
        "a project's retainer leaves the client's other projects hourly",
        [entry("1", oct_(5), "10"), entry("2", oct_(6), "2", project="P2")],
        {"retainers": [{**RETAINER, "project": "P1"}]},
        [
            ("Retainer 2026-10: 10 of 20 h used", "1", "2000", "2000.00"),
            ("Design", "2", "100", "200.00"),  # P2 by the hour: 2 × 100
        ],
        usage=("10", "0", "0"),
        covered=1,
    ),
    Case(
        "a later invoice of an approved period adds only the further overage",
        [entry("9", oct_(30), "4")],
        {"retainers": [RETAINER]},
        [
            ("Retainer 2026-10: 22 of 20 h used", "4", "0", "0.00"),  # shown, not billed again
            ("Overage 2026-10: 2 h beyond 20 h", "2", "150", "300.00"),  # 18 + 4 - 20 = 2
        ],
        seq=2,
        prior=RetainerUsage("C1", 1, Decimal(20), Decimal(0), Decimal(18), Decimal(0), Decimal(0)),
        usage=("22", "2", "0"),
        covered=1,
    ),
    Case(
        "a retainer from a later date leaves earlier periods hourly",
        [entry("1", oct_(5), "12")],
        {"retainers": [{**RETAINER, "from": "2026-11-01"}]},
        [("Design", "12", "100", "1200.00")],  # 12 × 100, by the hour
    ),
    Case(
        "a retainer applies to a period its dates overlap",
        [entry("1", oct_(5), "12")],
        {"retainers": [{**RETAINER, "until": "2026-10-01"}]},
        [("Retainer 2026-10: 12 of 20 h used", "1", "2000", "2000.00")],
        usage=("12", "0", "0"),
        covered=1,
    ),
    Case(
        "fixed fee: the period's milestone, and the hours shown at no charge",
        [entry("1", oct_(5), "6"), entry("2", oct_(22), "4")],
        {"fixed_fees": [FIXED_FEE]},
        [
            ("Milestone 1: design signed off", "1", "5000", "5000.00"),
            ("Hours tracked (fixed fee, not billed) 2026-10", "10", "0", "0.00"),  # 6 + 4 h
        ],
        covered=2,
    ),
    Case(
        "fixed fee: a period without a milestone shows its hours only",
        [entry("1", date(2026, 12, 2), "3")],
        {"fixed_fees": [FIXED_FEE]},
        [("Hours tracked (fixed fee, not billed) 2026-12", "3", "0", "0.00")],
        period=Period(2026, 12),
        covered=1,
    ),
]


def bill(case: Case) -> tuple[list[tuple[str, Decimal, Decimal, Decimal]], Any]:
    rules = MappingRules.model_validate({**BASE, **case.rules})
    resolver = Resolver(rules)
    mapped = [resolver.resolve(e) for e in case.entries]
    assert all(isinstance(m, MappedEntry) for m in mapped)
    members = [m for m in mapped if isinstance(m, MappedEntry)]
    modes = plan_modes(
        members,
        [a for _w, a in rules.agreements() if a.active(case.period.start, case.period.end)],
        rules,
        case.period,
        case.seq,
        rolled_in=lambda _key: Decimal(case.rolled_in),
        prior=lambda _key: case.prior,
    )
    lines = [*modes.lines, *build_lines(modes.hourly)]
    for line in lines:
        assert line.amount == (line.quantity * line.unit_price).quantize(Decimal("0.01"))
    got = [(line.description, line.quantity, line.unit_price, line.amount) for line in lines]
    return got, modes


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hand_worked_billing_mode_case(case: Case) -> None:
    got, modes = bill(case)
    want = [(d, Decimal(q), Decimal(p), Decimal(a)) for d, q, p, a in case.lines]
    assert got == want
    assert len(modes.covered) == case.covered
    assert len(modes.hourly) + len(modes.covered) == len(case.entries)  # none lost
    if case.usage is not None:
        (usage,) = modes.retainers
        assert (usage.used, usage.overage, usage.rolled_out) == tuple(
            Decimal(v) for v in case.usage
        )


def test_a_late_entry_gets_its_own_line_marked_with_its_period() -> None:
    rules = MappingRules.model_validate(BASE)
    resolver = Resolver(rules)
    own = resolver.resolve(entry("1", date(2026, 11, 3), "2"))
    late = resolver.resolve(entry("2", oct_(30), "1.5"))
    assert isinstance(own, MappedEntry) and isinstance(late, MappedEntry)
    lines = build_lines([own, replace(late, late_from="2026-10")], max_description=30)
    assert [(x.description, x.quantity, x.amount) for x in lines] == [
        # lines with the same label go by first spent date: the late one's is earlier
        ("Design (late, from 2026-10)", Decimal("1.5"), Decimal("150.00")),  # 1.5 × 100
        ("Design", Decimal(2), Decimal("200.00")),  # 2 × 100
    ]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"retainers": [{**RETAINER, "client": "C9"}]}, "client 'C9' is not a key of clients"),
        (
            {"retainers": [{k: v for k, v in RETAINER.items() if k != "currency"}]},
            "give currency here or on clients.C1",
        ),
        ({"retainers": [RETAINER], "fixed_fees": [FIXED_FEE]}, "both cover C1"),
        ({"retainers": [{**RETAINER, "description": "{client}"}]}, "use only {period}"),
        (
            {"retainers": [{**RETAINER, "rollover_cap_hours": "5"}]},
            "rollover_cap_hours needs unused: roll_over",
        ),
        (
            {"retainers": [{**RETAINER, "from": "2026-11-01", "until": "2026-10-31"}]},
            "until 2026-10-31 is before from 2026-11-01",
        ),
    ],
)
def test_bad_agreements_are_refused(rules: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        MappingRules.model_validate({**BASE, **rules})


# ---- through the sync engine, with a clock ----------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_database(f"sqlite:///{tmp_path / 'hb.db'}")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _profile(
    source: MemorySource, target: MemoryTarget, rules: dict[str, Any], **period: Any
) -> Profile:
    return Profile(
        name="p",
        sources=(source,),
        target=target,
        rules=MappingRules.model_validate(rules),
        reference_prefix="hb",
        due_days=30,
        periods=PeriodConfig.model_validate(period).scheme(),
        timezone=AKL,
    )


def _lines(target: MemoryTarget, period: str) -> list[tuple[str, Decimal, Decimal]]:
    return sorted(
        (line.description, line.quantity, line.amount)
        for plan, remote in target.stored.values()
        if remote.status == "DRAFT" and plan.slot.period.label == period
        for line in plan.lines
    )


def _billed(target: MemoryTarget) -> list[str]:
    return sorted(
        str(m.entry.key)
        for plan, remote in target.stored.values()
        if remote.status == "DRAFT"
        for m in plan.entries
    )


RATES = {"clients": {"C1": {"contact_number": "N-C1"}}, "tasks": {"T1": {"item_code": "DESIGN"}}}


def test_a_late_entry_after_the_close_goes_on_the_next_invoice_marked_and_once(
    engine: Engine,
) -> None:
    source = MemorySource("src", [entry("1", oct_(30), "2", source="src")])
    target = MemoryTarget()
    clock = Clock(datetime(2026, 11, 2, tzinfo=AKL))
    sync = SyncEngine(engine, _profile(source, target, RATES, close_after_days=5), clock=clock)
    assert sync.run(OCT).invoices_created == 1

    source.entries.append(entry("2", oct_(31), "1.5", source="src"))  # approved after the close
    clock.now = datetime(2026, 11, 6, tzinfo=AKL)  # October closed at 00:00 on 6 November
    report = sync.run(OCT)
    assert report.entries_pending["late"] == 1
    assert (report.invoices_created, report.invoices_updated, report.entries_billed) == (0, 0, 0)
    assert _lines(target, "2026-10") == [("Design", Decimal(2), Decimal("200.00"))]

    source.entries.append(entry("3", date(2026, 11, 3), "1", source="src"))
    clock.now = datetime(2026, 12, 1, 6, tzinfo=AKL)  # November still open
    report = sync.run(NOV)
    assert report.entries_billed == 2
    assert _lines(target, "2026-11") == [
        ("Design", Decimal(1), Decimal("100.00")),  # 1 × 100
        ("Design (late, from 2026-10)", Decimal("1.5"), Decimal("150.00")),  # 1.5 × 100
    ]
    # re-running either period changes nothing: each entry is on exactly one invoice
    for period in (OCT, NOV, OCT):
        again = sync.run(period)
        assert (again.invoices_created, again.invoices_updated, again.entries_billed) == (0, 0, 0)
    assert _billed(target) == ["src:1", "src:2", "src:3"]


def test_retainer_rollover_is_stored_with_its_invoice_and_never_counted_twice(
    engine: Engine,
) -> None:
    rules = {
        **RATES,
        "retainers": [
            {**RETAINER, "unused": "roll_over", "rollover_cap_hours": "10", "item_code": "DEV"}
        ],
    }
    source = MemorySource("src", [entry("1", oct_(5), "12", source="src")])
    target = MemoryTarget()
    clock = Clock(datetime(2026, 11, 2, tzinfo=AKL))
    sync = SyncEngine(engine, _profile(source, target, rules), clock=clock)
    for _ in range(2):  # the same period twice: recomputed, not added to
        sync.run(OCT)
    assert _lines(target, "2026-10") == [
        ("Retainer 2026-10: 12 of 20 h used", Decimal(1), Decimal("2000.00"))
    ]
    source.entries.append(entry("2", date(2026, 11, 9), "29", source="src"))
    for _ in range(2):
        sync.run(NOV)
    # 20 included + 8 rolled in (20 - 12) = 28 available; 29 used: 1 h overage × 150
    assert _lines(target, "2026-11") == [
        ("Overage 2026-11: 1 h beyond 28 h", Decimal(1), Decimal("150.00")),
        ("Retainer 2026-11: 29 of 28 h used", Decimal(1), Decimal("2000.00")),
    ]
    sync.run(Period(2026, 12))  # no hours at all: the retainer line still, 20 h available
    assert _lines(target, "2026-12") == [
        ("Retainer 2026-12: 0 of 20 h used", Decimal(1), Decimal("2000.00"))
    ]
    with Session(engine) as session:
        rows = session.exec(select(RetainerBalanceRow).order_by(RetainerBalanceRow.period)).all()
    got = [(r.period, r.hours_in, r.hours_used, r.hours_overage, r.hours_out) for r in rows]
    want = [
        ("2026-10", "0", "12", "0", "8"),
        ("2026-11", "8", "29", "1", "0"),
        ("2026-12", "0", "0", "0", "10"),  # 20 unused, capped at 10
    ]
    assert got == [(p, *(Decimal(v) for v in values)) for p, *values in want]
    plans: list[InvoicePlan] = [p for p, _r in target.stored.values()]
    assert {r.invoice_key for r in rows} == {p.key for p in plans}
    assert _billed(target) == ["src:1", "src:2"]


def test_a_retainer_the_target_cannot_take_holds_its_entries_as_unmapped(engine: Engine) -> None:
    """Its item is missing in the target: its entries wait, never billed by the hour."""
    rules = {**RATES, "retainers": [RETAINER]}  # item RETAINER: not in the target
    source = MemorySource("src", [entry("1", oct_(5), "3", source="src")])
    target = MemoryTarget()
    sync = SyncEngine(engine, _profile(source, target, rules), clock=Clock(datetime.now(UTC)))
    report = sync.run(OCT)
    assert report.invoices_created == 0 and _billed(target) == []
    assert report.entries_pending["unmapped"] == 1
    assert [u.what for u in report.unmapped] == [
        "retainers[0]: item RETAINER not found in the target"
    ]


# ---- keys, numbers and the command line -------------------------------------------------


@pytest.mark.parametrize(
    ("label", "number"),
    [
        ("2026-10", "HB2610-0bda122da2"),  # monthly: as it always was
        ("2026-W43", "HB26W43-0bda122da2"),
        ("2026-10-H2", "HB2610H2-0bda122da2"),
        ("2026-10-05", "HB261005-0bda122da2"),
    ],
)
def test_every_period_kind_gives_keys_the_targets_read_back(label: str, number: str) -> None:
    key = f"hb/agency-monthly/{label}/0bda122da2c4"
    assert invoice_number(key) == doc_number(key) == number
    assert len(number) <= 21  # QuickBooks' DocNumber limit
    assert QBO_KEY.search(f"hourbridge {key} do not edit") is not None


def _weekly_config(tmp_path: Path) -> Path:
    data = example_config()
    data["database"]["url"] = f"sqlite:///{tmp_path / 'hb.db'}"
    data["profiles"]["agency-monthly"]["billing_period"] = {
        "kind": "weekly",
        "week_start": "sunday",
    }
    return write_config(tmp_path / "c.yaml", data)


def test_the_period_option_reads_the_profiles_notation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARVEST_ACCESS_TOKEN", "x")
    monkeypatch.setenv("XERO_ACCESS_TOKEN", "y")
    config = _weekly_config(tmp_path)
    wrong = run_cli("invoices", "list", "--config", config, "--period", "2026-10", "--json")
    assert wrong.code == 2
    assert "--period: period '2026-10' is not a weekly period: write YYYY-Www" in wrong.stderr
    right = run_cli("invoices", "list", "--config", config, "--period", "2026-W43", "--json")
    assert right.code == 0, right.stderr
    assert right.json_list() == []


def test_the_schedule_syncs_the_previous_or_current_period_of_the_profiles_kind() -> None:
    weekly = scheme(kind="weekly", week_start="sunday")
    monday = datetime(2026, 10, 19, 6, tzinfo=AKL)  # in the week from Sunday 18 October
    previous = ScheduleConfig(cron="0 6 * * 1")
    current = ScheduleConfig(cron="0 6 * * 1", period="current")
    assert str(period_for(previous, monday, AKL, weekly)) == "2026-W42"  # 11–17 October
    assert str(period_for(current, monday, AKL, weekly)) == "2026-W43"
    assert period_for(previous, monday, AKL) == Period(2026, 9)  # monthly by default


def test_a_long_profile_name_that_would_overflow_the_key_is_refused(tmp_path: Path) -> None:
    data = example_config()
    profile = data["profiles"].pop("agency-monthly")
    profile["reference_prefix"] = "ABCDEFGH"
    profile["billing_period"] = {"kind": "semi-monthly"}
    data["profiles"]["a" * 32] = profile
    path = write_config(tmp_path / "c.yaml", data)
    with pytest.raises(ConfigError, match="too long together for semi-monthly invoice keys"):
        load_config(path, environ={"HARVEST_ACCESS_TOKEN": "x", "XERO_ACCESS_TOKEN": "y"})


def _commented_block(lines: list[str], prefix: str, first: str) -> str:
    """The YAML of a commented example: from ``first`` while lines are keys or indented."""
    start = lines.index(prefix + first)
    block = []
    for line in lines[start:]:
        content = line[len(prefix) :]
        if not line.startswith(prefix) or not re.match(r"^([a-z_]+:| )", content):
            break
        block.append(content)
    return "\n".join(block)


def test_the_commented_period_and_billing_mode_examples_in_the_example_config_are_valid() -> None:
    lines = (ROOT / "config.example.yaml").read_text(encoding="utf-8").splitlines()
    period = yaml.safe_load(_commented_block(lines, "    # ", "billing_period:"))
    weekly = PeriodConfig.model_validate(period["billing_period"])
    assert (weekly.kind, weekly.week_start, weekly.close_after_days) == ("weekly", "sunday", 3)
    customs = [
        PeriodConfig.model_validate(yaml.safe_load("{" + line.split("#   ", 1)[1] + "}"))
        for line in lines
        if line.startswith("    #   kind: custom")
    ]
    assert [c.kind for c in customs] == ["custom", "custom"]
    assert customs[0].every_days == 14 and len(customs[1].ranges) == 2

    modes = yaml.safe_load(_commented_block(lines, "      # ", "retainers:"))
    assert set(modes) == {"retainers", "fixed_fees"}
    mapping = example_config()["profiles"]["agency-monthly"]["mapping"]
    rules = MappingRules.model_validate({**mapping, **modes})
    (retainer,) = rules.retainers
    assert (retainer.unused, retainer.rollover_cap_hours) == ("roll_over", Decimal(10))
    assert retainer.from_ == date(2026, 10, 1)
    (fee,) = rules.fixed_fees
    assert [m.amount for m in fee.milestones] == [Decimal(4000), Decimal(6000)]


def test_upgrading_keeps_invoices_and_the_ledger_rows_that_refer_to_them(db_url: str) -> None:
    """0009 widens invoices.period; on SQLite that rebuilds a table the ledger refers to."""
    engine = create_db_engine(db_url)
    migrate(engine, "0004")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO invoices (key, profile, target, contact, contact_name, currency, "
                "period, seq, status, subtotal, line_count, created_at, updated_at) VALUES "
                "('k1', 'p', 'xero', 'contact_number=A', 'A', 'NZD', '2026-10', 1, 'draft', "
                "'10', 1, :now, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO ledger (source, source_id, invoice_key, state, entry_hash, "
                "quantity, unit_price, updated_at) VALUES "
                "('h', '1', 'k1', 'confirmed', 'x', '1', '10', :now)"
            ),
            {"now": now},
        )
    engine.dispose()
    reopened = open_database(db_url)
    with Session(reopened) as session:
        row = session.get(InvoiceRow, "k1")
        assert row is not None and row.period == "2026-10"
        row.period = "2026-10-H2"  # 10 characters now fit, on PostgreSQL too
        session.add(row)
        session.commit()
        ledger_row = session.get(LedgerRow, ("h", "1"))
        assert ledger_row is not None and ledger_row.invoice_key == "k1"
    with reopened.connect() as conn, pytest.raises(IntegrityError):
        conn.execute(  # foreign keys are still enforced after the upgrade
            text(
                "INSERT INTO ledger (source, source_id, invoice_key, state, entry_hash, "
                "quantity, unit_price, updated_at) VALUES "
                "('h', '2', 'no-such-invoice', 'confirmed', 'x', '1', '10', :now)"
            ),
            {"now": now},
        )


def test_an_entry_in_another_currency_than_its_agreement_waits(engine: Engine) -> None:
    """Never billed by the hour instead of under its retainer."""
    rules = {**RATES, "retainers": [{**RETAINER, "item_code": "DEV", "currency": "USD"}]}
    source = MemorySource("src", [entry("1", oct_(5), "3", source="src")])  # NZD
    target = MemoryTarget()
    sync = SyncEngine(engine, _profile(source, target, rules), clock=Clock(datetime.now(UTC)))
    report = sync.run(OCT)
    assert "src:1" not in _billed(target)
    assert [u.what for u in report.unmapped] == [
        "agreement C1 bills in USD but the entry is in NZD"
    ]


def test_a_retainer_that_has_ended_puts_nothing_on_later_invoices(engine: Engine) -> None:
    rules = {**RATES, "retainers": [{**RETAINER, "item_code": "DEV", "until": "2026-10-31"}]}
    source = MemorySource("src", [entry("1", date(2026, 11, 3), "2", source="src")])
    target = MemoryTarget()
    sync = SyncEngine(engine, _profile(source, target, rules), clock=Clock(datetime.now(UTC)))
    assert sync.run(OCT).invoices_created == 1  # October: the retainer line, no hours
    assert _lines(target, "2026-10") == [
        ("Retainer 2026-10: 0 of 20 h used", Decimal(1), Decimal("2000.00"))
    ]
    sync.run(NOV)  # November: by the hour, no retainer line
    assert _lines(target, "2026-11") == [("Design", Decimal(2), Decimal("200.00"))]
