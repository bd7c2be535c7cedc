"""End to end against the fake Harvest and the fake Xero: receipts attached once, tracking
categories on lines (and an unknown option refused by the fake), expense markups, and a
contact whose default currency differs from the client's."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from sandbox.harvest import receipt_bytes
from sandbox.server import Sandbox
from tests.conftest import sandbox_config, write_config
from tests.helpers import client_of_contact, eligible_expense, live_invoices, run_cli

PERIOD = "2026-10"
ATTACH = "PUT /Invoices/{InvoiceID}/Attachments/{FileName}"
LIST = "GET /Invoices/{InvoiceID}/Attachments"


def _mapped(sandbox: Sandbox, client_id: int) -> bool:
    return client_id not in sandbox.month.unmapped_client_ids


def _receipts_by_client(sandbox: Sandbox) -> dict[int, set[str]]:
    """The receipt file names each client's invoice must carry, from the seed."""
    out: dict[int, set[str]] = defaultdict(set)
    for x in sandbox.month.expenses:
        if eligible_expense(x, PERIOD) and x["receipt"] and _mapped(sandbox, x["client"]["id"]):
            out[x["client"]["id"]].add(f"receipt-harvest-expense-{x['id']}.pdf")
    return out


def _attachments_by_client(sandbox: Sandbox) -> dict[int, list[str]]:
    contacts = client_of_contact(sandbox.month)
    out: dict[int, list[str]] = {}
    for inv in live_invoices(sandbox.xero.invoices):
        held = sandbox.xero.attachments.get(str(inv["InvoiceID"]).lower(), [])
        if held:
            client = contacts[str(inv["Contact"]["ContactID"]).lower()]
            out[client] = sorted(a["FileName"] for a in held)
    return out


@pytest.mark.usefixtures("tokens")
def test_receipts_are_attached_once_across_runs(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    data = sandbox_config(sandbox, db_url)
    expected = _receipts_by_client(sandbox)
    total = sum(len(names) for names in expected.values())
    assert total > 0 and max(len(n) for n in expected.values()) <= 10

    # invoices pushed, receipts not (as after a crash between the two, or with it off)
    data["targets"]["xero"]["attach_receipts"] = False
    off = run_cli("sync", "--config", write_config(tmp_path / "off.yaml", data), "--period", PERIOD)
    assert off.code == 0, off.stdout + off.stderr
    assert sandbox.xero.attachments == {} and sandbox.xero.calls[ATTACH] == 0

    data["targets"]["xero"]["attach_receipts"] = True
    config = write_config(tmp_path / "c.yaml", data)
    first = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert first.code == 0, first.stdout + first.stderr
    assert first.json()["invoices_created"] == 0  # the invoices were already there
    assert first.json()["receipts_attached"] == total
    assert first.json()["warnings"] == []
    got = _attachments_by_client(sandbox)
    assert {c: set(n) for c, n in got.items()} == expected
    # each one is the file the fake Harvest serves for that expense, as a PDF
    for held in sandbox.xero.attachments.values():
        for attachment in held:
            expense_id = int(attachment["FileName"].rsplit("-", 1)[1].split(".")[0])
            file_name = next(
                x["receipt"]["file_name"] for x in sandbox.month.expenses if x["id"] == expense_id
            )
            assert attachment["_content"] == receipt_bytes(expense_id, file_name)
            assert attachment["MimeType"] == "application/pdf"
    assert sandbox.xero.calls[ATTACH] == total

    assert sandbox.xero.calls[LIST] == 0  # new to attachments: nothing to look up

    again = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert again.code == 0, again.stdout + again.stderr
    assert again.json()["receipts_attached"] == 0
    assert again.json()["invoices_created"] == 0
    assert sandbox.xero.calls[ATTACH] == total  # nothing attached twice
    assert sandbox.xero.calls[LIST] == 0  # the ledger knows: no call at all
    assert _attachments_by_client(sandbox) == got

    # a run that died after attaching but before recording: the next run lists the
    # invoice's attachments, finds the receipts there and records them, attaching nothing
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM receipt_attachments"))
    engine.dispose()
    third = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert third.code == 0, third.stdout + third.stderr
    assert third.json()["receipts_attached"] == 0
    assert sandbox.xero.calls[ATTACH] == total
    assert sandbox.xero.calls[LIST] == len(expected)  # one look per invoice with receipts
    assert _attachments_by_client(sandbox) == got


def _two_clients_with_expenses(sandbox: Sandbox) -> tuple[int, int]:
    """Two mapped NZD clients that have billable mileage (category 4100001) this month."""
    found = sorted(
        {
            x["client"]["id"]
            for x in sandbox.month.expenses
            if eligible_expense(x, PERIOD)
            and x["expense_category"]["id"] == 4100001
            and x["client"]["currency"] == "NZD"
            and _mapped(sandbox, x["client"]["id"])
        }
    )
    assert len(found) >= 2
    return found[0], found[1]


@pytest.mark.usefixtures("tokens")
def test_tracking_on_lines_markup_and_an_unknown_option_refused_by_the_fake(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    tracked, refused = _two_clients_with_expenses(sandbox)
    data = sandbox_config(sandbox, db_url)
    mapping = data["profiles"]["agency-monthly"]["mapping"]
    mapping["clients"][str(tracked)]["tracking"] = [
        {
            "name": "region",
            "option": "south island",
        },  # matched in any case; stored as Xero spells them
        {"name": "Business unit", "option": "Design"},
    ]
    mapping["clients"][str(refused)]["tracking"] = [{"name": "Region", "option": "Atlantis"}]
    mapping["expense_categories"]["4100001"]["markup_percent"] = "10"
    config = write_config(tmp_path / "c.yaml", data)

    synced = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert synced.code == 1, synced.stdout + synced.stderr  # one invoice failed
    report = synced.json()
    assert report["invoices_failed"] == 1
    (error,) = report["errors"]
    assert "The tracking option 'Atlantis' does not exist or is archived in tracking " in error
    assert report["invoices_created"] >= 20  # every other invoice went through

    contacts = client_of_contact(sandbox.month)
    by_client = {
        contacts[str(inv["Contact"]["ContactID"]).lower()]: inv
        for inv in live_invoices(sandbox.xero.invoices)
    }
    assert refused not in by_client
    lines = by_client[tracked]["LineItems"]
    assert lines
    for line in lines:
        assert [(t["Name"], t["Option"]) for t in line["Tracking"]] == [
            ("Region", "South Island"),
            ("Business unit", "Design"),
        ]
    # mileage at 0.95 a km, +10 %: 1.045 → 1.05 a km, and units × 1.05 is the line amount
    units = sum(
        Decimal(str(x["units"]))
        for x in sandbox.month.expenses
        if eligible_expense(x, PERIOD)
        and x["client"]["id"] == tracked
        and x["expense_category"]["id"] == 4100001
    )
    (mileage,) = [li for li in lines if li.get("Description") == "Mileage"]
    assert (mileage["Quantity"], mileage["UnitAmount"]) == (units, Decimal("1.05"))
    assert mileage["LineAmount"] == (units * Decimal("1.05")).quantize(Decimal("0.01"))
    assert mileage["AccountCode"] == "260"
    # other clients' lines carry no tracking
    untracked = next(inv for c, inv in by_client.items() if c != tracked)
    assert all(li["Tracking"] == [] for li in untracked["LineItems"])

    # a re-run sees the tracked invoice as it is (Xero's spelling): nothing to update
    again = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert again.json()["invoices_updated"] == 0
    assert again.json()["invoices_created"] == 0
    assert again.json()["invoices_failed"] == 1


@pytest.mark.usefixtures("tokens")
def test_a_contact_in_another_currency_fails_its_invoice_and_others_go_through_inclusive(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    data = sandbox_config(sandbox, db_url)
    assert data["targets"]["xero"]["line_amount_types"] == "Exclusive"
    data["profiles"]["agency-monthly"]["mapping"]["line_amount_types"] = "Inclusive"
    config = write_config(tmp_path / "c.yaml", data)
    contacts = client_of_contact(sandbox.month)
    client = 5000004  # Harbour City Dental: NZD in Harvest and in the mapping
    contact: dict[str, Any] = next(
        c for c in sandbox.xero.contacts if contacts.get(str(c["ContactID"]).lower()) == client
    )
    assert contact["DefaultCurrency"] == "NZD"
    contact["DefaultCurrency"] = "AUD"  # someone changed it in Xero

    synced = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert synced.code == 1, synced.stdout + synced.stderr
    report = synced.json()
    assert report["invoices_failed"] == 1
    (error,) = report["errors"]
    assert (
        "currency mismatch: the client is billed in NZD but contact 'Harbour City Dental' "
        "has default currency AUD in the target" in error
    )
    assert "never converts" in error
    failed = [inv for inv in report["invoices"] if inv["action"] == "failed"]
    assert [inv["contact"] for inv in failed] == ["Harbour City Dental"]
    waiting = [u for u in report["unmapped"] if "Harbour City Dental" in u["what"]]
    assert waiting and waiting[0]["entries"] == failed[0]["entries"]
    assert report["entries_pending"]["unmapped"] >= failed[0]["entries"]
    billed_clients = {
        contacts[str(inv["Contact"]["ContactID"]).lower()]
        for inv in live_invoices(sandbox.xero.invoices)
    }
    assert client not in billed_clients
    assert len(billed_clients) == report["invoices_created"] >= 20
    # the profile's line_amount_types wins over the target's
    assert {inv["LineAmountTypes"] for inv in live_invoices(sandbox.xero.invoices)} == {"Inclusive"}
