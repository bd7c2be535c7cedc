"""The seed generator and the fake Harvest API v2, over real HTTP on loopback."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import requests
from urllib3.util import SKIP_HEADER

from sandbox.harvest import SANDBOX_BEARER, FakeHarvest, HarvestSettings
from sandbox.seed import (
    AgencyMonth,
    SeedSpec,
    build_agency_month,
    harvest_time_entry_ids_by_status,
)
from sandbox.serving import RunningServer, serving

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

HEADERS = {
    "Authorization": f"Bearer {SANDBOX_BEARER}",
    "Harvest-Account-Id": "1234567",
    "User-Agent": "hourbridge-tests (dev@hourbridge.example)",
}
TIMEOUT = 10


@pytest.fixture(scope="module")
def month() -> AgencyMonth:
    return build_agency_month()


class SwappableApp:
    """One loopback server for the module; each test plugs in its own fresh fake.

    Stopping a werkzeug server takes ~0.5 s (its poll interval), so a server
    per test would cost more than the tests themselves.
    """

    def __init__(self) -> None:
        self.app: FakeHarvest | None = None

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
) -> Iterator[Callable[[FakeHarvest], RunningServer]]:
    running, swap = shared_server

    def install(app: FakeHarvest) -> RunningServer:
        swap.app = app
        return running

    yield install
    swap.app = None


@pytest.fixture
def fake(month: AgencyMonth) -> FakeHarvest:
    return FakeHarvest(month)


@pytest.fixture
def server(fake: FakeHarvest, plug: Callable[[FakeHarvest], RunningServer]) -> RunningServer:
    return plug(fake)


def get(url: str, **params: Any) -> requests.Response:
    return requests.get(url, headers=HEADERS, params=params or None, timeout=TIMEOUT)


def follow_next(first_url: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Walk links.next exactly as given. Returns the entries and the request count."""
    response = get(first_url, **params)
    requests_made = 1
    collected: list[dict[str, Any]] = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        collected.extend(body["time_entries"])
        next_url = body["links"]["next"]
        if next_url is None:
            return collected, requests_made
        response = requests.get(next_url, headers=HEADERS, timeout=TIMEOUT)
        requests_made += 1


def expected_order(entries: list[dict[str, Any]]) -> list[int]:
    ordered = sorted(entries, key=lambda e: (e["spent_date"], e["id"]), reverse=True)
    return [e["id"] for e in ordered]


# ---------------------------------------------------------------- seed


def test_seed_is_deterministic_and_ids_are_stable(month: AgencyMonth) -> None:
    again = build_agency_month(SeedSpec())
    dump = json.dumps(dataclasses.asdict(month), ensure_ascii=False, sort_keys=True)
    assert dump == json.dumps(dataclasses.asdict(again), ensure_ascii=False, sort_keys=True)

    assert [c["id"] for c in month.clients] == list(range(5000001, 5000031))
    assert [t["id"] for t in month.tasks] == list(range(8000001, 8000009))
    assert [u["id"] for u in month.users] == list(range(1780001, 1780021))
    assert month.projects[0]["id"] == 14000001
    entry_ids = [e["id"] for e in month.time_entries]
    assert entry_ids == list(range(2100000001, 2100000001 + len(entry_ids)))

    other = build_agency_month(SeedSpec(seed=7))
    assert [c["id"] for c in other.clients] == [c["id"] for c in month.clients]
    assert [e["hours"] for e in other.time_entries] != [e["hours"] for e in month.time_entries]


def test_seed_category_counts(month: AgencyMonth) -> None:
    status = harvest_time_entry_ids_by_status(month)
    total = len(month.time_entries)
    in_period = [e for e in month.time_entries if e["spent_date"].startswith("2026-10-")]
    assert 2950 <= len(in_period) <= 3050
    assert 0.02 <= len(status["out_of_period"]) / total <= 0.04
    assert 0.06 <= len(status["nonbillable"]) / total <= 0.10
    assert 0.05 <= len(status["unapproved"]) / total <= 0.09
    assert 0.02 <= len(status["billed"]) / total <= 0.04
    assert len(status["running"]) == 1
    assert len(status["billable_approved"]) > 0.75 * total

    # counted straight from the fields, not through the helper
    assert sum(1 for e in month.time_entries if e["is_running"]) == 1
    assert sum(1 for e in month.time_entries if not e["billable"]) == len(status["nonbillable"])

    out_days = {e["spent_date"] for e in month.time_entries if e["id"] in status["out_of_period"]}
    assert out_days <= {
        "2026-09-28",
        "2026-09-29",
        "2026-09-30",
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
    }
    assert any(d.startswith("2026-09") for d in out_days)
    assert any(d.startswith("2026-11") for d in out_days)


def test_seed_entry_fields_are_consistent(month: AgencyMonth) -> None:
    users = {u["id"]: u for u in month.users}
    projects = {p["id"]: p for p in month.projects}
    tasks = {t["id"]: t for t in month.tasks}
    for e in month.time_entries:
        hours = Decimal(str(e["hours"]))
        assert hours == hours.quantize(Decimal("0.01"))
        assert Decimal("0.25") <= hours <= Decimal("8.00")
        assert Decimal(str(e["rounded_hours"])) >= hours
        date.fromisoformat(e["spent_date"])
        assert e["created_at"].endswith("Z")
        assert e["updated_at"] >= e["created_at"]
        project = projects[e["project"]["id"]]
        assert e["client"] == project["client"]
        assert e["user"]["id"] in users
        assert e["task"]["id"] in tasks
        assert e["external_reference"] is None
        if e["billable"]:
            rate = Decimal(str(e["billable_rate"]))
            assert rate == rate.to_integral_value()
            if project["bill_by"] == "People":
                assert e["billable_rate"] == users[e["user"]["id"]]["default_hourly_rate"]
            if project["bill_by"] == "Project":
                assert e["billable_rate"] == project["hourly_rate"]
        else:
            assert e["billable_rate"] is None
            assert tasks[e["task"]["id"]]["billable_by_default"] is False
        if e["is_billed"]:
            assert e["is_locked"] and e["is_closed"]
            assert set(e["invoice"]) == {"id", "number"}
        else:
            assert e["invoice"] is None
        if e["is_closed"] and not e["is_billed"]:
            assert e["is_locked"]
            assert e["locked_reason"] == "Item Approved and Locked for this Time Period"
        if not e["is_closed"]:
            assert not e["is_locked"]
            assert e["locked_reason"] is None
        if e["is_running"]:
            assert e["timer_started_at"] and e["ended_time"] is None
            assert not e["is_closed"]
        else:
            assert e["timer_started_at"] is None

    notes = [e["notes"] for e in month.time_entries]
    assert any(n is None for n in notes)
    assert any(n is not None and len(n) >= 450 for n in notes)
    assert any(n is not None and any(ord(ch) > 0xFFFF for ch in n) for n in notes)  # emoji
    for user in month.users:
        rate = user["default_hourly_rate"]
        assert rate == int(rate)
        assert 95 <= rate <= 220


def test_seed_clients_and_xero_side(month: AgencyMonth) -> None:
    names = [c["name"] for c in month.clients]
    assert len(set(names)) == len(names) == 30
    assert sum(1 for n in names if not n.isascii()) >= 2
    currencies = Counter(c["currency"] for c in month.clients)
    assert currencies["NZD"] > len(names) / 2
    assert currencies["USD"] >= 3 and currencies["EUR"] >= 1 and currencies["GBP"] >= 1
    per_client = Counter(p["client"]["id"] for p in month.projects)
    assert set(per_client) == {c["id"] for c in month.clients}
    assert set(per_client.values()) <= {1, 2}

    assert len(month.unmapped_client_ids) == 2
    approved_billable = Counter(
        e["client"]["id"]
        for e in month.time_entries
        if e["billable"] and e["is_closed"] and not e["is_billed"] and not e["is_running"]
        and e["spent_date"].startswith("2026-10-")
    )  # fmt: skip
    for client_id in month.unmapped_client_ids:
        assert approved_billable[client_id] >= 3

    by_number = {c.get("ContactNumber"): c for c in month.xero_contacts}
    for client in month.clients:
        contact = by_number.get(f"HV-{client['id']}")
        if client["id"] in month.unmapped_client_ids:
            assert contact is None
            continue
        assert contact is not None
        assert contact["Name"] == client["name"]
        assert contact["DefaultCurrency"] == client["currency"]
        assert contact["ContactStatus"] == "ACTIVE" and contact["IsCustomer"] is True
    assert len(month.xero_contacts) > len(month.clients) - 2  # extra, unlinked contacts
    guids = [c["ContactID"] for c in month.xero_contacts]
    assert len(set(guids)) == len(guids)

    codes = {i["Code"] for i in month.xero_items}
    assert {"DEV", "DESIGN", "PM", "QA", "CONSULT", "SUPPORT"} <= codes
    assert all(len(code) <= 30 for code in codes)
    assert all(i["SalesDetails"]["AccountCode"] == "200" for i in month.xero_items)
    accounts = {a["Code"]: a for a in month.xero_accounts}
    assert accounts["200"]["Type"] == "REVENUE" and accounts["260"]["Type"] == "REVENUE"
    assert any(a["Type"] != "REVENUE" for a in month.xero_accounts)
    rates = {t["TaxType"]: t for t in month.xero_tax_rates}
    assert rates["OUTPUT2"]["EffectiveRate"] == 15
    assert all(rates[k]["EffectiveRate"] == 0 for k in ("NONE", "ZERORATEDOUTPUT", "EXEMPTOUTPUT"))
    assert {c["Code"] for c in month.xero_currencies} == {"NZD", "USD", "EUR", "GBP", "AUD"}
    assert month.base_currency == "NZD"


# ---------------------------------------------------------------- fake: paging


@pytest.mark.parametrize("per_page", [100, 2000])
def test_links_next_returns_every_entry_once(
    server: RunningServer, month: AgencyMonth, per_page: int
) -> None:
    got, requests_made = follow_next(f"{server.url}/v2/time_entries", per_page=per_page)
    ids = [e["id"] for e in got]
    assert len(ids) == len(set(ids)) == len(month.time_entries)
    assert ids == expected_order(month.time_entries)
    assert requests_made == -(-len(month.time_entries) // per_page)


def test_links_next_keeps_filters_and_uses_request_host(
    server: RunningServer, month: AgencyMonth
) -> None:
    got, _ = follow_next(
        f"{server.url}/v2/time_entries", per_page=100, **{"from": "2026-10-01", "to": "2026-10-31"}
    )
    in_period = [e for e in month.time_entries if e["spent_date"].startswith("2026-10-")]
    assert [e["id"] for e in got] == expected_order(in_period)

    body = get(f"{server.url}/v2/time_entries", per_page=100).json()
    assert body["links"]["next"].startswith(f"{server.url}/v2/time_entries?cursor=")
    assert body["total_entries"] == len(month.time_entries)
    assert body["page"] == 1 and body["next_page"] == 2 and body["previous_page"] is None

    other_host = requests.get(
        f"{server.url}/v2/time_entries",
        headers={**HEADERS, "Host": "harvest.test:8443"},
        params={"per_page": 10},
        timeout=TIMEOUT,
    ).json()
    for key in ("first", "next", "last"):
        assert other_host["links"][key].startswith("http://harvest.test:8443/v2/time_entries?")


def test_cursor_survives_deletes_between_pages(
    server: RunningServer, fake: FakeHarvest, month: AgencyMonth
) -> None:
    first = get(f"{server.url}/v2/time_entries", per_page=500).json()
    seen = [e["id"] for e in first["time_entries"]]
    # delete one already seen and one not yet seen: a page-number client would skip an entry
    fake.delete_entry(seen[0])
    not_seen = expected_order(month.time_entries)[700]
    fake.delete_entry(not_seen)
    url = first["links"]["next"]
    while url:
        body = requests.get(url, headers=HEADERS, timeout=TIMEOUT).json()
        seen.extend(e["id"] for e in body["time_entries"])
        url = body["links"]["next"]
    expected = [i for i in expected_order(month.time_entries) if i != not_seen]
    assert seen == expected


def test_page_param_and_envelope(server: RunningServer, month: AgencyMonth) -> None:
    total = len(month.time_entries)
    pages = -(-total // 100)
    ids: list[int] = []
    for page in range(1, pages + 1):
        body = get(f"{server.url}/v2/time_entries", page=page, per_page=100).json()
        assert set(body) == {
            "time_entries",
            "per_page",
            "total_pages",
            "total_entries",
            "next_page",
            "previous_page",
            "page",
            "links",
        }
        assert body["page"] == page and body["per_page"] == 100
        assert body["total_pages"] == pages and body["total_entries"] == total
        assert body["previous_page"] == (page - 1 if page > 1 else None)
        assert body["next_page"] == (page + 1 if page < pages else None)
        assert set(body["links"]) == {"first", "next", "previous", "last"}
        assert (body["links"]["next"] is None) == (page == pages)
        ids.extend(e["id"] for e in body["time_entries"])
    assert ids == expected_order(month.time_entries)

    beyond = get(f"{server.url}/v2/time_entries", page=pages + 1, per_page=100).json()
    assert beyond["time_entries"] == [] and beyond["links"]["next"] is None


def test_previous_cursor_goes_back(server: RunningServer) -> None:
    first = get(f"{server.url}/v2/time_entries", per_page=50).json()
    second = requests.get(first["links"]["next"], headers=HEADERS, timeout=TIMEOUT).json()
    assert second["page"] is None  # cursor pages carry no numbers except first and last
    back = requests.get(second["links"]["previous"], headers=HEADERS, timeout=TIMEOUT).json()
    assert [e["id"] for e in back["time_entries"]] == [e["id"] for e in first["time_entries"]]


def test_filters(server: RunningServer, month: AgencyMonth) -> None:
    url = f"{server.url}/v2/time_entries"
    running = get(url, is_running="true").json()["time_entries"]
    assert [e["is_running"] for e in running] == [True]
    billed = get(url, is_billed="true").json()
    assert billed["total_entries"] == sum(1 for e in month.time_entries if e["is_billed"])
    client_id = month.unmapped_client_ids[0]
    by_client = get(url, client_id=client_id).json()["time_entries"]
    assert by_client and {e["client"]["id"] for e in by_client} == {client_id}
    user_id = month.users[0]["id"]
    by_user = get(url, user_id=user_id, **{"from": "2026-10-05", "to": "2026-10-09"}).json()
    assert all(e["user"]["id"] == user_id for e in by_user["time_entries"])
    assert all("2026-10-05" <= e["spent_date"] <= "2026-10-09" for e in by_user["time_entries"])
    assert get(url, unknown_param="x").status_code == 200  # like Harvest: ignored


def test_updated_since_returns_only_the_edited_entry(
    server: RunningServer, fake: FakeHarvest, month: AgencyMonth
) -> None:
    target = month.time_entries[42]["id"]
    fake.edit_entry(target, notes="Edited after approval ✅", hours=1.5)
    edited = fake.entry(target)
    assert edited["updated_at"] > max(e["updated_at"] for e in month.time_entries)
    body = get(f"{server.url}/v2/time_entries", updated_since=edited["updated_at"]).json()
    assert [e["id"] for e in body["time_entries"]] == [target]
    assert body["time_entries"][0]["notes"] == "Edited after approval ✅"
    assert body["time_entries"][0]["hours"] == 1.5

    fake.edit_entry(target, notes="again")
    assert fake.entry(target)["updated_at"] > edited["updated_at"]


def test_deleted_and_added_entries(
    server: RunningServer, fake: FakeHarvest, month: AgencyMonth
) -> None:
    victim = month.time_entries[10]["id"]
    fake.delete_entry(victim)
    assert get(f"{server.url}/v2/time_entries/{victim}").status_code == 404
    listed = get(f"{server.url}/v2/time_entries").json()
    assert victim not in {e["id"] for e in listed["time_entries"]}
    assert listed["total_entries"] == len(month.time_entries) - 1

    added = {**month.time_entries[0], "id": 2199999999, "spent_date": "2026-11-30"}
    del added["updated_at"]
    fake.add_entry(added)
    first = get(f"{server.url}/v2/time_entries", per_page=1).json()["time_entries"][0]
    assert first["id"] == 2199999999 and first["updated_at"].endswith("Z")


# ---------------------------------------------------------------- fake: errors


def test_validation_errors(server: RunningServer) -> None:
    url = f"{server.url}/v2/time_entries"
    for params, word in [
        ({"per_page": "2001"}, "per_page"),
        ({"per_page": "0"}, "per_page"),
        ({"per_page": "ten"}, "per_page"),
        ({"page": "0"}, "page"),
        ({"from": "2026-13-01"}, "from"),
        ({"to": "31/10/2026"}, "to"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"is_billed": "yes"}, "is_billed"),
        ({"client_id": "abc"}, "client_id"),
    ]:
        response = get(url, **params)
        assert response.status_code == 422, params
        assert word in response.json()["message"]
    assert get(url, per_page="2000").status_code == 200


def test_bad_cursor_is_422(server: RunningServer) -> None:
    url = f"{server.url}/v2/time_entries"
    assert get(url, cursor="not-a-cursor").status_code == 422
    assert get(url, cursor="eyJhZnRlciI6eyJpZCI6MzAwN319").status_code == 422  # unsigned
    good = get(url, per_page=5).json()["links"]["next"]
    token = good.split("cursor=")[1].split("&")[0]
    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    response = get(url, cursor=tampered)
    assert response.status_code == 422
    assert "cursor" in response.json()["message"]
    # a cursor for time entries is no cursor for clients
    assert get(f"{server.url}/v2/clients", cursor=token).status_code == 422


def test_headers_are_required(server: RunningServer) -> None:
    url = f"{server.url}/v2/time_entries"
    # requests/urllib3 add a User-Agent of their own unless told to skip it
    no_ua = requests.get(url, headers={**HEADERS, "User-Agent": SKIP_HEADER}, timeout=TIMEOUT)
    assert no_ua.status_code == 400

    invalid = {
        "error": "invalid_token",
        "error_description": (
            "The access token provided is expired, revoked, malformed or invalid for other reasons."
        ),
    }
    bad_token = requests.get(
        url, headers={**HEADERS, "Authorization": "Bearer nope"}, timeout=TIMEOUT
    )
    assert bad_token.status_code == 401 and bad_token.json() == invalid
    no_token = requests.get(url, headers={**HEADERS, "Authorization": None}, timeout=TIMEOUT)
    assert no_token.status_code == 401 and no_token.json() == invalid
    no_account = requests.get(url, headers={**HEADERS, "Harvest-Account-Id": None}, timeout=TIMEOUT)
    assert no_account.status_code == 401
    other_account = requests.get(
        url, headers={**HEADERS, "Harvest-Account-Id": "999"}, timeout=TIMEOUT
    )
    assert other_account.status_code == 403
    assert other_account.json()["error"] == "forbidden"


def test_routes_and_content_type(server: RunningServer, fake: FakeHarvest) -> None:
    ok = get(f"{server.url}/v2/users/me")
    assert ok.status_code == 200
    assert ok.headers["Content-Type"] == "application/json; charset=utf-8"
    assert ok.json()["id"] == 1780001
    for path, key in [
        ("clients", "clients"),
        ("projects", "projects"),
        ("tasks", "tasks"),
        ("users", "users"),
    ]:
        body = get(f"{server.url}/v2/{path}").json()
        assert body[key] and body["page"] == 1
    assert get(f"{server.url}/v2/company").json()["name"]
    assert get(f"{server.url}/v2/clients/5000001").json()["name"] == "Acme Corporation"

    missing = get(f"{server.url}/v2/nope")
    assert missing.status_code == 404 and missing.json() == {"status": 404, "error": "Not Found"}
    post = requests.post(f"{server.url}/v2/time_entries", headers=HEADERS, timeout=TIMEOUT)
    assert post.status_code == 405
    assert fake.calls["POST /v2/time_entries"] == 1
    assert fake.calls["GET /v2/nope"] == 1


# ---------------------------------------------------------------- fake: limits and failures


def test_rate_limit_with_injected_clock(
    month: AgencyMonth, plug: Callable[[FakeHarvest], RunningServer]
) -> None:
    now = [1000.0]
    fake = FakeHarvest(
        month,
        HarvestSettings(requests_per_window=3, window_seconds=15.0, clock=lambda: now[0]),
    )
    url = f"{plug(fake).url}/v2/users/me"
    assert [get(url).status_code for _ in range(3)] == [200, 200, 200]
    limited = get(url)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) == 15
    assert limited.json() == {"message": "Too many requests"}
    now[0] += 14.0
    retry = get(url)
    assert retry.status_code == 429 and retry.headers["Retry-After"] == "1"
    now[0] += 1.5
    assert get(url).status_code == 200
    assert fake.calls["GET /v2/users/me"] == 6


def test_fail_next_then_recovers(server: RunningServer, fake: FakeHarvest) -> None:
    url = f"{server.url}/v2/time_entries"
    fake.fail_next(503, count=2)
    first, second = get(url, per_page=1), get(url, per_page=1)
    assert first.status_code == second.status_code == 503
    assert first.json() == {"status": 503, "error": "Service Unavailable"}
    assert get(url, per_page=1).status_code == 200

    fake.fail_next(429, retry_after=7)
    throttled = get(url, per_page=1)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert get(url, per_page=1).status_code == 200
    assert fake.calls["GET /v2/time_entries"] == 5
