"""Property tests (hypothesis): random entries and rule sets through the real sync engine.

For any entries and rules: every eligible entry is billed exactly once across the period's
invoices; no ineligible one (unapproved, non-billable, running, already billed, out of
period, unmapped) is billed; each invoice's total is the sum of its lines; each line's amount
is its quantity × unit price rounded half up to cents, and its quantity is a whole number of
rounding increments when rounding applies. The engine runs against an in-memory tracker and
target (the sandbox fakes are covered by the end-to-end tests), on SQLite.
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from connectors.base import Directory, PullRequest, PushResult, RemoteContact, RemoteInvoice
from core.db import open_database
from core.invoices import InvoicePlan
from core.model import EntryKind, Ref, SourceEntry
from core.periods import Period
from core.sync import Profile, SyncEngine
from mapping.resolver import ContactKind, ContactRef
from mapping.rounding import hours_of
from mapping.rules import MappingRules, Rounding

ZERO = Decimal(0)

PERIOD = Period(2026, 10)
CLIENTS = ("C1", "C2", "C3", "C9")  # C9 is never mapped
PROJECTS = ("P1", "P2", "P3")
TASKS = ("T1", "T2")
USERS = ("U1", "U2", "U3")
CONTACTS = {c: str(uuid.uuid5(uuid.NAMESPACE_URL, c)) for c in CLIENTS}
_runs = itertools.count()


class MemorySource:
    reports_deletions = True

    def __init__(self, name: str, entries: Sequence[SourceEntry]) -> None:
        self.name = name
        self.entries = list(entries)

    def pull(self, request: PullRequest) -> Iterator[SourceEntry]:
        yield from self.entries


class MemoryTarget:
    """Stores plans as DRAFT invoices and computes their totals line by line, as Xero does."""

    name = "memory"

    def __init__(self) -> None:
        self.stored: dict[str, tuple[InvoicePlan, RemoteInvoice]] = {}
        self.writes = 0

    def load_directory(self) -> Directory:
        contacts: dict[ContactRef, RemoteContact] = {}
        for client, contact_id in CONTACTS.items():
            remote = RemoteContact(contact_id, f"Client {client}", f"N-{client}", "NZD")
            contacts[ContactRef(ContactKind.NUMBER, f"N-{client}")] = remote
            contacts[ContactRef(ContactKind.ID, contact_id)] = remote
        return Directory(
            contacts=contacts, item_codes=frozenset({"DESIGN", "DEV"}), max_description=4000
        )

    def fingerprint(self, plan: InvoicePlan) -> str:
        return plan.content_hash

    def find_invoices(self, reference_prefix: str, period: Period) -> dict[str, RemoteInvoice]:
        return {k: r for k, (_p, r) in self.stored.items() if k.startswith(reference_prefix)}

    def push(self, plans: Sequence[tuple[InvoicePlan, str | None]]) -> Iterator[PushResult]:
        for plan, remote_id in plans:
            self.writes += 1
            subtotal = sum(
                (
                    (line.quantity * line.unit_price).quantize(
                        Decimal("0.01"), rounding=ROUND_HALF_UP
                    )
                    for line in plan.lines
                ),
                Decimal("0.00"),
            )
            remote = RemoteInvoice(
                invoice_id=remote_id or str(uuid.uuid4()),
                number=None,
                reference=plan.key,
                status="DRAFT" if plan.lines else "DELETED",
                content_hash=plan.content_hash,
                subtotal=subtotal,
                total_tax=Decimal("0.00"),
                total=subtotal,
            )
            self.stored[plan.key] = (plan, remote)
            yield PushResult(plan.key, True, remote)


# ---- strategies -------------------------------------------------------------------------

DAYS = st.dates(min_value=date(2026, 9, 25), max_value=date(2026, 11, 5))


@st.composite
def entries(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=1, max_value=25))
    out = []
    for i in range(count):
        out.append(
            {
                "id": str(1000 + i),
                "day": draw(DAYS),
                "hundredths": draw(st.integers(min_value=1, max_value=800)),
                "rate": draw(st.sampled_from(["0", "95", "120.5", "150", "99.99"])),
                "client": draw(st.sampled_from(CLIENTS)),
                "project": draw(st.sampled_from(PROJECTS)),
                "task": draw(st.sampled_from(TASKS)),
                "user": draw(st.sampled_from(USERS)),
                "notes": draw(st.sampled_from(["", "call", "review ✓", "x" * 50])),
                "billable": draw(st.booleans()),
                "approved": draw(st.booleans()),
                "billed": draw(st.integers(0, 5)) == 0,
                "running": draw(st.integers(0, 10)) == 0,
            }
        )
    return out


@st.composite
def rule_sets(draw: st.DrawFn) -> dict[str, Any]:
    rates: list[dict[str, Any]] = []
    levels = [
        ("project", "task", "user"),
        ("project", "user"),
        ("project", "task"),
        ("project",),
        ("client", "user"),
        ("client",),
        ("user",),
    ]
    pools = {"project": PROJECTS, "task": TASKS, "user": USERS, "client": CLIENTS}
    keys_used: set[tuple[str, ...]] = set()
    for _ in range(draw(st.integers(0, 6))):
        level = draw(st.sampled_from(levels))
        ids = tuple(draw(st.sampled_from(pools[name])) for name in level)
        if (*level, *ids) in keys_used:
            continue
        keys_used.add((*level, *ids))
        base = dict(zip(level, ids, strict=True))
        if draw(st.booleans()):  # a rate change: until d, then from d + 1
            change = draw(st.dates(min_value=date(2026, 10, 1), max_value=date(2026, 10, 31)))
            rates.append({**base, "rate": "110", "until": change.isoformat()})
            after = (change + timedelta(days=1)).isoformat()
            rates.append({**base, "rate": "135.25", "from": after})
        else:
            rates.append({**base, "rate": draw(st.sampled_from(["80", "142.5", "200"]))})
    trust = draw(st.booleans())
    if not trust or draw(st.booleans()):
        rates.append({"rate": "100"})  # a profile default, so every entry has a price
    rounding = draw(
        st.none()
        | st.builds(
            lambda inc, mode, stage, minimum: {
                "increment_minutes": inc,
                "mode": mode,
                "stage": stage,
                **({"minimum_minutes": inc * minimum} if minimum else {}),
            },
            st.sampled_from([1, 5, 6, 7, 15, 30]),
            st.sampled_from(["up", "nearest", "down", "none"]),
            st.sampled_from(["entry", "line", "invoice"]),
            st.sampled_from([0, 0, 1, 2]),
        )
    )
    return {
        "clients": {c: {"contact_number": f"N-{c}"} for c in CLIENTS if c != "C9"},
        "tasks": {"T1": {"item_code": "DESIGN"}, "T2": {"item_code": "DEV"}},
        "rates": rates,
        "trust_tracker_rate": trust,
        "rounding": rounding,
        "grouping": draw(
            st.sampled_from(["entry", "task", "user", "project", "task+user", "date"])
        ),
    }


def to_entry(source: str, raw: dict[str, Any]) -> SourceEntry:
    return SourceEntry(
        source=source,
        source_id=raw["id"],
        kind=EntryKind.TIME,
        spent_date=raw["day"],
        quantity=Decimal(raw["hundredths"]) / 100,
        unit_price=Decimal(raw["rate"]),
        currency="NZD",
        client=Ref(raw["client"], f"Client {raw['client']}"),
        project=Ref(raw["project"], f"Project {raw['project']}"),
        task=Ref(raw["task"], f"Task {raw['task']}"),
        user=Ref(raw["user"], f"User {raw['user']}"),
        notes=raw["notes"],
        billable=raw["billable"],
        approved=raw["approved"],
        billed_in_source=raw["billed"],
        running=raw["running"],
        updated_at=datetime(2026, 11, 6, tzinfo=UTC),
    )


def eligible(raw: dict[str, Any]) -> bool:
    """The billing rule restated: approved, billable, not billed, not running, in the period,
    and mapped (C9 has no client rule; every entry has a price by construction)."""
    return (
        raw["approved"]
        and raw["billable"]
        and not raw["billed"]
        and not raw["running"]
        and PERIOD.start <= raw["day"] <= PERIOD.end
        and raw["client"] != "C9"
    )


MODES = {"up": ROUND_UP, "down": ROUND_DOWN, "nearest": ROUND_HALF_UP}
QUANTUM = Decimal("0.003")  # half of 0.0001 h, in minutes: what 4-decimal hours may move


def check_rounding(plan: InvoicePlan, rounding: Rounding | None) -> None:
    """Each line's minutes against the configuration, restated from the README: entries are
    raised to the minimum, then rounded per entry, per line, or per invoice and unit price."""
    by_key = {str(m.entry.key): m for m in plan.entries}

    def minutes(key: str) -> Decimal:
        exact = by_key[key].entry.quantity * 60
        least = rounding.minimum_minutes if rounding is not None else None
        return Decimal(least) if least and 0 < exact < least else exact

    def rounded(value: Decimal) -> Decimal:
        if rounding is None or rounding.mode == "none":
            return value
        step = Decimal(rounding.increment_minutes)
        return (value / step).to_integral_value(rounding=MODES[rounding.mode]) * step

    active = rounding is not None and rounding.mode != "none"
    stage = rounding.stage if rounding is not None and active else "entry"
    if stage == "invoice":
        prices = {m.unit_price for m in plan.entries}
        for price in prices:
            want = rounded(sum((minutes(k) for k in by_key if by_key[k].unit_price == price), ZERO))
            lines = [line for line in plan.lines if line.unit_price == price]
            got = sum((line.quantity * 60 for line in lines), ZERO)
            assert abs(got - want) <= QUANTUM * len(lines), (price, got, want)
        return
    for line in plan.lines:
        if stage == "line":
            want = rounded(sum((minutes(k) for k in line.entry_keys), ZERO))
            slack = QUANTUM
        else:
            want = sum((rounded(minutes(k)) for k in line.entry_keys), ZERO)
            slack = QUANTUM * len(line.entry_keys)
        assert abs(line.quantity * 60 - want) <= slack, (line, want)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path: Path = tmp_path_factory.mktemp("props") / "hb.db"
    return open_database(f"sqlite:///{path}")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(raw_entries=entries(), rules=rule_sets())
def test_billing_invariants_hold_for_random_entries_and_rules(
    engine: Engine, raw_entries: list[dict[str, Any]], rules: dict[str, Any]
) -> None:
    n = next(_runs)
    source = f"src{n}"  # each example has its own source and profile: nothing is shared
    target = MemoryTarget()
    mapping = MappingRules.model_validate(rules)
    profile = Profile(
        name=f"p{n}",
        sources=(MemorySource(source, [to_entry(source, r) for r in raw_entries]),),
        target=target,
        rules=mapping,
        reference_prefix="hb",
        due_days=30,
    )
    report = SyncEngine(engine, profile).run(PERIOD)
    assert report.status == "succeeded", report.errors

    invoices = [plan for plan, remote in target.stored.values() if remote.status == "DRAFT"]
    billed = Counter(str(m.entry.key) for plan in invoices for m in plan.entries)
    expected = {f"{source}:{r['id']}" for r in raw_entries if eligible(r)}
    # nothing ineligible billed; no entry billed twice
    assert set(billed) <= expected
    assert all(count == 1 for count in billed.values())
    assert report.entries_billed == len(billed)
    # every eligible entry billed, except where rounding down took a whole invoice to zero
    # hours: no invoice is created then, and its entries wait (README: Rounding)
    unbilled = {k for k in expected if k not in billed}
    if unbilled:
        assert mapping.rounding is not None and mapping.rounding.mode in ("down", "nearest")
        invoiced_clients = {m.entry.client.id for plan in invoices for m in plan.entries}
        by_key = {f"{source}:{r['id']}": r for r in raw_entries}
        assert not {by_key[k]["client"] for k in unbilled} & invoiced_clients

    rounding = mapping.rounding
    for plan in invoices:
        remote = target.stored[plan.key][1]
        assert plan.subtotal == sum((line.amount for line in plan.lines), Decimal(0))
        assert remote.subtotal == plan.subtotal  # the target's own sum of its lines agrees
        keys = [k for line in plan.lines for k in line.entry_keys]
        assert len(keys) == len(set(keys))  # no entry on two lines
        assert set(keys) <= {str(m.entry.key) for m in plan.entries}
        for line in plan.lines:
            assert line.amount == (line.quantity * line.unit_price).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
            assert line.quantity > 0
            assert line.quantity == line.quantity.quantize(Decimal("0.0001"))
            if rounding is not None and rounding.mode != "none":
                step = Decimal(rounding.increment_minutes)
                units = (line.quantity * 60 / step).to_integral_value(rounding=ROUND_HALF_UP)
                assert hours_of(units * step) == line.quantity  # whole increments

        check_rounding(plan, rounding)

    again = SyncEngine(engine, profile).run(PERIOD)
    assert (again.invoices_created, again.invoices_updated, again.entries_billed) == (0, 0, 0)
