"""Import files as a target: the sandbox month into Xero's and QuickBooks' import CSVs."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox.server import Sandbox
from tests.conftest import sandbox_config, write_config
from tests.helpers import expected_subtotals, run_cli

PERIOD = "2026-10"
# Xero's documented sales invoice import columns (help.xero.com, "Import invoices and bills";
# the template file). Restated here so the test checks the file against the documentation.
XERO_HEADER = (
    "*ContactName,EmailAddress,POAddressLine1,POAddressLine2,POAddressLine3,POAddressLine4,"
    "POCity,PORegion,POPostalCode,POCountry,*InvoiceNumber,Reference,*InvoiceDate,*DueDate,"
    "InventoryItemCode,*Description,*Quantity,*UnitAmount,Discount,*AccountCode,*TaxType,"
    "TrackingName1,TrackingOption1,TrackingName2,TrackingOption2,Currency,BrandingTheme"
)


def file_config(
    sandbox: Sandbox, db_url: str, kind: str, billed_when: str = "confirmed"
) -> dict[str, Any]:
    data = sandbox_config(sandbox, db_url)
    data["targets"] = {"files": {"type": kind, "directory": "out", "billed_when": billed_when}}
    profile = data["profiles"]["agency-monthly"]
    profile["target"] = "files"
    names = {str(c["id"]): c["name"] for c in sandbox.month.clients}
    for client_id, rule in profile["mapping"]["clients"].items():
        profile["mapping"]["clients"][client_id] = {
            "contact_name": names[client_id],
            "tax_type": rule["tax_type"],
            "currency": rule["currency"],
        }
    return data


@pytest.mark.usefixtures("tokens")
def test_xero_import_file_matches_the_documented_format_and_reruns_byte_identical(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    data = file_config(sandbox, db_url, "xero_csv", billed_when="written")
    config = write_config(tmp_path / "c.yaml", data)
    first = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert first.code == 0, first.stdout + first.stderr
    assert first.json()["entries_billed"] > 0  # billed_when: written
    files = list((tmp_path / "out").glob("*.csv"))
    assert [f.name for f in files] == [f"hb-agency-monthly-{PERIOD}-xero.csv"]
    raw = files[0].read_bytes()
    text = raw.decode("utf-8")
    assert text.split("\r\n", 1)[0] == XERO_HEADER
    rows = list(csv.DictReader(io.StringIO(text)))
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        for column in XERO_HEADER.split(","):
            if column.startswith("*"):
                assert row[column], f"{column} empty"
        day, month, year = row["*InvoiceDate"].split("/")
        assert (year, month, day) == ("2026", "10", "31")  # DD/MM/YYYY
        totals[row["*ContactName"]] += (
            Decimal(row["*Quantity"]) * Decimal(row["*UnitAmount"])
        ).quantize(Decimal("0.01"))
    clients = [
        c["id"] for c in sandbox.month.clients if c["id"] not in sandbox.month.unmapped_client_ids
    ]
    expected = expected_subtotals(sandbox.month, clients=clients, tasks=range(8000001, 8000007))
    names = {c["id"]: c["name"] for c in sandbox.month.clients}
    assert dict(totals) == {names[c]: v for c, v in expected.items()}
    mtime = files[0].stat().st_mtime_ns

    again = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert again["invoices_created"] == again["invoices_updated"] == 0
    assert files[0].read_bytes() == raw and files[0].stat().st_mtime_ns == mtime

    files[0].unlink()  # lost: the next run writes the same bytes again
    run_cli("sync", "--config", config, "--period", PERIOD)
    assert files[0].read_bytes() == raw
    assert sandbox.xero.invoice_writes() == 0


@pytest.mark.usefixtures("tokens")
def test_quickbooks_import_file_and_an_edit_rewrites_only_that_invoice(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", file_config(sandbox, db_url, "quickbooks_csv"))
    assert run_cli("sync", "--config", config, "--period", PERIOD).code == 0
    path = tmp_path / "out" / f"hb-agency-monthly-{PERIOD}-quickbooks.csv"
    before = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert {r["*InvoiceDate"] for r in before} == {"10/31/2026"}  # MM/DD/YYYY
    assert all(len(r["*InvoiceNo"]) <= 21 for r in before)
    entry = next(
        e
        for e in sandbox.month.time_entries
        if e["client"]["id"] == 5000003
        and e["is_closed"]
        and e["billable"]
        and not e["is_billed"]
        and e["spent_date"].startswith(PERIOD)
    )
    sandbox.harvest.edit_entry(entry["id"], hours=float(Decimal(str(entry["hours"])) + 1))
    report = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert report["invoices_updated"] == 1
    after = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    name = entry["client"]["name"]
    untouched = [r for r in before if r["*Customer"] != name]
    assert [r for r in after if r["*Customer"] != name] == untouched
    edited_before = [r for r in before if r["*Customer"] == name]
    edited_after = [r for r in after if r["*Customer"] == name]
    assert edited_before != edited_after
    total = sum((Decimal(r["*ItemAmount"]) for r in edited_after), Decimal(0))
    previous = sum((Decimal(r["*ItemAmount"]) for r in edited_before), Decimal(0))
    assert total - previous == Decimal(str(entry["billable_rate"]))  # one more hour


@pytest.mark.usefixtures("tokens")
def test_entries_are_billed_only_when_the_import_is_confirmed(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", file_config(sandbox, db_url, "xero_csv"))
    first = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert first["entries_billed"] == 0 and first["invoices_created"] > 0
    listed = run_cli("invoices", "list", "--config", config, "--period", PERIOD, "--json")
    statuses = {r["status"] for r in listed.json_list()}
    assert statuses == {"exported"}
    path = tmp_path / "out" / f"hb-agency-monthly-{PERIOD}-xero.csv"
    written = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))

    confirm = run_cli("invoices", "confirm", "--config", config, "--period", PERIOD)
    assert confirm.code == 0, confirm.stderr
    invoices = first["invoices_created"]
    assert "entries billed" in confirm.stdout and written
    assert f"confirmed {invoices} invoice(s)" in confirm.stdout
    assert f"{invoices} invoice(s) taken out" in confirm.stdout
    # the imported invoices leave the file: importing it again can never duplicate them
    assert path.read_text(encoding="utf-8").strip() == XERO_HEADER
    locked = run_cli("invoices", "list", "--config", config, "--period", PERIOD, "--json")
    assert {r["status"] for r in locked.json_list()} == {"locked"}

    again = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert (again["invoices_created"], again["invoices_updated"], again["entries_billed"]) == (
        0,
        0,
        0,
    )
    assert path.read_text(encoding="utf-8").strip() == XERO_HEADER

    # a late entry goes on a new invoice, alone in the file
    template = next(
        e
        for e in sandbox.month.time_entries
        if e["client"]["id"] == 5000001
        and e["is_closed"]
        and e["billable"]
        and not e["is_billed"]
        and e["spent_date"].startswith(PERIOD)
        and e["task"]["id"] < 8000007
    )
    late = dict(template, id=2199999997, hours=2.0, spent_date="2026-10-30")
    del late["created_at"], late["updated_at"]
    sandbox.harvest.add_entry(late)
    third = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert third["invoices_created"] == 1
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert {r["*ContactName"] for r in rows} == {template["client"]["name"]}
    assert sum(Decimal(r["*Quantity"]) for r in rows) == Decimal("2.0")


@pytest.mark.usefixtures("tokens")
def test_confirm_refuses_a_profile_without_import_files(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    result = run_cli("invoices", "confirm", "--config", config, "--period", PERIOD)
    assert result.code == 2
    assert "does not write import files" in result.stderr
