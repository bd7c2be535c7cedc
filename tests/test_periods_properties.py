"""Property test (hypothesis): with any period kind and close day, entries turning up at any
time, and syncs of the previous or current period at any times, every eligible entry ends up
billed exactly once; a late one is marked with its own period, and only a late one.

Runs the real sync engine against the in-memory tracker and target of
test_billing_properties, with an injected clock, on SQLite.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from core.db import open_database
from core.model import EntryKind, Ref, SourceEntry
from core.periods import PeriodConfig
from core.sync import Profile, SyncEngine
from mapping.rules import MappingRules
from tests.test_billing_properties import MemorySource, MemoryTarget

AKL = ZoneInfo("Pacific/Auckland")
FIRST = date(2026, 10, 1)
RULES = MappingRules.model_validate(
    {
        "clients": {"C1": {"contact_number": "N-C1"}, "C2": {"contact_number": "N-C2"}},
        "tasks": {"T1": {"item_code": "DESIGN"}},
    }
)
_runs = itertools.count()

KINDS: list[dict[str, Any]] = [
    {"kind": "monthly"},
    {"kind": "weekly", "week_start": "sunday"},
    {"kind": "weekly"},
    {"kind": "semi-monthly"},
    {"kind": "custom", "every_days": 10, "anchor": "2026-09-28"},
]
PERIODS = st.sampled_from(KINDS)


@st.composite
def histories(draw: st.DrawFn) -> dict[str, Any]:
    period = dict(draw(PERIODS))
    period["close_after_days"] = draw(st.integers(min_value=0, max_value=6))
    gaps = draw(st.lists(st.integers(min_value=1, max_value=9), min_size=3, max_size=12))
    runs = []
    moment = datetime.combine(date(2026, 10, 3), time(6), tzinfo=AKL)
    for gap in gaps:
        moment += timedelta(days=gap, hours=draw(st.integers(min_value=0, max_value=23)))
        runs.append((moment, draw(st.sampled_from(["previous", "current"]))))
    entries = []
    for i in range(draw(st.integers(min_value=1, max_value=20))):
        spent = FIRST + timedelta(days=draw(st.integers(min_value=0, max_value=60)))
        # the run from which the tracker shows it (approved); len(runs): only at the end
        shows = draw(st.integers(min_value=0, max_value=len(runs)))
        client = draw(st.sampled_from(["C1", "C2"]))
        hours = Decimal(draw(st.integers(min_value=1, max_value=40))) / 4
        entries.append((str(i), spent, shows, client, hours))
    return {"period": period, "runs": runs, "entries": entries}


def _entry(source: str, source_id: str, spent: date, client: str, hours: Decimal) -> SourceEntry:
    return SourceEntry(
        source=source,
        source_id=source_id,
        kind=EntryKind.TIME,
        spent_date=spent,
        quantity=hours,
        unit_price=Decimal(100),
        currency="NZD",
        client=Ref(client, client),
        project=Ref("P1", "Brand"),
        task=Ref("T1", "Design"),
        user=Ref("U1", "Ana"),
        notes="",
        billable=True,
        approved=True,
        billed_in_source=False,
        running=False,
        updated_at=datetime(2026, 10, 1, tzinfo=AKL),
    )


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path: Path = tmp_path_factory.mktemp("periods") / "hb.db"
    return open_database(f"sqlite:///{path}")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories())
def test_every_eligible_entry_is_billed_exactly_once_across_periods_with_a_close_day(
    engine: Engine, history: dict[str, Any]
) -> None:
    n = next(_runs)
    source = MemorySource(f"s{n}", [])
    target = MemoryTarget()
    scheme = PeriodConfig.model_validate(history["period"]).scheme()
    profile = Profile(
        name=f"q{n}",
        sources=(source,),
        target=target,
        rules=RULES,
        reference_prefix="hb",
        due_days=30,
        periods=scheme,
        timezone=AKL,
    )
    now = [history["runs"][0][0]]
    sync = SyncEngine(engine, profile, clock=lambda: now[0])

    def show(upto: int, moment: datetime) -> None:
        today = moment.astimezone(AKL).date()
        source.entries = [
            _entry(source.name, sid, spent, client, hours)
            for sid, spent, shows, client, hours in history["entries"]
            if shows <= upto and spent <= today
        ]

    for i, (moment, which) in enumerate(history["runs"]):
        now[0] = moment
        show(i, moment)
        current = scheme.containing(moment, AKL)
        report = sync.run(current if which == "current" else current.previous())
        assert report.status == "succeeded", report.errors

    # the end: everything has turned up; every period up to now is synced once, in order
    final = datetime(2027, 1, 20, 6, tzinfo=AKL)
    now[0] = final
    show(len(history["runs"]), final)
    period = scheme.for_date(FIRST)
    last = scheme.containing(final, AKL)
    while period <= last:
        assert sync.run(period).status == "succeeded"
        period = period.next()

    drafts = [(plan, r) for plan, r in target.stored.values() if r.status == "DRAFT"]
    billed = Counter(str(m.entry.key) for plan, _r in drafts for m in plan.entries)
    assert set(billed) == {f"{source.name}:{e[0]}" for e in history["entries"]}
    assert all(count == 1 for count in billed.values())
    homes = {
        f"{source.name}:{sid}": scheme.for_date(spent) for sid, spent, *_ in history["entries"]
    }
    for plan, _r in drafts:
        on_lines = [k for line in plan.lines for k in line.entry_keys]
        assert sorted(on_lines) == sorted(str(m.entry.key) for m in plan.entries)
        for line in plan.lines:
            for key in line.entry_keys:
                home = homes[key]
                if home == plan.slot.period:
                    assert "(late, from" not in line.description
                else:  # late: billed after its own period, marked with it
                    assert home < plan.slot.period
                    assert line.description.endswith(f"(late, from {home})")
