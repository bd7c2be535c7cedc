"""Several trackers in one profile: Harvest and Toggl billed together, Clockify told what was
invoiced once the target confirmed it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.testing import BudgetTime
from sandbox.clockify import ClockifySettings, FakeClockify
from sandbox.server import Sandbox
from sandbox.serving import RunningServer, start_server
from sandbox.toggl import FakeToggl, TogglSettings
from sandbox.tracker_seed import ClockifyData, TogglData, build_clockify, build_toggl
from tests.conftest import sandbox_config, write_config
from tests.helpers import client_of_contact, expected_subtotals, live_invoices, run_cli

PERIOD = "2026-10"
ZONE = ZoneInfo("Pacific/Auckland")
TASK_ITEMS = {
    "Design": "DESIGN",
    "Development": "DEV",
    "Project Management": "PM",
    "QA": "QA",
    "Consulting": "CONSULT",
    "Support": "SUPPORT",
}


@pytest.fixture
def toggl(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TogglData, FakeToggl, RunningServer]]:
    data = build_toggl()
    fake = FakeToggl(data, TogglSettings(per_second=10_000, burst=10_000, hourly_quota=100_000))
    server = start_server(fake)
    monkeypatch.setenv("TOGGL_API_TOKEN", fake.settings.api_token)
    try:
        yield data, fake, server
    finally:
        server.stop()


def _contacts_by_name(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    return {c["Name"]: c for c in sandbox.month.xero_contacts if c.get("ContactNumber")}


def _toggl_profile(sandbox: Sandbox, db_url: str, data: TogglData, url: str) -> dict[str, Any]:
    config = sandbox_config(sandbox, db_url)
    config["sources"]["toggl"] = {
        "type": "toggl",
        "api_token": "${TOGGL_API_TOKEN}",
        "workspace_id": data.workspace_id,
        "base_url": url,
        "approval": "tag",
        "timezone": "Pacific/Auckland",
        "max_attempts": 3,
    }
    profile = config["profiles"]["agency-monthly"]
    del profile["source"]
    profile["sources"] = ["harvest", "toggl"]
    mapping = profile["mapping"]
    contacts = _contacts_by_name(sandbox)
    for client in data.clients:
        if client["name"] in contacts:  # the agency's own clients, tracked in both tools
            number = contacts[client["name"]]["ContactNumber"]
            mapping["clients"][f"toggl:{client['id']}"] = {"contact_number": number}
    for task in data.tasks:
        mapping["tasks"][f"toggl:{task['id']}"] = {"item_code": TASK_ITEMS[task["name"]]}
    return config


def _toggl_expected(sandbox: Sandbox, data: TogglData) -> dict[tuple[str, str], Decimal]:
    """Σ hours × rate per (Xero contact, currency) from the Toggl seed, restated here."""
    contacts = _contacts_by_name(sandbox)
    client_name = {c["id"]: c["name"] for c in data.clients}
    project_client = {p["id"]: p.get("client_id") for p in data.projects}
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for e in data.time_entries:
        tags = set(e.get("tags") or [])
        if (
            not e["billable"]
            or e["duration"] < 0
            or e.get("server_deleted_at")
            or "approved" not in tags
            or "invoiced" in tags
            or e.get("task_id") is None
            or e.get("project_id") is None
        ):
            continue
        day = datetime.fromisoformat(e["start"]).astimezone(ZONE).date()
        if not day.isoformat().startswith(PERIOD):
            continue
        name = client_name.get(project_client.get(e["project_id"]))
        if name not in contacts:
            continue
        cents, currency = data.hourly_rate(e["project_id"], e["user_id"])
        hours = Decimal(e["duration"]) / 3600
        sums[(contacts[name]["ContactID"].lower(), currency)] += hours * Decimal(cents) / 100
    return sums


@pytest.mark.usefixtures("tokens")
def test_harvest_and_toggl_in_one_profile_make_one_invoice_per_client_and_currency(
    sandbox: Sandbox,
    db_url: str,
    tmp_path: Path,
    toggl: tuple[TogglData, FakeToggl, RunningServer],
    budget_time: BudgetTime,
) -> None:
    data, _fake, server = toggl
    config = write_config(tmp_path / "c.yaml", _toggl_profile(sandbox, db_url, data, server.url))
    result = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert result.code == 0, result.stdout + result.stderr
    report = result.json()
    assert set(report["api_calls"]) == {"harvest", "toggl", "xero"}
    # Toggl's one call a second was waited for, on the budgets' time: never really
    assert len(budget_time.waits) == report["api_calls"]["toggl"] - 1
    assert set(budget_time.waits) == {1.0}

    # independent expectation: Harvest per client (+ expenses) plus Toggl per contact
    clients = [
        c["id"] for c in sandbox.month.clients if c["id"] not in sandbox.month.unmapped_client_ids
    ]
    harvest = expected_subtotals(sandbox.month, clients=clients, tasks=range(8000001, 8000007))
    contact_of_client = {v: k for k, v in client_of_contact(sandbox.month).items()}
    currency_of = {c["id"]: c["currency"] for c in sandbox.month.clients}
    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for client_id, amount in harvest.items():
        expected[(contact_of_client[client_id], currency_of[client_id])] += amount
    toggl_part = _toggl_expected(sandbox, data)
    assert toggl_part, "the Toggl seed must bill some shared clients"
    for key, amount in toggl_part.items():
        expected[key] += amount

    got: dict[tuple[str, str], Decimal] = {}
    for inv in live_invoices(sandbox.xero.invoices):
        key = (str(inv["Contact"]["ContactID"]).lower(), str(inv["CurrencyCode"]))
        assert key not in got, f"two invoices for {key}"
        got[key] = Decimal(str(inv["SubTotal"]))
    assert got == {k: v.quantize(Decimal("0.01")) for k, v in expected.items()}

    again = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert (again["invoices_created"], again["invoices_updated"]) == (0, 0)


@pytest.fixture
def clockify(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[ClockifyData, FakeClockify, RunningServer]]:
    data = build_clockify()
    fake = FakeClockify(data, ClockifySettings(per_second=100_000))
    server = start_server(fake)
    monkeypatch.setenv("CLOCKIFY_API_KEY", fake.settings.api_key)
    try:
        yield data, fake, server
    finally:
        server.stop()


@pytest.mark.usefixtures("tokens")
def test_clockify_learns_what_was_invoiced_only_after_the_target_confirmed(
    sandbox: Sandbox,
    db_url: str,
    tmp_path: Path,
    clockify: tuple[ClockifyData, FakeClockify, RunningServer],
) -> None:
    data, fake, server = clockify
    config = sandbox_config(sandbox, db_url)
    config["sources"] = {
        "clockify": {
            "type": "clockify",
            "api_key": "${CLOCKIFY_API_KEY}",
            "workspace_id": data.workspace_id,
            "base_url": server.url + "/api/v1",
            "reports_url": server.url + "/reports/v1",
            "time_zone": "Pacific/Auckland",
            "max_attempts": 3,
        }
    }
    profile = config["profiles"]["agency-monthly"]
    profile["source"] = "clockify"
    contacts = _contacts_by_name(sandbox)
    profile["mapping"]["clients"] = {
        c["id"]: {"contact_number": contacts[c["name"]]["ContactNumber"]}
        for c in data.clients
        if c["name"] in contacts
    }
    profile["mapping"]["tasks"] = {}
    profile["mapping"]["default_task"] = {"account_code": "200"}
    path = write_config(tmp_path / "c.yaml", config)
    before = fake.invoiced_ids()

    sandbox.xero.drop_after_commit(1)  # the target's answer is lost: nothing may be marked
    config["targets"]["xero"]["max_attempts"] = 1
    write_config(path, config)
    lost = run_cli("sync", "--config", path, "--period", PERIOD, "--json").json()
    assert lost["status"] == "failed"
    assert fake.invoiced_ids() == before

    config["targets"]["xero"]["max_attempts"] = 3
    write_config(path, config)
    report = run_cli("sync", "--config", path, "--period", PERIOD, "--json").json()
    assert report["status"] == "succeeded", report["errors"]
    assert report["entries_billed"] > 0
    newly = fake.invoiced_ids() - before
    assert len(newly) == report["writebacks_done"] > 0
    assert report["writebacks_failed"] == 0
    # the next run sees those entries as billed by us, never as "already billed" elsewhere
    again = run_cli("sync", "--config", path, "--period", PERIOD, "--json").json()
    assert again["invoices_created"] == again["invoices_updated"] == 0
    assert again["writebacks_done"] == 0
