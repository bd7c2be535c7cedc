"""The fake Xero, driven through the official xero-python SDK (and raw HTTP for bad input).

Every SDK client here gets ``urllib3.PoolManager(retries=False)`` so that what
a test sees is what the fake answered; ``test_sdk_default_pool_*`` shows what
the SDK's own default pool does instead.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import requests
import urllib3
from openapi_core import OpenAPI
from xero_python.accounting import (
    AccountingApi,
    Contact,
    Invoice,
    Invoices,
    LineItem,
)
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import (
    AccountingBadRequestException,
    HTTPStatusException,
    NotFoundException,
    RateLimitException,
)

from sandbox.serving import RunningServer, serving
from sandbox.xero import BASE_PATH, FakeXero, WhereError, XeroSettings, dumps_json, parse_where
from sandbox.xero_spec import load_spec, parse_xero_datetime, validate_body

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

TENANT = XeroSettings().tenant_id
TOKEN = XeroSettings().access_token

ACME = "0b7e3a52-6f1d-4c1e-9a43-5a1d7c2e9f01"
BETA = "0b7e3a52-6f1d-4c1e-9a43-5a1d7c2e9f02"
GONE = "0b7e3a52-6f1d-4c1e-9a43-5a1d7c2e9f03"
MISSING = "0b7e3a52-6f1d-4c1e-9a43-5a1d7c2e9fff"

CONTACTS: list[dict[str, Any]] = [
    {"ContactID": ACME, "ContactNumber": "HV-1", "Name": "Acme Ltd", "ContactStatus": "ACTIVE"},
    {"ContactID": BETA, "ContactNumber": "HV-2", "Name": "Beta Co", "ContactStatus": "ACTIVE"},
    {"ContactID": GONE, "Name": "Gone Ltd (old)", "ContactStatus": "ARCHIVED"},
]
ITEMS: list[dict[str, Any]] = [
    {
        "ItemID": "1c0d3f6e-2b4a-4c5d-8e9f-0a1b2c3d4e01",
        "Code": "DEV",
        "Name": "Development",
        "Description": "Development services",
        "IsSold": True,
        "SalesDetails": {"UnitPrice": 150.0, "AccountCode": "200", "TaxType": "OUTPUT2"},
    },
]
ACCOUNTS: list[dict[str, Any]] = [
    {"Code": "090", "Name": "Bank", "Type": "BANK", "Status": "ACTIVE", "TaxType": "NONE"},
    {"Code": "200", "Name": "Sales", "Type": "REVENUE", "Status": "ACTIVE", "TaxType": "OUTPUT2"},
    {"Code": "260", "Name": "Old", "Type": "REVENUE", "Status": "ARCHIVED", "TaxType": "OUTPUT2"},
]
TAX_RATES: list[dict[str, Any]] = [
    {
        "Name": "GST on Income",
        "TaxType": "OUTPUT2",
        "Status": "ACTIVE",
        "EffectiveRate": 15.0,
        "DisplayTaxRate": 15.0,
        "CanApplyToRevenue": True,
    },
    {
        "Name": "GST on Expenses",
        "TaxType": "INPUT2",
        "Status": "ACTIVE",
        "EffectiveRate": 15.0,
        "DisplayTaxRate": 15.0,
        "CanApplyToRevenue": False,
    },
    {"Name": "No GST", "TaxType": "NONE", "Status": "ACTIVE", "EffectiveRate": 0.0},
]
CURRENCIES: list[dict[str, Any]] = [
    {"Code": "NZD", "Description": "New Zealand Dollar"},
    {"Code": "USD", "Description": "United States Dollar"},
]


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_fake(**settings: Any) -> FakeXero:
    return FakeXero(
        contacts=CONTACTS,
        items=ITEMS,
        accounts=ACCOUNTS,
        tax_rates=TAX_RATES,
        currencies=CURRENCIES,
        settings=XeroSettings(**settings),
    )


def make_api(url: str, *, token: str = TOKEN, sdk_default_pool: bool = False) -> Any:
    """An AccountingApi with a static bearer token (no expiry, so never refreshed)."""

    def token_getter() -> dict[str, Any]:
        return {
            "access_token": token,
            "token_type": "Bearer",
            "scope": ["accounting.transactions", "accounting.contacts", "accounting.settings"],
            "expires_in": 1800,
            "expires_at": None,
        }

    def token_saver(new_token: dict[str, Any]) -> None:
        raise AssertionError("the fake never issues tokens, so nothing may be saved")

    client = ApiClient(
        Configuration(oauth2_token=OAuth2Token(client_id="x", client_secret="y")),
        oauth2_token_getter=token_getter,
        oauth2_token_saver=token_saver,
    )
    if not sdk_default_pool:
        client.rest_client.pool_manager = urllib3.PoolManager(retries=False)
    return AccountingApi(client, base_url=url)


class AppSlot:
    """One loopback server per module; each test plugs its own fresh FakeXero into it.

    (Stopping a werkzeug server takes up to its 0.5 s poll interval, so a server
    per test would dominate the runtime.)
    """

    def __init__(self) -> None:
        self.app: FakeXero | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        assert self.app is not None, "no fake plugged in"
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[RunningServer, AppSlot]]:
    slot = AppSlot()
    with serving(slot) as running:
        yield running, slot


@pytest.fixture
def plug(shared: tuple[RunningServer, AppSlot]) -> Iterator[Callable[[FakeXero], RunningServer]]:
    running, slot = shared

    def plug_in(fake: FakeXero) -> RunningServer:
        slot.app = fake
        return running

    yield plug_in
    slot.app = None


@pytest.fixture
def fake() -> FakeXero:
    return make_fake()


@pytest.fixture
def server(fake: FakeXero, plug: Callable[[FakeXero], RunningServer]) -> RunningServer:
    return plug(fake)


@pytest.fixture
def api(server: RunningServer) -> Any:
    return make_api(server.url)


def headers(**extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "xero-tenant-id": TENANT, **extra}


def line(**kwargs: Any) -> Any:
    return LineItem(**kwargs)


def invoice(reference: str, lines: list[Any], **kwargs: Any) -> Any:
    return Invoice(
        type="ACCREC",
        contact=Contact(contact_id=ACME),
        line_items=lines,
        date=dt.date(2026, 10, 31),
        due_date=dt.date(2026, 11, 20),
        reference=reference,
        status="DRAFT",
        **kwargs,
    )


def three_invoices() -> Any:
    return Invoices(
        invoices=[
            invoice("hb/1", [line(item_code="DEV", quantity=Decimal("7.5"))]),
            invoice("hb/2", [line(item_code="NOPE", quantity=Decimal("1"))]),
            invoice(
                "hb/3",
                [
                    line(
                        description="Design",
                        quantity=Decimal("1.3333"),
                        unit_amount=Decimal("95.55"),
                        account_code="200",
                        tax_type="OUTPUT2",
                    ),
                    line(
                        description="Meetings",
                        quantity=Decimal("2.5"),
                        unit_amount=Decimal("33.33"),
                        account_code="200",
                    ),
                ],
            ),
        ]
    )


def raw_invoice(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Type": "ACCREC",
        "Contact": {"ContactID": ACME},
        "Date": "2026-10-31",
        "Status": "DRAFT",
        "Reference": "raw/1",
        "LineItems": [
            {"Description": "Work", "Quantity": 2, "UnitAmount": 10.5, "AccountCode": "200"}
        ],
    }
    body.update(overrides)
    return body


def put_raw(server: RunningServer, *invoices: dict[str, Any], **params: str) -> requests.Response:
    return requests.put(
        f"{server.url}{BASE_PATH}/Invoices",
        params={"summarizeErrors": "false", **params},
        json={"Invoices": list(invoices)},
        headers=headers(),
        timeout=10,
    )


# --------------------------------------------------------------------------
# the spec


def test_spec_loads_once_with_the_boolean_defaults_fixed() -> None:
    spec = load_spec()
    assert load_spec() is spec  # functools.cache: parsed once per process
    assert len(spec.fixed_defaults) == 23
    assert "/components/schemas/Invoice/properties/HasAttachments" in spec.fixed_defaults
    has_errors = spec.document["components"]["schemas"]["Invoice"]["properties"]["HasErrors"]
    assert has_errors["default"] is False
    assert spec.load_seconds < 10
    # with the fixes the document is a valid OpenAPI 3.0 spec (openapi-core validates it)
    OpenAPI.from_dict(spec.document)


def test_validate_body_tolerates_read_only_fields_and_nulls() -> None:
    body = {
        "Invoices": [
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": ACME, "HasAttachments": False},
                "HasAttachments": False,
                "HasErrors": False,
                "SubTotal": 1.5,
                "DueDate": None,
                "Reference": None,
                "Date": "/Date(1793404800000+0000)/",
            }
        ]
    }
    assert validate_body("Invoices", body) == []
    body["Invoices"][0]["HasAttachments"] = "no"
    problems = validate_body("Invoices", body)
    assert [p.path for p in problems] == ["Invoices[0].HasAttachments"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/Date(1793404800000)/", dt.datetime(2026, 10, 31, tzinfo=dt.UTC)),
        ("/Date(1793404800000+0000)/", dt.datetime(2026, 10, 31, tzinfo=dt.UTC)),
        ("2026-10-31", dt.datetime(2026, 10, 31, tzinfo=dt.UTC)),
        ("2026-10-31T09:30:00", dt.datetime(2026, 10, 31, 9, 30, tzinfo=dt.UTC)),
        ("31/10/2026", None),
        ("2026-02-30", None),
    ],
)
def test_xero_date_forms(text: str, expected: dt.datetime | None) -> None:
    assert parse_xero_datetime(text) == expected


# --------------------------------------------------------------------------
# creating invoices through the SDK


def test_batch_with_one_bad_invoice_commits_the_good_ones(api: Any, fake: FakeXero) -> None:
    result = api.create_invoices(
        TENANT, three_invoices(), summarize_errors=False, idempotency_key="batch-1"
    )
    first, bad, third = result.invoices

    assert bad.has_errors is True
    assert bad.status_attribute_string == "ERROR"
    assert [e.message for e in bad.validation_errors] == ["Line 1: Item code 'NOPE' is not valid"]
    assert bad.invoice_id is None

    # 7.5 h of DEV at the item's 150.00, 15 % GST
    assert first.has_errors is False
    assert first.invoice_number == "INV-0001"
    assert first.line_items[0].description == "Development services"
    assert (first.sub_total, first.total_tax, first.total) == (
        Decimal("1125.00"),
        Decimal("168.75"),
        Decimal("1293.75"),
    )
    # 1.3333 × 95.55 = 127.396815 → 127.40 (tax 19.11); 2.5 × 33.33 = 83.325 → 83.33 with
    # ROUND_HALF_UP (banker's rounding would give 83.32), tax 12.4995 → 12.50
    assert [li.line_amount for li in third.line_items] == [Decimal("127.40"), Decimal("83.33")]
    assert [li.tax_amount for li in third.line_items] == [Decimal("19.11"), Decimal("12.50")]
    assert third.sub_total == Decimal("210.73")
    assert third.total_tax == Decimal("31.61")
    assert third.total == Decimal("242.34")
    assert third.amount_due == Decimal("242.34")
    assert third.invoice_number == "INV-0002"
    assert third.date == dt.date(2026, 10, 31)
    assert third.due_date == dt.date(2026, 11, 20)

    # numbers go out as exact JSON numbers, never through float
    raw = api.api_client.last_response.data.decode()
    assert '"Total":242.34' in raw
    assert '"Quantity":1.3333' in raw
    assert '"DateString":"2026-10-31T00:00:00"' in raw

    assert set(fake.invoices) == {first.invoice_id, third.invoice_id}
    stored = fake.invoices[third.invoice_id]
    assert stored["Reference"] == "hb/3"
    assert stored["Total"] == Decimal("242.34")
    assert all(type(v) is not float for v in stored.values())
    assert fake.invoice_writes() == 1
    assert fake.calls["PUT /Invoices"] == 1


def test_idempotency_key_replays_the_first_response(api: Any, fake: FakeXero) -> None:
    first = api.create_invoices(
        TENANT, three_invoices(), summarize_errors=False, idempotency_key="k"
    )
    first_body = api.api_client.last_response.data
    again = api.create_invoices(
        TENANT, three_invoices(), summarize_errors=False, idempotency_key="k"
    )

    assert api.api_client.last_response.data == first_body  # byte for byte
    assert [i.invoice_id for i in again.invoices] == [i.invoice_id for i in first.invoices]
    assert len(fake.invoices) == 2
    assert fake.invoice_writes() == 2
    assert fake.idempotent_replays == 1

    other = Invoices(invoices=[invoice("hb/other", [line(item_code="DEV", quantity=1)])])
    with pytest.raises(AccountingBadRequestException) as reused:
        api.create_invoices(TENANT, other, summarize_errors=False, idempotency_key="k")
    assert "different request" in reused.value.error_data["Detail"]
    for bad_key in ("", "x" * 129):
        with pytest.raises(AccountingBadRequestException):
            api.create_invoices(TENANT, other, summarize_errors=False, idempotency_key=bad_key)
    api.create_invoices(TENANT, other, summarize_errors=False, idempotency_key="x" * 128)
    assert len(fake.invoices) == 3


def test_summarize_errors_true_rejects_the_whole_batch(api: Any, fake: FakeXero) -> None:
    with pytest.raises(AccountingBadRequestException) as caught:
        api.create_invoices(TENANT, three_invoices())
    error = caught.value.error_data
    assert error["ErrorNumber"] == 10
    assert error["Type"] == "ValidationException"
    assert error["Message"] == "A validation exception occurred"
    assert [e["ValidationErrors"][0]["Message"] for e in error["Elements"]] == [
        "Line 1: Item code 'NOPE' is not valid"
    ]
    assert fake.invoices == {}
    # nothing was committed, so the number sequence did not move either
    ok = Invoices(invoices=[invoice("hb/ok", [line(item_code="DEV", quantity=1)])])
    assert api.create_invoices(TENANT, ok).invoices[0].invoice_number == "INV-0001"


def test_where_filters_and_query_parameters(api: Any, fake: FakeXero) -> None:
    created = api.create_invoices(TENANT, three_invoices(), summarize_errors=False).invoices
    extra = Invoice(
        type="ACCREC",
        contact=Contact(contact_id=BETA),
        line_items=[line(item_code="DEV", quantity=1)],
        reference='other/"quoted"',
        invoice_number="X-9",
        date=dt.date(2026, 10, 1),
    )
    api.create_invoices(TENANT, Invoices(invoices=[extra]))

    def refs(**kwargs: Any) -> list[str]:
        return sorted(i.reference for i in api.get_invoices(TENANT, **kwargs).invoices)

    assert refs(where='Reference.StartsWith("hb/")') == ["hb/1", "hb/3"]
    assert refs(where='Type=="ACCREC" AND Reference.StartsWith("hb/")') == ["hb/1", "hb/3"]
    assert refs(where='type == "ACCREC" && reference.EndsWith("/3")') == ["hb/3"]
    assert refs(where=f'Contact.ContactID==Guid("{BETA.upper()}")') == ['other/"quoted"']
    assert refs(where='Reference.EndsWith("""quoted""")') == ['other/"quoted"']
    assert refs(where='Status=="DRAFT" OR Status=="AUTHORISED"') == [
        "hb/1",
        "hb/3",
        'other/"quoted"',
    ]
    assert refs(where='NOT (Reference.Contains("hb")) && Total > 100') == ['other/"quoted"']
    assert refs(where="Date >= DateTime(2026, 10, 31)") == ["hb/1", "hb/3"]
    assert refs(i_ds=[created[0].invoice_id]) == ["hb/1"]
    assert refs(invoice_numbers=["x-9"]) == ['other/"quoted"']
    assert refs(contact_i_ds=[BETA]) == ['other/"quoted"']
    assert refs(statuses=["AUTHORISED"]) == []

    page = api.get_invoices(TENANT, order="Reference DESC", page=2, page_size=1)
    assert [i.reference for i in page.invoices] == ["hb/3"]
    assert (page.pagination.page_count, page.pagination.item_count) == (3, 3)
    summary = api.get_invoices(TENANT, summary_only=True).invoices
    assert all(i.line_items is None for i in summary)

    for bad in (
        'Reference.StartsWith("hb/") AND',
        'Nope=="x"',
        f'ContactID=="{ACME}"',
        f'Contact.ContactID=="{ACME}"',
        'Reference.EndsWith("\\"quoted\\"")',
        "Reference=='x'",
        'Reference.Sparkle("x")',
        'Total > "100"',
    ):
        with pytest.raises(AccountingBadRequestException) as caught:
            api.get_invoices(TENANT, where=bad)
        assert caught.value.error_data["Type"] == "QueryParseException", bad
        assert caught.value.error_data["ErrorNumber"] == 16


def test_update_of_a_draft_keeps_its_id_and_recomputes(api: Any, fake: FakeXero) -> None:
    created = api.create_invoices(TENANT, three_invoices(), summarize_errors=False).invoices[0]
    change = Invoice(
        invoice_id=created.invoice_id,
        line_items=[
            line(item_code="DEV", quantity=Decimal("2")),
            line(item_code="DEV", quantity=1),
        ],
        reference="hb/1-v2",
    )
    updated = api.update_or_create_invoices(TENANT, Invoices(invoices=[change])).invoices[0]
    assert updated.invoice_id == created.invoice_id
    assert updated.invoice_number == created.invoice_number
    assert (updated.sub_total, updated.total_tax, updated.total) == (
        Decimal("450.00"),
        Decimal("67.50"),
        Decimal("517.50"),
    )
    assert len(fake.invoices) == 2
    assert fake.invoices[created.invoice_id]["Reference"] == "hb/1-v2"

    # an update by InvoiceNumber (no InvoiceID) finds the same invoice
    by_number = Invoice(type="ACCREC", invoice_number=created.invoice_number, reference="v3")
    again = api.update_or_create_invoices(TENANT, Invoices(invoices=[by_number])).invoices[0]
    assert again.invoice_id == created.invoice_id
    assert again.total == Decimal("517.50")  # lines kept
    assert len(fake.invoices) == 2


def test_an_authorised_invoice_cannot_be_modified(api: Any, fake: FakeXero) -> None:
    created = api.create_invoices(TENANT, three_invoices(), summarize_errors=False).invoices[0]
    fake.set_status(created.invoice_id, "AUTHORISED")
    change = Invoice(invoice_id=created.invoice_id, reference="too late")
    with pytest.raises(AccountingBadRequestException) as caught:
        api.update_or_create_invoices(TENANT, Invoices(invoices=[change]))
    assert caught.value.reason == "Invoice not of valid status for modification"
    result = api.update_or_create_invoices(
        TENANT, Invoices(invoices=[change]), summarize_errors=False
    ).invoices[0]
    assert result.has_errors is True
    assert fake.invoices[created.invoice_id]["Reference"] == "hb/1"
    assert fake.invoices[created.invoice_id]["Status"] == "AUTHORISED"


def test_put_with_an_existing_invoice_number_is_rejected(api: Any, fake: FakeXero) -> None:
    first = Invoices(
        invoices=[invoice("a", [line(item_code="DEV", quantity=1)], invoice_number="N-1")]
    )
    api.create_invoices(TENANT, first)
    dup = Invoices(
        invoices=[invoice("b", [line(item_code="DEV", quantity=1)], invoice_number="n-1")]
    )
    result = api.create_invoices(TENANT, dup, summarize_errors=False).invoices[0]
    assert [e.message for e in result.validation_errors] == ["Invoice # must be unique."]
    assert len(fake.invoices) == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Contact": {"ContactID": MISSING}}, f"Contact with ContactID '{MISSING}' could not be"),
        ({"Contact": {"Name": "Nobody Ltd"}}, "Contact with Name 'Nobody Ltd' could not be found"),
        ({"Contact": {"ContactID": GONE}}, "The contact 'Gone Ltd (old)' is archived"),
        ({"Contact": None}, "A Contact must be specified for this type of transaction"),
        ({"Type": None}, "Invoice Type must be specified"),
        ({"Type": "ACCRECCREDIT"}, "Invoice Type 'ACCRECCREDIT' is not ACCREC or ACCPAY"),
        ({"Status": "PAID"}, "Invoice Status 'PAID' cannot be used when creating an invoice"),
        ({"CurrencyCode": "EUR"}, "Organisation is not subscribed to currency EUR"),
        ({"LineItems": [{"Quantity": 1, "UnitAmount": 5}]}, "The description field is mandatory"),
        (
            {"LineItems": [{"Description": "x", "Quantity": 1, "AccountCode": "999"}]},
            "Account code '999' is not a valid code for this document.",
        ),
        (
            {"LineItems": [{"Description": "x", "Quantity": 1, "AccountCode": "090"}]},
            "Account code '090' is not a valid code for this document.",
        ),
        (
            {"LineItems": [{"Description": "x", "Quantity": 1, "AccountCode": "260"}]},
            "Account code '260' has been archived, or has been deleted.",
        ),
        (
            {"LineItems": [{"Description": "x", "AccountCode": "200", "TaxType": "INPUT2"}]},
            "The TaxType code 'INPUT2' does not exist or cannot be used",
        ),
        (
            {"LineItems": [{"Description": "x", "AccountCode": "200", "TaxType": "GST"}]},
            "The TaxType code 'GST' does not exist or cannot be used",
        ),
        (
            {"LineItems": [{"Description": "x", "Quantity": 1.23456, "UnitAmount": 1}]},
            "Quantity must have at most 4 decimal places",
        ),
        (
            {"LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 1.005}]},
            "UnitAmount must have at most 2 decimal places",
        ),
        (
            {
                "LineItems": [
                    {
                        "Description": "x",
                        "UnitAmount": 1,
                        "Tracking": [{"Name": f"C{i}", "Option": "o"} for i in range(3)],
                    }
                ]
            },
            "A line item can have at most 2 tracking categories",
        ),
        (
            {"Status": "AUTHORISED", "LineItems": [{"Description": "x", "UnitAmount": 1}]},
            "An AccountCode is required to approve the invoice",
        ),
        (
            {"LineItems": [{"Description": "x", "Quantity": 2, "UnitAmount": 1, "LineAmount": 3}]},
            "The LineAmount 3 does not equal Quantity x UnitAmount",
        ),
        (
            {"LineItems": [{"Description": "x", "Quantity": -2, "UnitAmount": 1}]},
            "The invoice total cannot be negative",
        ),
    ],
)
def test_business_validation(
    server: RunningServer, fake: FakeXero, overrides: dict[str, Any], message: str
) -> None:
    response = put_raw(server, raw_invoice(**overrides))
    assert response.status_code == 200
    element = response.json()["Invoices"][0]
    assert element["HasErrors"] is True
    assert element["StatusAttributeString"] == "ERROR"
    assert any(message in e["Message"] for e in element["ValidationErrors"]), element
    assert fake.invoices == {}


def test_line_amount_types_and_four_decimal_unit_amounts(server: RunningServer) -> None:
    inclusive = raw_invoice(
        LineAmountTypes="Inclusive",
        LineItems=[{"Description": "a", "Quantity": 1, "UnitAmount": 115, "AccountCode": "200"}],
    )
    no_tax = raw_invoice(
        LineAmountTypes="NoTax",
        LineItems=[{"Description": "b", "Quantity": 3, "UnitAmount": 9.99, "AccountCode": "200"}],
    )
    four_dp = raw_invoice(
        LineItems=[{"Description": "c", "Quantity": 3, "UnitAmount": 0.3333, "AccountCode": "200"}]
    )
    response = put_raw(server, inclusive, no_tax, four_dp, unitdp="4")
    a, b, c = response.json()["Invoices"]
    assert (a["SubTotal"], a["TotalTax"], a["Total"]) == (100, 15, 115)
    assert (b["SubTotal"], b["TotalTax"], b["Total"]) == (29.97, 0, 29.97)
    assert (c["LineItems"][0]["LineAmount"], c["Total"]) == (1.0, 1.15)
    assert c["LineItems"][0]["UnitAmount"] == 0.3333
    invoice_id = c["InvoiceID"]
    plain = requests.get(
        f"{server.url}/Invoices/{invoice_id}", headers=headers(), timeout=10
    ).json()["Invoices"][0]
    assert plain["LineItems"][0]["UnitAmount"] == 0.33  # shown to 2 dp without unitdp=4


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"Status": "BAD"}, "Invoices[0].Status"),
        ({"Type": "FOO"}, "Invoices[0].Type"),
        ({"Contact": {"ContactID": "not-a-guid"}}, "Invoices[0].Contact.ContactID"),
        ({"LineAmountTypes": "Sideways"}, "Invoices[0].LineAmountTypes"),
        ({"Date": "31/10/2026"}, "Invoices[0].Date"),
        ({"CurrencyCode": "XXX"}, "Invoices[0].CurrencyCode"),
        ({"LineItems": [{"Description": "x", "Quantity": "2"}]}, "Invoices[0].LineItems[0]"),
        ({"HasAttachments": "no"}, "Invoices[0].HasAttachments"),
        ({"InvoiceNumber": "N" * 256}, "Invoices[0].InvoiceNumber"),
    ],
)
def test_spec_rejects_malformed_bodies(
    server: RunningServer, fake: FakeXero, overrides: dict[str, Any], path: str
) -> None:
    response = put_raw(server, raw_invoice(**overrides))
    assert response.status_code == 400
    body = response.json()
    assert body["ErrorNumber"] == 14
    assert body["Type"] == "PostDataInvalidException"
    assert path in body["Message"]
    assert fake.invoices == {}


def test_read_only_fields_and_nulls_from_the_sdk_are_tolerated(server: RunningServer) -> None:
    body = raw_invoice(
        HasAttachments=False,
        HasErrors=False,
        SubTotal=99999,
        Total=1,
        DueDate=None,
        Url=None,
        Contact={"ContactID": ACME, "HasValidationErrors": False, "Name": None},
    )
    response = put_raw(server, body)
    assert response.status_code == 200
    created = response.json()["Invoices"][0]
    assert created["HasErrors"] is False
    assert (created["SubTotal"], created["Total"]) == (21.0, 24.15)


def test_not_json_and_missing_array_are_post_data_errors(server: RunningServer) -> None:
    for data in (b"{not json", b'{"Invoice": []}', b'{"Invoices": [{"Quantity": NaN}]}'):
        response = requests.put(f"{server.url}/Invoices", data=data, headers=headers(), timeout=10)
        assert response.status_code == 400
        assert response.json()["Type"] == "PostDataInvalidException"


# --------------------------------------------------------------------------
# reads through the SDK


def test_reference_data_deserializes_in_the_sdk(server: RunningServer) -> None:
    api = make_api(server.url + BASE_PATH)  # the real base path works too
    org = api.get_organisations(TENANT).organisations[0]
    assert (org.name, org.base_currency.value, org.timezone.value) == (
        "Hourbridge Sandbox Ltd",
        "NZD",
        "NEWZEALANDSTANDARDTIME",
    )
    assert org.short_code
    contacts = api.get_contacts(TENANT).contacts
    assert {c.name for c in contacts} == {"Acme Ltd", "Beta Co"}  # archived hidden by default
    assert len(api.get_contacts(TENANT, include_archived=True).contacts) == 3
    by_number = api.get_contacts(TENANT, where='ContactNumber=="HV-2"').contacts
    assert [c.contact_id for c in by_number] == [BETA]
    assert api.get_contacts(TENANT, i_ds=[GONE]).contacts[0].contact_status == "ARCHIVED"
    item = api.get_items(TENANT).items[0]
    assert item.sales_details.unit_price == Decimal("150.0")
    codes = [a.code for a in api.get_accounts(TENANT, where='Status=="ACTIVE"').accounts]
    assert codes == ["090", "200"]
    rates = {t.tax_type: t.effective_rate for t in api.get_tax_rates(TENANT).tax_rates}
    assert rates["OUTPUT2"] == Decimal("15.0")
    assert [c.code.value for c in api.get_currencies(TENANT).currencies] == ["NZD", "USD"]
    with pytest.raises(NotFoundException):
        api.get_invoice(TENANT, MISSING)


# --------------------------------------------------------------------------
# authentication and limits


def test_authentication_errors(server: RunningServer, fake: FakeXero) -> None:
    response = requests.get(
        f"{server.url}/Invoices", headers={"xero-tenant-id": TENANT}, timeout=10
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert {k: body[k] for k in ("Type", "Title", "Status", "Detail", "Extensions")} == {
        "Type": None,
        "Title": "Unauthorized",
        "Status": 401,
        "Detail": "AuthenticationUnsuccessful",
        "Extensions": {},
    }
    assert len(body["Instance"]) == 36

    with pytest.raises(HTTPStatusException) as wrong_token:
        make_api(server.url, token="stale").get_invoices(TENANT)
    assert wrong_token.value.status == 401

    api = make_api(server.url)
    with pytest.raises(HTTPStatusException) as wrong_tenant:
        api.get_invoices(MISSING)
    assert wrong_tenant.value.status == 403
    assert json.loads(wrong_tenant.value.body)["Title"] == "Forbidden"
    missing = requests.get(
        f"{server.url}/Invoices", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert missing.status_code == 403
    assert fake.calls["GET /Invoices"] == 4  # rejected calls are counted too
    for name in ("X-MinLimit-Remaining", "X-DayLimit-Remaining", "X-AppMinLimit-Remaining"):
        assert name in missing.headers


def test_minute_limit_with_an_injected_clock(plug: Callable[[FakeXero], RunningServer]) -> None:
    clock = ManualClock()
    fake = make_fake(per_minute=3, clock=clock)
    server = plug(fake)
    api = make_api(server.url)
    remaining = []
    for _ in range(3):
        api.get_contacts(TENANT)
        remaining.append(api.api_client.last_response.getheader("X-MinLimit-Remaining"))
    assert remaining == ["2", "1", "0"]
    with pytest.raises(RateLimitException) as caught:
        api.get_contacts(TENANT)
    assert caught.value.rate_limit == "minute"
    assert caught.value.headers["Retry-After"] == "60"
    clock.now += 45
    with pytest.raises(RateLimitException) as later:
        api.get_contacts(TENANT)
    assert later.value.headers["Retry-After"] == "15"
    clock.now += 16
    assert len(api.get_contacts(TENANT).contacts) == 2
    assert fake.calls["GET /Contacts"] == 6


def test_day_limit(plug: Callable[[FakeXero], RunningServer]) -> None:
    fake = make_fake(per_day=2, clock=ManualClock())
    server = plug(fake)
    api = make_api(server.url)
    api.get_items(TENANT)
    api.get_items(TENANT)
    with pytest.raises(RateLimitException) as caught:
        api.get_items(TENANT)
    assert caught.value.rate_limit == "day"
    assert caught.value.headers["Retry-After"] == "86400"
    assert caught.value.headers["X-DayLimit-Remaining"] == "0"


def test_concurrent_limit_while_a_write_is_held(
    plug: Callable[[FakeXero], RunningServer],
) -> None:
    fake = make_fake(concurrent=1)
    server = plug(fake)
    api = make_api(server.url)
    release = fake.hold_after_commit()
    writer = threading.Thread(
        target=api.create_invoices,
        args=(
            TENANT,
            Invoices(invoices=[invoice("held", [line(item_code="DEV", quantity=1)])]),
        ),
    )
    writer.start()
    try:
        assert fake.committed.wait(5)
        with pytest.raises(RateLimitException) as caught:
            make_api(server.url).get_contacts(TENANT)
        assert caught.value.rate_limit == "concurrent"
        assert "Retry-After" not in caught.value.headers  # Xero sends it for minute/day only
    finally:
        release.set()
        writer.join(5)
    assert not writer.is_alive()
    assert len(make_api(server.url).get_contacts(TENANT).contacts) == 2


# --------------------------------------------------------------------------
# faults


def test_drop_after_commit_loses_the_response_but_not_the_invoice(
    server: RunningServer, fake: FakeXero, api: Any
) -> None:
    fake.drop_after_commit()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        api.create_invoices(
            TENANT,
            Invoices(invoices=[invoice("hb/lost", [line(item_code="DEV", quantity=1)])]),
            summarize_errors=False,
            idempotency_key="lost-1",
        )
    assert [i["Reference"] for i in fake.invoices.values()] == ["hb/lost"]
    # the documented recovery: find it again by our own Reference
    found = api.get_invoices(TENANT, where='Reference=="hb/lost"').invoices
    assert [i.invoice_id for i in found] == list(fake.invoices)
    # or resend with the same key: replayed, not created twice
    replay = api.create_invoices(
        TENANT,
        Invoices(invoices=[invoice("hb/lost", [line(item_code="DEV", quantity=1)])]),
        summarize_errors=False,
        idempotency_key="lost-1",
    )
    assert [i.invoice_id for i in replay.invoices] == list(fake.invoices)
    assert len(fake.invoices) == 1


def test_sdk_default_pool_retries_put_but_not_post_after_a_dropped_connection(
    server: RunningServer, fake: FakeXero
) -> None:
    """What xero-python does with its own urllib3 pool (Retry(total=3) by default)."""
    api = make_api(server.url, sdk_default_pool=True)

    def body(reference: str) -> Any:
        return Invoices(invoices=[invoice(reference, [line(item_code="DEV", quantity=1)])])

    # PUT without a key: urllib3 silently resends it, so one call makes two invoices
    fake.drop_after_commit()
    result = api.create_invoices(TENANT, body("put/no-key"), summarize_errors=False)
    refs = [i["Reference"] for i in fake.invoices.values()]
    assert refs == ["put/no-key", "put/no-key"]
    assert result.invoices[0].invoice_id == list(fake.invoices)[1]
    assert fake.calls["PUT /Invoices"] == 2

    # PUT with a key: the silent resend is answered from the first response
    fake.drop_after_commit()
    api.create_invoices(TENANT, body("put/key"), summarize_errors=False, idempotency_key="pk")
    assert [i["Reference"] for i in fake.invoices.values()].count("put/key") == 1
    assert fake.idempotent_replays == 1

    # POST is never retried by urllib3: the caller sees the connection error
    fake.drop_after_commit()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        api.update_or_create_invoices(TENANT, body("post"), summarize_errors=False)
    assert [i["Reference"] for i in fake.invoices.values()].count("post") == 1

    # a 429 with Retry-After on a GET is waited out and retried inside the SDK
    fake.fail_next(429, retry_after=0)
    assert len(api.get_contacts(TENANT).contacts) == 2
    assert fake.calls["GET /Contacts"] == 2


def test_hold_after_commit_lets_a_client_die_after_the_commit(
    server: RunningServer, fake: FakeXero
) -> None:
    release = fake.hold_after_commit()
    outcome: dict[str, Any] = {}
    body = Invoices(invoices=[invoice("hb/held", [line(item_code="DEV", quantity=1)])])

    def call() -> None:
        try:
            outcome["result"] = make_api(server.url).create_invoices(
                TENANT, body, summarize_errors=False, idempotency_key="held-1"
            )
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            outcome["error"] = exc

    worker = threading.Thread(target=call)
    worker.start()
    try:
        assert fake.committed.wait(5)
        assert worker.is_alive()  # the client is still waiting for its answer
        assert [i["Reference"] for i in fake.invoices.values()] == ["hb/held"]
        # a second process retrying with the same key gets the committed result
        retried = make_api(server.url).create_invoices(
            TENANT, body, summarize_errors=False, idempotency_key="held-1"
        )
        assert [i.invoice_id for i in retried.invoices] == list(fake.invoices)
    finally:
        release.set()
        worker.join(5)
    assert "error" not in outcome
    assert [i.invoice_id for i in outcome["result"].invoices] == list(fake.invoices)
    assert len(fake.invoices) == 1


def test_fail_next(server: RunningServer, fake: FakeXero, api: Any) -> None:
    fake.fail_next(503, count=2, retry_after=7)
    for _ in range(2):
        with pytest.raises(HTTPStatusException) as caught:
            api.get_contacts(TENANT)
        assert caught.value.status == 503
        assert caught.value.headers["Retry-After"] == "7"
    fake.fail_next(429)
    with pytest.raises(RateLimitException) as limited:
        api.create_invoices(
            TENANT, Invoices(invoices=[invoice("x", [line(item_code="DEV", quantity=1)])])
        )
    assert limited.value.rate_limit == "minute"
    assert fake.invoices == {}
    assert fake.invoice_writes() == 0
    assert len(api.get_contacts(TENANT).contacts) == 2


# --------------------------------------------------------------------------
# pieces


def test_dumps_json_writes_exact_decimals() -> None:
    value = {"a": Decimal("12345678901234567890.12"), "b": [Decimal("0.10"), 1, True, None]}
    assert dumps_json(value) == '{"a":12345678901234567890.12,"b":[0.10,1,true,null]}'
    with pytest.raises(TypeError):
        dumps_json({"x": 0.1})


def test_where_parser_on_plain_records() -> None:
    record = {
        "Name": 'Say "hi"',
        "Total": Decimal("100.00"),
        "Contact": {"ContactID": ACME.upper()},
        "Reference": None,
        "Date": "/Date(1793404800000+0000)/",
    }

    def matches(text: str) -> bool:
        return parse_where(text, "Invoice")(record)

    assert matches("Reference == null && Total >= 100 && Total < 100.01")
    assert matches('Reference != "x" || Total > 1000')
    assert not matches('Total > 100 AND (Reference == null OR Reference == "y")')
    assert matches(f'Contact.ContactID.ToString() == "{ACME}"')
    assert matches("Date == DateTime(2026, 10, 31)")
    assert parse_where('Name.Contains("""hi""")', "Contact")(record)
    assert parse_where('Name.ToLower().StartsWith("say")', "Contact")(record)
    for bad in ("", "Total", 'Reference = "x" junk', "Total > ", '"unterminated', "Date > 5"):
        with pytest.raises(WhereError):
            parse_where(bad, "Invoice")
