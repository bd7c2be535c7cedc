"""The fake Xero's tracking categories and invoice attachments: served and validated as
Xero documents them, through the official SDK where it has a call for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from xero_python.exceptions import ApiException

from sandbox.serving import RunningServer, serving
from sandbox.xero import BASE_PATH, MAX_ATTACHMENT_BYTES, FakeXero
from tests.test_sandbox_xero import (
    ACCOUNTS,
    CONTACTS,
    CURRENCIES,
    ITEMS,
    TAX_RATES,
    TENANT,
    headers,
    make_api,
    raw_invoice,
)

TRACKING = [
    {
        "Name": "Region",
        "Options": [{"Name": "North"}, {"Name": "South"}, {"Name": "Old", "Status": "ARCHIVED"}],
    },
    {"Name": "Unit", "Options": [{"Name": "Design"}]},
]


@pytest.fixture
def fake() -> FakeXero:
    return FakeXero(
        contacts=CONTACTS,
        items=ITEMS,
        accounts=ACCOUNTS,
        tax_rates=TAX_RATES,
        currencies=CURRENCIES,
        tracking_categories=TRACKING,
    )


@pytest.fixture
def server(fake: FakeXero) -> Iterator[RunningServer]:
    with serving(fake) as running:
        yield running


def put_invoice(server: RunningServer, **overrides: Any) -> dict[str, Any]:
    response = requests.put(
        f"{server.url}{BASE_PATH}/Invoices",
        params={"summarizeErrors": "false"},
        json={"Invoices": [raw_invoice(**overrides)]},
        headers=headers(),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    element = response.json()["Invoices"][0]
    assert isinstance(element, dict)
    return element


def tracked(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {
        "LineItems": [
            {
                "Description": "Work",
                "Quantity": 1,
                "UnitAmount": 10,
                "AccountCode": "200",
                "Tracking": [{"Name": n, "Option": o} for n, o in pairs],
            }
        ]
    }


def test_tracking_categories_are_listed_with_their_active_options(server: RunningServer) -> None:
    api = make_api(server.url)
    listed = api.get_tracking_categories(TENANT)
    region = next(c for c in listed.tracking_categories if c.name == "Region")
    assert [o.name for o in region.options] == ["North", "South"]  # archived left out
    everything = api.get_tracking_categories(TENANT, include_archived=True)
    region = next(c for c in everything.tracking_categories if c.name == "Region")
    assert [o.name for o in region.options] == ["North", "South", "Old"]


def test_a_line_with_known_tracking_is_stored_with_its_ids(server: RunningServer) -> None:
    element = put_invoice(server, **tracked(("Region", "North"), ("unit", "design")))
    assert "ValidationErrors" not in element
    stored = element["LineItems"][0]["Tracking"]
    assert [(t["Name"], t["Option"]) for t in stored] == [("Region", "North"), ("Unit", "Design")]
    assert all(t["TrackingCategoryID"] and t["TrackingOptionID"] for t in stored)


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (
            [("Region", "Atlantis")],
            "Line 1: The tracking option 'Atlantis' does not exist or is archived in "
            "tracking category 'Region'",
        ),
        ([("Region", "Old")], "The tracking option 'Old' does not exist or is archived"),
        ([("Colour", "Red")], "The tracking category 'Colour' does not exist or is archived"),
        ([("Region", "North"), ("region", "South")], "tracking category 'Region' is given twice"),
    ],
)
def test_unknown_or_archived_tracking_is_rejected(
    server: RunningServer, fake: FakeXero, pairs: list[tuple[str, str]], message: str
) -> None:
    element = put_invoice(server, **tracked(*pairs))
    assert element["HasErrors"] is True
    assert message in " ".join(e["Message"] for e in element["ValidationErrors"])
    assert fake.invoices == {}


def test_attachments_through_the_sdk(server: RunningServer, fake: FakeXero) -> None:
    invoice_id = put_invoice(server)["InvoiceID"]
    api = make_api(server.url)
    tenant = fake.settings.tenant_id
    body = b"%PDF-1.4\n% a receipt\n%%EOF\n"
    made = api.create_invoice_attachment_by_file_name(
        tenant, invoice_id, "receipt 1.pdf", body, include_online=True, idempotency_key="k1"
    )
    first = made.attachments[0]
    assert (first.file_name, first.mime_type, first.content_length) == (
        "receipt 1.pdf",
        "application/pdf",
        len(body),
    )
    assert first.include_online is True
    listed = api.get_invoice_attachments(tenant, invoice_id).attachments
    assert [a.file_name for a in listed] == ["receipt 1.pdf"]
    got = requests.get(
        f"{server.url}{BASE_PATH}/Invoices/{invoice_id}/Attachments/receipt 1.pdf",
        headers=headers(),
        timeout=10,
    )
    assert got.content == body and got.headers["Content-Type"] == "application/pdf"
    # the same name again replaces the file: still one attachment
    api.create_invoice_attachment_by_file_name(tenant, invoice_id, "receipt 1.pdf", b"v2")
    assert len(fake.attachments[invoice_id.lower()]) == 1
    assert fake.attachments[invoice_id.lower()][0]["_content"] == b"v2"
    assert fake.invoices[invoice_id.lower()]["HasAttachments"] is True


def _attach(server: RunningServer, invoice_id: str, name: str, body: bytes) -> requests.Response:
    return requests.put(
        f"{server.url}{BASE_PATH}/Invoices/{invoice_id}/Attachments/{name}",
        data=body,
        headers=headers(**{"Content-Type": "application/octet-stream"}),
        timeout=30,
    )


def test_attachments_are_validated(server: RunningServer, fake: FakeXero) -> None:
    invoice_id = put_invoice(server)["InvoiceID"]

    def message(response: requests.Response) -> str:
        assert response.status_code == 400, response.text
        return str(response.json()["Message"])

    assert "file type of 'virus.exe' is not supported" in message(
        _attach(server, invoice_id, "virus.exe", b"x")
    )
    assert "is empty" in message(_attach(server, invoice_id, "empty.pdf", b""))
    too_big = _attach(server, invoice_id, "big.pdf", b"x" * (MAX_ATTACHMENT_BYTES + 1))
    assert too_big.status_code == 413
    unknown = _attach(server, "00000000-0000-0000-0000-000000000001", "a.pdf", b"x")
    assert unknown.status_code == 404
    for i in range(10):
        assert _attach(server, invoice_id, f"r{i}.png", b"x").status_code == 200
    assert "at most 10 attachments" in message(_attach(server, invoice_id, "r10.png", b"x"))
    assert _attach(server, invoice_id, "r3.png", b"y").status_code == 200  # a replacement
    fake.set_status(invoice_id, "DELETED")
    assert "deleted invoice" in message(_attach(server, invoice_id, "r4.png", b"z"))


def test_the_sdk_sees_a_rejected_attachment_as_an_error(server: RunningServer) -> None:
    invoice_id = put_invoice(server)["InvoiceID"]
    api = make_api(server.url)
    with pytest.raises(ApiException) as info:
        api.create_invoice_attachment_by_file_name(TENANT, invoice_id, "notes.exe", b"x")
    assert info.value.status == 400
