"""End to end into the fake QuickBooks Online: same totals as Xero, idempotent, crash-safe."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox.server import Sandbox
from tests.conftest import sandbox_config, write_config
from tests.helpers import live_invoices, quickbooks_config, run_cli

PERIOD = "2026-10"


@pytest.fixture
def qbo_env(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> None:
    monkeypatch.setenv("HARVEST_ACCESS_TOKEN", sandbox.harvest.settings.access_token)
    monkeypatch.setenv("XERO_ACCESS_TOKEN", sandbox.xero.settings.access_token)
    monkeypatch.setenv("QUICKBOOKS_ACCESS_TOKEN", sandbox.quickbooks.settings.access_token)


def _qbo_by_customer(sandbox: Sandbox) -> dict[str, list[dict[str, Any]]]:
    names = {c["Id"]: c["DisplayName"] for c in sandbox.quickbooks.lists["Customer"].values()}
    out: dict[str, list[dict[str, Any]]] = {}
    for inv in sandbox.quickbooks.invoices.values():
        out.setdefault(names[inv["CustomerRef"]["value"]], []).append(inv)
    return out


def _subtotal(inv: dict[str, Any]) -> Decimal:
    tax = Decimal(str((inv.get("TxnTaxDetail") or {}).get("TotalTax") or 0))
    return Decimal(str(inv["TotalAmt"])) - tax


@pytest.mark.usefixtures("qbo_env")
def test_same_per_customer_totals_as_xero_and_rerun_creates_nothing(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    xero = write_config(tmp_path / "xero.yaml", sandbox_config(sandbox, db_url))
    assert run_cli("sync", "--config", xero, "--period", PERIOD).code == 0
    qbo = quickbooks_config(sandbox, f"sqlite:///{tmp_path / 'qbo.db'}")
    config = write_config(tmp_path / "qbo.yaml", qbo)
    first = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert first.code == 0, first.stdout + first.stderr
    report = first.json()
    assert report["errors"] == []

    xero_totals = {
        inv["Contact"].get("Name") or inv["Contact"]["ContactID"]: Decimal(str(inv["SubTotal"]))
        for inv in live_invoices(sandbox.xero.invoices)
    }
    contacts = {c["ContactID"].lower(): c["Name"] for c in sandbox.month.xero_contacts}
    xero_totals = {
        contacts[str(inv["Contact"]["ContactID"]).lower()]: Decimal(str(inv["SubTotal"]))
        for inv in live_invoices(sandbox.xero.invoices)
    }
    qbo_invoices = _qbo_by_customer(sandbox)
    assert all(len(v) == 1 for v in qbo_invoices.values())
    qbo_totals = {name: _subtotal(invs[0]) for name, invs in qbo_invoices.items()}
    assert qbo_totals == xero_totals
    for inv in sandbox.quickbooks.invoices.values():
        assert inv["EmailStatus"] == "NotSet" and inv["PrintStatus"] == "NotSet"
        assert str(inv["PrivateNote"]).startswith(f"hb/agency-monthly/{PERIOD}/")

    again = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert (again["invoices_created"], again["invoices_updated"]) == (0, 0)
    assert again["invoices_unchanged"] == report["invoices_created"]


@pytest.mark.usefixtures("qbo_env")
def test_lost_response_and_sent_invoices_in_quickbooks(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    data = quickbooks_config(sandbox, db_url)
    data["targets"]["qbo"]["max_attempts"] = 1
    config = write_config(tmp_path / "qbo.yaml", data)
    sandbox.quickbooks.drop_after_commit(1)
    first = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert first.code == 1 and first.json()["status"] == "failed"
    assert len(sandbox.quickbooks.invoices) == 1  # committed, answer lost

    second = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert second.code == 0, second.stdout
    per_customer = Counter(
        inv["CustomerRef"]["value"] for inv in sandbox.quickbooks.invoices.values()
    )
    assert max(per_customer.values()) == 1
    created = second.json()["invoices_created"]
    assert created == len(per_customer) - 1  # the lost one was found by its key, not re-created

    # A user sends one: it is never touched again; a new entry goes on a new invoice.
    sent = next(iter(sandbox.quickbooks.invoices))
    sandbox.quickbooks.set_sent(sent)
    customer = sandbox.quickbooks.invoices[sent]["CustomerRef"]["value"]
    name = sandbox.quickbooks.lists["Customer"][customer]["DisplayName"]
    client = next(c for c in sandbox.month.clients if c["name"] == name)
    template = next(
        e
        for e in sandbox.month.time_entries
        if e["client"]["id"] == client["id"]
        and e["is_closed"]
        and e["billable"]
        and not e["is_billed"]
        and e["spent_date"].startswith(PERIOD)
        and e["task"]["id"] < 8000007
    )
    entry = dict(template, id=2199999998, hours=1.5, spent_date="2026-10-29")
    del entry["created_at"], entry["updated_at"]
    sandbox.harvest.add_entry(entry)
    before = dict(sandbox.quickbooks.invoices[sent])
    third = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert third["invoices_created"] == 1 and third["entries_billed"] == 1
    assert sandbox.quickbooks.invoices[sent] == before


@pytest.mark.usefixtures("qbo_env")
def test_quickbooks_rejections_and_throttles_are_reported_not_raised(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "qbo.yaml", quickbooks_config(sandbox, db_url))
    sandbox.quickbooks.close_books(date(2026, 10, 31))
    result = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert result.code == 1
    report = result.json()
    assert report["status"] == "partial"
    assert report["invoices_failed"] > 0 and report["invoices_created"] == 0
    assert all("QuickBooks Fault" in e for e in report["errors"])
    assert "Traceback" not in result.stdout + result.stderr

    sandbox.quickbooks.close_books(date(2000, 1, 1))
    sandbox.quickbooks.fail_next(429, count=3, xml=True)  # outlasts max_attempts (3)
    throttled = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert throttled.code == 1
    assert throttled.json()["errors"] == ["qbo: throttled by QuickBooks (Fault 3001)"]

    sandbox.quickbooks.fail_next(429, xml=True)  # an XML throttle, then a JSON one:
    sandbox.quickbooks.fail_next(429)  # both waited out
    retried = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert retried.code == 0, retried.stdout
    assert retried.json()["invoices_failed"] == 0
    assert retried.json()["invoices_created"] == report["invoices_failed"]


@pytest.mark.usefixtures("qbo_env")
def test_an_edited_entry_updates_only_its_unsent_invoice_keeping_its_id(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "qbo.yaml", quickbooks_config(sandbox, db_url))
    assert run_cli("sync", "--config", config, "--period", PERIOD).code == 0
    before = {k: dict(v) for k, v in sandbox.quickbooks.invoices.items()}
    entry = next(
        e
        for e in sandbox.month.time_entries
        if e["client"]["id"] == 5000003
        and e["is_closed"]
        and e["billable"]
        and not e["is_billed"]
        and e["spent_date"].startswith(PERIOD)
        and e["task"]["id"] < 8000007
    )
    sandbox.harvest.edit_entry(entry["id"], hours=float(Decimal(str(entry["hours"])) + 1))
    report = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert (report["invoices_created"], report["invoices_updated"]) == (0, 1)
    assert set(sandbox.quickbooks.invoices) == set(before)
    changed = [k for k, v in sandbox.quickbooks.invoices.items() if v != before[k]]
    assert len(changed) == 1
    inv = sandbox.quickbooks.invoices[changed[0]]
    assert int(inv["SyncToken"]) == int(before[changed[0]]["SyncToken"]) + 1
    delta = _subtotal(inv) - _subtotal(before[changed[0]])
    assert delta == Decimal(str(entry["billable_rate"]))  # one more hour at the entry's rate


@pytest.mark.usefixtures("qbo_env")
def test_classes_and_departments_from_the_mapping_reach_quickbooks(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    lists = sandbox.quickbooks.lists
    lists["Class"]["901"] = {
        "Id": "901",
        "Name": "Design Studio",
        "Active": True,
        "FullyQualifiedName": "Design Studio",
    }
    lists["Department"]["951"] = {
        "Id": "951",
        "Name": "Wellington",
        "Active": True,
        "FullyQualifiedName": "Wellington",
    }
    data = quickbooks_config(sandbox, db_url)
    mapping = data["profiles"]["agency-monthly"]["mapping"]
    mapping["clients"]["5000003"]["qbo_department"] = "Wellington"
    project = next(p for p in sandbox.month.projects if p["client"]["id"] == 5000003)
    mapping["projects"][str(project["id"])] = {"qbo_class": "Design Studio"}
    config = write_config(tmp_path / "qbo.yaml", data)
    assert run_cli("sync", "--config", config, "--period", PERIOD).code == 0

    name = next(c["name"] for c in sandbox.month.clients if c["id"] == 5000003)
    [invoice] = _qbo_by_customer(sandbox)[name]
    assert invoice["DepartmentRef"]["value"] == "951"
    classed = [
        line
        for line in invoice["Line"]
        if line.get("DetailType") == "SalesItemLineDetail"
        and (line["SalesItemLineDetail"].get("ClassRef") or {}).get("value") == "901"
    ]
    expected = sum(
        (
            Decimal(str(e["hours"])) * Decimal(str(e["billable_rate"]))
            for e in sandbox.month.time_entries
            if e["project"]["id"] == project["id"]
            and e["is_closed"]
            and e["billable"]
            and not e["is_billed"]
            and not e["is_running"]
            and e["spent_date"].startswith(PERIOD)
            and e["task"]["id"] < 8000007
        ),
        Decimal(0),
    )
    expected += sum(  # expenses on the project carry its class too
        (
            Decimal(str(x["total_cost"]))
            for x in sandbox.month.expenses
            if x["project"]["id"] == project["id"]
            and x["is_closed"]
            and x["billable"]
            and not x["is_billed"]
            and x["spent_date"].startswith(PERIOD)
        ),
        Decimal(0),
    )
    assert expected > 0
    assert sum((Decimal(str(line["Amount"])) for line in classed), Decimal(0)) == expected
    again = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert (again["invoices_created"], again["invoices_updated"]) == (0, 0)

    # a class QuickBooks doesn't have keeps those entries pending, named
    mapping["projects"][str(project["id"])] = {"qbo_class": "No Such Class"}
    write_config(config, data)
    report = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert any(
        u["what"] == "class No Such Class not found in the target" for u in report["unmapped"]
    )
