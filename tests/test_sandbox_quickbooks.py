"""The fake QuickBooks Online, driven through python-quickbooks (and raw HTTP for bad input).

How a client is pointed at the fake without a token refresh (see ``make_client``):

* ``intuitlib.AuthClient`` downloads Intuit's OpenID discovery document in its
  constructor; the fake serves one, and ``DISCOVERY_URL["sandbox"]`` is pointed
  at it so that ``environment="sandbox"`` still works offline;
* ``QuickBooks(auth_client=...)`` refreshes at once when the AuthClient has no
  ``access_token`` (``QuickBooks._start_session``); with one it does not;
* ``qb.sandbox_api_url_v3`` (an instance attribute, read by ``qb.api_url``)
  sends the API calls to the fake;
* requests-oauthlib refuses plain ``http://`` unless ``OAUTHLIB_INSECURE_TRANSPORT``
  is set.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
import requests
from intuitlib import utils as intuit_utils
from intuitlib.client import AuthClient
from quickbooks import QuickBooks
from quickbooks.batch import BatchManager, batch_create, batch_delete, batch_update
from quickbooks.exceptions import (
    AuthorizationException,
    ObjectNotFoundException,
    QuickbooksException,
    ValidationException,
)
from quickbooks.objects.base import Ref
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item

from sandbox.quickbooks import (
    DISCOVERY_PATH,
    FakeQuickBooks,
    QboSettings,
    QueryError,
    parse_query,
    qbo_fixture_from_month,
)
from sandbox.seed import SeedSpec, build_agency_month
from sandbox.serving import RunningServer, serving

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

REALM = QboSettings().realm_id
TOKEN = QboSettings().access_token
REFRESH = QboSettings().refresh_token
MINOR = 75

ACME, BETA, GONE = "1", "2", "3"
DEV, PM, OLD_ITEM = "1", "2", "3"
GST, NO_GST = "3", "6"

CUSTOMERS: list[dict[str, Any]] = [
    {"Id": ACME, "DisplayName": "Acme Ltd", "CurrencyRef": {"value": "NZD"}},
    {"Id": BETA, "DisplayName": "Beta Inc", "CurrencyRef": {"value": "USD"}},
    {"Id": GONE, "DisplayName": "Gone Ltd", "Active": False},
    *(
        {"Id": str(n), "DisplayName": f"Customer {n:02d}", "CurrencyRef": {"value": "NZD"}}
        for n in range(4, 28)
    ),
]
ITEMS: list[dict[str, Any]] = [
    {"Id": DEV, "Name": "DEV", "Type": "Service", "UnitPrice": Decimal("165.00")},
    {"Id": PM, "Name": "PM", "Type": "Service", "UnitPrice": Decimal("140.00")},
    {"Id": OLD_ITEM, "Name": "OLD", "Type": "Service", "Active": False},
]
TAX_CODES: list[dict[str, Any]] = [
    {
        "Id": GST,
        "Name": "GST on Income",
        "Taxable": True,
        "SalesTaxRateList": {"TaxRateDetail": [{"TaxRateRef": {"value": "5"}}]},
    },
    {
        "Id": NO_GST,
        "Name": "No GST",
        "Taxable": False,
        "SalesTaxRateList": {"TaxRateDetail": [{"TaxRateRef": {"value": "8"}}]},
    },
]
TAX_RATES: list[dict[str, Any]] = [
    {"Id": "5", "Name": "GST (15%)", "RateValue": Decimal(15)},
    {"Id": "8", "Name": "No GST (0%)", "RateValue": Decimal(0)},
]


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_fake(**settings: Any) -> FakeQuickBooks:
    return FakeQuickBooks(
        customers=CUSTOMERS,
        items=ITEMS,
        tax_codes=TAX_CODES,
        tax_rates=TAX_RATES,
        classes=[{"Id": "1", "Name": "Web"}],
        currencies=["NZD", "USD"],
        home_currency="NZD",
        settings=QboSettings(**settings),
    )


class AppSlot:
    """One loopback server per module; each test plugs its own fresh fake into it."""

    def __init__(self) -> None:
        self.app: FakeQuickBooks | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        assert self.app is not None, "no fake plugged in"
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[RunningServer, AppSlot]]:
    slot = AppSlot()
    with serving(slot) as running:
        yield running, slot


@pytest.fixture
def plug(
    shared: tuple[RunningServer, AppSlot],
) -> Iterator[Callable[[FakeQuickBooks], RunningServer]]:
    running, slot = shared

    def plug_in(fake: FakeQuickBooks) -> RunningServer:
        slot.app = fake
        return running

    yield plug_in
    slot.app = None


@pytest.fixture(autouse=True)
def offline_oauth(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests-oauthlib refuses http:// URLs without this
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def fake() -> FakeQuickBooks:
    return make_fake()


@pytest.fixture
def server(fake: FakeQuickBooks, plug: Callable[[FakeQuickBooks], RunningServer]) -> RunningServer:
    return plug(fake)


def make_client(
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    token: str | None = TOKEN,
    minorversion: int = MINOR,
    realm: str = REALM,
) -> Any:
    """A python-quickbooks client on the fake that never refreshes its token."""
    monkeypatch.setitem(intuit_utils.DISCOVERY_URL, "sandbox", url + DISCOVERY_PATH)
    auth = AuthClient(
        "client-id",
        "client-secret",
        "http://localhost/callback",
        environment="sandbox",
        access_token=token,  # without it QuickBooks(...) refreshes at once
        refresh_token=REFRESH,
    )
    qb = QuickBooks(
        auth_client=auth,
        refresh_token=REFRESH,
        company_id=realm,
        minorversion=minorversion,
        use_decimal=True,
    )
    qb.sandbox_api_url_v3 = f"{url}/v3"
    return qb


@pytest.fixture
def qb(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    return make_client(server.url, monkeypatch)


def ref(value: str) -> Any:
    out = Ref()
    out.value = value
    return out


def invoice(
    customer: str = ACME,
    lines: Iterable[tuple[str, str, str]] = ((DEV, "2", "165.00"),),
    *,
    doc: str | None = None,
    txn_date: str | None = None,
    tax: str = GST,
) -> Any:
    inv = Invoice()
    inv.CustomerRef = ref(customer)
    for item, qty, price in lines:
        line = SalesItemLine()
        line.Amount = (Decimal(qty) * Decimal(price)).quantize(Decimal("0.01"))
        line.SalesItemLineDetail = SalesItemLineDetail()
        line.SalesItemLineDetail.ItemRef = ref(item)
        line.SalesItemLineDetail.Qty = Decimal(qty)
        line.SalesItemLineDetail.UnitPrice = Decimal(price)
        line.SalesItemLineDetail.TaxCodeRef = ref(tax)
        inv.Line.append(line)
    if doc is not None:
        inv.DocNumber = doc
    if txn_date is not None:
        inv.TxnDate = txn_date
    return inv


def api(url: str, path: str) -> str:
    return f"{url}/v3/company/{REALM}/{path}"


def auth_headers(**extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json", **extra}


# --------------------------------------------------------------------------
# connecting


def test_client_with_access_token_does_not_refresh(fake: FakeQuickBooks, qb: Any) -> None:
    assert Customer.count(qb=qb) == 26
    assert fake.calls["POST token"] == 0
    assert fake.calls["GET discovery"] == 1  # AuthClient's constructor fetches it
    assert fake.calls["POST query"] == 1  # python-quickbooks queries with POST


def test_client_without_access_token_refreshes_at_construction(
    fake: FakeQuickBooks, server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    qb = make_client(server.url, monkeypatch, token=None)
    assert fake.calls["POST token"] == 1  # the trap: a refresh before any API call
    assert qb.auth_client.access_token == TOKEN
    assert qb.refresh_token == REFRESH


def test_duck_typed_auth_client_needs_no_discovery(
    fake: FakeQuickBooks, server: RunningServer
) -> None:
    # QuickBooks(...) reads only environment, access_token, refresh_token and client_id
    # of its auth_client (and calls refresh() when access_token is None)
    auth = SimpleNamespace(
        environment="sandbox", client_id="client-id", access_token=TOKEN, refresh_token=REFRESH
    )
    qb = QuickBooks(auth_client=auth, refresh_token=REFRESH, company_id=REALM, minorversion=MINOR)
    qb.sandbox_api_url_v3 = f"{server.url}/v3"
    assert Customer.count(qb=qb) == 26
    assert fake.calls["GET discovery"] == 0
    assert fake.calls["POST token"] == 0


def test_bad_token_is_401_authorization_exception(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    qb = make_client(server.url, monkeypatch, token="expired")
    with pytest.raises(AuthorizationException) as info:
        Customer.all(qb=qb)
    assert info.value.error_code == 401
    assert "AuthenticationFailed" in info.value.detail
    body = json.loads(info.value.detail)
    assert body["fault"]["error"][0]["code"] == "3200"
    assert body["fault"]["type"] == "AUTHENTICATION"


def test_wrong_realm_is_403(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    qb = make_client(server.url, monkeypatch, realm="123")
    with pytest.raises(QuickbooksException) as info:
        Customer.all(qb=qb)
    assert info.value.error_code == 10000  # the lower-case envelope is not parsed as a Fault
    assert "403" in info.value.message
    assert "ApplicationAuthorizationFailed" in info.value.message


def test_old_minor_version_is_rejected(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.warns(DeprecationWarning):
        qb = make_client(server.url, monkeypatch, minorversion=74)
    with pytest.raises(ValidationException) as info:
        Customer.all(qb=qb)
    assert info.value.error_code == 2010
    assert "minorversion=74" in info.value.detail


def test_missing_minor_version_is_rejected(server: RunningServer) -> None:
    response = requests.get(
        api(server.url, "query"),
        params={"query": "SELECT * FROM Customer"},
        headers=auth_headers(),
        timeout=5,
    )
    assert response.status_code == 400
    error = response.json()["Fault"]["Error"][0]
    assert error["code"] == "2020"
    assert error["Detail"] == "Required parameter minorversion is missing in the request"


def test_old_minor_version_accepted_when_ignored_like_qbo(
    plug: Callable[[FakeQuickBooks], RunningServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = plug(make_fake(minor_version_policy="ignore"))
    with pytest.warns(DeprecationWarning):
        qb = make_client(server.url, monkeypatch, minorversion=40)
    assert len(Customer.all(qb=qb)) == 26


# --------------------------------------------------------------------------
# queries


def test_query_paging_with_startposition_and_maxresults(qb: Any) -> None:
    first = qb.query("SELECT * FROM Customer ORDERBY Id STARTPOSITION 1 MAXRESULTS 10")
    page = first["QueryResponse"]
    assert (page["startPosition"], page["maxResults"]) == (1, 10)
    assert [c["Id"] for c in page["Customer"]] == ["1", "2", *(str(n) for n in range(4, 12))]
    last = Customer.query("SELECT * FROM Customer STARTPOSITION 21 MAXRESULTS 10", qb=qb)
    assert len(last) == 6  # 26 active customers; inactive "Gone Ltd" is not listed
    beyond = qb.query("SELECT * FROM Customer STARTPOSITION 27 MAXRESULTS 10")
    assert beyond["QueryResponse"] == {}


def test_query_filters_orders_and_counts(qb: Any) -> None:
    assert [c.DisplayName for c in Customer.filter(DisplayName="Acme Ltd", qb=qb)] == ["Acme Ltd"]
    assert [c.Id for c in Customer.choose([ACME, BETA], field="Id", qb=qb)] == [ACME, BETA]
    liked = Customer.where("DisplayName LIKE '%ltd'", qb=qb)
    assert [c.DisplayName for c in liked] == ["Acme Ltd"]
    everyone = Customer.where("Active IN (true, false) AND DisplayName LIKE '%ltd'", qb=qb)
    assert sorted(c.DisplayName for c in everyone) == ["Acme Ltd", "Gone Ltd"]
    ordered = Customer.where("Id IN ('1', '2', '4')", order_by="DisplayName DESC", qb=qb)
    assert [c.DisplayName for c in ordered] == ["Customer 04", "Beta Inc", "Acme Ltd"]
    assert Customer.count(qb=qb) == 26
    assert Customer.count("Active = false", qb=qb) == 1
    assert [i.Name for i in Item.all(qb=qb)] == ["DEV", "PM"]  # "SELECT *, Sku FROM Item"


def test_query_over_get_and_projection(server: RunningServer) -> None:
    response = requests.get(
        api(server.url, "query"),
        params={"query": "select DisplayName from customer where Id = '2'", "minorversion": "75"},
        headers=auth_headers(),
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["QueryResponse"]["Customer"] == [
        {"DisplayName": "Beta Inc", "domain": "QBO", "sparse": True}
    ]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("SELECT * FROM Customer WHERE", 4000),
        ("SELECT * FROM Customer WHERE Id = '1' OR Id = '2'", 4000),
        ("SELECT * FROM Customer WHERE DisplayName != 'x'", 4000),
        ("SELECT * FROM Nothing", 4000),
        ("SELECT * FROM Invoice WHERE PrivateNote = 'hb:1'", 4001),
        ("SELECT * FROM Customer ORDERBY Notes", 4001),
    ],
)
def test_bad_queries_are_validation_faults(qb: Any, query: str, code: int) -> None:
    with pytest.raises(ValidationException) as info:
        qb.query(query)
    assert info.value.error_code == code


def test_parse_query_unit() -> None:
    query = parse_query(
        "select count(*) from INVOICE where TxnDate >= '2026-10-01' "
        "and DocNumber in ('HB-1', 'it\\'s') order by TxnDate desc maxresults 5 startposition 3"
    )
    assert query.entity == "Invoice"
    assert query.count
    assert [c.op for c in query.conditions] == [">=", "IN"]
    assert query.conditions[1].values == ("HB-1", "it's")
    assert query.order == (("TxnDate", True),)
    assert (query.start, query.max_results) == (3, 5)
    with pytest.raises(QueryError):
        parse_query("SELECT * FROM Invoice MAXRESULTS 5 MAXRESULTS 6")


# --------------------------------------------------------------------------
# invoices


def test_create_computes_totals_tax_and_stores_exact_decimals(
    fake: FakeQuickBooks, qb: Any
) -> None:
    saved = invoice(lines=[(DEV, "2", "165.00"), (PM, "1.5", "140.00")], doc="HB-0001").save(qb=qb)
    assert saved.SyncToken == "0"
    assert saved.DocNumber == "HB-0001"
    assert saved.TotalAmt == Decimal("621.00")  # 540.00 + 15 % GST
    assert saved.TxnTaxDetail.TotalTax == Decimal("81.00")
    assert saved.Balance == saved.TotalAmt
    assert saved.CurrencyRef.value == "NZD"
    assert saved.EmailStatus == "NotSet"
    assert [line.DetailType for line in saved.Line] == [
        "SalesItemLineDetail",
        "SalesItemLineDetail",
        "SubTotalLineDetail",
    ]
    stored = fake.invoices[saved.Id]
    assert stored["Line"][1]["Amount"] == Decimal("210.00")
    assert stored["Line"][0]["SalesItemLineDetail"]["ItemRef"] == {"value": DEV, "name": "DEV"}
    assert stored["MetaData"]["CreateTime"] == stored["MetaData"]["LastUpdatedTime"]


def test_numbers_go_out_with_exact_digits(server: RunningServer) -> None:
    body = {
        "CustomerRef": {"value": ACME},
        "Line": [
            {
                "Amount": 0.30,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": DEV},
                    "Qty": 3,
                    "UnitPrice": 0.1,
                    "TaxCodeRef": {"value": NO_GST},
                },
            }
        ],
    }
    response = requests.post(
        api(server.url, "invoice"),
        params={"minorversion": "75"},
        data=json.dumps(body),
        headers=auth_headers(**{"Content-Type": "application/json"}),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    assert '"Amount":0.30,' in response.text
    assert '"UnitPrice":0.1,' in response.text
    assert '"TotalAmt":0.30,' in response.text


def test_requestid_replays_the_first_response(fake: FakeQuickBooks, qb: Any) -> None:
    first = invoice(doc="HB-1").save(qb=qb, request_id="hb-run-1-inv-1")
    again = invoice(doc="HB-1").save(qb=qb, request_id="hb-run-1-inv-1")
    assert again.Id == first.Id
    assert again.MetaData.CreateTime == first.MetaData.CreateTime
    assert len(fake.invoices) == 1
    assert fake.idempotent_replays == 1
    assert fake.invoice_writes() == 2


def test_requestid_longer_than_50_is_rejected(fake: FakeQuickBooks, qb: Any) -> None:
    with pytest.raises(QuickbooksException) as info:
        invoice().save(qb=qb, request_id="r" * 51)
    assert info.value.error_code == 6000
    assert "more than 50 characters in the request_id field" in info.value.detail
    assert fake.invoices == {}


def test_update_with_current_synctoken_bumps_it(fake: FakeQuickBooks, qb: Any) -> None:
    saved = invoice().save(qb=qb)
    saved.PrivateNote = "hourbridge run 7"
    updated = saved.save(qb=qb)
    assert updated.Id == saved.Id
    assert updated.SyncToken == "1"
    assert fake.invoices[saved.Id]["PrivateNote"] == "hourbridge run 7"
    assert len(fake.invoices) == 1


def test_sparse_update_keeps_what_it_does_not_send(
    fake: FakeQuickBooks, server: RunningServer, qb: Any
) -> None:
    saved = invoice(lines=[(DEV, "1", "165.00"), (PM, "1", "140.00")]).save(qb=qb)
    response = requests.post(
        api(server.url, "invoice"),
        params={"minorversion": "75"},
        data=json.dumps({"Id": saved.Id, "SyncToken": "0", "sparse": True, "PrivateNote": "x"}),
        headers=auth_headers(**{"Content-Type": "application/json"}),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    stored = fake.invoices[saved.Id]
    assert stored["SyncToken"] == "1"
    assert stored["PrivateNote"] == "x"
    assert len(stored["Line"]) == 3  # two item lines and the SubTotal line
    assert stored["TotalAmt"] == Decimal("350.75")


def test_stale_synctoken_is_5010(qb: Any) -> None:
    saved = invoice().save(qb=qb)
    stale = Invoice.get(saved.Id, qb=qb)
    saved.PrivateNote = "first"
    saved.save(qb=qb)
    stale.PrivateNote = "second"
    with pytest.raises(QuickbooksException) as info:
        stale.save(qb=qb)
    assert info.value.error_code == 5010
    assert info.value.message == "Stale Object Error"


def test_unknown_item_is_invalid_reference_2500(fake: FakeQuickBooks, qb: Any) -> None:
    with pytest.raises(ValidationException) as info:
        invoice(lines=[("999", "1", "10.00")]).save(qb=qb)
    assert info.value.error_code == 2500
    assert info.value.detail == "Invalid Reference Id : Line.SalesItemLineDetail.ItemRef"
    assert fake.invoices == {}


def test_inactive_customer_and_item_are_object_not_found_610(qb: Any) -> None:
    with pytest.raises(ObjectNotFoundException):
        invoice(customer=GONE).save(qb=qb)
    with pytest.raises(ObjectNotFoundException):
        invoice(lines=[(OLD_ITEM, "1", "10.00")]).save(qb=qb)


def test_doc_number_longer_than_21_is_2050(qb: Any) -> None:
    invoice(doc="X" * 21).save(qb=qb)
    with pytest.raises(ValidationException) as info:
        invoice(doc="Y" * 22).save(qb=qb)
    assert info.value.error_code == 2050
    assert "Max:21 supported. Supplied length:22" in info.value.detail


def test_duplicate_doc_number_is_6140(qb: Any) -> None:
    first = invoice(doc="HB-7").save(qb=qb)
    with pytest.raises(QuickbooksException) as info:
        invoice(doc="hb-7").save(qb=qb)
    assert info.value.error_code == 6140
    assert f"TxnId={first.Id}" in info.value.detail


def test_amount_must_equal_qty_times_unit_price(qb: Any) -> None:
    bad = invoice(lines=[(DEV, "1.005", "100.00")])
    bad.Line[0].Amount = Decimal("100.49")  # 100.5 rounded half-up is 100.50
    with pytest.raises(QuickbooksException) as info:
        bad.save(qb=qb)
    assert info.value.error_code == 6070
    good = invoice(lines=[(DEV, "1.005", "100.00")])
    assert good.Line[0].Amount == Decimal("100.50")
    assert good.save(qb=qb).TotalAmt == Decimal("115.58")  # 100.50 + 15.075 → 15.08


def test_unknown_property_is_2010(qb: Any) -> None:
    inv = invoice()
    inv.Line[0].SalesItemLineDetail.Amount = Decimal("330.00")  # python-quickbooks issue #299
    with pytest.raises(ValidationException) as info:
        inv.save(qb=qb)
    assert info.value.error_code == 2010
    assert 'Unrecognized field "Amount"' in info.value.detail


def test_currency_must_be_the_customers(qb: Any) -> None:
    usd = invoice(customer=BETA).save(qb=qb)
    assert usd.CurrencyRef.value == "USD"
    wrong = invoice(customer=BETA)
    wrong.CurrencyRef = ref("NZD")
    with pytest.raises(QuickbooksException) as info:
        wrong.save(qb=qb)
    assert info.value.error_code == 6000


def test_line_without_tax_code_is_rejected_in_a_gst_company(qb: Any) -> None:
    inv = invoice()
    inv.Line[0].SalesItemLineDetail.TaxCodeRef = None
    with pytest.raises(QuickbooksException) as info:
        inv.save(qb=qb)
    assert info.value.error_code == 6000
    assert "GST rate" in info.value.detail


def test_get_invoice_and_missing_invoice(qb: Any) -> None:
    saved = invoice().save(qb=qb)
    assert Invoice.get(saved.Id, qb=qb).TotalAmt == saved.TotalAmt
    with pytest.raises(ObjectNotFoundException) as info:
        Invoice.get("99999", qb=qb)
    assert info.value.error_code == 610
    found = Invoice.filter(DocNumber=saved.DocNumber, qb=qb)
    assert [i.Id for i in found] == [saved.Id]


def test_sent_paid_and_voided_invoices_are_locked(fake: FakeQuickBooks, qb: Any) -> None:
    sent, paid, voided = (invoice().save(qb=qb) for _ in range(3))
    fake.set_sent(sent.Id)
    fake.set_paid(paid.Id)
    fake.void(voided.Id)
    for saved, state in ((sent, "sent"), (paid, "paid"), (voided, "voided")):
        current = Invoice.get(saved.Id, qb=qb)
        current.PrivateNote = "hourbridge"
        with pytest.raises(QuickbooksException) as info:
            current.save(qb=qb)
        assert info.value.error_code == 6000
        assert state in info.value.detail
    assert fake.invoices[sent.Id]["EmailStatus"] == "EmailSent"
    assert fake.invoices[voided.Id]["TotalAmt"] == Decimal("0.00")


def test_void_and_delete_through_the_api(fake: FakeQuickBooks, qb: Any) -> None:
    to_void, to_delete = invoice().save(qb=qb), invoice().save(qb=qb)
    result = to_void.void(qb=qb)
    assert result["Invoice"]["TotalAmt"] == Decimal("0.00")
    assert result["Invoice"]["PrivateNote"] == "Voided"
    deleted = to_delete.delete(qb=qb)
    assert deleted["Invoice"] == {"status": "Deleted", "domain": "QBO", "Id": to_delete.Id}
    assert set(fake.invoices) == {to_void.Id}


def test_closed_books_reject_invoices_in_the_closed_period(fake: FakeQuickBooks, qb: Any) -> None:
    early = invoice(txn_date="2026-09-15").save(qb=qb)
    fake.close_books(date(2026, 9, 30))
    with pytest.raises(QuickbooksException) as info:
        invoice(txn_date="2026-09-30").save(qb=qb)
    assert info.value.error_code == 6200
    assert info.value.message == "Account Period Closed"
    early.PrivateNote = "too late"
    with pytest.raises(QuickbooksException):
        early.save(qb=qb)
    assert invoice(txn_date="2026-10-01").save(qb=qb).TxnDate == "2026-10-01"
    preferences = qb.get(f"{qb.api_url}/company/{REALM}/preferences")["Preferences"]
    assert preferences["AccountingInfoPrefs"]["BookCloseDate"] == "2026-09-30"


# --------------------------------------------------------------------------
# throttling


def test_json_throttle_raises_validation_exception_3001(fake: FakeQuickBooks, qb: Any) -> None:
    fake.fail_next(429)
    with pytest.raises(ValidationException) as info:  # python-quickbooks maps 2000-4999 so
        Customer.all(qb=qb)
    assert info.value.error_code == 3001
    assert "ThrottleExceeded" in info.value.message


def test_xml_throttle_raises_a_bare_quickbooks_exception(fake: FakeQuickBooks, qb: Any) -> None:
    fake.fail_next(429, xml=True, retry_after=7)
    with pytest.raises(QuickbooksException) as info:
        Customer.all(qb=qb)
    assert type(info.value) is QuickbooksException
    assert info.value.error_code == 10000
    assert info.value.message.startswith("Error reading json response: <?xml")
    assert 'Error code="3001"' in info.value.message


def test_xml_fault_when_the_client_asks_for_xml(
    fake: FakeQuickBooks, server: RunningServer
) -> None:
    fake.fail_next(429)
    response = requests.get(
        api(server.url, "query"),
        params={"query": "SELECT * FROM Customer", "minorversion": "75"},
        headers=auth_headers(Accept="application/xml"),
        timeout=5,
    )
    assert response.status_code == 429
    assert response.headers["Content-Type"].startswith("application/xml")
    assert "<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>" in (
        response.text
    )


def test_per_minute_limit(
    plug: Callable[[FakeQuickBooks], RunningServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock()
    fake = make_fake(per_minute=3, clock=clock)
    qb = make_client(plug(fake).url, monkeypatch)
    for _ in range(3):
        Customer.count(qb=qb)
    with pytest.raises(ValidationException) as info:
        Customer.count(qb=qb)
    assert info.value.error_code == 3001
    clock.now += 61
    assert Customer.count(qb=qb) == 26


def test_real_throttle_as_xml(
    plug: Callable[[FakeQuickBooks], RunningServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = make_fake(per_minute=1, throttle_as_xml=True, clock=ManualClock())
    qb = make_client(plug(fake).url, monkeypatch)
    Customer.count(qb=qb)
    with pytest.raises(QuickbooksException) as info:
        Customer.count(qb=qb)
    assert info.value.error_code == 10000


def test_concurrency_limit(
    plug: Callable[[FakeQuickBooks], RunningServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = make_fake(concurrent=1)
    qb = make_client(plug(fake).url, monkeypatch)
    release = fake.hold_after_commit()
    saved: list[Any] = []
    writer = threading.Thread(target=lambda: saved.append(invoice().save(qb=qb)))
    writer.start()
    try:
        assert fake.committed.wait(5)
        with pytest.raises(ValidationException) as info:
            Customer.count(qb=make_client(plug(fake).url, monkeypatch))
        assert info.value.error_code == 3001
    finally:
        release.set()
        writer.join(5)
    assert len(saved) == 1
    assert Customer.count(qb=qb) == 26


# --------------------------------------------------------------------------
# batches


def test_batch_of_30_creates_all(fake: FakeQuickBooks, qb: Any) -> None:
    result = batch_create([invoice(doc=f"B-{n}") for n in range(30)], qb=qb)
    assert len(result.successes) == 30
    assert result.faults == []
    assert len(fake.invoices) == 30
    assert fake.calls["POST batch"] == 1


def test_batch_update_and_delete(fake: FakeQuickBooks, qb: Any) -> None:
    keep, drop = invoice(doc="U-1").save(qb=qb), invoice(doc="D-1").save(qb=qb)
    keep.PrivateNote = "batched"
    updated = batch_update([keep], qb=qb)
    assert [s.SyncToken for s in updated.successes] == ["1"]
    stale = batch_update([keep], qb=qb)  # keep still carries SyncToken "0"
    assert [f.Error[0].code for f in stale.faults] == ["5010"]
    deleted = batch_delete([drop], qb=qb)
    assert deleted.faults == []
    assert set(fake.invoices) == {keep.Id}
    assert fake.invoices[keep.Id]["PrivateNote"] == "batched"


def test_batch_of_31_is_rejected(fake: FakeQuickBooks, qb: Any) -> None:
    manager = BatchManager("create", max_request_items=31)
    with pytest.raises(QuickbooksException) as info:
        manager.save([invoice() for _ in range(31)], qb=qb)
    assert info.value.error_code == 400  # code "400": an AuthorizationException to the library
    assert "maximum of 30" in info.value.detail
    assert fake.invoices == {}


def test_batch_item_faults_are_per_item(fake: FakeQuickBooks, qb: Any) -> None:
    result = batch_create([invoice(doc="OK-1"), invoice(lines=[("999", "1", "1.00")])], qb=qb)
    assert [s.DocNumber for s in result.successes] == ["OK-1"]
    assert [f.Error[0].code for f in result.faults] == ["2500"]
    assert len(fake.invoices) == 1


def test_batch_calls_per_minute(
    plug: Callable[[FakeQuickBooks], RunningServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = make_fake(batch_per_minute=2, clock=ManualClock())
    qb = make_client(plug(fake).url, monkeypatch)
    batch_create([invoice()], qb=qb)
    batch_create([invoice()], qb=qb)
    with pytest.raises(ValidationException) as info:
        batch_create([invoice()], qb=qb)
    assert info.value.error_code == 3001
    assert Customer.count(qb=qb) == 26  # other calls still pass
    assert len(fake.invoices) == 2


def test_batch_requestid_replay_and_length(fake: FakeQuickBooks, qb: Any) -> None:
    url = f"{qb.api_url}/company/{REALM}/batch"
    body = json.dumps(
        {
            "BatchItemRequest": [
                {"bId": "1", "operation": "create", "Invoice": json.loads(invoice().to_json())},
                {"bId": "q", "Query": "SELECT * FROM Customer WHERE Id = '2'"},
            ]
        }
    )
    first = qb.post(url, body, request_id="batch-7")
    again = qb.post(url, body, request_id="batch-7")
    assert again == first
    assert first["BatchItemResponse"][1]["QueryResponse"]["Customer"][0]["Id"] == BETA
    assert len(fake.invoices) == 1
    # requestid and bId are joined into one request_id per item: 20 + 36 > 50
    long_bid = json.dumps(
        {
            "BatchItemRequest": [
                {"bId": "b" * 36, "operation": "create", "Invoice": json.loads(invoice().to_json())}
            ]
        }
    )
    result = qb.post(url, long_bid, request_id="r" * 20)
    assert result["BatchItemResponse"][0]["Fault"]["Error"][0]["code"] == "6000"
    with pytest.raises(QuickbooksException) as info:
        qb.post(url, body, request_id="r" * 37)  # at most 36 on a batch
    assert info.value.error_code == 6000
    assert len(fake.invoices) == 1


# --------------------------------------------------------------------------
# lost responses


def test_dropped_connection_after_commit(fake: FakeQuickBooks, qb: Any) -> None:
    fake.drop_after_commit()
    with pytest.raises(requests.exceptions.ConnectionError):
        invoice(doc="HB-9").save(qb=qb, request_id="hb-9")
    assert len(fake.invoices) == 1  # committed, though the client never heard
    (stored,) = fake.invoices.values()
    again = invoice(doc="HB-9").save(qb=qb, request_id="hb-9")
    assert again.Id == stored["Id"]
    assert fake.idempotent_replays == 1
    assert len(fake.invoices) == 1


def test_retry_while_the_first_response_is_in_flight_replays(fake: FakeQuickBooks, qb: Any) -> None:
    release = fake.hold_after_commit()
    saved: list[Any] = []
    writer = threading.Thread(
        target=lambda: saved.append(invoice(doc="HB-5").save(qb=qb, request_id="hb-5"))
    )
    writer.start()
    try:
        assert fake.committed.wait(5)  # committed; the response has not left yet
        retried = invoice(doc="HB-5").save(qb=qb, request_id="hb-5")
    finally:
        release.set()
        writer.join(5)
    (first,) = saved
    assert retried.Id == first.Id
    assert len(fake.invoices) == 1
    assert fake.idempotent_replays == 1


def test_fail_next_500_is_severe(fake: FakeQuickBooks, qb: Any) -> None:
    fake.fail_next(500)
    with pytest.raises(QuickbooksException) as info:
        invoice().save(qb=qb)
    assert info.value.error_code == 10000
    assert fake.invoices == {}


# --------------------------------------------------------------------------
# seeding from the agency month


def test_fixture_from_the_agency_month(
    plug: Callable[[FakeQuickBooks], RunningServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    month = build_agency_month(SeedSpec(clients=8, entries=80))
    fixture = qbo_fixture_from_month(month)
    customer_contacts = [c for c in month.xero_contacts if c.get("IsCustomer")]
    assert [c["DisplayName"] for c in fixture["customers"]] == [
        c["Name"] for c in customer_contacts
    ]
    assert [c["CurrencyRef"]["value"] for c in fixture["customers"]] == [
        c["DefaultCurrency"] for c in customer_contacts
    ]
    assert [i["Name"] for i in fixture["items"]] == [i["Code"] for i in month.xero_items]
    fake = FakeQuickBooks.from_month(month)
    qb = make_client(plug(fake).url, monkeypatch)
    client = month.clients[0]
    (customer,) = Customer.filter(DisplayName=client["name"], qb=qb)
    assert customer.CurrencyRef.value == client["currency"]
    (dev,) = Item.filter(Name="DEV", qb=qb)
    saved = invoice(customer=customer.Id, lines=[(dev.Id, "2", "165.00")], tax="3").save(qb=qb)
    assert saved.TxnTaxDetail.TotalTax == Decimal("49.50")
    assert saved.CurrencyRef.value == client["currency"]
