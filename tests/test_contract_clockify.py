"""Clockify passes the connector contract, against a fresh FakeClockify per test.

Then what is Clockify's own: cents and durations read exactly, the approval and invoiced
states, expenses, write-back (paid and Free plans), the key kept out of errors, regional URLs,
days counted in a time zone, and a listing that changes while it is paged.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
import requests
from pydantic import SecretStr, ValidationError
from werkzeug.wrappers import Request, Response

from connectors.base import InvoicedWriter, PullRequest, TrackerSource
from connectors.clockify import CONNECTOR, ClockifyConfig, ClockifySource
from connectors.clockify.client import LOOKAHEAD_DAYS, WRITEBACK_CHUNK
from connectors.clockify.parse import duration_seconds, from_cents, parse_report_row
from connectors.registry import BuildContext
from connectors.testing import BudgetTime, ConnectorContract, Sleeps
from core.errors import AuthError, SourceDataError, TerminalError
from core.http import CallCounter, RetryPolicy
from core.model import EntryKind, SourceEntry
from sandbox.clockify import SANDBOX_CLOCKIFY_KEY, ClockifySettings, FakeClockify
from sandbox.seed import SeedSpec
from sandbox.serving import RunningServer, start_server
from sandbox.tracker_seed import ClockifyData, build_clockify, clockify_entry_ids_by_status

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

SMALL = SeedSpec(clients=6, entries=400)
NOW = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)  # the sources' clock: a few days after October
FIRST_DAY = date(2026, 9, 1)
SECRET_KEY = "ck-live-very-secret-4f9a1b2c3d"


def _local_day(data: ClockifyData, entry: dict[str, Any], zone: ZoneInfo) -> date:
    start = datetime.fromisoformat(entry["timeInterval"]["start"])
    return start.astimezone(zone).date()


def _owner_zone(data: ClockifyData) -> ZoneInfo:
    return ZoneInfo(data.users[0]["settings"]["timeZone"])


@dataclass
class ClockifyHarness:
    """connectors.testing.Harness for ClockifySource against one FakeClockify."""

    fake: FakeClockify
    server: RunningServer
    http: bool = True
    first_day: date = FIRST_DAY
    approved_only: bool = False  # list everything (with the flag), so the contract sees all
    budget: BudgetTime = field(default_factory=BudgetTime)  # the call budgets' own time

    @property
    def data(self) -> ClockifyData:
        return self.fake.data

    def config(self, **overrides: Any) -> ClockifyConfig:
        values: dict[str, Any] = {
            "type": "clockify",
            "api_key": SecretStr(self.fake.settings.api_key),
            "workspace_id": self.data.workspace_id,
            "base_url": f"{self.server.url}/api/v1",
            "reports_url": f"{self.server.url}/reports/v1",
            "approved_only": self.approved_only,
        }
        values.update(overrides)
        return ClockifyConfig.model_validate(values)

    def source(
        self, *, page_size: int | None = None, sleeps: Sleeps | None = None, **overrides: Any
    ) -> ClockifySource:
        if page_size is not None:
            overrides["page_size"] = page_size
        policy = RetryPolicy(max_attempts=4, sleep=sleeps or Sleeps())
        return ClockifySource(
            "clockify",
            self.config(**overrides),
            calls=CallCounter(),
            policy=policy,
            clock=lambda: NOW,
            budgets=self.budget.budgets(),
        )

    def bad_credentials_source(self) -> ClockifySource:
        return self.source(api_key=SecretStr(SECRET_KEY))

    def expected_ids(self, spent_from: date) -> set[str]:
        """Live entries from the seed as the fake now holds them (running timers are not in
        the detailed report, so the connector cannot list them), and live expenses."""
        zone = _owner_zone(self.data)
        ids = set()
        for seeded in self.data.time_entries:
            entry = self._entry(str(seeded["id"]))
            if entry is None or entry["timeInterval"]["end"] is None:
                continue
            if _local_day(self.data, entry, zone) >= spent_from:
                ids.add(str(entry["id"]))
        ids |= {
            f"expense-{x['id']}"
            for x in self.data.expenses
            if date.fromisoformat(x["date"]) >= spent_from
        }
        return ids

    def _entry(self, entry_id: str) -> dict[str, Any] | None:
        try:
            return self.fake.entry(entry_id)
        except KeyError:
            return None

    def _expense(self, source_id: str) -> dict[str, Any]:
        """The fake serves its data's expense dicts as they are; it has no expense knobs."""
        expense_id = source_id.removeprefix("expense-")
        return next(x for x in self.data.expenses if x["id"] == expense_id)

    def fail_next(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        self.fake.fail_next(status, count, retry_after)

    def edit_notes(self, source_id: str, notes: str) -> None:
        if source_id.startswith("expense-"):
            self._expense(source_id)["notes"] = notes
        else:
            self.fake.edit_entry(source_id, description=notes)

    def delete(self, source_id: str) -> None:
        if source_id.startswith("expense-"):
            self.data.expenses.remove(self._expense(source_id))
        else:
            self.fake.delete_entry(source_id)

    def corrupt(self, source_id: str) -> str:
        if source_id.startswith("expense-"):
            self._expense(source_id)["quantity"] = "lots"
            return source_id.removeprefix("expense-")
        self.fake.edit_entry(source_id, billable="maybe")
        return source_id


@pytest.fixture(scope="module")
def seed() -> ClockifyData:
    return build_clockify(SMALL)


def _fast(*, paid_plan: bool = True) -> ClockifySettings:
    return ClockifySettings(paid_plan=paid_plan, per_second=1_000_000)


class _Plug:
    """One loopback server for the module; each test plugs in its own fresh fake."""

    def __init__(self) -> None:
        self.fake: FakeClockify | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        assert self.fake is not None, "no fake plugged in"
        return self.fake(environ, start_response)


Served = tuple[RunningServer, _Plug]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    plug = _Plug()
    server = start_server(plug)
    try:
        yield server, plug
    finally:
        server.stop()


def _serve(served: Served, fake: FakeClockify) -> ClockifyHarness:
    """Plug ``fake`` into the module's server (replacing the test's first one, if any)."""
    server, plug = served
    plug.fake = fake
    return ClockifyHarness(fake, server)


@pytest.fixture
def harness(seed: ClockifyData, served: Served) -> Iterator[ClockifyHarness]:
    """A fresh fake over its own copy of the seed, served on loopback."""
    yield _serve(served, FakeClockify(copy.deepcopy(seed), _fast()))
    served[1].fake = None


@pytest.fixture
def free_harness(seed: ClockifyData, served: Served) -> Iterator[ClockifyHarness]:
    yield _serve(served, FakeClockify(copy.deepcopy(seed), _fast(paid_plan=False)))
    served[1].fake = None


class TestClockifyContract(ConnectorContract):
    pass  # the module's ``harness`` fixture binds every contract check to the fake


def _pull(source: TrackerSource, spent_from: date = FIRST_DAY) -> dict[str, SourceEntry]:
    return {e.source_id: e for e in source.pull(PullRequest(spent_from, None))}


def _seed_hours(entry: dict[str, Any]) -> Decimal:
    """Hours from the seed's ISO 8601 duration, parsed here independently of the connector."""
    found = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", entry["timeInterval"]["duration"])
    assert found is not None
    h, m, s = (int(g or 0) for g in found.groups())
    return Decimal(h) + Decimal(m) / Decimal(60) + Decimal(s) / Decimal(3600)


# ----------------------------------------------------------------------- conversions


def test_cents_and_durations_are_exact(harness: ClockifyHarness) -> None:
    entries = _pull(harness.source())
    seeded = [e for e in harness.data.time_entries if e["timeInterval"]["end"] is not None]
    checked = 0
    for raw in seeded[::17]:
        entry = entries[raw["id"]]
        start = datetime.fromisoformat(raw["timeInterval"]["start"])
        end = datetime.fromisoformat(raw["timeInterval"]["end"])
        assert entry.quantity == _seed_hours(raw)
        assert entry.quantity * 3600 == Decimal(int((end - start).total_seconds()))
        assert entry.unit_price == Decimal(raw["hourlyRate"]["amount"]) / Decimal(100)
        assert entry.currency == raw["hourlyRate"]["currency"]
        assert entry.kind is EntryKind.TIME
        checked += 1
    assert checked >= 10
    one = entries[seeded[0]["id"]]
    assert isinstance(one.quantity, Decimal) and isinstance(one.unit_price, Decimal)


def test_iso_durations_from_the_time_entry_api_are_read_exactly() -> None:
    assert duration_seconds("PT1H30M") == 5400
    assert duration_seconds("PT0S") == 0
    assert duration_seconds("PT2H3M7S") == 7387
    assert duration_seconds("P1DT1H") == 90000
    assert duration_seconds("PT1.5S") == Decimal("1.5")
    assert duration_seconds(5400) == 5400
    for bad in ("PT", "P", "1H30M", "PT1X", -5, 1.5, True, None):
        with pytest.raises(ValueError):
            duration_seconds(bad)
    assert from_cents(13550) == Decimal("135.50")
    with pytest.raises(ValueError):
        from_cents(135.5)
    row = {
        "_id": "a" * 24,
        "description": "Workshop",
        "userId": "u1",
        "userName": "Hine",
        "timeInterval": {
            "start": "2026-10-05T22:30:00Z",
            "end": "2026-10-06T00:00:00Z",
            "duration": "PT1H30M",  # the time entry API's form
        },
        "billable": True,
        "hourlyRate": {"amount": 12345, "currency": "NZD"},
        "invoicingState": "UNINVOICED",
    }
    entry = parse_report_row("clockify", row, zone=ZoneInfo("Pacific/Auckland"), approved=True)
    assert entry.quantity == Decimal("1.5")
    assert entry.unit_price == Decimal("123.45")
    assert entry.spent_date == date(2026, 10, 6)  # 22:30 UTC is the next morning in Auckland
    assert entry.client.id == "" and entry.task.id == ""  # no project, no task: empty refs


def test_a_rate_of_zero_is_no_rate() -> None:
    row = {
        "_id": "b" * 24,
        "userId": "u1",
        "timeInterval": {"start": "2026-10-05T09:00:00Z", "end": "2026-10-05T10:00:00Z"},
        "billable": True,
        "hourlyRate": {"amount": 0, "currency": "EUR"},
        "invoicingState": "INVOICED",
    }
    entry = parse_report_row("clockify", row, zone=ZoneInfo("UTC"), approved=False)
    assert entry.unit_price is None and entry.currency == "EUR"
    assert entry.quantity == 1 and entry.billed_in_source


# ----------------------------------------------------------------------- approval, invoicing


def test_approved_only_lists_approved_time_only(harness: ClockifyHarness) -> None:
    entries = _pull(harness.source(approved_only=True))
    approved = {
        str(e["id"])
        for e in harness.data.time_entries
        if e["approvalStatus"] == "APPROVED" and e["timeInterval"]["end"] is not None
    }
    assert set(entries) == approved  # no unapproved time, no unlocked (unapproved) expense
    assert all(e.approved for e in entries.values())
    calls = harness.fake.calls
    assert not any("expenses/categories" in path for path in calls)


def test_all_entries_carry_their_approval_and_invoiced_state(harness: ClockifyHarness) -> None:
    entries = _pull(harness.source(approved_only=False))
    status = clockify_entry_ids_by_status(harness.data)
    for raw in harness.data.time_entries:
        if raw["timeInterval"]["end"] is None:
            assert raw["id"] not in entries  # the report leaves running timers out
            continue
        entry = entries[raw["id"]]
        assert entry.approved is (raw["approvalStatus"] == "APPROVED")
        assert entry.billed_in_source is raw["invoiced"]
        assert entry.billable is raw["billable"]
    assert status["invoiced"] and all(entries[i].billed_in_source for i in status["invoiced"])
    assert any(not e.approved for e in entries.values())


def test_days_are_counted_in_the_configured_time_zone(harness: ClockifyHarness) -> None:
    auckland = ZoneInfo("Pacific/Auckland")
    late = next(
        e
        for e in harness.data.time_entries
        if e["timeInterval"]["end"] is not None
        and datetime.fromisoformat(e["timeInterval"]["start"]).hour >= 11
        and e["timeInterval"]["start"].startswith("2026-10-1")
    )
    utc_day = datetime.fromisoformat(late["timeInterval"]["start"]).date()
    by_profile = _pull(harness.source())  # the owner's profile zone (Europe/Berlin)
    assert by_profile[late["id"]].spent_date == utc_day
    in_auckland = _pull(harness.source(time_zone="Pacific/Auckland"))
    assert in_auckland[late["id"]].spent_date == utc_day + timedelta(days=1)
    assert _local_day(harness.data, late, auckland) == utc_day + timedelta(days=1)
    assert harness.fake.calls["GET /api/v1/user"] == 1  # only the profile-zone source asked


# ----------------------------------------------------------------------- expenses


def test_expenses_keep_units_total_category_and_receipt(harness: ClockifyHarness) -> None:
    source = harness.source()
    entries = _pull(source)
    categories = {c["id"]: c for c in harness.data.expense_categories}
    clients = {c["id"]: c for c in harness.data.clients}
    projects = {p["id"]: p for p in harness.data.projects}
    seen_unit_priced = seen_lump = seen_receipt = 0
    for raw in harness.data.expenses:
        entry = entries[f"expense-{raw['id']}"]
        category = categories[raw["categoryId"]]
        total = Decimal(raw["total"]) / 100
        assert entry.kind is EntryKind.EXPENSE and entry.unit_price is not None
        assert entry.quantity * entry.unit_price == total
        assert entry.task.id == category["id"] and entry.task.name == category["name"]
        assert entry.spent_date == date.fromisoformat(raw["date"])
        assert entry.currency == clients[projects[raw["projectId"]]["clientId"]]["currencyCode"]
        assert entry.billable is raw["billable"] and entry.approved is raw["locked"]
        if category["hasUnitPrice"]:
            assert entry.quantity == raw["quantity"]
            assert entry.unit_price == Decimal(category["priceInCents"]) / 100
            seen_unit_priced += 1
        else:
            assert entry.quantity == 1 and entry.unit_price == total
            seen_lump += 1
        if raw["fileId"]:
            assert entry.receipt_url == (
                f"{source.workspace_url}/expenses/{raw['id']}/files/{raw['fileId']}"
            )
            seen_receipt += 1
        else:
            assert entry.receipt_url is None
    assert seen_unit_priced and seen_lump and seen_receipt
    receipt = next(e.receipt_url for e in entries.values() if e.receipt_url)
    assert receipt is not None
    got = requests.get(receipt, headers={"X-Api-Key": SANDBOX_CLOCKIFY_KEY}, timeout=10)
    assert got.status_code == 200 and got.content.startswith(b"%PDF")
    fetched = source.fetch_receipt(receipt)  # what hourbridge attaches to the invoice
    assert (fetched.content, fetched.content_type) == (got.content, "application/pdf")
    with pytest.raises(TerminalError, match="not on the Clockify API's host"):
        source.fetch_receipt("https://files.example/receipt.pdf")  # our key stays home


def test_units_that_do_not_make_the_total_become_one_times_total(
    harness: ClockifyHarness,
) -> None:
    raw = next(
        x
        for x in harness.data.expenses
        if next(c for c in harness.data.expense_categories if c["id"] == x["categoryId"])[
            "hasUnitPrice"
        ]
    )
    raw["total"] += 7  # units × unit price no longer make the total
    entry = _pull(harness.source())[f"expense-{raw['id']}"]
    assert entry.quantity == 1 and entry.unit_price == Decimal(raw["total"]) / 100


def test_expenses_can_be_left_out(harness: ClockifyHarness) -> None:
    entries = _pull(harness.source(expenses=False))
    assert entries and all(e.kind is EntryKind.TIME for e in entries.values())
    assert not any(path.endswith("/expenses") for path in harness.fake.calls)


def test_an_expense_without_its_category_embedded_looks_it_up(
    harness: ClockifyHarness, served: Served
) -> None:
    class WithoutCategories(FakeClockify):
        def _hydrate(self, expense: Any) -> dict[str, Any]:
            hydrated = super()._hydrate(expense)
            hydrated["categoryId"] = hydrated.pop("category")["id"]
            return hydrated

    fake = WithoutCategories(harness.data, _fast())
    other = _serve(served, fake)
    entries = _pull(other.source())
    raw = harness.data.expenses[0]
    category = next(c for c in harness.data.expense_categories if c["id"] == raw["categoryId"])
    assert entries[f"expense-{raw['id']}"].task.name == category["name"]
    assert fake.calls[f"GET /api/v1/workspaces/{harness.data.workspace_id}/expenses/categories"]


# ----------------------------------------------------------------------- write-back


def _uninvoiced(harness: ClockifyHarness, n: int) -> list[str]:
    return clockify_entry_ids_by_status(harness.data)["billable_approved"][:n]


def test_mark_invoiced_marks_time_and_refuses_expenses(harness: ClockifyHarness) -> None:
    source = harness.source()
    assert isinstance(source, InvoicedWriter) and isinstance(source, TrackerSource)
    ids = _uninvoiced(harness, 3)
    expense = f"expense-{harness.data.expenses[0]['id']}"
    before = harness.fake.invoiced_ids()
    result = source.mark_invoiced([*ids, expense])
    assert set(result.done) == set(ids)
    assert result.failed == {}
    assert set(result.skipped) == {expense} and "expenses" in result.skipped[expense]
    assert harness.fake.invoiced_ids() == before | set(ids)
    entries = _pull(source)  # invoicingState ALL: the engine still sees what it marked
    assert all(entries[i].billed_in_source for i in ids)


def test_mark_invoiced_sends_chunks_and_isolates_a_rejected_id(harness: ClockifyHarness) -> None:
    source = harness.source()
    ids = _uninvoiced(harness, WRITEBACK_CHUNK + 20)
    gone = ids[7]
    harness.fake.delete_entry(gone)
    result = source.mark_invoiced([*ids, "not-an-id"])
    assert set(result.done) == set(ids) - {gone}
    assert set(result.failed) == {gone, "not-an-id"}
    assert gone in result.failed[gone] and "HTTP 400" in result.failed[gone]
    assert harness.fake.invoiced_ids() >= set(ids) - {gone}
    patches = harness.fake.calls[
        f"PATCH /api/v1/workspaces/{harness.data.workspace_id}/time-entries/invoiced"
    ]
    assert 2 < patches < 2 + 2 * 8  # two chunks, the first split to find the deleted entry


def test_mark_invoiced_on_a_free_plan_fails_every_id(free_harness: ClockifyHarness) -> None:
    source = free_harness.source()
    ids = _uninvoiced(free_harness, WRITEBACK_CHUNK + 5)
    result = source.mark_invoiced(ids)
    assert result.done == ()
    assert set(result.failed) == set(ids)
    message = next(iter(result.failed.values()))
    assert "HTTP 403" in message and "not available on your current plan" in message
    assert "paid Clockify plan" in message and "\n" not in message
    assert free_harness.fake.invoiced_ids() == set(
        clockify_entry_ids_by_status(free_harness.data)["invoiced"]
    )
    path = f"PATCH /api/v1/workspaces/{free_harness.data.workspace_id}/time-entries/invoiced"
    assert free_harness.fake.calls[path] == 1  # stops at the first 403


def test_mark_invoiced_retries_and_raises_only_for_refused_credentials(
    harness: ClockifyHarness,
) -> None:
    sleeps = Sleeps()
    ids = _uninvoiced(harness, 2)
    harness.fail_next(429, retry_after=2)
    assert set(harness.source(sleeps=sleeps).mark_invoiced(ids).done) == set(ids)
    assert sleeps.calls == [2.0]
    with pytest.raises(AuthError) as info:
        harness.bad_credentials_source().mark_invoiced(ids)
    assert SECRET_KEY not in str(info.value)


def test_a_free_plan_pull_stays_within_31_days_per_report(free_harness: ClockifyHarness) -> None:
    entries = _pull(free_harness.source())
    assert set(entries) == free_harness.expected_ids(FIRST_DAY)


# ----------------------------------------------------------------------- secrets, config, URLs


def test_the_api_key_never_appears_in_errors_or_reprs(harness: ClockifyHarness) -> None:
    source = harness.bad_credentials_source()
    with pytest.raises(AuthError) as info:
        _pull(source)
    assert "credentials refused" in str(info.value) and "clockify" in str(info.value)
    assert SECRET_KEY not in str(info.value) and SECRET_KEY not in repr(info.value)
    config = harness.config(api_key=SECRET_KEY)
    assert SECRET_KEY not in repr(config) and SECRET_KEY not in str(config)
    assert SECRET_KEY not in repr(source)
    with pytest.raises(ValidationError) as bad:
        ClockifyConfig.model_validate(
            {"type": "clockify", "api_key": SECRET_KEY, "workspace_id": "x"}
        )
    assert SECRET_KEY not in str(bad.value)


def test_a_regional_base_url_is_used_as_given() -> None:
    config = ClockifyConfig.model_validate(
        {
            "type": "clockify",
            "api_key": "k",
            "workspace_id": "aa780060ec90e7fbf378c62d",
            "base_url": "https://euc1.clockify.me/api/v1",
        }
    )
    source = ClockifySource("clockify", config, calls=CallCounter())
    ws = "aa780060ec90e7fbf378c62d"
    assert source.workspace_url == f"https://euc1.clockify.me/api/v1/workspaces/{ws}"
    assert source.invoiced_url == (
        f"https://euc1.clockify.me/api/v1/workspaces/{ws}/time-entries/invoiced"
    )
    assert source.detailed_report_url == (
        f"https://reports.api.clockify.me/v1/workspaces/{ws}/reports/detailed"
    )


def test_a_base_url_on_another_host_and_path_works(harness: ClockifyHarness) -> None:
    url = harness.server.url.replace("127.0.0.1", "localhost")
    source = harness.source(base_url=f"{url}/api/v1/", reports_url=f"{url}/reports/v1/")
    assert source.workspace_url.startswith(f"{url}/api/v1/workspaces/")
    assert set(_pull(source)) == harness.expected_ids(FIRST_DAY)


def test_config_and_registration() -> None:
    base = {"type": "clockify", "api_key": "${CLOCKIFY_API_KEY}", "workspace_id": "a" * 24}
    config = ClockifyConfig.model_validate(base)
    assert str(config.base_url) == "https://api.clockify.me/api/v1"
    assert str(config.reports_url) == "https://reports.api.clockify.me/v1"
    assert (config.approved_only, config.expenses, config.time_zone) == (True, True, None)
    for bad in (
        {"time_zone": "Mars/Olympus"},
        {"page_size": 0},
        {"unknown": 1},
        {"workspace_id": "1"},
    ):
        with pytest.raises(ValidationError):
            ClockifyConfig.model_validate(base | bad)
    assert (CONNECTOR.type, CONNECTOR.role, CONNECTOR.config_model) == (
        "clockify",
        "source",
        ClockifyConfig,
    )
    calls = CallCounter()
    built = CONNECTOR.factory(BuildContext(calls, None, base_dir=Path(".")), "ck", config)
    assert isinstance(built, ClockifySource) and built.name == "ck"


# ----------------------------------------------------------------------- listing integrity


def test_a_listing_that_shrinks_while_paged_is_read_again(
    harness: ClockifyHarness, served: Served
) -> None:
    """Deleting an entry between pages shifts the rest: one would be missed, and the engine
    would take it for deleted. The totals on page 1 reveal it, and the range is read again."""
    zone = _owner_zone(harness.data)
    september = sorted(
        str(e["id"])
        for e in harness.data.time_entries
        if _local_day(harness.data, e, zone) < date(2026, 10, 1)
    )
    assert len(september) >= 3  # the first report range holds more than one page of 2
    victim = september[0]  # on page 1: deleting it shifts the next page by one

    first_pages: list[str] = []

    class DeletesDuringPaging(FakeClockify):
        def _detailed(self, request: Request) -> Response:
            body = json.loads(request.get_data(as_text=True))
            response = super()._detailed(request)
            if body["detailedFilter"]["page"] == 1:
                first_pages.append(f"{body['dateRangeStart'][:10]} {body['approvalState']}")
            if len(first_pages) == 1 and body["detailedFilter"]["page"] == 1:
                self.delete_entry(victim)  # after page 1 of the first range, once
            return response

    fake = DeletesDuringPaging(harness.data, _fast())
    other = _serve(served, fake)
    entries = _pull(other.source(page_size=2, expenses=False))
    assert victim not in entries
    expected = {i for i in other.expected_ids(FIRST_DAY) if not i.startswith("expense-")}
    assert set(entries) == expected
    assert first_pages[:2] == ["2026-09-01 ALL", "2026-09-01 ALL"]  # read again


def test_a_malformed_rate_names_the_entry_and_field(harness: ClockifyHarness) -> None:
    target = _uninvoiced(harness, 1)[0]
    harness.fake.edit_entry(target, hourlyRate={"amount": 12000, "currency": "dollars"})
    with pytest.raises(SourceDataError) as info:
        _pull(harness.source())
    assert str(info.value).startswith(f"clockify: time entry {target}: field 'hourlyRate'")


def test_empty_and_future_ranges_make_no_report_calls(harness: ClockifyHarness) -> None:
    far = NOW.date() + timedelta(days=LOOKAHEAD_DAYS + 1)
    assert _pull(harness.source(expenses=False), far) == {}
    assert not any("reports" in path for path in harness.fake.calls)


def test_calls_keep_within_the_configured_budget_per_second(harness: ClockifyHarness) -> None:
    retries = Sleeps()
    entries = _pull(harness.source(sleeps=retries, calls_per_second=1))
    made = sum(harness.fake.calls.values())
    assert entries and made >= 2
    # one call a second: every call after the first waited for its second, on our side, on
    # the budget's own time (the retry policy's sleep saw nothing)
    assert harness.budget.waits == [1.0] * (made - 1)
    assert retries.calls == []
    with pytest.raises(ValidationError):
        harness.config(calls_per_second=51)  # Clockify allows 50 a second
