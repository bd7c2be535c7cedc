"""The Toggl and Clockify seeds and fakes, over real HTTP on loopback."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import requests

from sandbox.clockify import SANDBOX_CLOCKIFY_KEY, ClockifySettings, FakeClockify
from sandbox.seed import SeedSpec, build_agency_month
from sandbox.serving import RunningServer, serving
from sandbox.toggl import SANDBOX_TOGGL_CREDENTIAL, FakeToggl, TogglSettings
from sandbox.tracker_seed import (
    APPROVED_TAG,
    INVOICED_TAG,
    ClockifyData,
    TogglData,
    build_clockify,
    build_toggl,
    clockify_entry_ids_by_status,
    toggl_entry_ids_by_status,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

TIMEOUT = 10
TOGGL_AUTH = (SANDBOX_TOGGL_CREDENTIAL, "api_token")
CLOCKIFY_HEADERS = {"X-Api-Key": SANDBOX_CLOCKIFY_KEY}
OCTOBER = {"start_date": "2026-10-01", "end_date": "2026-10-31"}
OCTOBER_UTC = {
    "dateRangeStart": "2026-10-01T00:00:00.000Z",
    "dateRangeEnd": "2026-10-31T23:59:59.999Z",
}


class FakeClock:
    """An injectable monotonic clock that only moves when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fast_toggl(**overrides: Any) -> TogglSettings:
    values: dict[str, Any] = {
        "per_second": 1_000_000.0,
        "burst": 1_000_000,
        "hourly_quota": 1_000_000,
        "me_hourly_quota": 1_000_000,
    }
    values.update(overrides)
    return TogglSettings(**values)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def toggl_data() -> TogglData:
    return build_toggl()


@pytest.fixture(scope="module")
def clockify_data() -> ClockifyData:
    return build_clockify()


class SwappableApp:
    """One loopback server for the module; each test plugs in its own fresh fake."""

    def __init__(self) -> None:
        self.app: FakeToggl | FakeClockify | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        assert self.app is not None
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[tuple[RunningServer, SwappableApp]]:
    swap = SwappableApp()
    with serving(swap) as running:
        yield running, swap


@pytest.fixture
def plug(
    shared_server: tuple[RunningServer, SwappableApp],
) -> Iterator[Callable[[FakeToggl | FakeClockify], str]]:
    running, swap = shared_server

    def install(app: FakeToggl | FakeClockify) -> str:
        swap.app = app
        return running.url

    yield install
    swap.app = None


@pytest.fixture
def toggl(toggl_data: TogglData) -> FakeToggl:
    return FakeToggl(toggl_data, fast_toggl())


@pytest.fixture
def toggl_url(toggl: FakeToggl, plug: Callable[[FakeToggl | FakeClockify], str]) -> str:
    return plug(toggl)


@pytest.fixture
def clockify(clockify_data: ClockifyData) -> FakeClockify:
    return FakeClockify(clockify_data, ClockifySettings(per_second=1_000_000))


@pytest.fixture
def clockify_url(clockify: FakeClockify, plug: Callable[[FakeToggl | FakeClockify], str]) -> str:
    return plug(clockify)


# ---------------------------------------------------------------- helpers


def report_url(base: str, data: TogglData) -> str:
    return f"{base}/reports/api/v3/workspace/{data.workspace_id}/search/time_entries"


def toggl_post(url: str, body: Any, auth: tuple[str, str] = TOGGL_AUTH) -> requests.Response:
    return requests.post(url, json=body, auth=auth, timeout=TIMEOUT)


def toggl_pages(
    url: str,
    body: dict[str, Any],
    echo: tuple[str, ...] = ("first_id", "first_row_number"),
) -> tuple[list[dict[str, Any]], int]:
    """Follow X-Next-ID / X-Next-Row-Number (sending back the ``echo`` fields).

    Returns every row and the request count.
    """
    rows: list[dict[str, Any]] = []
    calls = 0
    request = dict(body)
    while True:
        response = toggl_post(url, request)
        calls += 1
        assert response.status_code == 200, response.text
        rows.extend(response.json())
        if "X-Next-ID" not in response.headers:
            assert "X-Next-Row-Number" not in response.headers
            return rows, calls
        cursor = {
            "first_id": int(response.headers["X-Next-ID"]),
            "first_row_number": int(response.headers["X-Next-Row-Number"]),
        }
        request = {**body, **{k: v for k, v in cursor.items() if k in echo}}


def reportable_toggl(data: TogglData, period: str = "2026-10") -> list[dict[str, Any]]:
    return [
        e
        for e in data.time_entries
        if str(e["start"]).startswith(period) and int(e["duration"]) >= 0
    ]


def detailed_url(base: str, data: ClockifyData) -> str:
    return f"{base}/reports/v1/workspaces/{data.workspace_id}/reports/detailed"


def clockify_post(url: str, body: Any) -> requests.Response:
    return requests.post(url, json=body, headers=CLOCKIFY_HEADERS, timeout=TIMEOUT)


def clockify_report(url: str, **extra: Any) -> list[dict[str, Any]]:
    """Every entry of a detailed report, page by page (pageSize 500)."""
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        body = {**OCTOBER_UTC, "detailedFilter": {"page": page, "pageSize": 500}, **extra}
        response = clockify_post(url, body)
        assert response.status_code == 200, response.text
        chunk = response.json()["timeentries"]
        out.extend(chunk)
        if len(chunk) < 500:
            return out
        page += 1


def reportable_clockify(data: ClockifyData) -> list[dict[str, Any]]:
    return [
        e
        for e in data.time_entries
        if str(e["timeInterval"]["start"]).startswith("2026-10")
        and e["timeInterval"]["end"] is not None
    ]


# ---------------------------------------------------------------- seeds


def test_seeds_are_deterministic(toggl_data: TogglData, clockify_data: ClockifyData) -> None:
    for built, again in ((toggl_data, build_toggl(SeedSpec())), (clockify_data, build_clockify())):
        dump = json.dumps(dataclasses.asdict(built), ensure_ascii=False, sort_keys=True)
        assert dump == json.dumps(dataclasses.asdict(again), ensure_ascii=False, sort_keys=True)
    other = build_toggl(SeedSpec(seed=7))
    assert [e["duration"] for e in other.time_entries] != [
        e["duration"] for e in toggl_data.time_entries
    ]
    assert [e["id"] for e in other.time_entries] == [e["id"] for e in toggl_data.time_entries]


def test_seed_ids_and_clients(toggl_data: TogglData, clockify_data: ClockifyData) -> None:
    harvest = build_agency_month()
    harvest_ids = {
        int(x["id"]) for x in (*harvest.clients, *harvest.projects, *harvest.tasks, *harvest.users)
    } | {int(e["id"]) for e in harvest.time_entries}
    toggl_ids = {
        int(x["id"])
        for x in (
            *toggl_data.clients,
            *toggl_data.projects,
            *toggl_data.tasks,
            *toggl_data.users,
            *toggl_data.tags,
            *toggl_data.time_entries,
        )
    }
    assert not toggl_ids & harvest_ids
    entry_ids = [e["id"] for e in toggl_data.time_entries]
    assert len(set(entry_ids)) == len(entry_ids)
    clockify_ids = [e["id"] for e in clockify_data.time_entries]
    assert len(set(clockify_ids)) == len(clockify_ids)
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in clockify_ids)

    harvest_names = {c["name"] for c in harvest.clients}
    toggl_names = {c["name"] for c in toggl_data.clients}
    clockify_names = {c["name"] for c in clockify_data.clients}
    assert len(toggl_names & harvest_names) >= 10
    assert len(clockify_names & harvest_names) >= 10
    assert len(toggl_names & clockify_names) >= 4  # one agency, both trackers, same clients
    assert toggl_names - harvest_names and clockify_names - harvest_names


@pytest.mark.parametrize("tracker", ["toggl", "clockify"])
def test_seed_category_counts(
    tracker: str, toggl_data: TogglData, clockify_data: ClockifyData
) -> None:
    if tracker == "toggl":
        status: dict[str, list[Any]] = dict(toggl_entry_ids_by_status(toggl_data))
        entries = toggl_data.time_entries
        in_period = [e for e in entries if str(e["start"]).startswith("2026-10-")]
        descriptions = [e["description"] for e in entries]
        minutes = [int(e["duration"]) / 60 for e in entries if int(e["duration"]) >= 0]
    else:
        status = dict(clockify_entry_ids_by_status(clockify_data))
        entries = clockify_data.time_entries
        in_period = [e for e in entries if str(e["timeInterval"]["start"]).startswith("2026-10-")]
        descriptions = [e["description"] for e in entries]
        minutes = [
            (
                datetime.fromisoformat(e["timeInterval"]["end"])
                - datetime.fromisoformat(e["timeInterval"]["start"])
            ).total_seconds()
            / 60
            for e in entries
            if e["timeInterval"]["end"]
        ]
    total = len(entries)
    assert 1450 <= len(in_period) <= 1550
    assert len(status["running"]) == 1
    assert 0.02 <= len(status["out_of_period"]) / total <= 0.04
    assert 0.06 <= len(status["nonbillable"]) / total <= 0.10
    assert 0.05 <= len(status["unapproved"]) / total <= 0.09
    assert 0.02 <= len(status["invoiced"]) / total <= 0.04
    assert len(status["billable_approved"]) > 0.75 * total
    assert all(m == int(m) and int(m) % 3 == 0 and m >= 15 for m in minutes)
    assert any(d and len(d) >= 950 for d in descriptions)
    assert all(d is None or len(d) <= 1000 for d in descriptions)
    assert any(d and any(ord(ch) > 0xFFFF for ch in d) for d in descriptions)  # emoji
    assert any(not d for d in descriptions)


def test_toggl_seed_fields(toggl_data: TogglData) -> None:
    running = [e for e in toggl_data.time_entries if int(e["duration"]) < 0]
    assert len(running) == 1
    assert running[0]["stop"] is None
    start = datetime.fromisoformat(running[0]["start"])
    assert running[0]["duration"] == -int(start.timestamp())
    for entry in toggl_data.time_entries:
        assert entry["tag_ids"] == sorted(entry["tag_ids"])
        assert len(entry["tags"]) == len(entry["tag_ids"])
        if INVOICED_TAG in entry["tags"]:
            assert APPROVED_TAG in entry["tags"]
        if entry["stop"]:
            span = datetime.fromisoformat(entry["stop"]) - datetime.fromisoformat(entry["start"])
            assert span.total_seconds() == entry["duration"]
        assert entry["at"] >= entry["start"]
        rate, currency = toggl_data.hourly_rate(entry["project_id"], entry["user_id"])
        assert rate % 100 == 0 and currency in {"NZD", "USD", "EUR", "GBP"}
        if entry["duration"] >= 0:
            amount = Decimal(entry["duration"]) * rate / 3600
            assert amount == amount.to_integral_value()  # exact in cents


def test_clockify_seed_fields(clockify_data: ClockifyData) -> None:
    for entry in clockify_data.time_entries:
        rate = entry["hourlyRate"]
        assert rate["amount"] % 100 == 0 and rate["amount"] > 0
        if entry["invoiced"]:
            assert entry["approvalStatus"] == "APPROVED"
        if entry["approvalStatus"] == "NOT_SUBMITTED":
            assert entry["approvalRequestId"] is None
    categories = {c["id"]: c for c in clockify_data.expense_categories}
    assert any(c["hasUnitPrice"] for c in categories.values())
    assert any(not c["hasUnitPrice"] for c in categories.values())
    for expense in clockify_data.expenses:
        category = categories[expense["categoryId"]]
        assert isinstance(expense["total"], int)
        if category["hasUnitPrice"]:
            assert expense["total"] == expense["quantity"] * category["priceInCents"]
    assert any(not e["billable"] for e in clockify_data.expenses)
    assert any(e["fileId"] for e in clockify_data.expenses)
    assert any(not e["date"].startswith("2026-10") for e in clockify_data.expenses)


# ---------------------------------------------------------------- Toggl


@pytest.mark.parametrize(
    "auth",
    [None, ("wrong-token", "api_token"), (SANDBOX_TOGGL_CREDENTIAL, "not-api_token")],
)
def test_toggl_auth_failures_are_403(
    toggl_url: str, toggl_data: TogglData, auth: tuple[str, str] | None
) -> None:
    url = report_url(toggl_url, toggl_data)
    response = requests.post(url, json=OCTOBER, auth=auth, timeout=TIMEOUT)
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text == "Incorrect username and/or password"
    other_ws = f"{toggl_url}/api/v9/workspaces/1/clients"
    assert requests.get(other_ws, auth=TOGGL_AUTH, timeout=TIMEOUT).status_code == 403


@pytest.mark.parametrize(
    ("page_size", "echo"),
    [(None, ("first_id", "first_row_number")), (200, ("first_row_number",)), (300, ("first_id",))],
)
def test_toggl_paging_returns_every_entry_once(
    toggl: FakeToggl,
    toggl_url: str,
    toggl_data: TogglData,
    page_size: int | None,
    echo: tuple[str, ...],
) -> None:
    body: dict[str, Any] = dict(OCTOBER)
    if page_size:
        body["page_size"] = page_size
    rows, calls = toggl_pages(report_url(toggl_url, toggl_data), body, echo)
    expected = reportable_toggl(toggl_data)
    ids = [te["id"] for row in rows for te in row["time_entries"]]
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == {e["id"] for e in expected}
    assert calls == -(-len(expected) // (page_size or 50))
    assert [row["row_number"] for row in rows] == list(range(1, len(rows) + 1))
    starts = [row["time_entries"][0]["start"] for row in rows]
    assert starts == sorted(starts, reverse=True)
    running = toggl_entry_ids_by_status(toggl_data)["running"]
    assert not set(running) & set(ids)


def test_toggl_row_shape_and_money(toggl_url: str, toggl_data: TogglData) -> None:
    rows, _ = toggl_pages(report_url(toggl_url, toggl_data), {**OCTOBER, "page_size": 1000})
    by_id = {e["id"]: e for e in toggl_data.time_entries}
    users = {u["id"]: u["fullname"] for u in toggl_data.users}
    for row in rows:
        assert set(row) == {
            "user_id", "username", "project_id", "task_id", "billable", "description",
            "tag_ids", "billable_amount_in_cents", "hourly_rate_in_cents", "currency",
            "time_entries", "row_number",
        }  # fmt: skip
        (item,) = row["time_entries"]
        entry = by_id[item["id"]]
        assert set(item) == {"id", "seconds", "start", "stop", "at", "at_tz"}
        assert item["seconds"] == entry["duration"]
        assert row["username"] == users[entry["user_id"]]
        rate, currency = toggl_data.hourly_rate(entry["project_id"], entry["user_id"])
        assert (row["hourly_rate_in_cents"], row["currency"]) == (rate, currency)
        if entry["billable"]:
            assert row["billable_amount_in_cents"] * 3600 == entry["duration"] * rate
        else:
            assert row["billable_amount_in_cents"] is None


def test_toggl_filters(toggl_url: str, toggl_data: TogglData) -> None:
    url = report_url(toggl_url, toggl_data)
    expected = reportable_toggl(toggl_data)
    rows, _ = toggl_pages(url, {**OCTOBER, "billable": False, "page_size": 1000})
    assert {r["time_entries"][0]["id"] for r in rows} == {
        e["id"] for e in expected if not e["billable"]
    }
    user = toggl_data.users[3]["id"]
    rows, _ = toggl_pages(url, {**OCTOBER, "user_ids": [user], "page_size": 1000})
    assert rows and {r["user_id"] for r in rows} == {user}
    assert len(rows) == sum(1 for e in expected if e["user_id"] == user)
    approved_tag = next(t["id"] for t in toggl_data.tags if t["name"] == APPROVED_TAG)
    rows, _ = toggl_pages(url, {**OCTOBER, "tag_ids": [approved_tag], "page_size": 1000})
    assert len(rows) == sum(1 for e in expected if APPROVED_TAG in e["tags"])
    client = toggl_data.clients[0]["id"]
    projects = {p["id"] for p in toggl_data.projects if p["client_id"] == client}
    rows, _ = toggl_pages(url, {**OCTOBER, "client_ids": [client], "page_size": 1000})
    assert len(rows) == sum(1 for e in expected if e["project_id"] in projects)
    rows, _ = toggl_pages(url, {"start_date": "2026-10-05", "end_date": "2026-10-05"})
    assert rows and all(r["time_entries"][0]["start"].startswith("2026-10-05") for r in rows)


def test_toggl_grouped_rows_cover_the_same_entries(toggl_url: str, toggl_data: TogglData) -> None:
    url = report_url(toggl_url, toggl_data)
    rows, _ = toggl_pages(url, {**OCTOBER, "grouped": True, "page_size": 100})
    ids = [te["id"] for row in rows for te in row["time_entries"]]
    assert len(ids) == len(set(ids)) == len(reportable_toggl(toggl_data))
    assert len(rows) < len(ids)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({**OCTOBER, "page": 2}, "Unknown field: page"),
        ({"start_date": "2026-10-01"}, "end_date is required"),
        ({"start_date": "2026/10/01", "end_date": "2026-10-31"}, "start_date"),
        ({"start_date": "2026-10-31", "end_date": "2026-10-01"}, "end_date"),
        ({"start_date": "2025-01-01", "end_date": "2026-10-31"}, "366"),
        ({**OCTOBER, "page_size": 0}, "page_size"),
        ({**OCTOBER, "user_ids": "1"}, "user_ids"),
        ({**OCTOBER, "billable": "yes"}, "billable"),
        ({**OCTOBER, "order_dir": "UP"}, "order_dir"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_toggl_report_validation(
    toggl_url: str, toggl_data: TogglData, body: Any, fragment: str
) -> None:
    response = toggl_post(report_url(toggl_url, toggl_data), body)
    assert response.status_code == 400
    assert fragment in response.text


def test_toggl_quota_402_then_resets(toggl_data: TogglData, plug: Callable[..., str]) -> None:
    clock = FakeClock()
    fake = FakeToggl(toggl_data, fast_toggl(hourly_quota=3, clock=clock))
    url = f"{plug(fake)}/api/v9/workspaces/{toggl_data.workspace_id}/clients"
    remaining = []
    for _ in range(3):
        response = requests.get(url, auth=TOGGL_AUTH, timeout=TIMEOUT)
        assert response.status_code == 200
        remaining.append(response.headers["X-Toggl-Quota-Remaining"])
    assert remaining == ["2", "1", "0"]
    clock.now += 1800
    refused = requests.get(url, auth=TOGGL_AUTH, timeout=TIMEOUT)
    assert refused.status_code == 402
    assert refused.headers["X-Toggl-Quota-Remaining"] == "0"
    assert refused.headers["X-Toggl-Quota-Resets-In"] == "1800"
    assert "hourly limit" in refused.text
    # /me has its own quota, so it still answers
    me = requests.get(f"{plug(fake)}/api/v9/me", auth=TOGGL_AUTH, timeout=TIMEOUT)
    assert me.status_code == 200
    clock.now += 1800
    assert requests.get(url, auth=TOGGL_AUTH, timeout=TIMEOUT).status_code == 200


def test_toggl_leaky_bucket_429(toggl_data: TogglData, plug: Callable[..., str]) -> None:
    clock = FakeClock()
    fake = FakeToggl(toggl_data, fast_toggl(per_second=1.0, burst=2, clock=clock))
    url = f"{plug(fake)}/api/v9/workspaces/{toggl_data.workspace_id}/tags"
    statuses = [requests.get(url, auth=TOGGL_AUTH, timeout=TIMEOUT).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    clock.now += 1.0
    assert requests.get(url, auth=TOGGL_AUTH, timeout=TIMEOUT).status_code == 200
    assert requests.get(url, auth=TOGGL_AUTH, timeout=TIMEOUT).status_code == 429
    assert fake.calls[f"GET /api/v9/workspaces/{toggl_data.workspace_id}/tags"] == 5


@pytest.mark.parametrize("premium", [False, True])
def test_toggl_timesheet_setups(
    toggl_data: TogglData, plug: Callable[..., str], premium: bool
) -> None:
    fake = FakeToggl(toggl_data, fast_toggl(premium=premium))
    url = f"{plug(fake)}/api/v9/workspaces/{toggl_data.workspace_id}/timesheet_setups"
    response = requests.get(url, auth=TOGGL_AUTH, timeout=TIMEOUT)
    if premium:
        assert response.status_code == 200
        setups = response.json()
        assert len(setups) == len(toggl_data.users) - 1
        assert {s["approver_id"] for s in setups} == {toggl_data.users[0]["id"]}
    else:
        assert response.status_code == 402
        assert response.text == "Approvals are a premium feature"


def test_toggl_tag_patch_marks_entries(
    toggl: FakeToggl, toggl_url: str, toggl_data: TogglData
) -> None:
    status = toggl_entry_ids_by_status(toggl_data)
    targets = [i for i in status["billable_approved"] if i not in status["out_of_period"]][:2]
    ids = ",".join(str(i) for i in [*targets, 1])
    url = f"{toggl_url}/api/v9/workspaces/{toggl_data.workspace_id}/time_entries/{ids}"
    patch = [{"op": "add", "path": "/tags", "value": [INVOICED_TAG, "hb-INV-0042"]}]
    response = requests.patch(url, json=patch, auth=TOGGL_AUTH, timeout=TIMEOUT)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] == targets
    assert [f["id"] for f in body["failure"]] == [1]
    for entry_id in targets:
        assert {INVOICED_TAG, APPROVED_TAG, "hb-INV-0042"} <= set(toggl.tags_of(entry_id))
    tags = requests.get(
        f"{toggl_url}/api/v9/workspaces/{toggl_data.workspace_id}/tags",
        auth=TOGGL_AUTH,
        timeout=TIMEOUT,
    ).json()
    created = next(t for t in tags if t["name"] == "hb-INV-0042")  # unknown names are created
    rows, _ = toggl_pages(
        report_url(toggl_url, toggl_data),
        {**OCTOBER, "time_entry_ids": targets, "page_size": 10},
    )
    assert len(rows) == 2 and all(created["id"] in r["tag_ids"] for r in rows)

    bad = [{"op": "move", "path": "/tags", "value": ["x"]}]
    rejected = requests.patch(url, json=bad, auth=TOGGL_AUTH, timeout=TIMEOUT)
    assert rejected.status_code == 400 and "Invalid op" in rejected.text
    too_many = ",".join(str(i) for i in range(1, 102))
    url = f"{toggl_url}/api/v9/workspaces/{toggl_data.workspace_id}/time_entries/{too_many}"
    rejected = requests.patch(url, json=patch, auth=TOGGL_AUTH, timeout=TIMEOUT)
    assert rejected.status_code == 400 and "limited to 100" in rejected.text


def test_toggl_edit_and_delete_visible_to_since_and_report(
    toggl: FakeToggl, toggl_url: str, toggl_data: TogglData
) -> None:
    owner = toggl_data.users[0]["id"]
    mine = [
        e
        for e in reportable_toggl(toggl_data)
        if e["user_id"] == owner and e["start"].startswith("2026-10-1")
    ]
    edited, deleted = mine[0]["id"], mine[1]["id"]
    since = int(toggl.server_time().timestamp())
    me_url = f"{toggl_url}/api/v9/me/time_entries"
    assert (
        requests.get(me_url, params={"since": since}, auth=TOGGL_AUTH, timeout=TIMEOUT).json() == []
    )

    toggl.edit_entry(edited, description="Changed after the first sync ✏️")
    toggl.delete_entry(deleted)
    changed = requests.get(me_url, params={"since": since}, auth=TOGGL_AUTH, timeout=TIMEOUT)
    assert changed.status_code == 200
    by_id = {e["id"]: e for e in changed.json()}
    assert set(by_id) == {edited, deleted}
    assert by_id[edited]["description"] == "Changed after the first sync ✏️"
    assert by_id[edited]["server_deleted_at"] is None
    assert by_id[deleted]["server_deleted_at"] is not None
    assert datetime.fromisoformat(by_id[edited]["at"]).timestamp() > since

    plain = requests.get(me_url, auth=TOGGL_AUTH, timeout=TIMEOUT).json()
    assert deleted not in {e["id"] for e in plain}
    assert {e["user_id"] for e in plain} == {owner}  # only the token owner's entries

    rows, _ = toggl_pages(
        report_url(toggl_url, toggl_data),
        {**OCTOBER, "time_entry_ids": [edited, deleted], "page_size": 10},
    )
    assert [r["time_entries"][0]["id"] for r in rows] == [edited]
    assert rows[0]["description"] == "Changed after the first sync ✏️"


def test_toggl_lists_and_fail_next(toggl: FakeToggl, toggl_url: str, toggl_data: TogglData) -> None:
    ws = f"{toggl_url}/api/v9/workspaces/{toggl_data.workspace_id}"
    clients = requests.get(f"{ws}/clients", auth=TOGGL_AUTH, timeout=TIMEOUT).json()
    assert {c["name"] for c in clients} == {c["name"] for c in toggl_data.clients}
    project = toggl_data.projects[0]
    tasks = requests.get(
        f"{ws}/projects/{project['id']}/tasks", auth=TOGGL_AUTH, timeout=TIMEOUT
    ).json()
    assert tasks and {t["project_id"] for t in tasks} == {project["id"]}
    users = requests.get(f"{ws}/users", auth=TOGGL_AUTH, timeout=TIMEOUT).json()
    assert len(users) == len(toggl_data.users)
    toggl.fail_next(503, count=2, retry_after=7)
    first = requests.get(f"{ws}/clients", auth=TOGGL_AUTH, timeout=TIMEOUT)
    assert (first.status_code, first.headers["Retry-After"]) == (503, "7")
    assert requests.get(f"{ws}/clients", auth=TOGGL_AUTH, timeout=TIMEOUT).status_code == 503
    assert requests.get(f"{ws}/clients", auth=TOGGL_AUTH, timeout=TIMEOUT).status_code == 200
    assert toggl.calls[f"GET /api/v9/workspaces/{toggl_data.workspace_id}/clients"] == 4


# ---------------------------------------------------------------- Clockify


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_clockify_auth_failures_are_401(
    clockify_url: str, clockify_data: ClockifyData, key: str | None
) -> None:
    headers = {"X-Api-Key": key} if key else {}
    response = requests.post(
        detailed_url(clockify_url, clockify_data),
        json={**OCTOBER_UTC, "detailedFilter": {"page": 1}},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert response.status_code == 401
    assert response.json() == {
        "message": "Full authentication is required to access this resource",
        "code": 1000,
    }


def test_clockify_report_paging_returns_every_entry_once(
    clockify_url: str, clockify_data: ClockifyData
) -> None:
    url = detailed_url(clockify_url, clockify_data)
    expected = reportable_clockify(clockify_data)
    ids: list[str] = []
    page = 1
    while True:
        response = clockify_post(
            url, {**OCTOBER_UTC, "detailedFilter": {"page": page, "pageSize": 200}}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["totals"][0]["entriesCount"] == len(expected)
        chunk = body["timeentries"]
        ids.extend(e["_id"] for e in chunk)
        if len(chunk) < 200:
            break
        page += 1
    assert page == -(-len(expected) // 200)
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == {e["id"] for e in expected}

    past_the_end = clockify_post(
        url, {**OCTOBER_UTC, "detailedFilter": {"page": page + 5, "pageSize": 200}}
    )
    assert past_the_end.json()["timeentries"] == []


def test_clockify_report_entry_shape_and_money(
    clockify_url: str, clockify_data: ClockifyData
) -> None:
    rows = clockify_report(detailed_url(clockify_url, clockify_data))
    by_id = {e["id"]: e for e in clockify_data.time_entries}
    earned_by_currency: dict[str, int] = {}
    for row in rows:
        entry = by_id[row["_id"]]
        interval = row["timeInterval"]
        seconds = (
            datetime.fromisoformat(entry["timeInterval"]["end"])
            - datetime.fromisoformat(entry["timeInterval"]["start"])
        ).total_seconds()
        assert interval["duration"] == seconds  # seconds, not ISO 8601, in the report
        assert row["hourlyRate"] == entry["hourlyRate"]
        expected = seconds * entry["hourlyRate"]["amount"] / 3600 if entry["billable"] else 0
        assert row["amount"] == expected == int(expected)
        earned_by_currency[row["currency"]] = (
            earned_by_currency.get(row["currency"], 0) + row["amount"]
        )
        assert row["userName"] and row["projectName"] and row["clientName"]
    totals = clockify_post(
        detailed_url(clockify_url, clockify_data),
        {**OCTOBER_UTC, "detailedFilter": {"page": 1, "pageSize": 1}},
    ).json()["totals"][0]
    assert {c["currency"]: c["amount"] for c in totals["totalAmountByCurrencies"]} == (
        earned_by_currency
    )


def test_clockify_filters(clockify_url: str, clockify_data: ClockifyData) -> None:
    url = detailed_url(clockify_url, clockify_data)
    expected = reportable_clockify(clockify_data)

    def ids(**extra: Any) -> set[str]:
        return {e["_id"] for e in clockify_report(url, **extra)}

    approved = {e["id"] for e in expected if e["approvalStatus"] == "APPROVED"}
    invoiced = {e["id"] for e in expected if e["invoiced"]}
    billable = {e["id"] for e in expected if e["billable"]}
    everything = {e["id"] for e in expected}
    assert ids(approvalState="APPROVED") == approved
    assert ids(approvalState="UNAPPROVED") == everything - approved
    assert ids(invoicingState="INVOICED") == invoiced
    assert ids(invoicingState="UNINVOICED") == everything - invoiced
    assert ids(billable=True) == billable
    assert ids(billable=False) == everything - billable
    to_bill = ids(billable=True, approvalState="APPROVED", invoicingState="UNINVOICED")
    assert to_bill == (billable & approved) - invoiced
    user = clockify_data.users[2]["id"]
    assert ids(users={"ids": [user], "contains": "CONTAINS", "status": "ALL"}) == {
        e["id"] for e in expected if e["userId"] == user
    }
    client = clockify_data.clients[0]
    client_projects = {p["id"] for p in clockify_data.projects if p["clientId"] == client["id"]}
    assert ids(clients={"ids": [client["id"]], "contains": "DOES_NOT_CONTAIN"}) == {
        e["id"] for e in expected if e["projectId"] not in client_projects
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**OCTOBER_UTC, "detailedFilter": {"page": 1}, "pageSize": 10}, "pageSize"),
        ({**OCTOBER_UTC}, "detailedFilter"),
        ({"dateRangeEnd": "2026-10-31T00:00:00Z", "detailedFilter": {}}, "dateRangeStart"),
        ({**OCTOBER_UTC, "detailedFilter": {"page": 0}}, "detailedFilter.page"),
        ({**OCTOBER_UTC, "detailedFilter": {"pageSize": 5000}}, "detailedFilter.pageSize"),
        ({**OCTOBER_UTC, "detailedFilter": {}, "approvalState": "YES"}, "approvalState"),
        ({**OCTOBER_UTC, "detailedFilter": {}, "invoicingState": "PAID"}, "invoicingState"),
        ({**OCTOBER_UTC, "detailedFilter": {}, "billable": "true"}, "billable"),
        ({**OCTOBER_UTC, "detailedFilter": {}, "users": {"ids": "abc"}}, "users.ids"),
        (
            {
                "dateRangeStart": "01/10/2026",
                "dateRangeEnd": "2026-10-31T00:00:00Z",
                "detailedFilter": {},
            },
            "dateRangeStart",
        ),
        (
            {
                "dateRangeStart": "2026-10-31T00:00:00Z",
                "dateRangeEnd": "2026-10-01T00:00:00Z",
                "detailedFilter": {},
            },
            "dateRangeEnd",
        ),
    ],
)
def test_clockify_report_validation_names_the_field(
    clockify_url: str, clockify_data: ClockifyData, body: dict[str, Any], field: str
) -> None:
    response = clockify_post(detailed_url(clockify_url, clockify_data), body)
    assert response.status_code == 400
    error = response.json()
    assert error["message"].startswith(f"{field}:") and isinstance(error["code"], int)


def test_clockify_mark_invoiced(
    clockify: FakeClockify, clockify_url: str, clockify_data: ClockifyData
) -> None:
    status = clockify_entry_ids_by_status(clockify_data)
    targets = [i for i in status["billable_approved"] if i not in status["out_of_period"]][:3]
    url = f"{clockify_url}/api/v1/workspaces/{clockify_data.workspace_id}/time-entries/invoiced"
    response = requests.patch(
        url,
        json={"timeEntryIds": targets, "invoiced": True},
        headers=CLOCKIFY_HEADERS,
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert set(targets) <= clockify.invoiced_ids()
    report = detailed_url(clockify_url, clockify_data)
    uninvoiced = {e["_id"] for e in clockify_report(report, invoicingState="UNINVOICED")}
    assert not uninvoiced & set(targets)
    invoiced_rows = clockify_report(report, invoicingState="INVOICED")
    assert set(targets) <= {e["_id"] for e in invoiced_rows}

    unknown = requests.patch(
        url,
        json={"timeEntryIds": ["0" * 24], "invoiced": True},
        headers=CLOCKIFY_HEADERS,
        timeout=TIMEOUT,
    )
    assert unknown.status_code == 400 and unknown.json()["message"].startswith("timeEntryIds:")
    extra = requests.patch(
        url,
        json={"timeEntryIds": targets, "invoiced": True, "note": "x"},
        headers=CLOCKIFY_HEADERS,
        timeout=TIMEOUT,
    )
    assert extra.status_code == 400 and extra.json()["message"].startswith("note:")


def test_clockify_free_plan(clockify_data: ClockifyData, plug: Callable[..., str]) -> None:
    fake = FakeClockify(clockify_data, ClockifySettings(paid_plan=False, per_second=1000))
    base = plug(fake)
    url = f"{base}/api/v1/workspaces/{clockify_data.workspace_id}/time-entries/invoiced"
    entry_id = clockify_data.time_entries[0]["id"]
    response = requests.patch(
        url,
        json={"timeEntryIds": [entry_id], "invoiced": True},
        headers=CLOCKIFY_HEADERS,
        timeout=TIMEOUT,
    )
    assert response.status_code == 403
    assert set(response.json()) == {"message", "code"}
    assert fake.invoiced_ids() == {e["id"] for e in clockify_data.time_entries if e["invoiced"]}
    too_long = clockify_post(
        detailed_url(base, clockify_data),
        {
            "dateRangeStart": "2026-09-01T00:00:00Z",
            "dateRangeEnd": "2026-10-31T23:59:59Z",
            "detailedFilter": {"page": 1},
        },
    )
    assert too_long.status_code == 400 and "31 days" in too_long.json()["message"]
    month = clockify_post(detailed_url(base, clockify_data), {**OCTOBER_UTC, "detailedFilter": {}})
    assert month.status_code == 200


def test_clockify_rate_limit_429(clockify_data: ClockifyData, plug: Callable[..., str]) -> None:
    clock = FakeClock()
    fake = FakeClockify(clockify_data, ClockifySettings(per_second=3, clock=clock))
    url = f"{plug(fake)}/api/v1/workspaces/{clockify_data.workspace_id}/clients"
    statuses = [
        requests.get(url, headers=CLOCKIFY_HEADERS, timeout=TIMEOUT).status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    limited = requests.get(url, headers=CLOCKIFY_HEADERS, timeout=TIMEOUT)
    assert limited.json() == {"message": "Too many requests", "code": 429}
    clock.now += 1.0
    assert requests.get(url, headers=CLOCKIFY_HEADERS, timeout=TIMEOUT).status_code == 200


def test_clockify_edit_and_delete_visible_to_report(
    clockify: FakeClockify, clockify_url: str, clockify_data: ClockifyData
) -> None:
    expected = reportable_clockify(clockify_data)
    edited, deleted = expected[10]["id"], expected[11]["id"]
    clockify.edit_entry(edited, description="Reworded ✏️", billable=False)
    clockify.delete_entry(deleted)
    rows = {e["_id"]: e for e in clockify_report(detailed_url(clockify_url, clockify_data))}
    assert deleted not in rows
    assert rows[edited]["description"] == "Reworded ✏️"
    assert rows[edited]["billable"] is False and rows[edited]["amount"] == 0
    assert len(rows) == len(expected) - 1


def test_clockify_lists_expenses_and_receipts(
    clockify: FakeClockify, clockify_url: str, clockify_data: ClockifyData
) -> None:
    ws = f"{clockify_url}/api/v1/workspaces/{clockify_data.workspace_id}"
    first = requests.get(
        f"{ws}/projects", params={"page-size": 10}, headers=CLOCKIFY_HEADERS, timeout=TIMEOUT
    )
    second = requests.get(
        f"{ws}/projects",
        params={"page": 2, "page-size": 10},
        headers=CLOCKIFY_HEADERS,
        timeout=TIMEOUT,
    )
    assert [p["id"] for p in first.json() + second.json()] == [
        p["id"] for p in clockify_data.projects[:20]
    ]
    pid = clockify_data.projects[0]["id"]
    tasks = requests.get(f"{ws}/projects/{pid}/tasks", headers=CLOCKIFY_HEADERS, timeout=TIMEOUT)
    assert tasks.json() and {t["projectId"] for t in tasks.json()} == {pid}
    bad = requests.get(
        f"{ws}/clients", params={"page-size": 0}, headers=CLOCKIFY_HEADERS, timeout=TIMEOUT
    )
    assert bad.status_code == 400 and bad.json()["message"].startswith("page-size:")

    categories = requests.get(
        f"{ws}/expenses/categories", headers=CLOCKIFY_HEADERS, timeout=TIMEOUT
    )
    assert categories.json()["count"] == len(clockify_data.expense_categories)
    seen: list[dict[str, Any]] = []
    page = 1
    while True:
        body = requests.get(
            f"{ws}/expenses",
            params={"page": page, "page-size": 25},
            headers=CLOCKIFY_HEADERS,
            timeout=TIMEOUT,
        ).json()
        assert body["expenses"]["count"] == len(clockify_data.expenses)
        chunk = body["expenses"]["expenses"]
        seen.extend(chunk)
        if len(chunk) < 25:
            break
        page += 1
    assert sorted(e["id"] for e in seen) == sorted(e["id"] for e in clockify_data.expenses)
    assert sum(t["total"] for t in body["dailyTotals"]) == sum(
        e["total"] for e in clockify_data.expenses
    )
    with_receipt = next(e for e in seen if e["fileId"])
    assert with_receipt["category"]["id"] and with_receipt["project"]["clientName"]
    receipt = requests.get(
        f"{ws}/expenses/{with_receipt['id']}/files/{with_receipt['fileId']}",
        headers=CLOCKIFY_HEADERS,
        timeout=TIMEOUT,
    )
    assert receipt.status_code == 200 and receipt.content.startswith(b"%PDF")
    assert date.fromisoformat(with_receipt["date"])

    clockify.fail_next(502)
    assert (
        requests.get(f"{ws}/clients", headers=CLOCKIFY_HEADERS, timeout=TIMEOUT).status_code == 502
    )
    other = f"{clockify_url}/api/v1/workspaces/{'0' * 24}/clients"
    assert requests.get(other, headers=CLOCKIFY_HEADERS, timeout=TIMEOUT).status_code == 403
