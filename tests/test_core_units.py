"""Unit tests of the pure parts: periods, hashing, mapping, lines, HTTP policy, redaction."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.base import PullRequest
from connectors.harvest.client import HarvestSource
from connectors.harvest.config import HarvestConfig
from connectors.harvest.parse import parse_time_entry
from core.errors import AuthError, SourceDataError, TerminalError, TransientError
from core.http import (
    Action,
    CallCounter,
    LocalBudgets,
    RateBudget,
    RetryPolicy,
    classify,
    raise_for,
    retry_after_seconds,
)
from core.invoices import InvoiceSlot, build_lines, build_plan, invoice_key
from core.logging import Redactor
from core.model import EntryKind, Ref, SourceEntry
from core.periods import Period
from mapping.resolver import ContactKind, ContactRef, MappedEntry, Resolver, Unmapped
from mapping.rules import ClientRule, MappingRules, ProjectRule, TaskRule
from sandbox.harvest import FakeHarvest, HarvestSettings
from sandbox.seed import SeedSpec, build_agency_month
from sandbox.serving import serving


def entry(**over: Any) -> SourceEntry:
    base: dict[str, Any] = {
        "source": "harvest",
        "source_id": "1",
        "kind": EntryKind.TIME,
        "spent_date": date(2026, 10, 5),
        "quantity": Decimal("1.25"),
        "unit_price": Decimal("150"),
        "currency": "NZD",
        "client": Ref("10", "Acme"),
        "project": Ref("20", "Web"),
        "task": Ref("30", "Dev"),
        "user": Ref("40", "Ana"),
        "notes": "",
        "billable": True,
        "approved": True,
        "billed_in_source": False,
        "running": False,
        "updated_at": datetime(2026, 10, 6, tzinfo=UTC),
    }
    base.update(over)
    return SourceEntry(**base)


def test_period_bounds_and_timezone() -> None:
    p = Period.parse("2026-12")
    assert (p.start, p.end) == (date(2026, 12, 1), date(2026, 12, 31))
    assert p.next() == Period(2027, 1)
    assert Period(2026, 1).previous() == Period(2025, 12)
    # 2026-10-31 20:00 UTC is already November in Auckland
    moment = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)
    assert Period.containing(moment, ZoneInfo("Pacific/Auckland")) == Period(2026, 11)
    assert Period.containing(moment, ZoneInfo("UTC")) == Period(2026, 10)
    with pytest.raises(ValueError, match="YYYY-MM"):
        Period.parse("2026-13")


def test_content_hash_notices_edits_but_not_touches() -> None:
    a = entry()
    assert a.content_hash == entry(updated_at=datetime(2027, 1, 1, tzinfo=UTC)).content_hash
    assert a.content_hash != entry(quantity=Decimal("1.26")).content_hash
    assert a.content_hash != entry(notes="x").content_hash
    assert a.content_hash == entry(quantity=Decimal("1.250")).content_hash
    with pytest.raises(ValueError, match="timezone-aware"):
        entry(updated_at=datetime(2026, 10, 6))


def test_resolver_rate_precedence_and_unmapped_reasons() -> None:
    rules = MappingRules(
        clients={"10": ClientRule(contact_number="C-10", rate=Decimal("120"))},
        projects={"20": ProjectRule(rate=Decimal("175"))},
        tasks={"30": TaskRule(item_code="DEV")},
    )
    resolved = Resolver(rules).resolve(entry())
    assert isinstance(resolved, MappedEntry)
    assert (resolved.unit_price, resolved.rate_rule) == (Decimal("175"), "project 20")
    assert resolved.contact == ContactRef(ContactKind.NUMBER, "C-10")
    client_rate = Resolver(rules).resolve(entry(project=Ref("21", "Other")))
    assert isinstance(client_rate, MappedEntry)
    assert client_rate.unit_price == Decimal("120")
    tracker = Resolver(
        MappingRules(
            clients={"10": ClientRule(contact_name="Acme")},
            tasks={"30": TaskRule(account_code="200")},
        )
    ).resolve(entry())
    assert isinstance(tracker, MappedEntry)
    assert tracker.unit_price == Decimal("150")
    missing = Resolver(MappingRules()).resolve(entry(unit_price=None))
    assert isinstance(missing, Unmapped)
    assert missing.missing == ("client 10 'Acme'", "task 30 'Dev'", "rate for project 20 'Web'")


def test_lines_group_by_task_and_price_and_amounts_are_exact() -> None:
    rules = MappingRules(
        clients={"10": ClientRule(contact_number="C")}, tasks={"30": TaskRule(item_code="DEV")}
    )
    resolver = Resolver(rules)
    mapped = [
        resolver.resolve(
            entry(source_id="1", quantity=Decimal("0.33"), unit_price=Decimal("99.99"))
        ),
        resolver.resolve(
            entry(source_id="2", quantity=Decimal("0.67"), unit_price=Decimal("99.99"))
        ),
        resolver.resolve(entry(source_id="3", quantity=Decimal("2"), unit_price=Decimal("150"))),
    ]
    assert all(isinstance(m, MappedEntry) for m in mapped)
    lines = build_lines([m for m in mapped if isinstance(m, MappedEntry)])
    assert [(line.quantity, line.unit_price, line.amount) for line in lines] == [
        (Decimal("1.00"), Decimal("99.99"), Decimal("99.99")),
        (Decimal("2"), Decimal("150"), Decimal("300.00")),
    ]


def test_invoice_key_is_deterministic_and_fits_reference() -> None:
    slot = InvoiceSlot(
        "agency-monthly", ContactRef(ContactKind.NUMBER, "HV-1"), "NZD", Period(2026, 10), 1
    )
    key = invoice_key("hb", slot)
    assert key == invoice_key("hb", slot)
    assert key.startswith("hb/agency-monthly/2026-10/")
    assert len(key) <= 64
    other = InvoiceSlot(slot.profile, slot.contact, slot.currency, slot.period, 2)
    assert invoice_key("hb", other) != key
    plan = build_plan(
        prefix="hb", slot=slot, contact_id="X", contact_name="n", entries=[], due_days=20
    )
    assert (plan.invoice_date, plan.due_date) == (date(2026, 10, 31), date(2026, 11, 20))


def test_status_table_and_retry_after() -> None:
    assert classify(200) is Action.OK
    assert classify(401) is Action.AUTH
    assert classify(429) is Action.RATE_LIMIT
    assert classify(503) is Action.RETRY
    assert classify(422) is Action.FAIL
    assert retry_after_seconds("7") == 7.0
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("Sun, 22 Nov 2026 12:00:30 GMT", now) == 30.0
    with pytest.raises(AuthError):
        raise_for("x", 401, None, "bad token")
    with pytest.raises(TransientError) as info:
        raise_for("x", 429, "3", "slow down")
    assert info.value.retry_after == 3.0
    with pytest.raises(TerminalError):
        raise_for("x", 400, None, "bad")


def test_retry_policy_honours_retry_after_without_sleeping() -> None:
    slept: list[float] = []
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise TransientError("busy", retry_after=calls["n"] * 5)
        return "ok"

    policy = RetryPolicy(max_attempts=5, sleep=slept.append)
    for attempt in policy.retrying():
        with attempt:
            result = flaky()
    assert result == "ok"
    assert slept == [5.0, 10.0]

    with pytest.raises(TransientError):
        for attempt in RetryPolicy(max_attempts=2, sleep=slept.append).retrying():
            with attempt:
                raise TransientError("down")
    with pytest.raises(AuthError):  # terminal errors are not retried
        for attempt in RetryPolicy(max_attempts=5, sleep=slept.append).retrying():
            with attempt:
                raise AuthError("no")


def test_harvest_parse_rejects_bad_payload_naming_source_and_entry() -> None:
    good = {
        "id": 7,
        "spent_date": "2026-10-02",
        "hours": 1.1,
        "billable_rate": 100.0,
        "updated_at": "2026-10-03T01:02:03Z",
        "billable": True,
        "is_closed": True,
        "is_billed": False,
        "is_running": False,
        "notes": "héllo 🚀",
        "client": {"id": 1, "name": "C", "currency": "NZD"},
        "project": {"id": 2, "name": "P"},
        "task": {"id": 3, "name": "T"},
        "user": {"id": 4, "name": "U"},
    }
    parsed = parse_time_entry("harvest", good)
    assert parsed.quantity == Decimal("1.1")
    assert parsed.notes == "héllo 🚀"
    assert parsed.updated_at.tzinfo is not None
    with pytest.raises(SourceDataError, match=r"harvest: time entry 7: field 'hours'"):
        parse_time_entry("harvest", {**good, "hours": "lots"})
    with pytest.raises(SourceDataError, match=r"harvest: time entry 7: missing field 'spent_date'"):
        parse_time_entry("harvest", {k: v for k, v in good.items() if k != "spent_date"})
    with pytest.raises(SourceDataError, match=r"time entry 7: field 'is_closed'"):
        parse_time_entry("harvest", {**good, "is_closed": None})


def test_redactor_scrubs_known_secrets_keys_and_bearer_tokens() -> None:
    redact = Redactor(["s3cr3t-token-value"])
    event = redact(
        None,
        "info",
        {
            "event": "calling https://x/?t=s3cr3t-token-value",
            "authorization": "Bearer abc",
            "error": RuntimeError("header was Bearer eyJabc.def"),
        },
    )
    text = json.dumps(dict(event))
    assert "s3cr3t-token-value" not in text
    assert "eyJabc" not in text
    assert event["authorization"] == "***"


def test_rate_budget_waits_exactly_what_the_limit_needs() -> None:
    clock = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    budget = RateBudget(3, 15.0, clock=lambda: clock[0], sleep=sleep)
    assert [budget.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    clock[0] += 5
    assert budget.acquire() == 10.0  # the first call leaves the window at t=115
    assert slept == [10.0]
    frozen = RateBudget(2, 60.0, clock=lambda: 0.0, sleep=slept.append)
    frozen.acquire()
    frozen.acquire()
    assert frozen.acquire() == 60.0  # a sleep that doesn't move the clock still ends the wait


def test_harvest_calls_stay_within_a_budget_without_429() -> None:
    clock = [0.0]
    month = build_agency_month(SeedSpec(clients=4, entries=300))
    fake = FakeHarvest(month, HarvestSettings(requests_per_window=3, clock=lambda: clock[0]))
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    retried: list[float] = []
    no_retry_sleep = retried.append
    with serving(fake) as server:
        config = HarvestConfig.model_validate(
            {
                "type": "harvest",
                "account_id": fake.settings.account_id,
                "access_token": fake.settings.access_token,
                "base_url": server.url,
                "per_page": 50,
                "requests_per_15s": 3,
            }
        )
        source = HarvestSource(
            "harvest",
            config,
            calls=CallCounter(),
            policy=RetryPolicy(max_attempts=1, sleep=no_retry_sleep),
            budgets=LocalBudgets(clock=lambda: clock[0], sleep=sleep),  # the fake's clock too
        )
        entries = list(source.pull(PullRequest(date(2026, 9, 1), None)))
    assert len({e.source_id for e in entries}) == len(month.time_entries) + len(month.expenses)
    # max_attempts=1: a single 429 would have failed the pull, so it waited instead
    assert slept and all(s > 0 for s in slept)
    assert retried == []  # the budget's waits went to its own sleep, not the retry policy's
    assert sum(fake.calls.values()) > 3  # more calls than the window allows at once
