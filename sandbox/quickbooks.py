"""A strict fake of the QuickBooks Online Accounting API (v3), as a WSGI app.

It serves what hourbridge uses, under ``/v3/company/{realmId}/...``:

* ``GET /query?query=<SQL>`` and ``POST /query`` (body = the SQL, as
  python-quickbooks sends it) for Customer, Item, TaxCode, TaxRate, Class,
  Department and Invoice, with QBO's query subset (``WHERE`` with ``=``, ``<``,
  ``>``, ``<=``, ``>=``, ``IN``, ``LIKE`` joined by ``AND``; ``ORDERBY``;
  ``STARTPOSITION``; ``MAXRESULTS``; ``SELECT COUNT(*)``);
* ``POST /invoice`` (create; full or sparse update with ``Id`` + ``SyncToken``;
  ``?operation=void``; ``?operation=delete``) and ``GET /invoice/{id}``;
* ``POST /batch`` (create/update/delete of invoices and ``Query`` items);
* ``POST /creditmemo`` (create only), ``GET /creditmemo/{id}`` and CreditMemo queries;
* ``GET /{customer|item|taxcode|taxrate|class|department}/{id}``,
  ``GET /preferences`` and ``GET /companyinfo/{realmId}``;
* an OpenID discovery document (``DISCOVERY_PATH``) and a token endpoint
  (``OAUTH_BEARER_PATH``), so that ``intuitlib.AuthClient`` can be built offline and
  a refresh (which should not happen) is counted in ``calls["POST token"]``.

Strict on purpose:

* every API call needs ``Authorization: Bearer <token>`` (else 401 with the
  body QBO's gateway sends), the connected realm (else 403) and a
  ``minorversion`` of at least ``min_minor_version`` (75 since August 2025);
* per-realm limits (500 a minute, 10 in flight, 40 batch calls a minute)
  answer 429 with the ``ThrottleExceeded`` Fault (code 3001), as JSON, or as
  XML when the request asks for XML, when ``throttle_as_xml`` is set or when a
  test says ``fail_next(429, xml=True)``;
* invoices are validated like QBO validates them (references, ``Amount`` =
  ``Qty`` × ``UnitPrice`` rounded half-up to cents, ``DocNumber`` at most 21
  characters and unique, the customer's currency, ``SyncToken``, closed books)
  and every error is QBO's ``Fault`` JSON with QBO's code;
* ``?requestid=`` (at most 50 characters, unique per realm) replays the first
  response byte for byte without applying the request again;
* money is ``Decimal`` and goes out as exact JSON numbers.

Fault knobs let tests lose a response after the commit (``drop_after_commit``),
hold a committed write while a client dies (``hold_after_commit``) or answer
the next calls with an error (``fail_next``). User actions in the QBO UI are
``set_sent``, ``set_paid``, ``void`` and ``close_books``.

Facts no source confirmed are marked ``[U]``.
"""

from __future__ import annotations

import base64
import collections
import copy
import html
import json
import operator
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request

from sandbox.oauth import FakeAuthServer, OAuthSettings, json_token
from sandbox.oauth import Reply as AuthReply
from sandbox.ratelimit import ConcurrencyGate, SlidingWindow
from sandbox.serving import drop_connection
from sandbox.tokens import Token, TokenCursor
from sandbox.writes import AfterCommit, CommitFaults, StoredAnswer
from sandbox.xero import dumps_json

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from sandbox.seed import AgencyMonth

__all__ = [
    "BASE_PATH",
    "DISCOVERY_PATH",
    "OAUTH_BEARER_PATH",
    "FakeQuickBooks",
    "QboSettings",
    "QueryError",
    "parse_query",
    "qbo_fixture_from_month",
]

BASE_PATH = "/v3"
DISCOVERY_PATH = "/.well-known/openid_sandbox_configuration"
PRODUCTION_DISCOVERY_PATH = "/.well-known/openid_configuration"
OAUTH_BEARER_PATH = "/oauth2/v1/tokens/bearer"  # oauth.platform.intuit.com
AUTHORIZE_PATH = "/connect/oauth2"  # appcenter.intuit.com
REVOKE_PATH = "/v2/oauth2/tokens/revoke"  # developer.api.intuit.com
COMPANY_TZ = ZoneInfo("Pacific/Auckland")  # the fake company is a New Zealand one

MAX_DOC_NUMBER = 21
MAX_TEXT = 4000  # PrivateNote, Line.Description
MAX_BATCH_REQUEST_ID = 36  # Intuit blog, 2015-04-06 ("Request ID update")
DEFAULT_MAX_RESULTS = 100
MAX_MAX_RESULTS = 1000
FIRST_INVOICE_ID = 1001

EMAIL_STATUSES = ("NotSet", "NeedToSend", "EmailSent")
PRINT_STATUSES = ("NotSet", "NeedToPrint", "PrintComplete")
TAX_CALCULATIONS = ("TaxExcluded", "TaxInclusive", "NotApplicable")

Json = Any
JsonDict = dict[str, Any]

_CENT = Decimal("0.01")


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Every property the Invoice entity knows (the API reference, minor version 75).
# Anything else is QBO's 2010 "Request has invalid or unsupported property".
_INVOICE_FIELDS = _names(
    """
    Id SyncToken sparse domain status MetaData CustomField DocNumber TxnDate DepartmentRef
    CurrencyRef ExchangeRate PrivateNote TxnStatus LinkedTxn Line TxnTaxDetail CustomerRef
    CustomerMemo BillAddr ShipAddr ShipFromAddr FreeFormAddress ClassRef SalesTermRef
    DueDate GlobalTaxCalculation ShipMethodRef ShipDate TrackingNum TotalAmt HomeTotalAmt
    PrintStatus EmailStatus BillEmail BillEmailCc BillEmailBcc Balance HomeBalance Deposit
    DepositToAccountRef AllowIPNPayment AllowOnlinePayment AllowOnlineCreditCardPayment
    AllowOnlineACHPayment ApplyTaxAfterDiscount InvoiceLink DeliveryInfo RecurDataRef
    TaxExemptionRef EInvoiceStatus TransactionLocationType ProjectRef TxnSource
    """
)
# a CreditMemo has an invoice's fields but no due date, shipping, deposit or payment links
_CREDIT_MEMO_FIELDS = (
    _INVOICE_FIELDS
    - _names(
        """
        DueDate ShipMethodRef ShipDate TrackingNum Deposit AllowIPNPayment AllowOnlinePayment
        AllowOnlineCreditCardPayment AllowOnlineACHPayment InvoiceLink DeliveryInfo
        """
    )
) | _names("RemainingCredit PaymentMethodRef")
_CREDIT_ONLY_FIELDS = _names("RemainingCredit PaymentMethodRef")
# what the server computes; a request may send them (python-quickbooks does) but they are ignored
_READ_ONLY_FIELDS = _names(
    """
    Id SyncToken sparse domain status MetaData TotalAmt HomeTotalAmt Balance HomeBalance
    TxnTaxDetail InvoiceLink LinkedTxn Deposit EInvoiceStatus
    """
)
# optional request fields stored as given
_CARRIED_FIELDS = (
    "CustomField",
    "CustomerMemo",
    "BillAddr",
    "ShipAddr",
    "ShipFromAddr",
    "FreeFormAddress",
    "SalesTermRef",
    "ShipMethodRef",
    "TrackingNum",
    "BillEmail",
    "BillEmailCc",
    "BillEmailBcc",
    "AllowIPNPayment",
    "AllowOnlinePayment",
    "AllowOnlineCreditCardPayment",
    "AllowOnlineACHPayment",
    "ApplyTaxAfterDiscount",
    "DeliveryInfo",
    "TransactionLocationType",
)
_LINE_FIELDS = _names(
    """
    Id LineNum Description Amount DetailType LinkedTxn CustomField ProjectRef
    SalesItemLineDetail SubTotalLineDetail DescriptionLineDetail DiscountLineDetail
    GroupLineDetail
    """
)
# the 18 properties QBO lists when it rejects an unknown one (seen in a real 2010 Fault)
_SALES_DETAIL_FIELDS = _names(
    """
    ItemRef DiscountRate TaxClassificationRef ServiceDate UnitPrice TaxInclusiveAmt
    InventorySiteRef MarkupInfo SalesItemLineDetailEx PriceLevelRef ItemAccountRef ClassRef
    DeferredRevenue UOMRef RatePercent DiscountAmt Qty TaxCodeRef
    """
)

_CURRENCY_NAMES = {
    "NZD": "New Zealand Dollar",
    "USD": "United States Dollar",
    "EUR": "Euro",
    "GBP": "British Pound Sterling",
    "AUD": "Australian Dollar",
    "CAD": "Canadian Dollar",
}


# --------------------------------------------------------------------------
# settings


@dataclass
class QboSettings:
    realm_id: str = "9341453050438295"
    access_token: str = "sandbox-qbo-token"  # noqa: S105 - the fake's fixed test token
    refresh_token: str = "sandbox-qbo-refresh"  # noqa: S105 - the fake's fixed test token
    per_minute: int = 500  # per realm
    concurrent: int = 10  # per realm
    batch_per_minute: int = 40  # per realm
    batch_max_items: int = 30
    # Since 2025-08-01 QBO *ignores* a minorversion below 75 (and a missing one) and
    # answers as 75. "reject" (the default) is stricter than QBO on purpose: a client
    # that forgets minorversion is a bug worth seeing. "ignore" behaves like QBO.
    min_minor_version: int = 75
    minor_version_policy: Literal["reject", "ignore"] = "reject"
    max_request_id: int = 50
    unique_doc_numbers: bool = True  # QBO's "warn if duplicate number" company setting
    auto_doc_numbers: bool = True  # QBO numbers invoices when no DocNumber is sent
    require_line_tax_code: bool = True  # NZ/AU/UK companies: every line needs a TaxCodeRef
    # QBO itself lets you edit a sent, paid or voided invoice; hourbridge must never do
    # that, so the fake refuses (Fault 6000) by default.
    lock_non_draft: bool = True
    throttle_as_xml: bool = False  # answer real throttles as XML even to JSON clients
    default_terms_days: int = 30  # DueDate when none is sent [U] (company default terms)
    clock: Callable[[], float] = time.monotonic
    # Intuit: access tokens last an hour; the refresh token's value changes about daily and
    # the previous one stops working then [U: no grace documented]
    oauth: OAuthSettings = field(
        default_factory=lambda: OAuthSettings(
            required_scopes=("com.intuit.quickbooks.accounting",),
            access_token_seconds=3600,
            refresh_grace_seconds=0,
            rotate_after_seconds=86_400,
        )
    )


# --------------------------------------------------------------------------
# small helpers


def _now() -> datetime:
    return datetime.now(COMPANY_TZ)


def _stamp() -> str:
    """QBO's ``MetaData`` time: ``2026-10-05T13:16:17+13:00``."""
    return _now().isoformat(timespec="seconds")


def _response_time() -> str:
    """QBO's ``time`` of a response: ``2026-10-05T13:16:17.082+13:00``."""
    return _now().isoformat(timespec="milliseconds")


def _to_decimals(value: Json) -> Json:
    """Seed data may carry floats; keep them as exact decimals."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_decimals(v) for v in value]
    return value


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _number(value: Json) -> Decimal | None:
    """A JSON number, or a numeric string (python-quickbooks sends Decimals as strings)."""
    if isinstance(value, Decimal) or (isinstance(value, int) and not isinstance(value, bool)):
        return Decimal(value)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = Decimal(value.strip())
    except InvalidOperation:
        return None
    return parsed if parsed.is_finite() else None


def _ref_value(ref: Json) -> str | None:
    if isinstance(ref, dict):
        value = ref.get("value")
        if value is None or value == "":
            return None
        return str(value)
    if isinstance(ref, str | int) and not isinstance(ref, bool):
        return str(ref)
    return None


def _blank(value: Json) -> bool:
    return value is None or value == ""


def _parse_day(value: Json) -> date | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return date.fromisoformat(text[:10]) if len(text) >= 10 else None
    except ValueError:
        return None


def _parse_moment(value: Json) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=COMPANY_TZ)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# --------------------------------------------------------------------------
# Faults


@dataclass(frozen=True)
class _Error:
    code: str
    message: str
    detail: str
    element: str = ""


class _FaultError(Exception):
    """A request fails with QBO's ``Fault`` body; ``status`` is the HTTP status."""

    def __init__(self, status: int, error: _Error, fault_type: str = "ValidationFault") -> None:
        super().__init__(f"{error.code} {error.message}")
        self.status = status
        self.error = error
        self.fault_type = fault_type


def _required(name: str) -> _FaultError:
    return _FaultError(
        400,
        _Error(
            "2020",
            "Required param missing, need to supply the required value for the API",
            f"Required parameter {name} is missing in the request",
            name,
        ),
    )


def _invalid_property(detail: str, element: str = "") -> _FaultError:
    return _FaultError(
        400,
        _Error(
            "2010",
            "Request has invalid or unsupported property",
            f"Property Name:{detail} specified is unsupported or invalid",
            element,
        ),
    )


def _invalid_reference(element: str) -> _FaultError:
    return _FaultError(
        400, _Error("2500", "Invalid Reference Id", f"Invalid Reference Id : {element}", element)
    )


def _inactive_reference(element: str) -> _FaultError:
    return _FaultError(
        400,
        _Error(
            "610",
            "Object Not Found",
            "Object Not Found : Something you're trying to use has been made inactive. "
            "Check the fields with accounts, customers, items, vendors or employees.",
            element,
        ),
    )


def _deleted() -> _FaultError:
    return _FaultError(
        400,
        _Error(
            "610",
            "Object Not Found",
            "Object Not Found : Another user has deleted this transaction.",
        ),
    )


def _stale() -> _FaultError:
    return _FaultError(
        400,
        _Error(
            "5010",
            "Stale Object Error",
            "Stale Object Error : You and hourbridge sandbox were working on this at the same "
            "time. hourbridge sandbox finished before you did, so your work was not saved.",
        ),
    )


def _too_long(element: str, limit: int, length: int) -> _FaultError:
    return _FaultError(
        400,
        _Error(
            "2050",
            "String length is either shorter or longer than supported by specification",
            "String length specified does not match the supported length. "
            f"Min:0 Max:{limit:,} supported. Supplied length:{length:,}",
            element,
        ),
    )


def _business(detail: str, element: str = "") -> _FaultError:
    return _FaultError(
        400,
        _Error(
            "6000",
            "A business validation error has occurred while processing your request",
            f"Business Validation Error: {detail}",
            element,
        ),
    )


def _amount_mismatch(supplied: Decimal) -> _FaultError:
    return _FaultError(
        400,
        _Error(
            "6070",
            "Amount is not equal to UnitPrice * Qty",
            f"Amount is not equal to UnitPrice * Qty. Supplied value:{supplied:,}",
        ),
    )


def _duplicate_number(number: str, txn_id: str) -> _FaultError:
    return _FaultError(
        400,
        _Error(
            "6140",
            "Duplicate Document Number Error",
            "Duplicate Document Number Error : You must specify a different number. This number "
            f"has already been used. DocNumber={number} is assigned to TxnType=Invoice with "
            f"TxnId={txn_id}",
        ),
    )


def _period_closed() -> _FaultError:
    # Code 6200 per Intuit's error-code list ("the user has closed the books"); the odd
    # "{1}" is verbatim from a Fault a python-quickbooks user posted (issue #208). [U]
    return _FaultError(
        400, _Error("6200", "Account Period Closed", "The account period has closed. {1}")
    )


def _query_parse_error(detail: str) -> _FaultError:
    return _FaultError(400, _Error("4000", "Error parsing query", f"QueryParserError: {detail}"))


def _query_invalid(detail: str) -> _FaultError:
    return _FaultError(400, _Error("4001", "Invalid query", f"QueryValidationError: {detail}"))


# --------------------------------------------------------------------------
# the query language (QBO's SQL subset)


class QueryError(ValueError):
    """An unparseable (code 4000) or invalid (code 4001) query."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


FieldKind = Literal["id", "str", "bool", "num", "date", "datetime", "ref", "email"]

_META: dict[str, FieldKind] = {
    "MetaData.CreateTime": "datetime",
    "MetaData.LastUpdatedTime": "datetime",
}
# filterable (and sortable) properties per entity, from the API reference [U: the
# reference marks them "filterable"; QBO answers 4001 "is not queryable" for the rest]
QUERYABLE: dict[str, dict[str, FieldKind]] = {
    "Customer": {
        "Id": "id",
        "DisplayName": "str",
        "GivenName": "str",
        "FamilyName": "str",
        "CompanyName": "str",
        "FullyQualifiedName": "str",
        "PrimaryEmailAddr": "email",
        "Active": "bool",
        "Balance": "num",
        **_META,
    },
    "Item": {
        "Id": "id",
        "Name": "str",
        "Active": "bool",
        "Type": "str",
        "Sku": "str",
        "FullyQualifiedName": "str",
        **_META,
    },
    "TaxCode": {"Id": "id", "Name": "str", "Active": "bool", **_META},
    "TaxRate": {"Id": "id", "Name": "str", "Active": "bool", **_META},
    "Class": {"Id": "id", "Name": "str", "Active": "bool", "FullyQualifiedName": "str", **_META},
    "Department": {
        "Id": "id",
        "Name": "str",
        "Active": "bool",
        "FullyQualifiedName": "str",
        **_META,
    },
    "Invoice": {
        "Id": "id",
        "DocNumber": "str",
        "TxnDate": "date",
        "DueDate": "date",
        "CustomerRef": "ref",
        "TotalAmt": "num",
        "Balance": "num",
        **_META,
    },
}
QUERYABLE["CreditMemo"] = {k: v for k, v in QUERYABLE["Invoice"].items() if k != "DueDate"} | {
    "RemainingCredit": "num"
}
_TRANSACTIONS = frozenset({"Invoice", "CreditMemo"})
# name lists: a query without an Active condition returns active records only
_NAME_LISTS = frozenset({"Customer", "Item", "Class", "Department"})

_QUERY_TOKEN = re.compile(
    r"""
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    | (?P<op><=|>=|!=|<>|[=<>(),*])
    """,
    re.VERBOSE,
)

QueryValue = str | Decimal | bool


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # = < > <= >= IN LIKE
    values: tuple[QueryValue, ...]


@dataclass(frozen=True)
class Query:
    entity: str
    count: bool
    columns: tuple[str, ...] | None  # None: all properties
    conditions: tuple[Condition, ...]
    order: tuple[tuple[str, bool], ...]  # (field, descending)
    start: int
    max_results: int


def _tokenize_query(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        match = _QUERY_TOKEN.match(text, pos)
        if match is None:
            raise QueryError(
                "4000",
                f"Invalid content. Lexical error at line 1, column {pos + 1}.  "
                f'Encountered: "{text[pos]}"',
            )
        kind = match.lastgroup or "op"
        tokens.append(Token(kind, match.group(kind), pos))
        pos = match.end()
    tokens.append(Token("end", "<EOF>", len(text)))
    return tokens


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


class _QueryParser(TokenCursor):
    def __init__(self, text: str) -> None:
        if not text.strip():
            raise QueryError("4000", "The query provided was empty")
        super().__init__(_tokenize_query(text))

    def fail(self) -> QueryError:
        token = self.peek()
        return QueryError(
            "4000", f'Encountered " {token.text} " at line 1, column {token.pos + 1}.'
        )

    def expect_word(self, word: str) -> None:
        if not self.is_word(word):
            raise self.fail()
        self.take()

    def expect_op(self, text: str) -> None:
        if not self.is_op(text):
            raise self.fail()
        self.take()

    def integer(self) -> int:
        token = self.take()
        if token.kind != "number" or not token.text.lstrip("-").isdigit():
            self.i -= 1
            raise self.fail()
        return int(token.text)

    def parse(self) -> Query:
        self.expect_word("select")
        count, columns = self.select_list()
        self.expect_word("from")
        entity = self.entity()
        conditions = self.where()
        order = self.order_by()
        start, max_results = self.paging()
        if self.peek().kind != "end":
            raise self.fail()
        for cond in conditions:
            kind = QUERYABLE[entity][_field_name(entity, cond.field)]
            if cond.op == "LIKE" and kind not in ("str", "email"):
                raise QueryError("4001", f"LIKE is not supported on property '{cond.field}'")
        return Query(
            entity=entity,
            count=count,
            columns=columns,
            conditions=tuple(
                Condition(_field_name(entity, c.field), c.op, c.values) for c in conditions
            ),
            order=tuple((_field_name(entity, name), desc) for name, desc in order),
            start=max(1, start if start is not None else 1),
            # [U] QBO caps MAXRESULTS at 1000 rather than refusing a larger value
            max_results=min(max(max_results or DEFAULT_MAX_RESULTS, 1), MAX_MAX_RESULTS),
        )

    def select_list(self) -> tuple[bool, tuple[str, ...] | None]:
        """``COUNT(*)`` / ``*`` / ``a, b``: (count, columns or None for all)."""
        if self.is_word("count"):
            self.take()
            self.expect_op("(")
            self.expect_op("*")
            self.expect_op(")")
            return True, None
        if self.is_op("*"):
            self.take()
            while self.is_op(","):  # "SELECT *, Sku FROM Item" (python-quickbooks Item.all)
                self.take()
                self.column()
            return False, None
        names = [self.column()]
        while self.is_op(","):
            self.take()
            names.append(self.column())
        return False, tuple(names)

    def entity(self) -> str:
        name = self.column()
        entity = next((e for e in QUERYABLE if e.lower() == name.lower()), None)
        if entity is None:
            # [U] the wording QBO uses for an entity it does not know
            raise QueryError("4000", f"Invalid entity name {name}")
        return entity

    def where(self) -> list[Condition]:
        conditions: list[Condition] = []
        if self.is_word("where"):
            self.take()
            conditions.append(self.condition())
            while self.is_word("and"):
                self.take()
                conditions.append(self.condition())
        return conditions

    def order_by(self) -> list[tuple[str, bool]]:
        order: list[tuple[str, bool]] = []
        if self.is_word("orderby") or (self.is_word("order") and self.is_word("by", 1)):
            if self.take().text.lower() == "order":
                self.take()
            order.append(self.order_term())
            while self.is_op(","):
                self.take()
                order.append(self.order_term())
        return order

    def paging(self) -> tuple[int | None, int | None]:
        start: int | None = None
        max_results: int | None = None
        while self.is_word("startposition") or self.is_word("maxresults"):
            word = self.take().text.lower()
            if word == "startposition" and start is None:
                start = self.integer()
            elif word == "maxresults" and max_results is None:
                max_results = self.integer()
            else:
                self.i -= 1
                raise self.fail()
        return start, max_results

    def column(self) -> str:
        token = self.take()
        if token.kind != "ident":
            self.i -= 1
            raise self.fail()
        return token.text

    def condition(self) -> Condition:
        token = self.take()
        if token.kind != "ident":
            self.i -= 1
            raise self.fail()
        name = token.text
        if self.is_word("in"):
            self.take()
            self.expect_op("(")
            values = [self.value()]
            while self.is_op(","):
                self.take()
                values.append(self.value())
            self.expect_op(")")
            return Condition(name, "IN", tuple(values))
        if self.is_word("like"):
            self.take()
            pattern = self.take()
            if pattern.kind != "string":
                self.i -= 1
                raise self.fail()
            return Condition(name, "LIKE", (_unquote(pattern.text),))
        op = self.peek()
        if op.kind == "op" and op.text in ("=", "<", ">", "<=", ">="):
            self.take()
            return Condition(name, op.text, (self.value(),))
        raise self.fail()  # OR, !=, <> ... are not in QBO's grammar

    def value(self) -> QueryValue:
        token = self.take()
        if token.kind == "string":
            return _unquote(token.text)
        if token.kind == "number":
            return Decimal(token.text)
        if token.kind == "ident" and token.text.lower() in ("true", "false"):
            return token.text.lower() == "true"
        self.i -= 1
        raise self.fail()

    def order_term(self) -> tuple[str, bool]:
        name = self.column()
        descending = False
        if self.is_word("asc") or self.is_word("desc"):
            descending = self.take().text.lower() == "desc"
        return name, descending


def _field_name(entity: str, name: str) -> str:
    fields = QUERYABLE[entity]
    found = next((f for f in fields if f.lower() == name.lower()), None)
    if found is None:
        raise QueryError("4001", f"property '{name}' is not queryable")
    return found


def parse_query(text: str) -> Query:
    """Parse a QBO query; raises ``QueryError`` (code 4000 or 4001)."""
    return _QueryParser(text).parse()


def _field_value(record: Mapping[str, Any], name: str, kind: FieldKind) -> Any:
    value: Any = record
    for part in name.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if kind == "ref":
        return _ref_value(value)
    if kind == "email":
        return value.get("Address") if isinstance(value, Mapping) else value
    return value


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    return {"true": True, "false": False}.get(str(value).lower())


def _as_id(value: Any) -> tuple[int, int | str]:
    text = str(value)
    return (0, int(text)) if text.isdigit() else (1, text)


def _as_moment(value: Any) -> datetime | None:
    moment = _parse_moment(value)
    if moment is not None:
        return moment
    day = _parse_day(value)
    return datetime.combine(day, datetime.min.time(), COMPANY_TZ) if day else None


def _as_text(value: Any) -> str:
    return str(value).casefold()  # [U] QBO compares text case-insensitively


_CONVERT: dict[FieldKind, Callable[[Any], Any]] = {
    "bool": _as_bool,
    "num": _number,
    "id": _as_id,
    "date": _parse_day,
    "datetime": _as_moment,
    "str": _as_text,
    "ref": _as_text,
    "email": _as_text,
}

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def _typed(value: Any, kind: FieldKind) -> Any:
    """A comparable form of a record value or a query literal (None when unusable)."""
    return None if value is None else _CONVERT[kind](value)


def _like(pattern: str) -> re.Pattern[str]:
    parts = [re.escape(p) for p in pattern.split("%")]
    return re.compile(".*".join(parts), re.IGNORECASE | re.DOTALL)


def _matches(record: Mapping[str, Any], cond: Condition, kind: FieldKind) -> bool:
    raw = _field_value(record, cond.field, kind)
    if cond.op == "LIKE":
        return raw is not None and _like(str(cond.values[0])).fullmatch(str(raw)) is not None
    value = _typed(raw, kind)
    wanted = [_typed(v, kind) for v in cond.values]
    if value is None:
        return False
    if cond.op == "IN":
        return value in wanted
    if wanted[0] is None:
        return False
    try:
        return bool(_COMPARE[cond.op](value, wanted[0]))
    except TypeError:
        return False


def run_query(query: Query, records: Iterable[Mapping[str, Any]]) -> list[JsonDict]:
    """Filter and sort ``records`` (not paged)."""
    fields = QUERYABLE[query.entity]
    conditions = list(query.conditions)
    if query.entity in _NAME_LISTS and not any(c.field == "Active" for c in conditions):
        conditions.append(Condition("Active", "=", (True,)))
    out = [
        copy.deepcopy(dict(r))
        for r in records
        if all(_matches(r, c, fields[c.field]) for c in conditions)
    ]
    out.sort(key=lambda r: _typed(r.get("Id"), "id"))
    for name, descending in reversed(query.order):
        kind = fields[name]
        present = [r for r in out if _typed(_field_value(r, name, kind), kind) is not None]
        missing = [r for r in out if _typed(_field_value(r, name, kind), kind) is None]
        present.sort(key=lambda r: _typed(_field_value(r, name, kind), kind), reverse=descending)
        out = present + missing
    return out


# --------------------------------------------------------------------------
# replies


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json;charset=UTF-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json_reply(status: int, payload: Json, headers: Iterable[tuple[str, str]] = ()) -> _Reply:
    return _Reply(status, dumps_json(payload).encode(), headers=list(headers))


def _fault_payload(error: _Error, fault_type: str) -> JsonDict:
    return {
        "Fault": {
            "Error": [
                {
                    "Message": error.message,
                    "Detail": error.detail,
                    "code": error.code,
                    "element": error.element,
                }
            ],
            "type": fault_type,
        },
        "time": _response_time(),
    }


def _fault_xml(error: _Error, fault_type: str) -> bytes:
    def esc(text: str) -> str:
        return html.escape(text, quote=True)

    element = f' element="{esc(error.element)}"' if error.element else ""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<IntuitResponse time="{esc(_response_time())}" '
        'xmlns="http://schema.intuit.com/finance/v3">\n'
        f'    <Fault type="{esc(fault_type)}">\n'
        f'        <Error code="{esc(error.code)}"{element}>\n'
        f"            <Message>{esc(error.message)}</Message>\n"
        f"            <Detail>{esc(error.detail)}</Detail>\n"
        "        </Error>\n"
        "    </Fault>\n"
        "</IntuitResponse>"
    ).encode()


def _fault_reply(fault: _FaultError, *, xml: bool = False) -> _Reply:
    if xml:
        return _Reply(
            fault.status,
            _fault_xml(fault.error, fault.fault_type),
            content_type="application/xml;charset=UTF-8",
        )
    return _json_reply(fault.status, _fault_payload(fault.error, fault.fault_type))


def _gateway_fault(status: int, message: str, code: str, detail: str, fault_type: str) -> _Reply:
    """The lower-case envelope QBO's gateway answers 401/403 with (seen on real 401s)."""
    return _json_reply(
        status,
        {
            "warnings": None,
            "intuitObject": None,
            "fault": {
                "error": [{"message": message, "detail": detail, "code": code, "element": None}],
                "type": fault_type,
            },
            "report": None,
            "queryResponse": None,
            "batchItemResponse": [],
            "attachableResponse": [],
            "syncErrorResponse": None,
            "requestId": None,
            "time": int(time.time() * 1000),
            "status": None,
            "cdcresponse": [],
        },
    )


def _throttle_fault() -> _FaultError:
    return _FaultError(
        429,
        _Error(
            "3001",
            "message=ThrottleExceeded; errorCode=003001; statusCode=429",
            "The request limit was reached.  Try again later",
        ),
        fault_type="SERVICE",
    )


# --------------------------------------------------------------------------
# per-request state

_API_PATH = re.compile(
    r"/v3/company/(?P<realm>[^/]+)/(?P<resource>[A-Za-z]+)(?:/(?P<id>[^/]+))?/?",
    re.IGNORECASE,
)
_READABLE = {
    "customer": "Customer",
    "item": "Item",
    "taxcode": "TaxCode",
    "taxrate": "TaxRate",
    "class": "Class",
    "department": "Department",
    "invoice": "Invoice",
    "creditmemo": "CreditMemo",
}


@dataclass
class _Injected:
    status: int
    xml: bool
    retry_after: int | None


@dataclass(frozen=True)
class _Header:
    """The validated header of an invoice being saved."""

    customer: JsonDict
    currency: str
    exchange_rate: Decimal
    number: str | None
    txn_date: date
    due_date: date
    ship_date: date | None
    email_status: str
    print_status: str
    calculation: str
    note: str | None
    klass: JsonDict | None
    department: JsonDict | None


@dataclass
class _Context:
    """What a handler learns about its request."""

    request: Request
    method: str
    route: str  # "invoice", "batch", "query", ... (the label in ``calls``)
    entity_id: str | None
    xml: bool


# --------------------------------------------------------------------------
# the fake


class FakeQuickBooks(CommitFaults):
    """The fake QuickBooks Online company: seed data in, a WSGI app out. See the module doc."""

    def __init__(
        self,
        *,
        customers: Sequence[Mapping[str, Any]],
        items: Sequence[Mapping[str, Any]],
        tax_codes: Sequence[Mapping[str, Any]],
        tax_rates: Sequence[Mapping[str, Any]] = (),
        classes: Sequence[Mapping[str, Any]] = (),
        departments: Sequence[Mapping[str, Any]] = (),
        currencies: Sequence[str] = ("NZD", "USD", "EUR", "GBP", "AUD"),
        home_currency: str = "NZD",
        settings: QboSettings | None = None,
    ) -> None:
        self.settings = settings or QboSettings()
        if home_currency not in currencies:
            raise ValueError(f"home currency {home_currency} is not among the currencies")
        self.currencies: tuple[str, ...] = tuple(currencies)
        self.home_currency = home_currency
        stamp = _stamp()
        self.lists: dict[str, dict[str, JsonDict]] = {}
        for entity, rows in (
            ("Customer", customers),
            ("Item", items),
            ("TaxCode", tax_codes),
            ("TaxRate", tax_rates),
            ("Class", classes),
            ("Department", departments),
        ):
            table: dict[str, JsonDict] = {}
            for index, row in enumerate(rows, start=1):
                record: JsonDict = {
                    "Active": True,
                    "domain": "QBO",
                    "sparse": False,
                    "SyncToken": "0",
                    "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp},
                    **_to_decimals(copy.deepcopy(dict(row))),
                }
                record["Id"] = str(record.get("Id", index))
                if entity == "Customer":
                    currency = _ref_value(record.get("CurrencyRef")) or home_currency
                    record["CurrencyRef"] = {
                        "value": currency,
                        "name": _CURRENCY_NAMES.get(currency, currency),
                    }
                if record["Id"] in table:
                    raise ValueError(f"duplicate {entity} Id {record['Id']}")
                table[record["Id"]] = record
            self.lists[entity] = table

        self.invoices: dict[str, JsonDict] = {}
        self.credit_memos: dict[str, JsonDict] = {}
        self.calls: collections.Counter[str] = collections.Counter()
        self.idempotent_replays = 0
        super().__init__()  # the after-commit fault knobs and `committed`

        self._lock = threading.RLock()
        self._writes = 0
        self._next_invoice_id = FIRST_INVOICE_ID
        self._next_doc_number = 1001
        self._voided: set[str] = set()
        self._paid: set[str] = set()
        self._closed_through: date | None = None
        self._request_ids: dict[tuple[str, str], StoredAnswer] = {}
        self._fail: collections.deque[_Injected] = collections.deque()

        clock = self.settings.clock
        self._minute = SlidingWindow(self.settings.per_minute, 60.0, clock)
        self._batch_minute = SlidingWindow(self.settings.batch_per_minute, 60.0, clock)
        self._gate = ConcurrencyGate(self.settings.concurrent)
        if self.settings.oauth.realm_in_redirect is None:
            self.settings.oauth.realm_in_redirect = self.settings.realm_id
        self.auth = FakeAuthServer(self.settings.oauth, dialect="intuit")

    @classmethod
    def from_month(cls, month: AgencyMonth, settings: QboSettings | None = None) -> FakeQuickBooks:
        """A company seeded from the agency month (see ``qbo_fixture_from_month``)."""
        fixture = qbo_fixture_from_month(month)
        return cls(
            customers=fixture["customers"],
            items=fixture["items"],
            tax_codes=fixture["tax_codes"],
            tax_rates=fixture["tax_rates"],
            classes=fixture["classes"],
            departments=fixture["departments"],
            currencies=[str(c["Code"]) for c in month.xero_currencies],
            home_currency=month.base_currency,
            settings=settings,
        )

    # ------------------------------------------------------------------ knobs

    def invoice_writes(self) -> int:
        """``POST /invoice`` and ``POST /batch`` requests past auth, limits and ``fail_next``.

        Counts every such request the handler answered: created, updated, voided,
        deleted, rejected by validation, or replayed from a ``requestid`` (replays are
        also counted in ``idempotent_replays``).
        """
        with self._lock:
            return self._writes

    def set_sent(self, invoice_id: str) -> None:
        """The user e-mails the invoice from QBO (``EmailStatus`` becomes ``EmailSent``)."""
        with self._lock:
            invoice = self.invoices[invoice_id]
            invoice["EmailStatus"] = "EmailSent"
            invoice["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": _stamp()}
            self._touch(invoice)  # [U] sending bumps the SyncToken

    def set_paid(self, invoice_id: str) -> None:
        """A payment for the whole balance is recorded against the invoice."""
        with self._lock:
            invoice = self.invoices[invoice_id]
            invoice["Balance"] = Decimal("0.00")
            if "HomeBalance" in invoice:
                invoice["HomeBalance"] = Decimal("0.00")
            invoice["LinkedTxn"] = [{"TxnId": f"P{invoice_id}", "TxnType": "Payment"}]
            self._paid.add(invoice_id)
            self._touch(invoice)

    def void(self, invoice_id: str) -> None:
        """The user voids the invoice in QBO."""
        with self._lock:
            self._void(self.invoices[invoice_id])

    def close_books(self, through: date) -> None:
        """Close the books: no invoice dated on or before ``through`` may be written."""
        with self._lock:
            self._closed_through = through

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        xml: bool = False,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``count`` API requests with ``status``.

        429 is QBO's ThrottleExceeded Fault (as XML when ``xml``), 401 the gateway's
        AuthenticationFailed body, 500 a SystemFault (code 10000), 400 a business
        validation Fault; anything else a SystemFault. ``retry_after`` adds a
        ``Retry-After`` header (QBO is not known to send one [U]).
        """
        with self._lock:
            for _ in range(count):
                self._fail.append(_Injected(status, xml, retry_after))

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        method = request.method.upper()
        path = request.path
        realm = self.settings.realm_id
        entered = False
        after: AfterCommit | None = None
        try:
            if path.rstrip("/") in (DISCOVERY_PATH, PRODUCTION_DISCOVERY_PATH):
                self._count(f"{method} discovery")
                reply = self._discovery(request, method)
            elif path.rstrip("/") == OAUTH_BEARER_PATH:
                self._count(f"{method} token")
                reply, dropped = self._token(request, method)
                if dropped:
                    drop_connection(environ, "fake Intuit identity")
            elif path.rstrip("/") in (AUTHORIZE_PATH, REVOKE_PATH):
                self._count(f"{method} {path.rstrip('/')}")
                if path.rstrip("/") == AUTHORIZE_PATH:
                    reply = self._from_auth(self.auth.authorize(request))
                else:
                    reply = self._from_auth(self.auth.revoke(request, json_token(request)))
            else:
                reply, after, entered = self._api(request, method, path)
            if after is not None:
                after.apply(environ, "fake QuickBooks")
            return self._send(reply, start_response)
        finally:
            if entered:
                self._gate.leave(realm)

    def _count(self, label: str) -> None:
        with self._lock:
            self.calls[label] += 1

    @staticmethod
    def _send(reply: _Reply, start_response: StartResponse) -> Iterable[bytes]:
        headers = [
            ("Content-Type", reply.content_type),
            ("Content-Length", str(len(reply.body))),
            ("intuit_tid", str(uuid.uuid4())),
            *reply.headers,
        ]
        reason = HTTP_STATUS_CODES.get(reply.status, "Unknown")
        start_response(f"{reply.status} {reason}", headers)
        return [reply.body]

    # ------------------------------------------------------------------ OAuth stand-ins

    def _discovery(self, request: Request, method: str) -> _Reply:
        if method != "GET":
            return _Reply(405, b"", content_type="text/plain", headers=[("Allow", "GET")])
        base = request.host_url.rstrip("/")
        return _json_reply(
            200,
            {
                "issuer": "https://oauth.platform.intuit.com/op/v1",
                "authorization_endpoint": f"{base}/connect/oauth2",
                "token_endpoint": f"{base}{OAUTH_BEARER_PATH}",
                "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
                "revocation_endpoint": f"{base}/oauth2/v1/tokens/revoke",
                "jwks_uri": f"{base}/oauth2/v1/keys",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile", "address", "phone"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            },
        )

    @staticmethod
    def _from_auth(reply: AuthReply) -> _Reply:
        body, content_type = reply.body(dumps_json)
        if content_type is None:
            return _Reply(reply.status, body, headers=list(reply.headers))
        return _Reply(reply.status, body, content_type=content_type, headers=list(reply.headers))

    def _token(self, request: Request, method: str) -> tuple[_Reply, bool]:
        """Intuit's token endpoint (``sandbox.oauth``); the fixed test refresh token still
        answers with the fixed token pair, for clients built without the OAuth flow.
        (reply, whether to cut the connection instead of answering)"""
        if request.form.get("refresh_token") != self.settings.refresh_token:
            answer = self.auth.token(request)
            return self._from_auth(answer), answer.drop
        return self._legacy_token(request, method), False

    def _legacy_token(self, request: Request, method: str) -> _Reply:
        if method != "POST":
            return _Reply(405, b"", content_type="text/plain", headers=[("Allow", "POST")])
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        try:
            client = base64.b64decode(credentials, validate=True).decode()
        except ValueError:
            client = ""
        if scheme.lower() != "basic" or ":" not in client:
            return _json_reply(401, {"error": "invalid_client"})
        form = request.form
        if form.get("grant_type") != "refresh_token":
            return _json_reply(400, {"error": "unsupported_grant_type"})
        if form.get("refresh_token") != self.settings.refresh_token:
            return _json_reply(400, {"error": "invalid_grant"})
        return _json_reply(
            200,
            {
                "token_type": "bearer",
                "access_token": self.settings.access_token,
                "expires_in": 3600,
                "refresh_token": self.settings.refresh_token,
                "x_refresh_token_expires_in": 8_726_400,
            },
        )

    # ------------------------------------------------------------------ the API

    def _api(
        self, request: Request, method: str, path: str
    ) -> tuple[_Reply, AfterCommit | None, bool]:
        """(reply, an after-commit action, whether the concurrency gate was entered)."""
        match = _API_PATH.fullmatch(path)
        if match is None:
            self._count(f"{method} {path}")
            return _Reply(404, b"Not Found", content_type="text/plain"), None, False
        resource = match["resource"].lower()
        entity_id = match["id"]
        self._count(f"{method} {resource}")
        xml = self._wants_xml(request)
        refused, entered = self._gatekeep(request, match["realm"], resource, method, xml)
        if refused is not None:
            return refused, None, entered
        context = _Context(request, method, resource, entity_id, xml)
        if (
            method == "POST"
            and resource in ("invoice", "batch", "creditmemo")
            and entity_id is None
        ):
            reply, after = self._write(context)
            return reply, after, entered
        try:
            reply = self._read(context)
        except _FaultError as fault:
            reply = _fault_reply(fault, xml=xml)
        return reply, None, entered

    @staticmethod
    def _wants_xml(request: Request) -> bool:
        accept = request.accept_mimetypes
        return accept.quality("application/xml") > accept.quality("application/json")

    def _gatekeep(
        self, request: Request, realm: str, resource: str, method: str, xml: bool
    ) -> tuple[_Reply | None, bool]:
        """Injected failures, auth, realm, minorversion, then the limits. (refusal, entered)."""
        refused = self._admit(request, realm, xml)
        if refused is not None:
            return refused, False
        key = self.settings.realm_id
        if not self._gate.enter(key):
            return self._throttled(xml), False
        over = self._minute.acquire(key) is not None or (
            resource == "batch" and method == "POST" and self._batch_minute.acquire(key) is not None
        )
        return (self._throttled(xml) if over else None), True

    def _admit(self, request: Request, realm: str, xml: bool) -> _Reply | None:
        """Injected failures, auth, realm and minorversion: the refusal, or None."""
        with self._lock:
            injected = self._fail.popleft() if self._fail else None
        if injected is not None:
            return self._injected(injected, xml)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not (
            token == self.settings.access_token or self.auth.access_token_valid(token)
        ):
            return self._unauthenticated()
        if realm != self.settings.realm_id:
            return _gateway_fault(
                403,
                "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                "3100",
                "",
                "SERVICE",
            )
        version_problem = self._check_minor_version(request)
        return None if version_problem is None else _fault_reply(version_problem, xml=xml)

    def _throttled(self, xml: bool) -> _Reply:
        return _fault_reply(_throttle_fault(), xml=xml or self.settings.throttle_as_xml)

    @staticmethod
    def _unauthenticated() -> _Reply:
        return _gateway_fault(
            401,
            "message=AuthenticationFailed; errorCode=003200; statusCode=401",
            "3200",
            "Token expired: the access token is not valid for this sandbox",
            "AUTHENTICATION",
        )

    def _check_minor_version(self, request: Request) -> _FaultError | None:
        if self.settings.minor_version_policy == "ignore":
            return None
        raw = request.args.get("minorversion")
        wanted = self.settings.min_minor_version
        if raw is None or raw == "":
            # [U] QBO answers as minor version 75 instead; the fake refuses (see QboSettings)
            return _required("minorversion")
        if not raw.isdigit() or int(raw) < wanted:
            # [U] as above: a stricter stand-in for QBO silently ignoring an old version
            return _invalid_property(
                f"minorversion={raw} (this sandbox accepts {wanted} or later; QuickBooks "
                f"Online ignores older minor versions since 2025-08-01)",
                "minorversion",
            )
        return None

    def _injected(self, injected: _Injected, xml: bool) -> _Reply:
        headers: list[tuple[str, str]] = []
        if injected.retry_after is not None:
            headers.append(("Retry-After", str(injected.retry_after)))
        status = injected.status
        if status == 401:
            reply = self._unauthenticated()
        elif status == 429:
            reply = _fault_reply(_throttle_fault(), xml=xml or injected.xml)
        elif status == 400:
            reply = _fault_reply(
                _business("Unexpected Internal Error. (-30000)"), xml=xml or injected.xml
            )
        elif status == 500:
            reply = _fault_reply(
                _FaultError(
                    500,
                    _Error(
                        "10000",
                        "An application error has occurred while processing your request",
                        "System Failure Error: An unexpected error occurred while accessing or "
                        "saving your data. Please wait a few minutes and try again.",
                    ),
                    fault_type="SystemFault",
                ),
                xml=xml or injected.xml,
            )
        else:
            title = HTTP_STATUS_CODES.get(status, "Error")
            reply = _fault_reply(
                _FaultError(status, _Error(str(status), title, f"Injected {title}"), "SystemFault"),
                xml=xml or injected.xml,
            )
        reply.headers.extend(headers)
        return reply

    # ------------------------------------------------------------------ reads

    def _read(self, context: _Context) -> _Reply:
        resource, method = context.route, context.method
        if resource == "query" and method in ("GET", "POST"):
            return self._query(context)
        if method != "GET":
            return _Reply(405, b"", content_type="text/plain", headers=[("Allow", "GET")])
        if resource == "preferences" and context.entity_id is None:
            return _json_reply(200, {"Preferences": self._preferences(), "time": _response_time()})
        if resource == "companyinfo":
            return _json_reply(200, {"CompanyInfo": self._company(), "time": _response_time()})
        entity = _READABLE.get(resource)
        if entity is None or context.entity_id is None:
            return _Reply(404, b"Not Found", content_type="text/plain")
        with self._lock:
            table = self._table(entity)
            record = copy.deepcopy(table.get(context.entity_id))
        if record is None:
            raise _deleted() if entity in _TRANSACTIONS else _inactive_reference(entity)
        return _json_reply(200, {entity: record, "time": _response_time()})

    def _table(self, entity: str) -> dict[str, JsonDict]:
        if entity == "Invoice":
            return self.invoices
        if entity == "CreditMemo":
            return self.credit_memos
        return self.lists[entity]

    def _query_text(self, context: _Context) -> str:
        request = context.request
        if context.method == "GET":
            return request.args.get("query", "")
        raw = request.get_data(as_text=True)
        if "application/x-www-form-urlencoded" in (request.content_type or ""):
            return parse_qs(raw).get("query", [""])[0]
        return raw

    def _query(self, context: _Context) -> _Reply:
        payload = self._query_response(self._query_text(context))
        return _json_reply(200, {"QueryResponse": payload, "time": _response_time()})

    def _query_response(self, text: str) -> JsonDict:
        try:
            query = parse_query(text)
        except QueryError as exc:
            if exc.code == "4001":
                raise _query_invalid(exc.detail) from None
            raise _query_parse_error(exc.detail) from None
        with self._lock:
            source = self._table(query.entity)
            records = run_query(query, source.values())
        if query.count:
            return {"totalCount": len(records)}
        page = records[query.start - 1 : query.start - 1 + query.max_results]
        if not page:
            return {}
        if query.columns is not None:
            names = [_field_name(query.entity, c) for c in query.columns]
            page = [
                {
                    **{n: r[n] for n in names if n in r},
                    "domain": "QBO",
                    "sparse": True,  # [U] what QBO marks a projection with
                }
                for r in page
            ]
        return {query.entity: page, "startPosition": query.start, "maxResults": len(page)}

    def _preferences(self) -> JsonDict:
        closed = self._closed_through
        accounting: JsonDict = {"TaxYearMonth": "April", "UseAccountNumbers": True}
        if closed is not None:
            accounting["BookCloseDate"] = closed.isoformat()
        return {
            "AccountingInfoPrefs": accounting,
            "SalesFormsPrefs": {
                "CustomTxnNumbers": not self.settings.auto_doc_numbers,
                "DefaultTerms": {"value": "3", "name": f"Net {self.settings.default_terms_days}"},
            },
            "CurrencyPrefs": {
                "MultiCurrencyEnabled": len(self.currencies) > 1,
                "HomeCurrency": {"value": self.home_currency},
            },
            "TaxPrefs": {"UsingSalesTax": True, "PartnerTaxEnabled": False},
            "domain": "QBO",
            "sparse": False,
            "Id": "1",
            "SyncToken": "0",
        }

    def _company(self) -> JsonDict:
        return {
            "CompanyName": "Hourbridge Sandbox Ltd",
            "LegalName": "Hourbridge Sandbox Limited",
            "Country": "NZ",
            "SupportedLanguages": "en",
            "domain": "QBO",
            "sparse": False,
            "Id": "1",
            "SyncToken": "0",
        }

    # ------------------------------------------------------------------ writes

    def _write(self, context: _Context) -> tuple[_Reply, AfterCommit | None]:
        with self._lock:
            self._writes += 1
        request_id = context.request.args.get("requestid")
        limit = (
            min(self.settings.max_request_id, MAX_BATCH_REQUEST_ID)
            if context.route == "batch"
            else self.settings.max_request_id
        )
        slot = (self.settings.realm_id, request_id or "")
        entry: StoredAnswer | None = None
        if request_id is not None:
            if len(request_id) > limit:
                return _fault_reply(
                    self._request_id_too_long(request_id, limit), xml=context.xml
                ), None
            with self._lock:
                entry = self._request_ids.get(slot)
                if entry is not None:
                    if entry.pending:
                        # [U] QBO's answer to a retry that overtakes the original
                        return _fault_reply(
                            _business(
                                f"A request with requestid {request_id} is still being processed"
                            ),
                            xml=context.xml,
                        ), None
                    self.idempotent_replays += 1
                    return _Reply(entry.status, entry.body, entry.content_type), None
                entry = StoredAnswer()
                self._request_ids[slot] = entry
        try:
            with self._lock:
                if context.route == "batch":
                    reply = self._batch(context, request_id)
                elif context.route == "creditmemo":
                    reply = self._credit_memo_request(context)
                else:
                    reply = self._invoice_request(context)
        except BaseException:
            if entry is not None:
                with self._lock:
                    self._request_ids.pop(slot, None)
            raise
        with self._lock:
            if entry is not None:
                # [U] a Fault is replayed too: QBO stores the response whatever it was
                entry.settle(reply.status, reply.body, reply.content_type)
            after = self._commit_fault()
        return reply, after

    @staticmethod
    def _request_id_too_long(request_id: str, limit: int) -> _FaultError:
        # the wording of a real 6000 Fault (QuickBooks-V3-Java-SDK issue #180)
        return _business(
            f"You cannot enter more than {limit} characters in the request_id field. "
            f"You tried entering {request_id[:10]}..., which is {len(request_id)} characters."
        )

    def _parse_body(self, context: _Context) -> Json:
        raw = context.request.get_data()
        try:
            return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _invalid_property(f"Unreadable request body ({exc})") from None  # [U]

    def _invoice_request(self, context: _Context) -> _Reply:
        try:
            body = self._parse_body(context)
            operation = (context.request.args.get("operation") or "").lower()
            if not isinstance(body, dict):
                raise _invalid_property("the request body is not an Invoice object")
            result = self._invoice_operation(operation, body)
        except _FaultError as fault:
            return _fault_reply(fault, xml=context.xml)
        return _json_reply(200, {"Invoice": result, "time": _response_time()})

    def _credit_memo_request(self, context: _Context) -> _Reply:
        """Create a CreditMemo: its lines and totals are checked as an invoice's are."""
        try:
            body = self._parse_body(context)
            if not isinstance(body, dict):
                raise _invalid_property("the request body is not a CreditMemo object")
            for name in body:
                if name not in _CREDIT_MEMO_FIELDS:
                    raise _invalid_property(
                        f'Unrecognized field "{name}" (class com.intuit.schema.finance.v3.'
                        "CreditMemo), not marked as ignorable",
                        name,
                    )
            if not _blank(body.get("Id")):
                # [U] QBO updates a credit memo by Id; this sandbox only creates them
                raise _invalid_property("Id (the sandbox only creates credit memos)", "Id")
            invoice_like = {k: v for k, v in body.items() if k not in _CREDIT_ONLY_FIELDS}
            self._check_fields(invoice_like)
            built = self._build_invoice(invoice_like, None)
        except _FaultError as fault:
            return _fault_reply(fault, xml=context.xml)
        memo = {k: v for k, v in built.items() if k in _CREDIT_MEMO_FIELDS}
        memo["RemainingCredit"] = built["TotalAmt"]
        self.credit_memos[memo["Id"]] = memo
        return _json_reply(200, {"CreditMemo": copy.deepcopy(memo), "time": _response_time()})

    def _invoice_operation(self, operation: str, body: JsonDict) -> JsonDict:
        """Apply one invoice operation (caller holds the lock); returns the response entity."""
        if operation in ("", "create", "update"):
            if operation == "create" and not _blank(body.get("Id")):
                raise _invalid_property("Id", "Id")  # [U]
            return copy.deepcopy(self._save_invoice(body))
        if operation == "void":
            invoice = self._existing_for_change(body)
            if invoice["Id"] in self._voided:
                raise _business("This transaction has already been voided")  # [U]
            self._void(invoice)
            return copy.deepcopy(invoice)
        if operation == "delete":
            invoice = self._existing_for_change(body)
            self._check_not_locked(invoice, "delete")
            del self.invoices[invoice["Id"]]
            self._voided.discard(invoice["Id"])
            return {"status": "Deleted", "domain": "QBO", "Id": invoice["Id"]}
        raise _invalid_property(f"operation={operation}", "operation")  # [U]

    def _existing_for_change(self, body: JsonDict) -> JsonDict:
        invoice_id = body.get("Id")
        if _blank(invoice_id):
            raise _required("Id")
        invoice = self.invoices.get(str(invoice_id))
        if invoice is None:
            raise _deleted()
        if _blank(body.get("SyncToken")):
            raise _required("SyncToken")
        if str(body.get("SyncToken")) != invoice["SyncToken"]:
            raise _stale()
        self._check_open_period(_parse_day(invoice.get("TxnDate")))
        return invoice

    def _check_not_locked(self, invoice: JsonDict, action: str) -> None:
        if not self.settings.lock_non_draft:
            return
        invoice_id = invoice["Id"]
        if invoice_id in self._voided:
            state = "voided"
        elif invoice_id in self._paid:
            state = "paid"
        elif invoice.get("EmailStatus") == "EmailSent":
            state = "sent to the customer"
        else:
            return
        # [U] QBO itself allows this; the sandbox refuses (QboSettings.lock_non_draft)
        raise _business(
            f"Invoice {invoice_id} has been {state}; the sandbox refuses to {action} it "
            "(lock_non_draft)"
        )

    def _check_open_period(self, day: date | None) -> None:
        if day is not None and self._closed_through is not None and day <= self._closed_through:
            raise _period_closed()

    def _touch(self, invoice: JsonDict) -> None:
        invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
        invoice["MetaData"]["LastUpdatedTime"] = _stamp()

    def _void(self, invoice: JsonDict) -> None:
        """What QBO does to a voided invoice: amounts zeroed, "Voided" in the memo."""
        zero = Decimal("0.00")
        for line in invoice["Line"]:
            line["Amount"] = zero
        invoice["TxnTaxDetail"] = {"TotalTax": zero}
        invoice["TotalAmt"] = zero
        invoice["Balance"] = zero
        for name in ("HomeTotalAmt", "HomeBalance"):
            if name in invoice:
                invoice[name] = zero
        note = invoice.get("PrivateNote") or ""
        invoice["PrivateNote"] = f"Voided - {note}" if note else "Voided"  # [U] exact memo
        self._voided.add(invoice["Id"])
        self._touch(invoice)

    # ---- the invoice itself ------------------------------------------------

    def _save_invoice(self, body: JsonDict) -> JsonDict:
        """Create or update from a request body; returns the stored invoice."""
        self._check_fields(body)
        existing: JsonDict | None = None
        data = body
        if not _blank(body.get("Id")):
            existing = self._existing_for_change(body)
            self._check_not_locked(existing, "update")
            if body.get("sparse") is True:
                carried = {
                    k: copy.deepcopy(v)
                    for k, v in existing.items()
                    if k not in _READ_ONLY_FIELDS and not (k == "Line" and "Line" in body)
                }
                data = {**carried, **body}
                if "Line" not in body:
                    data["Line"] = [
                        line
                        for line in data.get("Line", [])
                        if line.get("DetailType") != "SubTotalLineDetail"
                    ]
        invoice = self._build_invoice(data, existing)
        if existing is None:
            self.invoices[invoice["Id"]] = invoice
        else:
            existing.clear()
            existing.update(invoice)
            invoice = existing
        return invoice

    @staticmethod
    def _check_fields(body: JsonDict) -> None:
        for name in body:
            if name not in _INVOICE_FIELDS:
                raise _invalid_property(
                    f'Unrecognized field "{name}" (class com.intuit.schema.finance.v3.Invoice), '
                    "not marked as ignorable",
                    name,
                )
        lines = body.get("Line")
        if lines is None:
            return
        if not isinstance(lines, list):
            raise _invalid_property("Line (an array is expected)", "Line")
        for line in lines:
            if not isinstance(line, dict):
                raise _invalid_property("Line (an object is expected)", "Line")
            for name in line:
                if name not in _LINE_FIELDS:
                    raise _invalid_property(
                        f'Unrecognized field "{name}" (class com.intuit.schema.finance.v3.Line), '
                        "not marked as ignorable",
                        f"Line.{name}",
                    )
            detail = line.get("SalesItemLineDetail")
            if isinstance(detail, dict):
                for name in detail:
                    if name not in _SALES_DETAIL_FIELDS:
                        raise _invalid_property(
                            f'Unrecognized field "{name}" (class com.intuit.schema.finance.v3.'
                            "SalesItemLineDetail), not marked as ignorable",
                            f"Line.SalesItemLineDetail.{name}",
                        )

    def _lookup(self, entity: str, ref: Json, element: str) -> JsonDict | None:
        value = _ref_value(ref)
        if value is None:
            return None
        record = self.lists[entity].get(value)
        if record is None:
            raise _invalid_reference(element)
        if record.get("Active") is False:
            raise _inactive_reference(element)
        return record

    @staticmethod
    def _named_ref(record: JsonDict, name_key: str) -> JsonDict:
        return {"value": record["Id"], "name": str(record.get(name_key, ""))}

    def _date_field(self, data: JsonDict, name: str) -> date | None:
        value = data.get(name)
        if _blank(value):  # python-quickbooks sends "" for an unset date
            return None
        day = _parse_day(value)
        if day is None:
            raise _invalid_property(f"{name}={value!r} (a yyyy-MM-dd date is expected)", name)
        return day

    def _build_invoice(self, data: JsonDict, existing: JsonDict | None) -> JsonDict:
        header = self._header(data, existing)
        lines, taxable = self._lines(data.get("Line"))
        subtotal = sum((line["Amount"] for line in lines), Decimal("0.00"))
        tax_detail, total_tax = self._tax(taxable, header.calculation)
        total = subtotal if header.calculation == "TaxInclusive" else subtotal + total_tax
        if total < 0:
            raise _business("Transaction total cannot be negative")  # [U] exact wording
        lines.append(
            {
                "Amount": _cents(subtotal),
                "DetailType": "SubTotalLineDetail",
                "SubTotalLineDetail": {},
            }
        )
        stamp = _stamp()
        if existing is None:
            invoice_id = str(self._next_invoice_id)
            self._next_invoice_id += 1
            created, version = stamp, 0
        else:
            invoice_id = existing["Id"]
            created, version = existing["MetaData"]["CreateTime"], int(existing["SyncToken"]) + 1
        invoice: JsonDict = {
            "AllowIPNPayment": False,
            "AllowOnlinePayment": False,
            "AllowOnlineCreditCardPayment": False,
            "AllowOnlineACHPayment": False,
            "domain": "QBO",
            "sparse": False,
            "Id": invoice_id,
            "SyncToken": str(version),
            "MetaData": {"CreateTime": created, "LastUpdatedTime": stamp},
            "CustomField": [],
        }
        if header.number:
            invoice["DocNumber"] = header.number
        invoice["TxnDate"] = header.txn_date.isoformat()
        invoice["CurrencyRef"] = {
            "value": header.currency,
            "name": _CURRENCY_NAMES.get(header.currency, header.currency),
        }
        invoice["ExchangeRate"] = header.exchange_rate
        if header.note:
            invoice["PrivateNote"] = header.note
        invoice["LinkedTxn"] = copy.deepcopy(existing.get("LinkedTxn", [])) if existing else []
        invoice["Line"] = lines
        invoice["TxnTaxDetail"] = tax_detail
        invoice["CustomerRef"] = self._named_ref(header.customer, "DisplayName")
        for name, record in (("ClassRef", header.klass), ("DepartmentRef", header.department)):
            if record is not None:
                invoice[name] = self._named_ref(record, "Name")
        invoice["DueDate"] = header.due_date.isoformat()
        if header.ship_date is not None:
            invoice["ShipDate"] = header.ship_date.isoformat()
        invoice["GlobalTaxCalculation"] = header.calculation
        invoice["TotalAmt"] = _cents(total)
        invoice["HomeTotalAmt"] = _cents(total * header.exchange_rate)
        invoice["PrintStatus"] = header.print_status
        invoice["EmailStatus"] = header.email_status
        invoice["Balance"] = _cents(total)
        invoice["HomeBalance"] = _cents(total * header.exchange_rate)
        invoice["Deposit"] = Decimal("0.00")
        for name in _CARRIED_FIELDS:
            value = data.get(name)
            if not _blank(value) and value != []:
                invoice[name] = copy.deepcopy(value)
        email = header.customer.get("PrimaryEmailAddr")
        if "BillEmail" not in invoice and isinstance(email, dict):
            invoice["BillEmail"] = copy.deepcopy(email)
        return invoice

    def _header(self, data: JsonDict, existing: JsonDict | None) -> _Header:
        """Everything but the lines, validated."""
        customer = self._lookup("Customer", data.get("CustomerRef"), "CustomerRef")
        if customer is None:
            raise _required("CustomerRef")
        currency = self._currency(data, customer)
        number = self._doc_number(data, existing)
        txn_date = self._date_field(data, "TxnDate") or _now().date()
        self._check_open_period(txn_date)
        terms = timedelta(days=self.settings.default_terms_days)
        due_date = self._date_field(data, "DueDate") or txn_date + terms
        enums: dict[str, str] = {}
        for name, default, allowed in (
            ("EmailStatus", "NotSet", EMAIL_STATUSES),
            ("PrintStatus", "NotSet", PRINT_STATUSES),
            ("GlobalTaxCalculation", "TaxExcluded", TAX_CALCULATIONS),
        ):
            value = data.get(name) or default
            if value not in allowed:
                raise _invalid_property(f"{name}={value}", name)
            enums[name] = str(value)
        note = data.get("PrivateNote")
        if isinstance(note, str) and len(note) > MAX_TEXT:
            raise _too_long("PrivateNote", MAX_TEXT, len(note))
        rate = _number(data.get("ExchangeRate"))
        if currency == self.home_currency or rate is None or rate <= 0:
            rate = Decimal(1)  # [U] QBO would look up its own rate for a foreign currency
        return _Header(
            customer=customer,
            currency=currency,
            exchange_rate=rate,
            number=number,
            txn_date=txn_date,
            due_date=due_date,
            ship_date=self._date_field(data, "ShipDate"),
            email_status=enums["EmailStatus"],
            print_status=enums["PrintStatus"],
            calculation=enums["GlobalTaxCalculation"],
            note=note if isinstance(note, str) and note else None,
            klass=self._lookup("Class", data.get("ClassRef"), "ClassRef"),
            department=self._lookup("Department", data.get("DepartmentRef"), "DepartmentRef"),
        )

    def _currency(self, data: JsonDict, customer: JsonDict) -> str:
        customer_currency = _ref_value(customer.get("CurrencyRef")) or self.home_currency
        wanted = _ref_value(data.get("CurrencyRef")) or customer_currency
        if wanted not in self.currencies:
            # [U] exact wording
            raise _business(f"Currency {wanted} is not enabled for this company", "CurrencyRef")
        if wanted != customer_currency:
            # [U] exact wording; QBO requires the transaction in the customer's currency
            raise _business(
                f"The currency of the transaction ({wanted}) must match the currency of the "
                f"customer ({customer_currency})",
                "CurrencyRef",
            )
        return wanted

    def _doc_number(self, data: JsonDict, existing: JsonDict | None) -> str | None:
        raw = data.get("DocNumber")
        if _blank(raw):
            if existing is not None and existing.get("DocNumber"):
                return str(existing["DocNumber"])
            if not self.settings.auto_doc_numbers:
                return None
            while True:
                candidate = str(self._next_doc_number)
                self._next_doc_number += 1
                if self._by_number(candidate) is None:
                    return candidate
        number = str(raw)
        if len(number) > MAX_DOC_NUMBER:
            raise _too_long("DocNumber", MAX_DOC_NUMBER, len(number))
        if self.settings.unique_doc_numbers:
            other = self._by_number(number)
            if other is not None and (existing is None or other["Id"] != existing["Id"]):
                raise _duplicate_number(number, other["Id"])
        return number

    def _by_number(self, number: str) -> JsonDict | None:
        wanted = number.casefold()  # [U] QBO compares document numbers case-insensitively
        for invoice in self.invoices.values():
            if str(invoice.get("DocNumber", "")).casefold() == wanted:
                return invoice
        return None

    def _lines(self, raw: Json) -> tuple[list[JsonDict], dict[str, Decimal]]:
        """The stored lines (without the SubTotal line) and the net amount per tax code."""
        if not isinstance(raw, list) or not raw:
            raise _required("Line")
        lines: list[JsonDict] = []
        taxable: dict[str, Decimal] = collections.defaultdict(Decimal)
        for line in raw:
            kind = line.get("DetailType")
            if kind == "SubTotalLineDetail":
                continue  # computed by QBO; clients echo it back on updates
            number = len(lines) + 1
            description = line.get("Description")
            if isinstance(description, str) and len(description) > MAX_TEXT:
                raise _too_long("Line.Description", MAX_TEXT, len(description))
            out: JsonDict = {"Id": str(number), "LineNum": number}
            if isinstance(description, str) and description:
                out["Description"] = description
            if kind == "DescriptionOnly":
                out.update(
                    {
                        "Amount": Decimal("0.00"),
                        "DetailType": "DescriptionOnly",
                        "DescriptionLineDetail": copy.deepcopy(
                            line.get("DescriptionLineDetail") or {}
                        ),
                    }
                )
                lines.append(out)
                continue
            if kind != "SalesItemLineDetail":
                # [U] QBO knows more line types; the sandbox only does item and text lines
                raise _invalid_property(f"Line.DetailType={kind}", "Line.DetailType")
            amount, detail, tax_code = self._sales_line(line)
            out.update(
                {
                    "Amount": amount,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": detail,
                }
            )
            if tax_code is not None:
                taxable[tax_code] += amount
            lines.append(out)
        return lines, dict(taxable)

    def _sales_line(self, line: JsonDict) -> tuple[Decimal, JsonDict, str | None]:
        given = line.get("SalesItemLineDetail")
        if not isinstance(given, dict):
            raise _required("Line.SalesItemLineDetail")
        item = self._lookup("Item", given.get("ItemRef"), "Line.SalesItemLineDetail.ItemRef")
        if item is None:
            raise _required("Line.SalesItemLineDetail.ItemRef")
        amount = _number(line.get("Amount"))
        if amount is None:
            raise _required("Line.Amount")
        qty = _number(given.get("Qty"))
        unit_price = _number(given.get("UnitPrice"))
        if (
            qty is not None
            and unit_price is not None
            and _cents(amount) != _cents(qty * unit_price)
        ):
            # QBO rounds Qty x UnitPrice half-up to cents and compares (Fault 6070). [U] the
            # sandbox also applies this to Qty 0 / UnitPrice 0, which python-quickbooks sends
            # when only Amount is set.
            raise _amount_mismatch(amount)
        tax_record = self._lookup(
            "TaxCode", given.get("TaxCodeRef"), "Line.SalesItemLineDetail.TaxCodeRef"
        )
        if tax_record is None and self.settings.require_line_tax_code:
            raise _business("Make sure all your transactions have a GST rate before you save.")
        class_record = self._lookup(
            "Class", given.get("ClassRef"), "Line.SalesItemLineDetail.ClassRef"
        )
        detail: JsonDict = {"ItemRef": self._named_ref(item, "Name")}
        if class_record is not None:
            detail["ClassRef"] = self._named_ref(class_record, "Name")
        if unit_price is not None:
            detail["UnitPrice"] = unit_price
        if qty is not None:
            detail["Qty"] = qty
        service_date = given.get("ServiceDate")
        if not _blank(service_date):
            day = _parse_day(service_date)
            if day is None:
                raise _invalid_property(
                    f"ServiceDate={service_date!r}", "Line.SalesItemLineDetail.ServiceDate"
                )
            detail["ServiceDate"] = day.isoformat()
        if tax_record is not None:
            detail["TaxCodeRef"] = {"value": tax_record["Id"]}
        return _cents(amount), detail, tax_record["Id"] if tax_record else None

    def _tax_rates_of(self, tax_code_id: str) -> list[JsonDict]:
        code = self.lists["TaxCode"][tax_code_id]
        details = (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
        rates: list[JsonDict] = []
        for detail in details:
            rate_id = _ref_value(detail.get("TaxRateRef"))
            rate = self.lists["TaxRate"].get(rate_id or "")
            if rate is not None:
                rates.append(rate)
        return rates

    def _tax(self, taxable: Mapping[str, Decimal], calculation: str) -> tuple[JsonDict, Decimal]:
        """``TxnTaxDetail`` and the total tax: per rate, on the summed net, half-up [U]."""
        zero = Decimal("0.00")
        if calculation == "NotApplicable":
            return {"TotalTax": zero}, zero
        per_rate: dict[str, tuple[JsonDict, Decimal]] = {}
        for code_id, net in taxable.items():
            for rate in self._tax_rates_of(code_id):
                known = per_rate.get(rate["Id"])
                per_rate[rate["Id"]] = (rate, (known[1] if known else zero) + net)
        tax_lines: list[JsonDict] = []
        total = zero
        for rate, net in per_rate.values():
            percent = _number(rate.get("RateValue")) or zero
            if calculation == "TaxInclusive":
                tax = _cents(net * percent / (Decimal(100) + percent))
                base = net - tax
            else:
                tax = _cents(net * percent / Decimal(100))
                base = net
            total += tax
            tax_lines.append(
                {
                    "Amount": tax,
                    "DetailType": "TaxLineDetail",
                    "TaxLineDetail": {
                        "TaxRateRef": {"value": rate["Id"]},
                        "PercentBased": True,
                        "TaxPercent": percent,
                        "NetAmountTaxable": _cents(base),
                    },
                }
            )
        detail: JsonDict = {"TotalTax": total}
        if tax_lines:
            detail["TaxLine"] = tax_lines
        return detail, total

    # ---- batch -------------------------------------------------------------

    def _batch(self, context: _Context, request_id: str | None) -> _Reply:
        try:
            body = self._parse_body(context)
            items = body.get("BatchItemRequest") if isinstance(body, dict) else None
            if not isinstance(items, list) or not items:
                raise _FaultError(400, _Error("400", "MalformedRequest", "Batch Request is Empty"))
            limit = self.settings.batch_max_items
            if len(items) > limit:
                # [U] the Detail wording; the code/Message follow QBO's empty-batch Fault
                raise _FaultError(
                    400,
                    _Error(
                        "400",
                        "MalformedRequest",
                        f"Batch Request exceeds the maximum of {limit} items (it has {len(items)})",
                    ),
                )
            bids = [str(item.get("bId", "")) if isinstance(item, dict) else "" for item in items]
            if len(set(bids)) != len(bids) or "" in bids:
                raise _FaultError(  # [U] wording
                    400,
                    _Error("400", "MalformedRequest", "Every bId must be present and unique"),
                )
        except _FaultError as fault:
            return _fault_reply(fault, xml=context.xml)
        responses = [self._batch_item(item, request_id) for item in items]
        return _json_reply(200, {"BatchItemResponse": responses, "time": _response_time()})

    def _batch_item(self, item: JsonDict, request_id: str | None) -> JsonDict:
        bid = str(item["bId"])
        try:
            if request_id is not None and len(request_id + bid) > self.settings.max_request_id:
                # QBO joins requestid and bId into one request_id per item (Java SDK #180)
                raise self._request_id_too_long(request_id + bid, self.settings.max_request_id)
            if "Query" in item:
                return {"bId": bid, "QueryResponse": self._query_response(str(item["Query"]))}
            operation = str(item.get("operation", "")).lower()
            entities = [k for k in item if k not in ("bId", "operation", "optionsData")]
            if entities != ["Invoice"] or not isinstance(item["Invoice"], dict):
                # [U] QBO batches other entities too; the sandbox only knows invoices
                raise _invalid_property(
                    f"BatchItemRequest entity {entities} (the sandbox only batches Invoice)"
                )
            if operation not in ("create", "update", "delete"):
                raise _invalid_property(f"operation={operation}", "operation")
            body = item["Invoice"]
            if operation == "create" and not _blank(body.get("Id")):
                raise _invalid_property("Id", "Id")  # [U]
            if operation == "update" and _blank(body.get("Id")):
                raise _required("Id")
            result = self._invoice_operation(operation, body)
        except _FaultError as fault:
            payload = _fault_payload(fault.error, fault.fault_type)
            return {"bId": bid, "Fault": payload["Fault"]}
        return {"bId": bid, "Invoice": result}


# --------------------------------------------------------------------------
# seed data from the agency month


def qbo_fixture_from_month(month: AgencyMonth) -> dict[str, list[dict[str, Any]]]:
    """Customers, items, tax codes and tax rates matching the month's Xero seed.

    * one Customer per Xero *customer* contact (suppliers are vendors in QBO and are
      left out), ``DisplayName`` == the contact's ``Name``, ``CurrencyRef`` == its
      ``DefaultCurrency``, archived contacts inactive; Ids "1", "2", ... in contact order;
    * one Service Item per Xero item, ``Name`` == the Xero item ``Code``;
    * NZ-style tax codes with numeric Ids and TaxRates (GST 15 %, zero-rated, exempt,
      no GST) for the Xero tax types that apply to revenue;
    * no classes or departments (the keys are there, empty).
    """
    customers: list[dict[str, Any]] = []
    for contact in month.xero_contacts:
        if not contact.get("IsCustomer"):
            continue
        name = str(contact["Name"])
        currency = str(contact.get("DefaultCurrency") or month.base_currency)
        customer: dict[str, Any] = {
            "Id": str(len(customers) + 1),
            "DisplayName": name,
            "CompanyName": name,
            "FullyQualifiedName": name,
            "PrintOnCheckName": name,
            "Active": contact.get("ContactStatus", "ACTIVE") != "ARCHIVED",
            "CurrencyRef": {"value": currency, "name": _CURRENCY_NAMES.get(currency, currency)},
            "Balance": Decimal("0.00"),
            "BalanceWithJobs": Decimal("0.00"),
            "Taxable": True,
            "Job": False,
            "BillWithParent": False,
            "PreferredDeliveryMethod": "Email",
        }
        if contact.get("EmailAddress"):
            customer["PrimaryEmailAddr"] = {"Address": contact["EmailAddress"]}
        if contact.get("ContactNumber"):
            customer["Notes"] = f"Xero ContactNumber {contact['ContactNumber']}"
        addresses = contact.get("Addresses") or []
        if addresses:
            address = addresses[0]
            customer["BillAddr"] = {
                "Line1": address.get("AddressLine1", ""),
                "City": address.get("City", ""),
                "PostalCode": address.get("PostalCode", ""),
                "Country": address.get("Country", ""),
            }
        customers.append(customer)

    rate_rows = (
        # Xero TaxType, TaxCode Id, TaxCode name, TaxRate Id, TaxRate name
        ("OUTPUT2", "3", "GST on Income", "5", "GST (15%)"),
        ("ZERORATEDOUTPUT", "4", "Zero-rated", "6", "Zero-rated (0%)"),
        ("EXEMPTOUTPUT", "5", "Exempt", "7", "Exempt (0%)"),
        ("NONE", "6", "No GST", "8", "No GST (0%)"),
    )
    by_type = {str(t.get("TaxType")): t for t in month.xero_tax_rates}
    tax_codes: list[dict[str, Any]] = []
    tax_rates: list[dict[str, Any]] = []
    code_of_type: dict[str, str] = {}
    for tax_type, code_id, code_name, rate_id, rate_name in rate_rows:
        source = by_type.get(tax_type)
        if source is None or source.get("CanApplyToRevenue") is False:
            continue
        percent = _to_decimals(source.get("EffectiveRate", 0))
        tax_rates.append(
            {
                "Id": rate_id,
                "Name": rate_name,
                "Description": str(source.get("Name", rate_name)),
                "Active": True,
                "RateValue": percent if isinstance(percent, Decimal) else Decimal(percent),
                "AgencyRef": {"value": "1"},
                "SpecialTaxType": "NONE",
                "DisplayType": "ReadOnly",
            }
        )
        tax_codes.append(
            {
                "Id": code_id,
                "Name": code_name,
                "Description": str(source.get("Name", code_name)),
                "Active": True,
                "Taxable": percent != 0,
                "TaxGroup": False,
                "SalesTaxRateList": {
                    "TaxRateDetail": [
                        {
                            "TaxRateRef": {"value": rate_id, "name": rate_name},
                            "TaxTypeApplicable": "TaxOnAmount",
                            "TaxOrder": 0,
                        }
                    ]
                },
                "PurchaseTaxRateList": {"TaxRateDetail": []},
            }
        )
        code_of_type[tax_type] = code_id

    items: list[dict[str, Any]] = []
    for xero_item in month.xero_items:
        code = str(xero_item["Code"])
        sales = xero_item.get("SalesDetails") or {}
        item: dict[str, Any] = {
            "Id": str(len(items) + 1),
            "Name": code,
            "FullyQualifiedName": code,
            "Description": str(xero_item.get("Description") or xero_item.get("Name", "")),
            "Type": "Service",
            "Active": True,
            "Taxable": True,
            "UnitPrice": _to_decimals(sales.get("UnitPrice", 0)),
            "IncomeAccountRef": {"value": "1", "name": "Sales"},
            "TrackQtyOnHand": False,
        }
        tax_code = code_of_type.get(str(sales.get("TaxType", "")))
        if tax_code is not None:
            item["SalesTaxCodeRef"] = {"value": tax_code}
        items.append(item)

    return {
        "customers": customers,
        "items": items,
        "tax_codes": tax_codes,
        "tax_rates": tax_rates,
        "classes": [],
        "departments": [],
    }
