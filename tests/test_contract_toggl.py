"""Toggl passes the connector contract against FakeToggl, plus its own policies and limits."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from pydantic import SecretStr, ValidationError

from connectors.base import InvoicedWriter, PullRequest, TrackerSource
from connectors.registry import BuildContext
from connectors.testing import BudgetTime, ConnectorContract, Sleeps
from connectors.toggl import CONNECTOR
from connectors.toggl.client import TogglSource
from connectors.toggl.config import TogglConfig
from connectors.toggl.parse import Catalogue, Rules, hours, parse_row
from core.errors import AuthError, ConfigError, SourceDataError, TerminalError, TransientError
from core.http import CallCounter, RetryPolicy
from core.model import SourceEntry
from sandbox.serving import RunningServer, start_server
from sandbox.toggl import SANDBOX_TOGGL_CREDENTIAL, FakeToggl, TogglSettings
from sandbox.tracker_seed import (
    APPROVED_TAG,
    INVOICED_TAG,
    TogglData,
    build_toggl,
    toggl_entry_ids_by_status,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

TODAY = date(2026, 11, 30)  # the pull's "today", so no test depends on the machine's clock
FIRST_DAY = date(2026, 9, 1)  # before every seeded entry (the period is 2026-10, ± 3 days)


class FakeClock:
    """The fake's monotonic clock, moved only by the test (or by the source's sleeps)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fast_settings(**overrides: Any) -> TogglSettings:
    values: dict[str, Any] = {
        "per_second": 1_000_000.0,
        "burst": 1_000_000,
        "hourly_quota": 1_000_000,
        "me_hourly_quota": 1_000_000,
    }
    values.update(overrides)
    return TogglSettings(**values)


@dataclass
class TogglHarness:
    data: TogglData
    fake: FakeToggl
    server: RunningServer
    approval: str = "tag"
    http: bool = True
    first_day: date = FIRST_DAY
    extra: dict[str, Any] = field(default_factory=dict)
    budget: BudgetTime = field(default_factory=BudgetTime)  # the call budgets' own time

    def config(self, token: str | None = None, page_size: int | None = None) -> TogglConfig:
        return TogglConfig.model_validate(
            {
                "type": "toggl",
                "api_token": SecretStr(token or self.fake.settings.api_token),
                "workspace_id": self.data.workspace_id,
                "base_url": self.server.url,
                "page_size": page_size or 1000,
                "approval": self.approval,
                **self.extra,
            }
        )

    def source(
        self,
        *,
        page_size: int | None = None,
        sleeps: Sleeps | None = None,
        token: str | None = None,
        policy: RetryPolicy | None = None,
    ) -> TogglSource:
        policy = policy or RetryPolicy(max_attempts=4, sleep=sleeps or Sleeps())
        config = self.config(token, page_size)
        return TogglSource(
            "toggl",
            config,
            calls=CallCounter(),
            policy=policy,
            today=lambda: TODAY,
            budgets=self.budget.budgets(),
        )

    def bad_credentials_source(self) -> TogglSource:
        return self.source(token="wrong-token")

    def expected_ids(self, spent_from: date) -> set[str]:
        """Live, stopped entries whose start (as the fake renders it, in UTC) is on or after."""
        out = set()
        for seeded in self.data.time_entries:
            entry = self.fake.entry(int(seeded["id"]))  # the fake's current version
            if entry.get("server_deleted_at") or int(entry["duration"]) < 0:
                continue  # deleted, or a running timer (the detailed report lists neither)
            if datetime.fromisoformat(entry["start"]).astimezone(UTC).date() >= spent_from:
                out.add(str(entry["id"]))
        return out

    def fail_next(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        self.fake.fail_next(status, count, retry_after)

    def edit_notes(self, source_id: str, notes: str) -> None:
        self.fake.edit_entry(int(source_id), description=notes)

    def delete(self, source_id: str) -> None:
        self.fake.delete_entry(int(source_id))

    def corrupt(self, source_id: str) -> str:
        self.fake.edit_entry(int(source_id), at="the fifth of never")
        return source_id


@pytest.fixture(scope="module")
def data() -> TogglData:
    return build_toggl()


class SwappableApp:
    """The module's one loopback server answers with whichever fake the test plugged in."""

    def __init__(self) -> None:
        self.app: FakeToggl | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        assert self.app is not None, "no fake plugged in"
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[RunningServer, SwappableApp]]:
    swap = SwappableApp()
    running = start_server(swap)
    try:
        yield running, swap
    finally:
        running.stop()


@pytest.fixture
def serve(
    data: TogglData, server: tuple[RunningServer, SwappableApp]
) -> Iterator[Callable[..., TogglHarness]]:
    """Plug a fresh fake (default: fast limits) into the server; unplugged after the test."""
    running, swap = server

    def start(fake: FakeToggl | None = None, **extra: Any) -> TogglHarness:
        fake = fake or FakeToggl(data, fast_settings())
        swap.app = fake
        return TogglHarness(data, fake, running, **extra)

    yield start
    swap.app = None


@pytest.fixture
def harness(serve: Callable[..., TogglHarness]) -> TogglHarness:
    return serve()


class TestTogglContract(ConnectorContract):
    """Every check of connectors.testing, against a fresh FakeToggl (the ``harness`` above)."""


def pull(source: TrackerSource, spent_from: date = FIRST_DAY) -> dict[str, SourceEntry]:
    return {e.source_id: e for e in source.pull(PullRequest(spent_from, None))}


def seed_entry(data: TogglData, entry_id: int | str) -> dict[str, Any]:
    return next(e for e in data.time_entries if e["id"] == int(entry_id))


def in_period(data: TogglData, key: str) -> list[int]:
    status = toggl_entry_ids_by_status(data)
    return [i for i in status[key] if i not in status["out_of_period"]]


# ---------------------------------------------------------------- the connector itself


def test_connector_spec_and_factory(tmp_path: Path) -> None:
    assert (CONNECTOR.type, CONNECTOR.role) == ("toggl", "source")
    assert CONNECTOR.config_model is TogglConfig
    config = TogglConfig.model_validate(
        {"type": "toggl", "api_token": "t0k3n", "workspace_id": 42, "approval": "all"}
    )
    assert str(config.base_url) == "https://api.track.toggl.com/"
    assert (config.approved_tag, config.invoiced_tag, config.page_size) == (
        "approved",
        "invoiced",
        200,
    )
    source = CONNECTOR.factory(BuildContext(CallCounter(), None, tmp_path), "tt", config)
    assert isinstance(source, TrackerSource) and isinstance(source, InvoicedWriter)
    assert source.name == "tt" and source.reports_deletions is False
    assert "t0k3n" not in repr(config) and "t0k3n" not in repr(source)


@pytest.mark.parametrize(
    "change",
    [
        {"approval": "maybe"},
        {"approved_tag": "invoiced"},
        {"workspace_id": 0},
        {"page_size": 5000},
        {"timezone": "Mars/Olympus"},
        {"invoiced_tag": " invoiced"},
        {"surprise": 1},
    ],
)
def test_config_rejects(change: dict[str, Any]) -> None:
    raw = {"type": "toggl", "api_token": "x", "workspace_id": 1, "approval": "tag"} | change
    with pytest.raises(ValidationError):
        TogglConfig.model_validate(raw)


def test_one_listing_call_each_and_few_report_pages(harness: TogglHarness) -> None:
    entries = pull(harness.source(page_size=1000))
    ws = f"/api/v9/workspaces/{harness.data.workspace_id}"
    calls = harness.fake.calls
    for resource in ("clients", "projects", "tasks", "tags"):
        assert calls[f"GET {ws}/{resource}"] == 1
    assert calls[f"GET {ws}/users"] == 0  # user names come with the report rows
    report = f"POST /reports/api/v3/workspace/{harness.data.workspace_id}/search/time_entries"
    assert calls[report] == -(-len(entries) // 1000)
    assert sum(calls.values()) == 4 + calls[report]


def test_refs_carry_ids_and_names(harness: TogglHarness) -> None:
    data = harness.data
    projects = {p["id"]: p for p in data.projects}
    clients = {c["id"]: c["name"] for c in data.clients}
    tasks = {t["id"]: t["name"] for t in data.tasks}
    users = {u["id"]: u["fullname"] for u in data.users}
    entries = pull(harness.source())
    assert entries
    for source_id, entry in entries.items():
        seeded = seed_entry(data, source_id)
        project = projects[seeded["project_id"]]
        assert entry.project.id == str(project["id"]) and entry.project.name == project["name"]
        assert entry.client.id == str(project["client_id"])
        assert entry.client.name == clients[project["client_id"]]
        if seeded["task_id"] is None:
            assert (entry.task.id, entry.task.name) == ("", "")
        else:
            assert entry.task.name == tasks[seeded["task_id"]]
        assert entry.user.name == users[seeded["user_id"]]
        assert entry.notes == (seeded["description"] or "")
        assert entry.billable is seeded["billable"]
        assert entry.updated_at == datetime.fromisoformat(seeded["at"])
        assert entry.spent_date == datetime.fromisoformat(seeded["start"]).date()


def test_rates_and_hours_are_exact(harness: TogglHarness) -> None:
    data = harness.data
    entries = pull(harness.source())
    picked = in_period(data, "billable_approved")[::97]
    assert len(picked) >= 5
    for entry_id in picked:
        seeded = seed_entry(data, entry_id)
        cents, currency = data.hourly_rate(seeded["project_id"], seeded["user_id"])
        entry = entries[str(entry_id)]
        assert entry.unit_price == Decimal(cents) / 100
        assert entry.quantity == Decimal(seeded["duration"]) / 3600
        assert entry.currency == currency
        assert entry.quantity * entry.unit_price * 100 == Decimal(seeded["duration"]) * cents / 3600
        assert entry.quantity == entry.quantity.quantize(Decimal("0.01"))  # 3-minute steps


def test_hours_round_only_when_not_exact() -> None:
    assert hours(5400) == Decimal("1.5")
    assert hours(9) == Decimal("0.0025")
    assert hours(1) == Decimal("0.0003")  # 0.000277… h, rounded half-up to 0.0001
    assert hours(3601) == Decimal("1.0003")


@pytest.mark.parametrize("approval", ["tag", "all"])
def test_approval_policies(serve: Callable[..., TogglHarness], approval: str) -> None:
    harness = serve(approval=approval)
    entries = pull(harness.source())
    status = toggl_entry_ids_by_status(harness.data)
    for source_id, entry in entries.items():
        tags = seed_entry(harness.data, source_id)["tags"]
        assert entry.approved is (approval == "all" or APPROVED_TAG in tags)
        assert entry.billed_in_source is (INVOICED_TAG in tags)
    unapproved = {str(i) for i in status["unapproved"]}
    assert unapproved <= set(entries)
    assert any(entries[i].approved for i in unapproved) is (approval == "all")


def test_approval_tag_names_are_configurable(serve: Callable[..., TogglHarness]) -> None:
    harness = serve(extra={"approved_tag": "urgent", "invoiced_tag": "meeting"})
    entries = pull(harness.source())
    for source_id, entry in entries.items():
        tags = seed_entry(harness.data, source_id)["tags"]
        assert entry.approved is ("urgent" in tags)
        assert entry.billed_in_source is ("meeting" in tags)
    assert any(e.approved for e in entries.values())


def test_toggl_approvals_without_premium_is_a_clear_config_error(
    serve: Callable[..., TogglHarness],
) -> None:
    harness = serve(approval="toggl")  # the fake's default plan has no approvals
    with pytest.raises(ConfigError) as info:
        pull(harness.source())
    message = str(info.value)
    assert message.startswith("toggl: approval 'toggl'")
    assert "Approvals are a premium feature" in message
    assert "'tag'" in message and "'all'" in message and "\n" not in message
    ws = f"/api/v9/workspaces/{harness.data.workspace_id}"
    assert sum(harness.fake.calls.values()) == 1  # nothing else was asked
    assert harness.fake.calls[f"GET {ws}/timesheet_setups"] == 1


def test_toggl_approvals_with_premium_fail_rather_than_guess(
    serve: Callable[..., TogglHarness], data: TogglData
) -> None:
    harness = serve(FakeToggl(data, fast_settings(premium=True)), approval="toggl")
    with pytest.raises(ConfigError, match="does not say which entries") as info:
        pull(harness.source())
    assert "'tag'" in str(info.value) and "'all'" in str(info.value)


class _ListsRunningTimers(FakeToggl):
    """A Reports API that does list running timers (the sandbox's, like Toggl's, does not)."""

    def _matches(self, entry: Mapping[str, Any], query: Any) -> bool:
        if int(entry["duration"]) < 0 and not entry.get("server_deleted_at"):
            return super()._matches({**entry, "duration": 0}, query)
        return super()._matches(entry, query)


def test_running_timers(serve: Callable[..., TogglHarness], data: TogglData) -> None:
    (running_id,) = toggl_entry_ids_by_status(data)["running"]
    plain = serve()
    assert str(running_id) not in pull(plain.source())  # not listed until stopped

    listing = serve(_ListsRunningTimers(data, fast_settings()))
    entries = pull(listing.source())
    entry = entries[str(running_id)]
    assert entry.running is True and entry.quantity == 0
    assert sum(e.running for e in entries.values()) == 1


def test_timezone_moves_spent_dates(serve: Callable[..., TogglHarness], data: TogglData) -> None:
    harness = serve(extra={"timezone": "Pacific/Auckland"})
    entries = pull(harness.source())
    late = next(
        e
        for e in data.time_entries
        if e["stop"]
        and e["start"].startswith("2026-10-1")
        and datetime.fromisoformat(e["start"]).hour >= 11  # 11:00 UTC is midnight in NZ (+13)
    )
    utc_day = datetime.fromisoformat(late["start"]).date()
    assert entries[str(late["id"])].spent_date == date.fromordinal(utc_day.toordinal() + 1)


def test_incremental_pull_lists_the_whole_range(harness: TogglHarness) -> None:
    source = harness.source()
    first = pull(source)
    mark = max(e.updated_at for e in first.values())
    again = list(source.pull(PullRequest(FIRST_DAY, mark, window=(date(2026, 10, 1), TODAY))))
    assert {e.source_id for e in again} == set(first)  # no change feed: everything, again
    later = {e.source_id for e in source.pull(PullRequest(date(2026, 10, 20), None))}
    assert later == harness.expected_ids(date(2026, 10, 20))
    assert all(first[i].spent_date >= date(2026, 10, 20) for i in later)


def test_mark_invoiced_tags_entries_and_reports_failures(harness: TogglHarness) -> None:
    targets = [str(i) for i in in_period(harness.data, "billable_approved")[:3]]
    harness.delete(targets[2])
    source = harness.source()
    result = source.mark_invoiced([targets[0], targets[1], targets[0], targets[2], "1", "abc"])
    assert result.done == (targets[0], targets[1])
    assert set(result.failed) == {targets[2], "1", "abc"}
    assert result.failed["1"] == "Time entry not found"
    assert result.failed["abc"] == "not a Toggl time entry id"
    for entry_id in targets[:2]:
        assert {INVOICED_TAG, APPROVED_TAG} <= set(harness.fake.tags_of(int(entry_id)))
    entries = pull(source)
    assert entries[targets[0]].billed_in_source and entries[targets[1]].billed_in_source


def test_mark_invoiced_chunks_at_100_ids(harness: TogglHarness) -> None:
    targets = [str(i) for i in in_period(harness.data, "billable_approved")[:150]]
    result = harness.source().mark_invoiced(targets)
    assert result.done == tuple(targets) and result.failed == {}
    patches = {k: v for k, v in harness.fake.calls.items() if k.startswith("PATCH ")}
    assert sorted(patches.values()) == [1, 1]
    assert all(INVOICED_TAG in harness.fake.tags_of(int(i)) for i in targets)
    assert harness.source().mark_invoiced([]) == type(result)(done=(), failed={})


def test_mark_invoiced_failures_do_not_raise_but_refused_credentials_do(
    harness: TogglHarness,
) -> None:
    targets = [str(i) for i in in_period(harness.data, "billable_approved")[:2]]
    harness.fail_next(400)
    result = harness.source().mark_invoiced(targets)
    assert result.done == () and set(result.failed) == set(targets)
    assert "HTTP 400" in result.failed[targets[0]]
    with pytest.raises(AuthError):
        harness.bad_credentials_source().mark_invoiced(targets)


def test_mark_invoiced_stops_calling_once_the_quota_is_spent(
    serve: Callable[..., TogglHarness], data: TogglData
) -> None:
    clock = FakeClock()
    harness = serve(FakeToggl(data, fast_settings(hourly_quota=1, clock=clock)))
    targets = [str(i) for i in in_period(data, "billable_approved")[:250]]
    result = harness.source().mark_invoiced(targets)
    assert result.done == tuple(targets[:100])
    assert set(result.failed) == set(targets[100:])
    # the first answer said no call is left this hour: the budget stops before calling again
    message = result.failed[targets[-1]]
    assert message.startswith(f"toggl ({data.workspace_id}): the call quota of 600 per hour")
    # (an hour after the first answer, less the second the next call waited for first)
    assert message.endswith("is used up; it frees up in 3599 s: run again then")
    patches = {k: v for k, v in harness.fake.calls.items() if k.startswith("PATCH ")}
    assert sorted(patches.values()) == [1]  # the second and third chunks were never sent


def test_a_402_still_says_when_the_quota_resets(
    serve: Callable[..., TogglHarness], data: TogglData
) -> None:
    clock = FakeClock()
    harness = serve(FakeToggl(data, fast_settings(hourly_quota=1, clock=clock)))
    _use_up_quota(harness, 1)  # spent by another app: our budget has not heard of it
    targets = [str(i) for i in in_period(data, "billable_approved")[:150]]
    result = harness.source().mark_invoiced(targets)
    assert result.done == ()
    assert "the hourly API quota is used up; it resets in 3600 s" in result.failed[targets[-1]]
    patches = {k: v for k, v in harness.fake.calls.items() if k.startswith("PATCH ")}
    assert sorted(patches.values()) == [1]  # the second chunk was never sent


def test_budget_waits_are_recorded_apart_from_retry_waits(harness: TogglHarness) -> None:
    retries = Sleeps()
    source = harness.source(sleeps=retries)
    harness.fail_next(429, retry_after=3)
    assert set(pull(source)) == harness.expected_ids(FIRST_DAY)
    requests_made = sum(harness.fake.calls.values())  # the refused one included
    assert retries.calls == [3.0]  # the policy's sleep saw only the retry's wait
    # one call a second: every request after the first waited its second, on the budget's time
    assert harness.budget.waits == [1.0] * (requests_made - 1)


def test_a_lower_budget_spaces_calls_further(serve: Callable[..., TogglHarness]) -> None:
    harness = serve(extra={"calls_per_second": 0.25})
    pull(harness.source())
    requests_made = sum(harness.fake.calls.values())
    assert requests_made >= 5
    assert harness.budget.waits == [4.0] * (requests_made - 1)


def test_the_quota_headers_are_followed_before_a_402(
    serve: Callable[..., TogglHarness], data: TogglData
) -> None:
    budget = BudgetTime()  # the fake's clock too: waiting for the reset really resets it
    fake = FakeToggl(data, fast_settings(hourly_quota=4, clock=budget.clock))
    harness = serve(fake, budget=budget)
    _use_up_quota(harness, 1)
    budget.now += 3600 - 100  # the quota resets in 100 s, with 3 calls left
    retries = Sleeps()
    assert set(pull(harness.source(sleeps=retries))) == harness.expected_ids(FIRST_DAY)
    assert sum(fake.calls.values()) - 1 > 3  # more calls than were left this hour
    assert retries.calls == []  # no 402 (nor anything else) was retried
    # the third answer said none left, resetting in 98 s: the fourth call, after its second,
    # waited the 97 s left
    assert [w for w in budget.waits if w > 1.0] == [97.0]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"calls_per_second": 2}, "at most 1: Toggl asks for about one call per second"),
        ({"calls_per_second": 0}, "must be above 0"),
        ({"calls_per_hour": 601}, "must be 1 to 600: Toggl's hourly quota is at most 600"),
        ({"calls_per_hour": 0}, "must be 1 to 600"),
    ],
)
def test_the_budget_can_only_be_lowered(change: dict[str, Any], said: str) -> None:
    raw = {"type": "toggl", "api_token": "x", "workspace_id": 1, "approval": "tag"} | change
    with pytest.raises(ValidationError) as info:
        TogglConfig.model_validate(raw)
    assert said in str(info.value)
    assert next(iter(change)) in str(info.value)


def _use_up_quota(harness: TogglHarness, count: int) -> None:
    url = f"{harness.server.url}/api/v9/workspaces/{harness.data.workspace_id}/tags"
    auth = (SANDBOX_TOGGL_CREDENTIAL, "api_token")
    for _ in range(count):
        assert requests.get(url, auth=auth, timeout=10).status_code == 200


def test_quota_402_is_waited_out_when_it_resets_soon(
    serve: Callable[..., TogglHarness], data: TogglData
) -> None:
    clock = FakeClock()
    harness = serve(FakeToggl(data, fast_settings(hourly_quota=10, clock=clock)))
    _use_up_quota(harness, 10)
    clock.now += 3600 - 30  # the quota resets in 30 s

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.now += seconds

    waited: list[float] = []
    source = harness.source(policy=RetryPolicy(max_attempts=3, sleep=sleep))
    assert set(pull(source)) == harness.expected_ids(FIRST_DAY)
    assert waited == [30.0]


def test_quota_402_resetting_later_fails_at_once_saying_when(
    serve: Callable[..., TogglHarness], data: TogglData
) -> None:
    clock = FakeClock()
    harness = serve(FakeToggl(data, fast_settings(hourly_quota=10, clock=clock)))
    _use_up_quota(harness, 10)
    clock.now += 600
    sleeps = Sleeps()
    calls_before = sum(harness.fake.calls.values())
    with pytest.raises(TransientError) as info:
        pull(harness.source(sleeps=sleeps))
    assert info.value.retry_after == 3000.0
    assert str(info.value) == (
        "toggl: HTTP 402: the hourly API quota is used up; it resets in 3000 s: run again then"
    )
    assert sleeps.calls == []  # no point retrying inside the run
    assert sum(harness.fake.calls.values()) == calls_before + 1


def test_a_402_that_says_nothing_is_terminal(harness: TogglHarness) -> None:
    harness.fail_next(402)
    with pytest.raises(TerminalError, match="HTTP 402: Payment Required") as info:
        pull(harness.source())
    assert "\n" not in str(info.value)


def test_the_token_never_appears_in_an_error(
    serve: Callable[..., TogglHarness], data: TogglData
) -> None:
    token = "tok-9f8e7d6c5b4a-super-secret"
    harness = serve(FakeToggl(data, fast_settings(api_token="another-token")))
    source = harness.source(token=token)
    with pytest.raises(AuthError) as info:
        pull(source)
    assert str(info.value) == (
        "toggl: HTTP 403: credentials refused: Incorrect username and/or password"
    )
    assert token not in repr(info.value) and token not in repr(source)
    assert token not in repr(harness.config(token))
    with pytest.raises(AuthError) as writeback:
        source.mark_invoiced(["3900000001"])
    assert token not in str(writeback.value)


# ---------------------------------------------------------------- parsing


def _row(**changes: Any) -> dict[str, Any]:
    item = {
        "id": 3900000042,
        "seconds": 5400,
        "start": "2026-10-05T09:00:00+00:00",
        "stop": "2026-10-05T10:30:00+00:00",
        "at": "2026-10-06T09:00:00+00:00",
        "at_tz": "2026-10-06T09:00:00+00:00",
    }
    item.update(changes.pop("item", {}))
    row = {
        "user_id": 9810001,
        "username": "Aroha Ngata",
        "project_id": 201400001,
        "task_id": None,
        "billable": True,
        "description": None,
        "tag_ids": [17300001],
        "billable_amount_in_cents": 22500,
        "hourly_rate_in_cents": 15000,
        "currency": "NZD",
        "time_entries": [item],
        "row_number": 1,
    }
    row.update(changes)
    return row


RULES = Rules(approved_tag_ids=frozenset({17300001}), invoiced_tag_ids=frozenset({17300002}))


def test_parse_a_row_without_names() -> None:
    (entry,) = parse_row("tt", _row(project_id=None), Catalogue(), RULES)
    assert (entry.source_id, entry.spent_date) == ("3900000042", date(2026, 10, 5))
    assert (entry.quantity, entry.unit_price, entry.currency) == (
        Decimal("1.5"),
        Decimal("150"),
        "NZD",
    )
    assert entry.client.id == entry.project.id == entry.task.id == ""
    assert entry.user.name == "Aroha Ngata" and entry.notes == ""
    assert entry.approved and not entry.billed_in_source and not entry.running


@pytest.mark.parametrize(
    ("changes", "field_name"),
    [
        ({"item": {"seconds": "lots"}}, "seconds"),
        ({"item": {"start": "not a date"}}, "start"),
        ({"item": {"at": "2026-10-06T09:00:00"}}, "at"),
        ({"currency": None}, "currency"),
        ({"hourly_rate_in_cents": "cheap"}, "hourly_rate_in_cents"),
        ({"billable": "yes"}, "billable"),
        ({"tag_ids": "approved"}, "tag_ids"),
        ({"description": 7}, "description"),
    ],
)
def test_malformed_rows_name_source_entry_and_field(
    changes: dict[str, Any], field_name: str
) -> None:
    with pytest.raises(SourceDataError) as info:
        parse_row("tt", _row(**changes), Catalogue(), RULES)
    message = str(info.value)
    assert message.startswith(f"tt: time entry 3900000042: field {field_name!r}")
    assert "\n" not in message


def test_malformed_row_shapes() -> None:
    with pytest.raises(SourceDataError, match="missing field 'currency'"):
        row = _row()
        del row["currency"]
        parse_row("tt", row, Catalogue(), RULES)
    with pytest.raises(SourceDataError, match="field 'time_entries'"):
        parse_row("tt", _row(time_entries=[]), Catalogue(), RULES)
    with pytest.raises(SourceDataError, match="field 'id'"):
        parse_row("tt", _row(item={"id": "x"}), Catalogue(), RULES)
