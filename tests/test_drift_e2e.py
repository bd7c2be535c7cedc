"""Edits after invoicing, end to end: fake Harvest → hourbridge (CLI) → fake Xero.

An entry billed on an invoice that was then authorised is edited or deleted in Harvest; the
next run handles it as the profile's ``drift`` says (flag, adjustment or credit_note), lists
it in the run report with its delta, and a re-run adds nothing.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox.server import Sandbox
from tests.conftest import sandbox_config, write_config
from tests.helpers import eligible, live_invoices, quickbooks_config, run_cli

PERIOD = "2026-10"
ACME = 5000001  # USD, zero-rated: an invoice's total equals its subtotal
TASKS = range(8000001, 8000007)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _config(sandbox: Sandbox, db_url: str, tmp_path: Path, drift: str | None) -> Path:
    data = sandbox_config(sandbox, db_url)
    if drift is not None:
        data["profiles"]["agency-monthly"]["drift"] = drift
    return write_config(tmp_path / "c.yaml", data)


def _acme_contact(sandbox: Sandbox) -> str:
    contact = next(c for c in sandbox.month.xero_contacts if c.get("ContactNumber") == "HV-5000001")
    return str(contact["ContactID"]).lower()


def _quickbooks_config(
    sandbox: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drift: str
) -> Path:
    monkeypatch.setenv("QUICKBOOKS_ACCESS_TOKEN", sandbox.quickbooks.settings.access_token)
    data = quickbooks_config(sandbox, db_url)
    data["profiles"]["agency-monthly"]["drift"] = drift
    return write_config(tmp_path / "q.yaml", data)


def _acme_customer(sandbox: Sandbox) -> str:
    """The fake QuickBooks' Customer Id for the Acme client."""
    acme = next(c["name"] for c in sandbox.month.clients if c["id"] == ACME)
    return next(
        str(c["Id"])
        for c in sandbox.quickbooks.lists["Customer"].values()
        if c["DisplayName"] == acme
    )


def _acme_invoices(sandbox: Sandbox) -> list[dict[str, Any]]:
    contact = _acme_contact(sandbox)
    return [
        inv
        for inv in live_invoices(sandbox.xero.invoices)
        if str(inv["Contact"]["ContactID"]).lower() == contact
    ]


def _acme_entries(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [
        e
        for e in sandbox.month.time_entries
        if e["client"]["id"] == ACME and eligible(e, PERIOD) and e["task"]["id"] in TASKS
    ]


def _sync(config: Path) -> dict[str, Any]:
    result = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert result.code == 0, result.stdout + result.stderr
    return result.json()


def _bill_and_authorise(sandbox: Sandbox, config: Path) -> dict[str, Any]:
    """First run: drafts; then someone approves Acme's invoice in Xero."""
    _sync(config)
    [invoice] = _acme_invoices(sandbox)
    sandbox.xero.set_status(invoice["InvoiceID"], "AUTHORISED")
    return dict(sandbox.xero.invoices[invoice["InvoiceID"]])


def _hours(entry: dict[str, Any]) -> Decimal:
    return Decimal(str(entry["hours"]))


def _rate(entry: dict[str, Any]) -> Decimal:
    return Decimal(str(entry["billable_rate"]))


def _add_entry(sandbox: Sandbox, template: dict[str, Any], entry_id: int, hours: str) -> None:
    fresh = dict(template, id=entry_id, hours=float(hours), spent_date="2026-10-30")
    del fresh["created_at"], fresh["updated_at"]  # the fake stamps a new entry "now"
    sandbox.harvest.add_entry(fresh)


@pytest.mark.usefixtures("tokens")
def test_by_default_a_drift_is_flagged_for_review_and_nothing_is_pushed(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _config(sandbox, db_url, tmp_path, drift=None)
    locked = _bill_and_authorise(sandbox, config)
    entry = _acme_entries(sandbox)[0]
    sandbox.harvest.edit_entry(entry["id"], hours=float(_hours(entry) + 1))

    report = _sync(config)
    assert (report["invoices_created"], report["invoices_updated"]) == (0, 0)
    assert sandbox.xero.invoices[locked["InvoiceID"]] == locked
    assert len(_acme_invoices(sandbox)) == 1
    [drift] = report["drifts"]
    assert drift["entry"] == f"harvest:{entry['id']}"
    assert drift["invoice"] == locked["InvoiceNumber"]
    assert drift["handling"] == "flag" and drift["outcome"].startswith("flagged for review")
    assert Decimal(drift["delta_hours"]) == 1
    assert Decimal(drift["delta_amount"]) == _cents(_rate(entry))
    assert drift["currency"] == "USD"
    assert report["drift_totals"]["USD"] == {
        "hours": drift["delta_hours"],
        "amount": drift["delta_amount"],
    }
    assert report["error_classes"]["drift"] == 1  # one event for the entry, not two

    shown = run_cli("runs", "show", report["run_id"], "--config", config)
    assert shown.code == 0, shown.stderr
    assert "drift (1)" in shown.stdout
    assert f"harvest:{entry['id']}" in shown.stdout and "flagged for review" in shown.stdout

    again = _sync(config)
    assert again["drifts"] == [] and again["error_classes"]["drift"] == 0
    assert (again["invoices_created"], again["invoices_updated"]) == (0, 0)


@pytest.mark.usefixtures("tokens")
def test_adjustment_goes_on_the_next_invoice_once_and_a_re_edit_adds_only_the_new_delta(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _config(sandbox, db_url, tmp_path, drift="adjustment")
    locked = _bill_and_authorise(sandbox, config)
    entry = _acme_entries(sandbox)[0]
    rate = _rate(entry)
    sandbox.harvest.edit_entry(entry["id"], hours=float(_hours(entry) + Decimal("1.5")))

    report = _sync(config)
    assert report["invoices_created"] == 1
    assert sandbox.xero.invoices[locked["InvoiceID"]] == locked
    [fresh] = [inv for inv in _acme_invoices(sandbox) if inv["InvoiceID"] != locked["InvoiceID"]]
    assert fresh["Status"] == "DRAFT"
    [line] = fresh["LineItems"]
    assert Decimal(str(line["Quantity"])) == Decimal("1.5")
    assert Decimal(str(line["UnitAmount"])) == rate
    assert locked["InvoiceNumber"] in line["Description"]
    assert f"harvest:{entry['id']}" in line["Description"]
    assert Decimal(str(fresh["SubTotal"])) == _cents(Decimal("1.5") * rate)
    [drift] = report["drifts"]
    assert drift["handling"] == "adjustment"
    assert Decimal(drift["delta_hours"]) == Decimal("1.5")
    assert Decimal(drift["delta_amount"]) == _cents(Decimal("1.5") * rate)
    assert fresh["Reference"] in drift["outcome"]

    again = _sync(config)
    assert (again["invoices_created"], again["invoices_updated"]) == (0, 0)
    assert again["drifts"] == []
    assert len(sandbox.xero.invoices[fresh["InvoiceID"]]["LineItems"]) == 1

    # edited again: only the new half hour is added, on the same (still DRAFT) invoice
    sandbox.harvest.edit_entry(entry["id"], hours=float(_hours(entry) + 2))
    third = _sync(config)
    assert (third["invoices_created"], third["invoices_updated"]) == (0, 1)
    [drift] = third["drifts"]
    assert Decimal(drift["delta_hours"]) == Decimal("0.5")
    lines = sandbox.xero.invoices[fresh["InvoiceID"]]["LineItems"]
    quantities = sorted(Decimal(str(li["Quantity"])) for li in lines)
    assert quantities == [Decimal("0.5"), Decimal("1.5")]
    assert len(_acme_invoices(sandbox)) == 2


@pytest.mark.usefixtures("tokens")
def test_a_deleted_billed_entry_gives_a_negative_adjustment_once_an_invoice_can_carry_it(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _config(sandbox, db_url, tmp_path, drift="adjustment")
    locked = _bill_and_authorise(sandbox, config)
    gone = _acme_entries(sandbox)[0]
    rate = _rate(gone)
    sandbox.harvest.delete_entry(gone["id"])

    # nothing new to bill Acme yet: a negative invoice would be refused, so it waits
    waiting = _sync(config)
    assert waiting["invoices_created"] == 0
    [drift] = waiting["drifts"]
    assert drift["change"] == "deleted" and drift["outcome"].startswith("waits")
    assert Decimal(drift["delta_hours"]) == -_hours(gone)
    assert Decimal(drift["delta_amount"]) == _cents(-_hours(gone) * rate)

    # a late entry for Acme: the next invoice carries it and the reduction
    late = _hours(gone) + 2
    _add_entry(sandbox, gone, 2199999998, str(late))
    settled = _sync(config)
    assert settled["invoices_created"] == 1
    [fresh] = [inv for inv in _acme_invoices(sandbox) if inv["InvoiceID"] != locked["InvoiceID"]]
    lines = {Decimal(str(li["Quantity"])): li for li in fresh["LineItems"]}
    assert set(lines) == {late, -_hours(gone)}
    assert locked["InvoiceNumber"] in lines[-_hours(gone)]["Description"]
    assert Decimal(str(fresh["SubTotal"])) == _cents(late * rate) + _cents(-_hours(gone) * rate)
    [drift] = settled["drifts"]
    assert drift["handling"] == "adjustment" and fresh["Reference"] in drift["outcome"]
    assert sandbox.xero.invoices[locked["InvoiceID"]] == locked

    again = _sync(config)
    assert (again["invoices_created"], again["invoices_updated"], again["drifts"]) == (0, 0, [])


@pytest.mark.usefixtures("tokens")
def test_credit_note_mode_credits_a_reduction_once_and_adds_an_increase_to_the_next_invoice(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _config(sandbox, db_url, tmp_path, drift="credit_note")
    locked = _bill_and_authorise(sandbox, config)
    entries = _acme_entries(sandbox)
    cut = next(e for e in entries if _hours(e) > 1)
    sandbox.harvest.edit_entry(cut["id"], hours=float(_hours(cut) - 1))
    sandbox.xero.drop_after_commit()  # the credit note's answer is lost once: retried, not doubled

    report = _sync(config)
    assert report["invoices_created"] == 0
    [note] = sandbox.xero.credit_notes.values()
    assert note["Type"] == "ACCRECCREDIT" and note["Status"] == "DRAFT"
    assert str(note["Reference"]).startswith("hb/agency-monthly/cn/")
    assert str(note["Contact"]["ContactID"]).lower() == _acme_contact(sandbox)
    assert note["CurrencyCode"] == "USD"
    [line] = note["LineItems"]
    assert Decimal(str(line["Quantity"])) == 1
    assert locked["InvoiceNumber"] in line["Description"]
    assert Decimal(str(note["Total"])) == _cents(_rate(cut))
    [drift] = report["drifts"]
    assert drift["handling"] == "credit_note"
    assert Decimal(drift["delta_amount"]) == -_cents(_rate(cut))
    assert note["Reference"] in drift["outcome"]

    again = _sync(config)
    assert len(sandbox.xero.credit_notes) == 1 and again["drifts"] == []

    other = next(e for e in entries if e["id"] != cut["id"])
    sandbox.harvest.edit_entry(other["id"], hours=float(_hours(other) + 1))
    up = _sync(config)
    assert up["invoices_created"] == 1 and len(sandbox.xero.credit_notes) == 1
    [fresh] = [inv for inv in _acme_invoices(sandbox) if inv["InvoiceID"] != locked["InvoiceID"]]
    assert [Decimal(str(li["Quantity"])) for li in fresh["LineItems"]] == [1]


@pytest.mark.usefixtures("tokens")
def test_an_edit_on_a_draft_updates_the_draft_and_is_in_the_run_report(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _config(sandbox, db_url, tmp_path, drift="adjustment")
    _sync(config)
    [draft] = _acme_invoices(sandbox)
    entry = _acme_entries(sandbox)[0]
    sandbox.harvest.edit_entry(entry["id"], hours=float(_hours(entry) + 1))

    report = _sync(config)
    assert (report["invoices_created"], report["invoices_updated"]) == (0, 1)
    updated = sandbox.xero.invoices[draft["InvoiceID"]]
    assert Decimal(str(updated["SubTotal"])) - Decimal(str(draft["SubTotal"])) == _cents(
        _rate(entry)
    )
    [drift] = report["drifts"]
    assert drift["handling"] == "draft_updated"
    assert drift["invoice"] == draft["InvoiceNumber"]
    assert Decimal(drift["delta_hours"]) == 1
    assert Decimal(drift["delta_amount"]) == _cents(_rate(entry))
    assert report["error_classes"]["drift"] == 1
    assert _sync(config)["drifts"] == []


@pytest.mark.usefixtures("tokens")
def test_a_dry_run_lists_the_drift_and_records_nothing(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _config(sandbox, db_url, tmp_path, drift="adjustment")
    _bill_and_authorise(sandbox, config)
    entry = _acme_entries(sandbox)[0]
    sandbox.harvest.edit_entry(entry["id"], hours=float(_hours(entry) + 1))
    shown = run_cli("sync", "--config", config, "--period", PERIOD, "--dry-run")
    assert shown.code == 0, shown.stderr
    assert "Billed entries changed in the tracker (drift)" in shown.stdout
    assert f"harvest:{entry['id']}" in shown.stdout and "drift USD: 1" in shown.stdout
    preview = run_cli("sync", "--config", config, "--period", PERIOD, "--dry-run", "--json")
    assert preview.code == 0, preview.stderr
    [drift] = preview.json()["drifts"]
    assert drift["outcome"].startswith("waits") and Decimal(drift["delta_hours"]) == 1
    # the real run still sees it (the preview recorded nothing)
    [real] = _sync(config)["drifts"]
    assert real["entry"] == drift["entry"] and real["handling"] == "adjustment"


@pytest.mark.usefixtures("tokens")
def test_credit_note_mode_needs_a_target_that_takes_credit_notes(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    data = sandbox_config(sandbox, db_url)
    data["targets"] = {"files": {"type": "xero_csv", "directory": "out"}}
    data["profiles"]["agency-monthly"]["target"] = "files"
    data["profiles"]["agency-monthly"]["drift"] = "credit_note"
    config = write_config(tmp_path / "f.yaml", data)
    result = run_cli("sync", "--config", config, "--period", PERIOD)
    assert result.code == 2
    message = result.stderr.strip()
    assert "profiles.agency-monthly.drift" in message and len(message.splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing pulled or written


@pytest.mark.usefixtures("tokens")
def test_a_notes_only_edit_is_noted_once_and_bills_nothing(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _config(sandbox, db_url, tmp_path, drift="adjustment")
    _bill_and_authorise(sandbox, config)
    entry = _acme_entries(sandbox)[0]
    sandbox.harvest.edit_entry(entry["id"], notes="Reworded after the invoice went out")
    report = _sync(config)
    assert report["invoices_created"] == 0
    assert report["drifts"] == [] and report["drifts_noted"] == 1
    assert report["error_classes"]["drift"] == 1  # the tracker's change, once
    again = _sync(config)
    assert (again["drifts"], again["drifts_noted"], again["invoices_created"]) == ([], 0, 0)


@pytest.mark.usefixtures("tokens")
def test_quickbooks_a_sent_invoice_gets_its_drift_as_an_adjustment_on_the_next_invoice(
    sandbox: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _quickbooks_config(sandbox, db_url, tmp_path, monkeypatch, "adjustment")
    _sync(config)
    customer = _acme_customer(sandbox)
    [sent] = [
        i
        for i, inv in sandbox.quickbooks.invoices.items()
        if inv["CustomerRef"]["value"] == customer
    ]
    sandbox.quickbooks.set_sent(sent)
    before = dict(sandbox.quickbooks.invoices[sent])
    entry = _acme_entries(sandbox)[0]
    sandbox.harvest.edit_entry(entry["id"], hours=float(_hours(entry) + 1))

    report = _sync(config)
    assert report["invoices_created"] == 1 and report["errors"] == []
    assert sandbox.quickbooks.invoices[sent] == before
    [fresh] = [
        inv
        for i, inv in sandbox.quickbooks.invoices.items()
        if inv["CustomerRef"]["value"] == customer and i != sent
    ]
    [line] = [li for li in fresh["Line"] if li["DetailType"] == "SalesItemLineDetail"]
    assert Decimal(str(line["SalesItemLineDetail"]["Qty"])) == 1
    assert Decimal(str(line["Amount"])) == _cents(_rate(entry))
    [drift] = report["drifts"]
    assert drift["handling"] == "adjustment" and Decimal(drift["delta_hours"]) == 1
    assert _sync(config)["invoices_created"] == 0


@pytest.mark.usefixtures("tokens")
def test_quickbooks_a_reduction_on_a_sent_invoice_becomes_one_credit_memo(
    sandbox: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _quickbooks_config(sandbox, db_url, tmp_path, monkeypatch, "credit_note")
    _sync(config)
    customer = _acme_customer(sandbox)
    invoices = sandbox.quickbooks.invoices
    [sent] = [i for i, inv in invoices.items() if inv["CustomerRef"]["value"] == customer]
    sandbox.quickbooks.set_sent(sent)
    gone = _acme_entries(sandbox)[0]
    sandbox.harvest.delete_entry(gone["id"])

    report = _sync(config)
    assert report["invoices_created"] == 0 and report["errors"] == []
    [memo] = sandbox.quickbooks.credit_memos.values()
    assert memo["CustomerRef"]["value"] == customer
    assert str(memo["PrivateNote"]).startswith("hb/agency-monthly/cn/")
    [line] = [li for li in memo["Line"] if li["DetailType"] == "SalesItemLineDetail"]
    assert Decimal(str(line["SalesItemLineDetail"]["Qty"])) == _hours(gone)
    assert Decimal(str(line["Amount"])) == _cents(_hours(gone) * _rate(gone))
    [drift] = report["drifts"]
    assert drift["handling"] == "credit_note" and memo["PrivateNote"] in drift["outcome"]

    again = _sync(config)
    assert len(sandbox.quickbooks.credit_memos) == 1 and again["drifts"] == []


@pytest.mark.usefixtures("tokens")
def test_an_edit_to_last_months_approved_invoice_is_adjusted_on_this_months(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _config(sandbox, db_url, tmp_path, drift="adjustment")
    _sync(config)
    [october] = _acme_invoices(sandbox)
    first, second = _acme_entries(sandbox)[:2]

    # October's invoice is still a DRAFT: syncing November says so, and October's sync fixes it
    sandbox.harvest.edit_entry(first["id"], hours=float(_hours(first) + 1))
    nov = run_cli("sync", "--config", config, "--period", "2026-11", "--json").json()
    [drift] = nov["drifts"]
    assert drift["handling"] == "draft_of_other_period" and "2026-11" not in drift["outcome"]
    assert "--period 2026-10" in drift["next_step"]
    assert _sync(config)["invoices_updated"] == 1

    # approved in Xero after that; an entry of October is edited during November
    sandbox.xero.set_status(october["InvoiceID"], "AUTHORISED")
    locked = dict(sandbox.xero.invoices[october["InvoiceID"]])
    sandbox.harvest.edit_entry(second["id"], hours=float(_hours(second) + 1))
    report = run_cli("sync", "--config", config, "--period", "2026-11", "--json").json()
    [drift] = report["drifts"]
    assert drift["handling"] == "adjustment" and "hb/agency-monthly/2026-11/" in drift["outcome"]
    assert sandbox.xero.invoices[october["InvoiceID"]] == locked
    november = [
        inv
        for inv in _acme_invoices(sandbox)
        if str(inv["Reference"]).startswith("hb/agency-monthly/2026-11/")
    ]
    [line] = [
        li
        for n in november
        for li in n["LineItems"]
        if october["InvoiceNumber"] in li["Description"]
    ]
    assert Decimal(str(line["Quantity"])) == 1 and Decimal(str(line["UnitAmount"])) == _rate(second)


@pytest.mark.usefixtures("tokens")
def test_a_lost_answer_never_doubles_an_adjustment(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    data = sandbox_config(sandbox, db_url)
    data["profiles"]["agency-monthly"]["drift"] = "adjustment"
    data["targets"]["xero"]["max_attempts"] = 1
    config = write_config(tmp_path / "c.yaml", data)
    locked = _bill_and_authorise(sandbox, config)
    entry = _acme_entries(sandbox)[0]
    sandbox.harvest.edit_entry(entry["id"], hours=float(_hours(entry) + 1))
    sandbox.xero.drop_after_commit()  # the invoice with the adjustment lands; its answer is lost
    lost = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert lost.code == 1
    assert len(_acme_invoices(sandbox)) == 2

    settled = _sync(config)
    assert (settled["invoices_created"], settled["invoices_updated"]) == (0, 0)
    [fresh] = [inv for inv in _acme_invoices(sandbox) if inv["InvoiceID"] != locked["InvoiceID"]]
    assert [Decimal(str(li["Quantity"])) for li in fresh["LineItems"]] == [1]
    assert _sync(config)["drifts"] == []


@pytest.mark.usefixtures("tokens")
def test_a_credit_note_that_cannot_be_made_fails_the_run_partially_and_is_retried(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _config(sandbox, db_url, tmp_path, drift="credit_note")
    _bill_and_authorise(sandbox, config)
    cut = next(e for e in _acme_entries(sandbox) if _hours(e) > 1)
    sandbox.harvest.edit_entry(cut["id"], hours=float(_hours(cut) - 1))
    acme = next(c for c in sandbox.xero.contacts if c.get("ContactNumber") == "HV-5000001")
    acme["ContactStatus"] = "ARCHIVED"  # no longer listed: no credit note can name it

    refused = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert refused.code == 1
    report = refused.json()
    assert report["status"] == "partial", report["errors"]
    assert report["error_classes"]["target_rejected"] == 1
    assert any("credit note" in e and "not found" in e for e in report["errors"])
    assert not sandbox.xero.credit_notes
    [drift] = report["drifts"]
    assert drift["outcome"].startswith("waits for its credit note")

    acme["ContactStatus"] = "ACTIVE"
    retried = _sync(config)
    assert len(sandbox.xero.credit_notes) == 1
    [drift] = retried["drifts"]
    assert drift["handling"] == "credit_note" and "/cn/" in drift["outcome"]


@pytest.mark.usefixtures("tokens")
def test_a_rate_change_after_approval_reverses_the_old_price_and_bills_the_new(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = _config(sandbox, db_url, tmp_path, drift="adjustment")
    locked = _bill_and_authorise(sandbox, config)
    entry = _acme_entries(sandbox)[0]
    old, new = _rate(entry), _rate(entry) + 10
    sandbox.harvest.edit_entry(entry["id"], billable_rate=float(new))

    report = _sync(config)
    [drift] = report["drifts"]
    hours = _hours(entry)
    assert Decimal(drift["delta_hours"]) == 0
    assert Decimal(drift["delta_amount"]) == _cents(hours * new) + _cents(-hours * old)
    [fresh] = [inv for inv in _acme_invoices(sandbox) if inv["InvoiceID"] != locked["InvoiceID"]]
    lines = sorted(
        (Decimal(str(li["Quantity"])), Decimal(str(li["UnitAmount"]))) for li in fresh["LineItems"]
    )
    assert lines == [(-hours, old), (hours, new)]
