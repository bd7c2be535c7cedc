"""Edits after invoicing, piece by piece: config, report, run events and the fake's credit notes."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from core.config import ProfileConfig, load_config
from core.errors import ConfigError
from core.report import (
    DriftSummary,
    EntryChange,
    ErrorClass,
    RunReport,
    drift_totals,
    run_events,
)
from sandbox.server import Sandbox
from tests.conftest import ROOT, example_config, write_config

ENV = {"HARVEST_ACCESS_TOKEN": "h", "XERO_ACCESS_TOKEN": "x"}


def test_the_commented_drift_example_is_valid_and_flag_is_the_default() -> None:
    lines = (ROOT / "config.example.yaml").read_text(encoding="utf-8").splitlines()
    [example] = [line for line in lines if line.startswith("    # drift: ")]
    value = yaml.safe_load(example[len("    # ") :])
    profile = example_config()["profiles"]["agency-monthly"]
    assert ProfileConfig.model_validate(profile | value).drift == "adjustment"
    assert ProfileConfig.model_validate(profile).drift == "flag"


def test_an_unknown_drift_mode_is_one_line_naming_the_key(tmp_path: Path) -> None:
    data = example_config()
    data["profiles"]["agency-monthly"]["drift"] = "ignore"
    path = write_config(tmp_path / "c.yaml", data)
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    message = str(caught.value)
    assert "profiles.agency-monthly.drift" in message and "\n" not in message


def _drift(entry: str, hours: str, amount: str, currency: str = "USD") -> DriftSummary:
    return DriftSummary(
        entry=entry,
        client="Acme",
        spent_date="2026-10-03",
        invoice="INV-0001",
        change="edited",
        hours_before=Decimal("2"),
        hours_after=Decimal("2") + Decimal(hours),
        delta_hours=Decimal(hours),
        delta_amount=Decimal(amount),
        currency=currency,
        handling="adjustment",
        outcome="on invoice hb/p/2026-10/abc",
        next_step="review the DRAFT that carries it before approving it",
    )


def test_drifts_are_totalled_by_currency_and_survive_the_json_round_trip() -> None:
    report = RunReport(run_id="r", profile="p", period="2026-10", dry_run=False)
    report.drifts = [
        _drift("harvest:1", "1.5", "225.00"),
        _drift("harvest:2", "-0.25", "-37.50"),
        _drift("harvest:3", "1", "120.00", currency="NZD"),
    ]
    report.drift_totals = drift_totals(report.drifts)
    assert report.drift_totals == {
        "USD": {"hours": Decimal("1.25"), "amount": Decimal("187.50")},
        "NZD": {"hours": Decimal("1"), "amount": Decimal("120.00")},
    }
    raw = json.loads(report.to_json())
    assert raw["drifts"][1]["delta_amount"] == "-37.50"  # exact strings, never floats
    back = RunReport.from_json(report.to_json())
    assert back.drifts == report.drifts and back.drift_totals == report.drift_totals


def test_a_billed_entry_gives_one_drift_event_with_its_delta_and_next_step() -> None:
    report = RunReport(run_id="r", profile="p", period="2026-10", dry_run=False)
    report.entries_changed = [
        EntryChange("harvest:1", "edited", "Acme", "2026-10-03", Decimal("2"), Decimal("3.5")),
        EntryChange("harvest:9", "edited", "Acme", "2026-10-04", Decimal("1"), Decimal("2")),
    ]
    report.drifts = [_drift("harvest:1", "1.5", "225.00")]
    events = [e for e in run_events(report) if e.error_class is ErrorClass.DRIFT]
    assert len(events) == 2
    unbilled, billed = events
    assert "harvest:9" in unbilled.subject and unbilled.amount is None
    assert "harvest:1" in billed.subject and "INV-0001" in billed.subject
    assert (billed.hours, billed.amount) == (Decimal("1.5"), Decimal("225.00"))
    assert "225.00 USD" in billed.message and "Next: review the DRAFT" in billed.message


# -- the fake Xero's credit notes --------------------------------------------------------------


def _xero(sandbox: Sandbox, method: str, body: Any = None, **params: str) -> requests.Response:
    return requests.request(
        method,
        f"{sandbox.xero_url}/api.xro/2.0/CreditNotes",
        params=params,
        data=None if body is None else json.dumps(body),
        headers={
            "Authorization": f"Bearer {sandbox.xero.settings.access_token}",
            "xero-tenant-id": sandbox.xero.settings.tenant_id,
            "Accept": "application/json",
            "Content-Type": "application/json",
        },
        timeout=10,
    )


def _note(sandbox: Sandbox, **changes: Any) -> dict[str, Any]:
    contact = sandbox.month.xero_contacts[0]
    return {
        "Type": "ACCRECCREDIT",
        "Contact": {"ContactID": contact["ContactID"]},
        "Date": "2026-10-31",
        "Status": "DRAFT",
        "Reference": "hb/p/cn/0123456789ab",
        "LineAmountTypes": "Exclusive",
        "CurrencyCode": contact.get("DefaultCurrency", "NZD"),
        "LineItems": [
            {"Description": "Credit", "Quantity": 1.5, "UnitAmount": 100, "AccountCode": "200"}
        ],
    } | changes


def test_the_fake_xero_creates_and_finds_credit_notes(sandbox: Sandbox) -> None:
    created = _xero(sandbox, "PUT", {"CreditNotes": [_note(sandbox)]})
    assert created.status_code == 200, created.text
    [note] = created.json()["CreditNotes"]
    assert note["CreditNoteNumber"] == "CN-0001" and note["Status"] == "DRAFT"
    assert Decimal(str(note["SubTotal"])) == Decimal("150.00")
    assert note["RemainingCredit"] == note["Total"]
    assert not sandbox.xero.invoices  # a credit note is not an invoice

    found = _xero(sandbox, "GET", where='Reference.StartsWith("hb/p/cn/")').json()
    assert [n["CreditNoteID"] for n in found["CreditNotes"]] == [note["CreditNoteID"]]
    assert _xero(sandbox, "GET", where='Reference.StartsWith("hb/q/")').json()["CreditNotes"] == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"Type": "ACCREC"}, "does not match the CreditNotes schema"),  # not in the spec's enum
        ({"LineItems": "none"}, "does not match the CreditNotes schema"),
        ({"Status": "PAID"}, "cannot be used when creating"),
        ({"CreditNoteID": "8f6c2a8e-6d8e-4b1e-9d8e-0c1b2a3d4e5f"}, "cannot be given when creating"),
        (
            {"LineItems": [{"Description": "x", "Quantity": -1, "UnitAmount": 10}]},
            "total cannot be negative",
        ),
    ],
)
def test_the_fake_xero_refuses_bad_credit_notes(
    sandbox: Sandbox, changes: dict[str, Any], expected: str
) -> None:
    answer = _xero(sandbox, "PUT", {"CreditNotes": [_note(sandbox, **changes)]})
    assert answer.status_code == 400
    assert expected in answer.text
    assert not sandbox.xero.credit_notes


# -- the fake QuickBooks' credit memos -----------------------------------------------------------


def _qbo(sandbox: Sandbox, body: Any) -> requests.Response:
    qbo = sandbox.quickbooks
    return requests.post(
        f"{sandbox.quickbooks_url}/v3/company/{qbo.settings.realm_id}/creditmemo",
        params={"minorversion": "75"},
        data=json.dumps(body),
        headers={
            "Authorization": f"Bearer {qbo.settings.access_token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        },
        timeout=10,
    )


def _memo(sandbox: Sandbox, **changes: Any) -> dict[str, Any]:
    qbo = sandbox.quickbooks
    customer = next(iter(qbo.lists["Customer"].values()))
    item = next(iter(qbo.lists["Item"].values()))
    tax = next(iter(qbo.lists["TaxCode"].values()))
    return {
        "CustomerRef": {"value": customer["Id"]},
        "CurrencyRef": {"value": customer["CurrencyRef"]["value"]},
        "TxnDate": "2026-10-31",
        "PrivateNote": "hb/p/cn/0123456789ab",
        "Line": [
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": 150,
                "Description": "Credit",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": item["Id"]},
                    "TaxCodeRef": {"value": tax["Id"]},
                    "Qty": 1.5,
                    "UnitPrice": 100,
                },
            }
        ],
    } | changes


def test_the_fake_quickbooks_creates_and_queries_credit_memos(sandbox: Sandbox) -> None:
    answer = _qbo(sandbox, _memo(sandbox))
    assert answer.status_code == 200, answer.text
    memo = answer.json()["CreditMemo"]
    assert Decimal(str(memo["RemainingCredit"])) >= Decimal("150.00")
    assert "DueDate" not in memo
    assert memo["Id"] in sandbox.quickbooks.credit_memos and not sandbox.quickbooks.invoices
    qbo = sandbox.quickbooks
    found = requests.get(
        f"{sandbox.quickbooks_url}/v3/company/{qbo.settings.realm_id}/query",
        params={"query": "SELECT * FROM CreditMemo", "minorversion": "75"},
        headers={"Authorization": f"Bearer {qbo.settings.access_token}"},
        timeout=10,
    ).json()["QueryResponse"]
    assert [m["Id"] for m in found["CreditMemo"]] == [memo["Id"]]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"DueDate": "2026-11-30"}, 'Unrecognized field \\"DueDate\\"'),
        ({"Id": "77", "SyncToken": "0"}, "only creates credit memos"),
        ({"Line": "none"}, "an array is expected"),
    ],
)
def test_the_fake_quickbooks_refuses_bad_credit_memos(
    sandbox: Sandbox, changes: dict[str, Any], expected: str
) -> None:
    answer = _qbo(sandbox, _memo(sandbox, **changes))
    assert answer.status_code == 400
    assert expected in answer.text
    assert not sandbox.quickbooks.credit_memos
