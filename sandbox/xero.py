"""A strict fake of the Xero Accounting API, as a WSGI app.

It serves what hourbridge uses -- ``GET /Contacts``, ``/Items``, ``/Accounts``,
``/TaxRates``, ``/Currencies``, ``/Organisation``, ``/TrackingCategories[/{id}]``,
``GET /Invoices[/{id}]``, ``PUT``/``POST /Invoices``, an invoice's attachments
(``GET /Invoices/{id}/Attachments[/{FileName}]``, ``PUT``/``POST
/Invoices/{id}/Attachments/{FileName}`` with the file as the raw body), ``GET
/CreditNotes[/{id}]`` and ``PUT``/``POST /CreditNotes`` (created, never updated here) -- at
both ``/api.xro/2.0/...`` (the real base path) and ``/...`` (what
``AccountingApi(base_url=server.url)`` calls), paths matched case-insensitively as Xero
does.

Strict on purpose, the way the real API is:

* every call needs ``Authorization: Bearer <token>`` (else 401 with Xero's
  problem body and ``WWW-Authenticate: Bearer``) and the ``xero-tenant-id`` of
  the one connected organisation (else 403);
* per-tenant limits (``sandbox.ratelimit``): 60 per minute, 5,000 per day, 5 in
  flight, plus 10,000 per minute for the app; 429 with ``X-Rate-Limit-Problem``
  (and ``Retry-After`` for the minute and day limits); every response carries
  ``X-MinLimit-Remaining``, ``X-DayLimit-Remaining``, ``X-AppMinLimit-Remaining``;
* write bodies are validated against the official spec (``sandbox.xero_spec``)
  and then checked like Xero checks them; totals are computed with ``Decimal``
  and ROUND_HALF_UP, and numbers go out as exact JSON numbers;
* ``Idempotency-Key`` (at most 128 characters, never empty) replays the first
  response of a write byte for byte;
* a line's ``Tracking`` names at most two categories, each once, by Name and Option
  (or TrackingCategoryID and TrackingOptionID); a category or option that does not exist,
  or is archived, is a validation error on that invoice;
* attachments: the invoice must exist and not be deleted or voided; the file name needs
  one of Xero's file types and no reserved characters; the body is not empty and at most
  10 MB; at most 10 attachments per invoice (the same file name replaces its attachment);
* ``where`` is parsed like Xero's Dynamic-LINQ filter (strings in double
  quotes, a literal quote doubled, no backslash escapes); what the parser does
  not understand is a 400 ``QueryParseException``, never "everything".

Fault knobs let tests lose a response after the commit (``drop_after_commit``),
hold a committed write while a client dies (``hold_after_commit``) or answer
the next calls with an error (``fail_next``).
"""

from __future__ import annotations

import collections
import copy
import email.utils
import hashlib
import json
import math
import operator
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request

from sandbox.oauth import FakeAuthServer, OAuthSettings
from sandbox.oauth import Reply as AuthReply
from sandbox.ratelimit import ConcurrencyGate, SlidingWindow
from sandbox.serving import drop_connection
from sandbox.tokens import Token, TokenCursor
from sandbox.writes import AfterCommit, CommitFaults, StoredAnswer
from sandbox.xero_spec import field_info, parse_xero_datetime, strip_nulls, validate_body

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["BASE_PATH", "FakeXero", "WhereError", "XeroSettings", "dumps_json", "parse_where"]

BASE_PATH = "/api.xro/2.0"
# The identity and connection endpoints, at the paths of their real hosts
AUTHORIZE_PATH = "/identity/connect/authorize"  # login.xero.com
TOKEN_PATH = "/connect/token"  # noqa: S105 - a path (identity.xero.com), not a secret
REVOKE_PATH = "/connect/revocation"  # identity.xero.com
CONNECTIONS_PATH = "/connections"  # api.xero.com
PROVIDER_NAME = "hourbridge sandbox"
ORG_TIMEZONE = ZoneInfo("Pacific/Auckland")  # Xero's NEWZEALANDSTANDARDTIME
MAX_IDEMPOTENCY_KEY = 128
MAX_BODY_BYTES = 3_500_000  # Xero's documented 3.5 MB request limit
APP_PER_MINUTE = 10_000
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # Xero's documented limit per attached file
MAX_ATTACHMENTS = 10  # per document
MAX_TRACKING = 2  # tracking categories per line
ATTACHMENT_TYPES = {
    "7z": "application/x-7z-compressed",
    "bmp": "image/bmp",
    "csv": "text/csv",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "eml": "message/rfc822",
    "gif": "image/gif",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "keynote": "application/vnd.apple.keynote",
    "msg": "application/vnd.ms-outlook",
    "numbers": "application/vnd.apple.numbers",
    "odf": "application/vnd.oasis.opendocument.formula",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odt": "application/vnd.oasis.opendocument.text",
    "pages": "application/vnd.apple.pages",
    "pdf": "application/pdf",
    "png": "image/png",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "rar": "application/vnd.rar",
    "rtf": "application/rtf",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "txt": "text/plain",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "zip": "application/zip",
}
_RESERVED_FILE_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')

QUANTITY_DP = 4
INVOICE_TYPES = ("ACCREC", "ACCPAY")
CREDIT_NOTE_TYPES = {"ACCRECCREDIT": "ACCREC", "ACCPAYCREDIT": "ACCPAY"}  # → lines as on
# these invoice types (sales or purchase accounts and tax)
CREATE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED")
EDITABLE_STATUSES = ("DRAFT", "SUBMITTED")
ALL_STATUSES = ("DRAFT", "SUBMITTED", "DELETED", "AUTHORISED", "PAID", "VOIDED")

Json = Any
JsonDict = dict[str, Any]

# what an update keeps of a stored line when the request sends no LineItems
_CARRIED_LINE_FIELDS = frozenset(
    {
        "LineItemID",
        "Description",
        "Quantity",
        "UnitAmount",
        "ItemCode",
        "AccountCode",
        "TaxType",
        "Tracking",
        "DiscountRate",
        "DiscountAmount",
    }
)


# --------------------------------------------------------------------------
# settings


@dataclass
class XeroSettings:
    tenant_id: str = "4c2b5f0a-6a3e-4d38-9c1e-0d6f2b8a7e11"
    access_token: str = "sandbox-xero-token"  # noqa: S105 - the fake's fixed test token
    per_minute: int = 60  # per tenant
    concurrent: int = 5  # per tenant
    per_day: int = 5000  # per tenant
    clock: Callable[[], float] = time.monotonic
    oauth: OAuthSettings = field(
        default_factory=lambda: OAuthSettings(required_scopes=("offline_access",))
    )
    # other organisations the user may pick at connect time (GET /connections lists them)
    other_tenants: tuple[tuple[str, str], ...] = ()  # (tenantId, tenantName)


# --------------------------------------------------------------------------
# JSON with exact decimals


def _credit_problem(element: JsonDict, method: str) -> str | None:
    """Why a credit note element can't be created, if so."""
    if element.get("CreditNoteID") is not None:
        if method == "PUT":
            return "A CreditNoteID cannot be given when creating a credit note"
        return "Updating a credit note is not supported by this sandbox"
    credit_type = element.get("Type")
    if credit_type is None:
        return "Credit Note Type must be specified"
    if credit_type not in CREDIT_NOTE_TYPES:
        return f"Credit Note Type '{credit_type}' is not ACCRECCREDIT or ACCPAYCREDIT"
    status = element.get("Status", "DRAFT")
    if status not in CREATE_STATUSES:
        return f"Credit Note Status '{status}' cannot be used when creating one"
    return None


def dumps_json(value: Json) -> str:
    """JSON text in which every ``Decimal`` is written as its exact digits.

    Floats are refused: money inside the fake is ``Decimal`` only.
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot encode {value!r} as JSON")
        return format(value, "f")
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{json.dumps(str(k))}:{dumps_json(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps_json(v) for v in value) + "]"
    if isinstance(value, float):
        raise TypeError(f"float {value!r} in fake Xero data; use Decimal")
    if value is None or isinstance(value, str | int | bool):
        return json.dumps(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _to_decimals(value: Json) -> Json:
    """Seed data may carry floats (Harvest-style); keep them as exact decimals."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_decimals(v) for v in value]
    return value


def _ms_date(moment: datetime) -> str:
    """``/Date(1573755038314+0000)/`` for an aware UTC moment."""
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def _date_fields(day: date) -> tuple[str, str]:
    """Xero's pair for a calendar date: ``/Date(ms+0000)/`` and ``YYYY-MM-DDT00:00:00``."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return _ms_date(midnight), f"{day.isoformat()}T00:00:00"


def _now_utc() -> datetime:
    return datetime.now(UTC)


def _decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _round(value: Decimal, places: int = 2) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _as_decimal(value: Json) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36 and all(text[i] == "-" for i in (8, 13, 18, 23))


# --------------------------------------------------------------------------
# the `where` filter (a small Dynamic-LINQ subset)


class WhereError(ValueError):
    """The filter could not be parsed; becomes a 400 QueryParseException."""


_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"]|"")*")
      | (?P<char>'[^']*')
      | (?P<number>\d+(?:\.\d+)?)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>==|!=|<>|>=|<=|&&|\|\||[=<>!().,])
    )""",
    re.VERBOSE,
)

_KIND_TYPE = {
    "string": "String",
    "guid": "Guid",
    "date": "DateTime",
    "number": "Decimal",
    "integer": "Decimal",
    "boolean": "Boolean",
    "object": "Object",
    "array": "Object",
}

Record = Mapping[str, Any]


@dataclass(frozen=True)
class _Node:
    type: str  # String | Guid | Decimal | Boolean | DateTime | Null | Object
    fn: Callable[[Record], Any]


def _tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        match = _TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            if text[pos] == '"':
                raise WhereError(f"Unterminated string literal (at index {pos})")
            raise WhereError(f"Syntax error '{text[pos]}' (at index {pos})")
        kind = match.lastgroup or "op"
        token_text = match.group(kind)
        tokens.append(Token(kind, token_text, match.start(kind)))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "guid": lambda v: str(v).lower(),
    "date": lambda v: parse_xero_datetime(str(v)),
    "number": _as_decimal,
    "integer": _as_decimal,
    "boolean": lambda v: v if isinstance(v, bool) else None,
    "string": _as_text,
}


def _field_getter(names: Sequence[str], kind: str) -> Callable[[Record], Any]:
    convert = _CONVERTERS.get(kind)

    def get(record: Record) -> Any:
        value: Any = record
        for name in names:
            value = value.get(name) if isinstance(value, Mapping) else None
        if value is None or convert is None:
            return value
        return convert(value)

    return get


def _either(a: Callable[[Record], Any], b: Callable[[Record], Any]) -> Callable[[Record], bool]:
    return lambda record: bool(a(record)) or bool(b(record))


def _both(a: Callable[[Record], Any], b: Callable[[Record], Any]) -> Callable[[Record], bool]:
    return lambda record: bool(a(record)) and bool(b(record))


def _constant(value: Any) -> Callable[[Record], Any]:
    return lambda record: value


class _WhereParser(TokenCursor):
    def __init__(self, text: str, schema: str) -> None:
        super().__init__(_tokenize(text))
        self.text = text
        self.schema = schema

    def expect_op(self, text: str) -> None:
        if not self.is_op(text):
            token = self.peek()
            raise WhereError(f"'{text}' expected (at index {token.pos})")
        self.take()

    # grammar
    def parse(self) -> Callable[[Record], bool]:
        if self.peek().kind == "end":
            raise WhereError("Expression expected")
        node = self.parse_or()
        if self.peek().kind != "end":
            token = self.peek()
            raise WhereError(f"Syntax error (at index {token.pos})")
        if node.type != "Boolean":
            raise WhereError("Expression of type 'Boolean' expected")
        fn = node.fn
        return lambda record: bool(fn(record))

    def _bool_operand(self, node: _Node, op: str) -> _Node:
        if node.type != "Boolean":
            raise WhereError(f"Operator '{op}' incompatible with operand type '{node.type}'")
        return node

    def parse_or(self) -> _Node:
        left = self.parse_and()
        while self.is_op("||") or self.is_word("or"):
            op = self.take().text
            right = self._bool_operand(self.parse_and(), op)
            self._bool_operand(left, op)
            left = _Node("Boolean", _either(left.fn, right.fn))
        return left

    def parse_and(self) -> _Node:
        left = self.parse_unary()
        while self.is_op("&&") or self.is_word("and"):
            op = self.take().text
            right = self._bool_operand(self.parse_unary(), op)
            self._bool_operand(left, op)
            left = _Node("Boolean", _both(left.fn, right.fn))
        return left

    def parse_unary(self) -> _Node:
        if self.is_op("!") or self.is_word("not"):
            op = self.take().text
            inner = self._bool_operand(self.parse_unary(), op)
            fn = inner.fn
            return _Node("Boolean", lambda r: not bool(fn(r)))
        return self.parse_comparison()

    def parse_comparison(self) -> _Node:
        left = self.parse_postfix()
        token = self.peek()
        if token.kind == "op" and token.text in ("==", "=", "!=", "<>", ">", ">=", "<", "<="):
            self.take()
            right = self.parse_postfix()
            return _compare(token.text, left, right)
        return left

    def parse_postfix(self) -> _Node:
        node = self.parse_primary()
        while self.is_op("."):
            self.take()
            name_token = self.take()
            if name_token.kind != "ident":
                raise WhereError(f"Identifier expected (at index {name_token.pos})")
            if not self.is_op("("):
                raise WhereError(
                    f"No property or field '{name_token.text}' exists in type '{node.type}'"
                )
            args = self.parse_args()
            node = _call_method(node, name_token.text, args)
        return node

    def parse_args(self) -> list[_Node]:
        self.expect_op("(")
        args: list[_Node] = []
        if not self.is_op(")"):
            args.append(self.parse_or())
            while self.is_op(","):
                self.take()
                args.append(self.parse_or())
        self.expect_op(")")
        return args

    def parse_primary(self) -> _Node:
        token = self.peek()
        if token.kind == "op" and token.text == "(":
            self.take()
            node = self.parse_or()
            self.expect_op(")")
            return node
        if token.kind in ("string", "char", "number"):
            self.take()
            return _literal(token)
        if token.kind != "ident":
            raise WhereError(f"Expression expected (at index {token.pos})")
        word = token.text.lower()
        keywords = {"true": True, "false": False, "null": None}
        if word in keywords:
            self.take()
            value = keywords[word]
            return _Node("Null" if value is None else "Boolean", _constant(value))
        if word in ("guid", "datetime") and self.is_op("(", 1):
            self.take()
            return self._guid_literal() if word == "guid" else self._datetime_literal()
        return self._field()

    def _guid_literal(self) -> _Node:
        args = self.parse_args()
        if len(args) != 1 or args[0].type != "String":
            raise WhereError("Guid(...) takes one string")
        text = str(args[0].fn({}))
        if not _is_guid(text):
            raise WhereError(f"Unrecognized Guid format '{text}'")
        value = text.lower()
        return _Node("Guid", lambda r: value)

    def _datetime_literal(self) -> _Node:
        args = self.parse_args()
        parts: list[int] = []
        for arg in args:
            value = arg.fn({}) if arg.type == "Decimal" else None
            if not isinstance(value, Decimal) or value != value.to_integral_value():
                raise WhereError("DateTime(...) takes integers: DateTime(year, month, day)")
            parts.append(int(value))
        if len(parts) not in (3, 6):
            raise WhereError("DateTime(...) takes 3 or 6 integers")
        year, month, day, hour, minute, second = (*parts, 0, 0, 0)[:6]
        try:
            moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError as exc:
            raise WhereError(f"Invalid DateTime: {exc}") from exc
        return _Node("DateTime", lambda r: moment)

    def _field(self) -> _Node:
        path = [self.take().text]
        while self.is_op(".") and self.peek(1).kind == "ident" and not self.is_op("(", 2):
            self.take()
            path.append(self.take().text)
        info = field_info(self.schema, path)
        if info is None:
            raise WhereError(f"No property or field '{path[-1]}' exists in type '{self.schema}'")
        return _Node(_KIND_TYPE[info.kind], _field_getter(info.names, info.kind))


def _literal(token: Token) -> _Node:
    if token.kind == "string":
        return _Node("String", _constant(token.text[1:-1].replace('""', '"')))
    if token.kind == "number":
        return _Node("Decimal", _constant(Decimal(token.text)))
    raise WhereError("Character literal must contain exactly one character")


_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def _compare(op: str, left: _Node, right: _Node) -> _Node:
    op = {"=": "==", "<>": "!="}.get(op, op)
    a, b = left.fn, right.fn
    if "Null" in (left.type, right.type):
        if op not in ("==", "!="):
            raise WhereError(
                f"Operator '{op}' incompatible with operand types '{left.type}' and '{right.type}'"
            )
        want_equal = op == "=="
        return _Node("Boolean", lambda r: ((a(r) is None) == (b(r) is None)) == want_equal)
    if left.type != right.type or left.type == "Object":
        raise WhereError(
            f"Operator '{op}' incompatible with operand types '{left.type}' and '{right.type}'"
        )
    if left.type in ("String", "Guid", "Boolean") and op not in ("==", "!="):
        raise WhereError(
            f"Operator '{op}' incompatible with operand types '{left.type}' and '{right.type}'"
        )

    def check(record: Record) -> bool:
        va, vb = a(record), b(record)
        if op == "==":
            return bool(va == vb)
        if op == "!=":
            return bool(va != vb)
        return va is not None and vb is not None and _ORDERING[op](va, vb)

    return _Node("Boolean", check)


def _call_method(target: _Node, name: str, args: list[_Node]) -> _Node:
    method = name.lower()
    fn = target.fn
    if target.type == "String" and method in ("startswith", "endswith", "contains"):
        if len(args) != 1 or args[0].type != "String":
            raise WhereError(f"No applicable method '{name}' exists in type 'String'")
        arg = args[0].fn

        def test(record: Record) -> bool:
            value, needle = fn(record), arg(record)
            if value is None or needle is None:
                return False
            if method == "startswith":
                return bool(value.startswith(needle))
            if method == "endswith":
                return bool(value.endswith(needle))
            return needle in value

        return _Node("Boolean", test)
    if target.type == "String" and method in ("tolower", "toupper", "trim") and not args:
        converters: dict[str, Callable[[str], str]] = {
            "tolower": str.lower,
            "toupper": str.upper,
            "trim": str.strip,
        }
        convert = converters[method]
        return _Node("String", lambda r: None if fn(r) is None else convert(fn(r)))
    if target.type == "Guid" and method == "tostring" and not args:
        return _Node("String", fn)
    raise WhereError(f"No applicable method '{name}' exists in type '{target.type}'")


def parse_where(text: str, schema: str) -> Callable[[Record], bool]:
    """Compile a Xero ``where`` filter against spec schema ``schema`` (e.g. "Invoice")."""
    return _WhereParser(text, schema).parse()


def _order_key(text: str, schema: str) -> list[tuple[Callable[[Record], Any], bool]]:
    keys: list[tuple[Callable[[Record], Any], bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2:
            raise WhereError(f"Syntax error in order '{text}'")
        descending = False
        if len(words) == 2:
            if words[1].upper() not in ("ASC", "DESC"):
                raise WhereError(f"Syntax error in order '{text}'")
            descending = words[1].upper() == "DESC"
        info = field_info(schema, words[0].split("."))
        if info is None:
            raise WhereError(f"No property or field '{words[0]}' exists in type '{schema}'")
        keys.append((_field_getter(info.names, info.kind), descending))
    return keys


def _sorted(records: list[JsonDict], order: str | None, schema: str) -> list[JsonDict]:
    if not order:
        return records
    out = list(records)
    for getter, descending in reversed(_order_key(order, schema)):
        present = [r for r in out if getter(r) is not None]
        missing = [r for r in out if getter(r) is None]
        present.sort(key=getter, reverse=descending)
        out = missing + present if not descending else present + missing
    return out


# --------------------------------------------------------------------------
# responses


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


class _Abort(Exception):  # noqa: N818 - internal control flow, not an error type
    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _json_reply(status: int, payload: Json, headers: Iterable[tuple[str, str]] = ()) -> _Reply:
    return _Reply(status, dumps_json(payload).encode(), headers=list(headers))


def _problem(status: int, title: str, detail: str) -> JsonDict:
    return {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }


def _query_error(message: str) -> _Abort:
    return _Abort(
        _json_reply(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message})
    )


def _post_data_error(message: str) -> _Abort:
    return _Abort(
        _json_reply(
            400, {"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": message}
        )
    )


def _not_found() -> _Abort:
    return _Abort(
        _Reply(
            404,
            b"The resource you're looking for cannot be found",
            content_type="text/plain; charset=utf-8",
        )
    )


# --------------------------------------------------------------------------
# state kept per write request


@dataclass
class _Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Callable[[Request, dict[str, str]], _Reply] | None  # None: an invoice write


class FakeXero(CommitFaults):
    """The fake organisation: seed data in, a WSGI app out. See the module doc."""

    def __init__(
        self,
        *,
        contacts: list[dict[str, Any]],
        items: list[dict[str, Any]],
        accounts: list[dict[str, Any]],
        tax_rates: list[dict[str, Any]],
        currencies: list[dict[str, Any]],
        tracking_categories: list[dict[str, Any]] | None = None,
        base_currency: str = "NZD",
        settings: XeroSettings | None = None,
    ) -> None:
        self.settings = settings or XeroSettings()
        stamp = _ms_date(_now_utc())
        self.contacts: list[JsonDict] = [
            {"ContactStatus": "ACTIVE", "UpdatedDateUTC": stamp, **_to_decimals(c)}
            for c in copy.deepcopy(contacts)
        ]
        self.items: list[JsonDict] = [
            {"UpdatedDateUTC": stamp, **_to_decimals(i)} for i in copy.deepcopy(items)
        ]
        self.accounts: list[JsonDict] = [
            {"Status": "ACTIVE", "UpdatedDateUTC": stamp, **_to_decimals(a)}
            for a in copy.deepcopy(accounts)
        ]
        self.tax_rates: list[JsonDict] = [
            {"Status": "ACTIVE", **_to_decimals(t)} for t in copy.deepcopy(tax_rates)
        ]
        self.currencies: list[JsonDict] = _to_decimals(copy.deepcopy(currencies))
        self.tracking_categories: list[JsonDict] = []
        for category in copy.deepcopy(tracking_categories or []):
            category.setdefault("Status", "ACTIVE")
            category.setdefault(
                "TrackingCategoryID",
                str(uuid.uuid5(uuid.NAMESPACE_URL, f"tracking:{category['Name']}")),
            )
            for option in category.setdefault("Options", []):
                option.setdefault("Status", "ACTIVE")
                option.setdefault(
                    "TrackingOptionID",
                    str(uuid.uuid5(uuid.NAMESPACE_URL, f"option:{category['Name']}/{option}")),
                )
            self.tracking_categories.append(category)
        # invoice id (lower case) → its attachments, each with its bytes under "_content"
        self.attachments: dict[str, list[JsonDict]] = {}
        for kind, rows, key in (
            ("contact", self.contacts, "ContactID"),
            ("item", self.items, "ItemID"),
            ("account", self.accounts, "AccountID"),
        ):
            for row in rows:
                row.setdefault(key, str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{row}")))
        codes = {c.get("Code") for c in self.currencies}
        if base_currency not in codes:
            raise ValueError(f"base currency {base_currency} is not among the currencies")
        self.base_currency = base_currency
        self.organisation: JsonDict = {
            "OrganisationID": self.settings.tenant_id,
            "APIKey": "",
            "Name": "Hourbridge Sandbox Ltd",
            "LegalName": "Hourbridge Sandbox Limited",
            "PaysTax": True,
            "Version": "NZ",
            "OrganisationType": "COMPANY",
            "BaseCurrency": base_currency,
            "CountryCode": "NZ",
            "IsDemoCompany": False,
            "OrganisationStatus": "ACTIVE",
            "TaxNumber": "123-456-789",
            "FinancialYearEndDay": 31,
            "FinancialYearEndMonth": 3,
            "SalesTaxBasis": "INVOICE",
            "SalesTaxPeriod": "TWOMONTHS",
            "DefaultSalesTax": "Tax Exclusive",
            "DefaultPurchasesTax": "Tax Inclusive",
            "CreatedDateUTC": "/Date(1577836800000)/",
            "OrganisationEntityType": "COMPANY",
            "Timezone": "NEWZEALANDSTANDARDTIME",
            "ShortCode": "!hb5Xz",
            "Class": "STANDARD",
            "Edition": "BUSINESS",
            "LineOfBusiness": "Professional services",
            "Addresses": [],
            "Phones": [],
            "ExternalLinks": [],
            "PaymentTerms": {},
        }

        self.invoices: dict[str, dict[str, Any]] = {}
        self.credit_notes: dict[str, dict[str, Any]] = {}
        self._next_credit_number = 1
        self.calls: collections.Counter[str] = collections.Counter()
        self.idempotent_replays = 0
        super().__init__()  # the after-commit fault knobs and `committed`

        self._lock = threading.RLock()
        self._writes = 0
        self._next_number = 1
        self._idempotency: dict[tuple[str, str], StoredAnswer] = {}
        self._fail: collections.deque[tuple[int, int | None, str | None]] = collections.deque()

        clock = self.settings.clock
        self._minute = SlidingWindow(self.settings.per_minute, 60.0, clock)
        self._day = SlidingWindow(self.settings.per_day, 86_400.0, clock)
        self._app_minute = SlidingWindow(APP_PER_MINUTE, 60.0, clock)
        self._gate = ConcurrencyGate(self.settings.concurrent)
        self._routes = self._build_routes()
        self.auth = FakeAuthServer(self.settings.oauth, dialect="xero")

    # ------------------------------------------------------------------ knobs

    def invoice_writes(self) -> int:
        """PUT/POST /Invoices requests past auth, rate limits and ``fail_next``.

        Counts every such request the invoice handler answered: created,
        updated, rejected by validation, or replayed from an Idempotency-Key
        (replays are also counted in ``idempotent_replays``).
        """
        with self._lock:
            return self._writes

    def set_status(self, invoice_id: str, status: str) -> None:
        """Move an invoice to ``status`` as a user would in Xero (no checks)."""
        if status not in ALL_STATUSES:
            raise ValueError(f"unknown invoice status {status!r}")
        with self._lock:
            invoice = self.invoices[invoice_id.lower()]
            invoice["Status"] = status
            if status == "PAID":
                invoice["AmountPaid"] = invoice["Total"]
                invoice["AmountDue"] = Decimal("0.00")
            invoice["UpdatedDateUTC"] = _ms_date(_now_utc())

    def fail_next(
        self,
        status: int,
        count: int = 1,
        retry_after: int | None = None,
        detail: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests (any route) with ``status``; ``detail``, when
        given, is the problem's Detail."""
        with self._lock:
            for _ in range(count):
                self._fail.append((status, retry_after, detail))

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        method = request.method.upper()
        path = request.path
        identity = self._identity(request, method, path.rstrip("/"))
        if identity is not None:
            with self._lock:
                self.calls[f"{method} {path.rstrip('/')}"] += 1
            if identity.drop:
                drop_connection(environ, "fake Xero identity")
            return self._send(self._from_auth(identity), start_response)
        if path.lower().startswith(BASE_PATH.lower()):
            path = path[len(BASE_PATH) :] or "/"
        route, params, allowed = self._match(method, path)
        label = route.template if route else path
        with self._lock:
            self.calls[f"{method} {label}"] += 1
        tenant = self.settings.tenant_id
        entered = False
        try:
            reply, fault, entered = self._handle(request, method, route, params, allowed)
            if fault is not None:
                fault.apply(environ, "fake Xero")
            return self._send(reply, start_response)
        finally:
            if entered:
                self._gate.leave(tenant)

    def _identity(self, request: Request, method: str, path: str) -> AuthReply | None:
        """The OAuth2 endpoints and ``GET /connections``; None for the Accounting API."""
        if path == AUTHORIZE_PATH and method == "GET":
            return self.auth.authorize(request)
        if path == TOKEN_PATH:
            return self.auth.token(request)
        if path == REVOKE_PATH:
            return self.auth.revoke(request, request.form.get("token"))
        if path.lower() == CONNECTIONS_PATH and method == "GET":
            if not self._bearer_ok(request):
                return AuthReply(401, _problem(401, "Unauthorized", "AuthenticationUnsuccessful"))
            stamp = _now_utc().strftime("%Y-%m-%dT%H:%M:%S.%f0")
            tenants = [(self.settings.tenant_id, self.organisation["Name"])]
            tenants += list(self.settings.other_tenants)
            return AuthReply(
                200,
                [
                    {
                        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"connection:{tid}")),
                        "authEventId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"auth:{tid}")),
                        "tenantId": tid,
                        "tenantType": "ORGANISATION",
                        "tenantName": name,
                        "createdDateUtc": stamp,
                        "updatedDateUtc": stamp,
                    }
                    for tid, name in tenants
                ],
            )
        return None

    @staticmethod
    def _from_auth(reply: AuthReply) -> _Reply:
        body, content_type = reply.body(dumps_json)
        if content_type is None:
            return _Reply(reply.status, body, headers=list(reply.headers))
        return _Reply(reply.status, body, content_type=content_type, headers=list(reply.headers))

    def _bearer_ok(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        return scheme.lower() == "bearer" and (
            token == self.settings.access_token or self.auth.access_token_valid(token)
        )

    def _send(self, reply: _Reply, start_response: StartResponse) -> Iterable[bytes]:
        headers = [
            ("Content-Type", reply.content_type),
            ("Content-Length", str(len(reply.body))),
            ("Xero-Correlation-Id", str(uuid.uuid4())),
            *reply.headers,
            *self._limit_headers(),
        ]
        reason = HTTP_STATUS_CODES.get(reply.status, "Unknown")
        start_response(f"{reply.status} {reason}", headers)
        return [reply.body]

    def _limit_headers(self) -> list[tuple[str, str]]:
        tenant = self.settings.tenant_id
        return [
            ("X-MinLimit-Remaining", str(self._minute.remaining(tenant))),
            ("X-DayLimit-Remaining", str(self._day.remaining(tenant))),
            ("X-AppMinLimit-Remaining", str(self._app_minute.remaining("app"))),
        ]

    def _match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str], list[str]]:
        allowed: list[str] = []
        for route in self._routes:
            found = route.pattern.fullmatch(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict(), []
            allowed.append(route.method)
        return None, {}, allowed

    def _handle(
        self,
        request: Request,
        method: str,
        route: _Route | None,
        params: dict[str, str],
        allowed: list[str],
    ) -> tuple[_Reply, AfterCommit | None, bool]:
        """The reply, a fault to act on after the commit, and whether the gate was entered."""
        refused, entered = self._gatekeep(request)
        if refused is not None:
            return refused, None, entered
        if route is None:
            missing = self._not_allowed(allowed) if allowed else _not_found().reply
            return missing, None, True
        if route.handler is None:
            reply, fault = self._write(request, route, params)
            return reply, fault, True
        try:
            return route.handler(request, params), None, True
        except _Abort as abort:
            return abort.reply, None, True
        except WhereError as exc:
            return _query_error(str(exc)).reply, None, True

    def _gatekeep(self, request: Request) -> tuple[_Reply | None, bool]:
        """Injected failures, auth, then the tenant's limits. (refusal, gate entered)."""
        with self._lock:
            injected = self._fail.popleft() if self._fail else None
        if injected is not None:
            return self._injected(*injected), False
        denied = self._authenticate(request)
        if denied is not None:
            return denied, False
        tenant = self.settings.tenant_id
        if not self._gate.enter(tenant):
            return self._too_many("concurrent", None), False
        for window, key, problem in (
            (self._day, tenant, "day"),
            (self._minute, tenant, "minute"),
            (self._app_minute, "app", "appminute"),
        ):
            wait = window.acquire(key)
            if wait is not None:
                return self._too_many(problem, wait), True
        return None, True

    @staticmethod
    def _not_allowed(allowed: list[str]) -> _Reply:
        return _Reply(
            405,
            b"The requested HTTP method is not supported by this endpoint",
            content_type="text/plain; charset=utf-8",
            headers=[("Allow", ", ".join(sorted(set(allowed))))],
        )

    def _authenticate(self, request: Request) -> _Reply | None:
        if not self._bearer_ok(request):
            return _json_reply(
                401,
                _problem(401, "Unauthorized", "AuthenticationUnsuccessful"),
                [("WWW-Authenticate", "Bearer")],
            )
        tenant = request.headers.get("xero-tenant-id", "").strip()
        if tenant.lower() != self.settings.tenant_id.lower():
            return _json_reply(403, _problem(403, "Forbidden", "AuthenticationUnsuccessful"))
        return None

    def _too_many(self, problem: str, retry_after: int | None) -> _Reply:
        headers = [("X-Rate-Limit-Problem", problem)]
        if retry_after is not None:
            headers.append(("Retry-After", str(retry_after)))
        return _json_reply(
            429,
            _problem(429, "Too Many Requests", f"Rate limit exceeded: {problem}"),
            headers,
        )

    def _injected(self, status: int, retry_after: int | None, detail: str | None) -> _Reply:
        headers: list[tuple[str, str]] = []
        if retry_after is not None:
            headers.append(("Retry-After", str(retry_after)))
        if status == 429:
            headers.append(("X-Rate-Limit-Problem", "minute"))
            return _json_reply(
                429, _problem(429, "Too Many Requests", "Rate limit exceeded: minute"), headers
            )
        if status == 401:
            headers.append(("WWW-Authenticate", "Bearer"))
            return _json_reply(
                401,
                _problem(401, "Unauthorized", detail or "AuthenticationUnsuccessful"),
                headers,
            )
        if status == 403:
            return _json_reply(
                403, _problem(403, "Forbidden", detail or "AuthenticationUnsuccessful"), headers
            )
        if status == 400:
            return _json_reply(
                400,
                {
                    "ErrorNumber": 10,
                    "Type": "ValidationException",
                    "Message": "A validation exception occurred",
                    "Elements": [],
                },
                headers,
            )
        if status == 404:
            reply = _not_found().reply
            reply.headers.extend(headers)
            return reply
        title = HTTP_STATUS_CODES.get(status, "Error")
        return _json_reply(status, _problem(status, title, detail or "Injected failure"), headers)

    # ------------------------------------------------------------------ routes

    def _build_routes(self) -> list[_Route]:
        guid_or_number = r"(?P<InvoiceID>[^/]+)"

        def route(
            method: str,
            template: str,
            regex: str,
            handler: Callable[[Request, dict[str, str]], _Reply] | None,
        ) -> _Route:
            return _Route(method, template, re.compile(regex, re.IGNORECASE), handler)

        return [
            route("GET", "/Invoices", r"/Invoices/?", self._get_invoices),
            route("PUT", "/Invoices", r"/Invoices/?", None),
            route("POST", "/Invoices", r"/Invoices/?", None),
            route(
                "GET", "/Invoices/{InvoiceID}", rf"/Invoices/{guid_or_number}", self._get_invoice
            ),
            route("POST", "/Invoices/{InvoiceID}", rf"/Invoices/{guid_or_number}", None),
            route("GET", "/CreditNotes", r"/CreditNotes/?", self._get_credit_notes),
            route("PUT", "/CreditNotes", r"/CreditNotes/?", None),
            route("POST", "/CreditNotes", r"/CreditNotes/?", None),
            route(
                "GET",
                "/CreditNotes/{CreditNoteID}",
                r"/CreditNotes/(?P<CreditNoteID>[^/]+)",
                self._get_credit_note,
            ),
            route("GET", "/Contacts", r"/Contacts/?", self._get_contacts),
            route("GET", "/Contacts/{ContactID}", r"/Contacts/(?P<ContactID>[^/]+)", self._contact),
            route("GET", "/Items", r"/Items/?", self._simple("Items", "Item")),
            route("GET", "/Accounts", r"/Accounts/?", self._simple("Accounts", "Account")),
            route("GET", "/TaxRates", r"/TaxRates/?", self._simple("TaxRates", "TaxRate")),
            route("GET", "/Currencies", r"/Currencies/?", self._simple("Currencies", "Currency")),
            route("GET", "/Organisation", r"/Organisation/?", self._get_organisation),
            route("GET", "/TrackingCategories", r"/TrackingCategories/?", self._get_tracking),
            route(
                "GET",
                "/TrackingCategories/{TrackingCategoryID}",
                r"/TrackingCategories/(?P<TrackingCategoryID>[^/]+)",
                self._get_tracking,
            ),
            route(
                "GET",
                "/Invoices/{InvoiceID}/Attachments",
                rf"/Invoices/{guid_or_number}/Attachments/?",
                self._get_attachments,
            ),
            route(
                "GET",
                "/Invoices/{InvoiceID}/Attachments/{FileName}",
                rf"/Invoices/{guid_or_number}/Attachments/(?P<FileName>[^/]+)",
                self._get_attachment,
            ),
            route(
                "PUT",
                "/Invoices/{InvoiceID}/Attachments/{FileName}",
                rf"/Invoices/{guid_or_number}/Attachments/(?P<FileName>[^/]+)",
                self._put_attachment,
            ),
            route(
                "POST",
                "/Invoices/{InvoiceID}/Attachments/{FileName}",
                rf"/Invoices/{guid_or_number}/Attachments/(?P<FileName>[^/]+)",
                self._put_attachment,
            ),
        ]

    def _envelope(self, key: str, records: list[JsonDict], **extra: Json) -> JsonDict:
        return {
            "Id": str(uuid.uuid4()),
            "Status": "OK",
            "ProviderName": PROVIDER_NAME,
            "DateTimeUTC": f"/Date({int(time.time() * 1000)})/",
            **extra,
            key: records,
        }

    # ------------------------------------------------------------------ query helpers

    @staticmethod
    def _bool_param(request: Request, name: str, default: bool) -> bool:
        raw = request.args.get(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise _query_error(f"Supplied parameter '{name}' cannot be parsed - must be a boolean.")

    @staticmethod
    def _int_param(request: Request, name: str) -> int | None:
        raw = request.args.get(name)
        if raw is None or raw == "":
            return None
        try:
            return int(raw)
        except ValueError:
            raise _query_error(
                f"Supplied parameter '{name}' cannot be parsed - must be an integer."
            ) from None

    @staticmethod
    def _csv_param(request: Request, name: str) -> list[str] | None:
        values = request.args.getlist(name)
        if not values:
            return None
        return [v.strip() for raw in values for v in raw.split(",") if v.strip()]

    def _guid_list(self, request: Request, name: str) -> set[str] | None:
        values = self._csv_param(request, name)
        if values is None:
            return None
        for value in values:
            if not _is_guid(value):
                raise _query_error(
                    f"Supplied parameter '{name}' cannot be parsed - must be of type UUID."
                )
        return {v.lower() for v in values}

    def _page(self, request: Request, records: list[JsonDict]) -> tuple[list[JsonDict], JsonDict]:
        page = self._int_param(request, "page") or 1
        size = self._int_param(request, "pageSize") or DEFAULT_PAGE_SIZE
        page = max(page, 1)
        size = min(max(size, 1), MAX_PAGE_SIZE)
        total = len(records)
        chunk = records[(page - 1) * size : page * size]
        pagination = {
            "page": page,
            "pageSize": size,
            "pageCount": math.ceil(total / size) if total else 0,
            "itemCount": total,
        }
        return chunk, pagination

    # ------------------------------------------------------------------ GET handlers

    def _simple(self, key: str, schema: str) -> Callable[[Request, dict[str, str]], _Reply]:
        def handler(request: Request, params: dict[str, str]) -> _Reply:
            source = {
                "Items": self.items,
                "Accounts": self.accounts,
                "TaxRates": self.tax_rates,
                "Currencies": self.currencies,
            }[key]
            with self._lock:
                records = copy.deepcopy(source)
            where = request.args.get("where")
            if where:
                match = parse_where(where, schema)
                records = [r for r in records if match(r)]
            records = _sorted(records, request.args.get("order"), schema)
            return _json_reply(200, self._envelope(key, records))

        return handler

    def _get_tracking(self, request: Request, params: dict[str, str]) -> _Reply:
        """Tracking categories with their options; archived ones only with includeArchived."""
        include_archived = self._bool_param(request, "includeArchived", False)
        wanted = params.get("TrackingCategoryID")
        with self._lock:
            records = copy.deepcopy(self.tracking_categories)
        if wanted is not None:
            records = [r for r in records if r["TrackingCategoryID"].lower() == wanted.lower()]
            if not records:
                raise _not_found()
        if not include_archived:
            records = [r for r in records if r.get("Status") == "ACTIVE"]
            for record in records:
                record["Options"] = [o for o in record["Options"] if o.get("Status") == "ACTIVE"]
        where = request.args.get("where")
        if where:
            match = parse_where(where, "TrackingCategory")
            records = [r for r in records if match(r)]
        records = _sorted(records, request.args.get("order"), "TrackingCategory")
        return _json_reply(200, self._envelope("TrackingCategories", records))

    # ---- attachments -----------------------------------------------------

    def _attached_invoice(self, params: dict[str, str]) -> JsonDict:
        invoice_id = params["InvoiceID"].lower()
        invoice = self.invoices.get(invoice_id) if _is_guid(invoice_id) else None
        if invoice is None:
            raise _not_found()
        return invoice

    @staticmethod
    def _attachment_view(attachment: JsonDict) -> JsonDict:
        return {k: v for k, v in attachment.items() if not k.startswith("_")}

    def _get_attachments(self, request: Request, params: dict[str, str]) -> _Reply:
        with self._lock:
            invoice = self._attached_invoice(params)
            found = self.attachments.get(invoice["InvoiceID"].lower(), [])
            views = [self._attachment_view(a) for a in found]
        return _json_reply(200, self._envelope("Attachments", views))

    def _get_attachment(self, request: Request, params: dict[str, str]) -> _Reply:
        wanted = params["FileName"]
        with self._lock:
            invoice = self._attached_invoice(params)
            found = next(
                (
                    a
                    for a in self.attachments.get(invoice["InvoiceID"].lower(), [])
                    if a["FileName"] == wanted or a["AttachmentID"].lower() == wanted.lower()
                ),
                None,
            )
        if found is None:
            raise _not_found()
        return _Reply(200, found["_content"], content_type=found["MimeType"])

    def _put_attachment(self, request: Request, params: dict[str, str]) -> _Reply:
        """Attach the raw body to the invoice under FileName (replacing one of that name)."""
        key = request.headers.get("Idempotency-Key")
        body = request.get_data()
        fingerprint = hashlib.sha256(
            f"{request.method}\n{request.path}\n{request.query_string!r}\n".encode() + body
        ).hexdigest()
        if key is not None:
            with self._lock:
                seen = self._idempotency.get((self.settings.tenant_id, key))
            if seen is not None and not seen.pending and seen.fingerprint == fingerprint:
                self.idempotent_replays += 1
                return _Reply(seen.status, seen.body, seen.content_type)
        try:
            reply = self._attach(request, params, body)
        except _Abort as abort:
            reply = abort.reply
        if key is not None:
            with self._lock:
                self._idempotency[(self.settings.tenant_id, key)] = StoredAnswer(
                    fingerprint, False, reply.status, reply.body, reply.content_type
                )
        return reply

    def _attach(self, request: Request, params: dict[str, str], body: bytes) -> _Reply:
        include_online = self._bool_param(request, "IncludeOnline", False)
        name = params["FileName"]
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        problem = None
        if not request.headers.get("Content-Type"):
            problem = "A Content-Type header is required for an attachment"
        elif len(name) > 255 or _RESERVED_FILE_CHARS.search(name) or not name.strip(". "):
            problem = f"The file name '{name}' is not valid"
        elif extension not in ATTACHMENT_TYPES:
            problem = f"The file type of '{name}' is not supported"
        elif not body:
            problem = "The attachment is empty"
        if len(body) > MAX_ATTACHMENT_BYTES:
            raise _Abort(
                _Reply(413, b"Request Entity Too Large", content_type="text/plain; charset=utf-8")
            )
        with self._lock:
            invoice = self._attached_invoice(params)
            held = self.attachments.setdefault(invoice["InvoiceID"].lower(), [])
            same = next((a for a in held if a["FileName"].lower() == name.lower()), None)
            if problem is None and invoice["Status"] in ("DELETED", "VOIDED"):
                problem = f"Attachments cannot be added to a {invoice['Status'].lower()} invoice"
            if problem is None and same is None and len(held) >= MAX_ATTACHMENTS:
                problem = f"A document can have at most {MAX_ATTACHMENTS} attachments"
            if problem is None and include_online and invoice["Type"] != "ACCREC":
                problem = "IncludeOnline is only available on sales invoices"
            if problem is not None:
                return _json_reply(
                    400,
                    {
                        "ErrorNumber": 10,
                        "Type": "ValidationException",
                        "Message": problem,
                        "Elements": [],
                    },
                )
            attachment_id = same["AttachmentID"] if same else str(uuid.uuid4())
            attachment: JsonDict = {
                "AttachmentID": attachment_id,
                "FileName": name,
                "Url": f"https://api.xero.com/api.xro/2.0/Invoices/{invoice['InvoiceID']}"
                f"/Attachments/{name}",
                "MimeType": ATTACHMENT_TYPES[extension],
                "ContentLength": len(body),
                "IncludeOnline": include_online,
                "_content": body,
            }
            if same is not None:
                held[held.index(same)] = attachment
            else:
                held.append(attachment)
            invoice["HasAttachments"] = True
            view = self._attachment_view(attachment)
        return _json_reply(200, self._envelope("Attachments", [view]))

    def _get_organisation(self, request: Request, params: dict[str, str]) -> _Reply:
        return _json_reply(200, self._envelope("Organisations", [copy.deepcopy(self.organisation)]))

    def _contact_view(self, contact: JsonDict, summary_only: bool) -> JsonDict:
        view = copy.deepcopy(contact)
        if summary_only:
            for heavy in ("Addresses", "Phones", "ContactPersons", "Balances", "PaymentTerms"):
                view.pop(heavy, None)
        return view

    def _get_contacts(self, request: Request, params: dict[str, str]) -> _Reply:
        ids = self._guid_list(request, "IDs")
        include_archived = self._bool_param(request, "includeArchived", False)
        summary_only = self._bool_param(request, "summaryOnly", False)
        where = request.args.get("where")
        match = parse_where(where, "Contact") if where else None
        term = (request.args.get("searchTerm") or "").lower()
        with self._lock:
            records = [self._contact_view(c, summary_only) for c in self.contacts]
        if ids is not None:
            records = [r for r in records if str(r.get("ContactID", "")).lower() in ids]
        elif not include_archived:
            records = [r for r in records if r.get("ContactStatus") != "ARCHIVED"]
        if match is not None:
            records = [r for r in records if match(r)]
        if term:
            fields = ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
            records = [r for r in records if any(term in str(r.get(f, "")).lower() for f in fields)]
        records = _sorted(records, request.args.get("order"), "Contact")
        chunk, pagination = self._page(request, records)
        return _json_reply(200, self._envelope("Contacts", chunk, pagination=pagination))

    def _contact(self, request: Request, params: dict[str, str]) -> _Reply:
        wanted = params["ContactID"].lower()
        with self._lock:
            found = [
                self._contact_view(c, False)
                for c in self.contacts
                if str(c.get("ContactID", "")).lower() == wanted
                or str(c.get("ContactNumber", "")).lower() == wanted
            ]
        if not found:
            raise _not_found()
        return _json_reply(200, self._envelope("Contacts", found[:1]))

    def _invoice_view(self, invoice: JsonDict, unitdp: int, summary_only: bool) -> JsonDict:
        view = copy.deepcopy(invoice)
        if summary_only:
            for heavy in ("LineItems", "Payments", "Prepayments", "Overpayments", "CreditNotes"):
                view.pop(heavy, None)
            return view
        places = 4 if unitdp == 4 else 2
        for line in view.get("LineItems", []):
            unit = line.get("UnitAmount")
            if isinstance(unit, Decimal):
                line["UnitAmount"] = _round(unit, places)
        return view

    def _get_invoices(self, request: Request, params: dict[str, str]) -> _Reply:
        ids = self._guid_list(request, "IDs")
        contact_ids = self._guid_list(request, "ContactIDs")
        numbers = self._csv_param(request, "InvoiceNumbers")
        statuses = self._csv_param(request, "Statuses")
        summary_only = self._bool_param(request, "summaryOnly", False)
        self._bool_param(request, "includeArchived", False)
        self._bool_param(request, "createdByMyApp", False)
        unitdp = self._int_param(request, "unitdp") or 2
        where = request.args.get("where")
        match = parse_where(where, "Invoice") if where else None
        since = self._if_modified_since(request)
        search = (request.args.get("searchTerm") or "").lower()
        with self._lock:
            records = list(self.invoices.values())
            if ids is not None:
                records = [r for r in records if r["InvoiceID"] in ids]
            if contact_ids is not None:
                records = [r for r in records if r["Contact"]["ContactID"].lower() in contact_ids]
            if numbers is not None:
                wanted = {n.lower() for n in numbers}
                records = [r for r in records if str(r.get("InvoiceNumber", "")).lower() in wanted]
            if statuses is not None:
                wanted = {s.upper() for s in statuses}
                records = [r for r in records if r["Status"] in wanted]
            if match is not None:
                records = [r for r in records if match(r)]
            if since is not None:
                records = [
                    r
                    for r in records
                    if (parse_xero_datetime(r["UpdatedDateUTC"]) or since) > since
                ]
            if search:
                records = [
                    r
                    for r in records
                    if search in str(r.get("InvoiceNumber", "")).lower()
                    or search in str(r.get("Reference", "")).lower()
                ]
            records = _sorted(records, request.args.get("order"), "Invoice")
            chunk, pagination = self._page(request, records)
            views = [self._invoice_view(r, unitdp, summary_only) for r in chunk]
        return _json_reply(200, self._envelope("Invoices", views, pagination=pagination))

    @staticmethod
    def _if_modified_since(request: Request) -> datetime | None:
        raw = request.headers.get("If-Modified-Since")
        if not raw:
            return None
        parsed: datetime | None
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(raw)  # the HTTP-date form
            except (TypeError, ValueError):
                parsed = None
        if parsed is None:
            raise _query_error("If-Modified-Since must be an ISO 8601 or HTTP date")
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def _get_invoice(self, request: Request, params: dict[str, str]) -> _Reply:
        unitdp = self._int_param(request, "unitdp") or 2
        with self._lock:
            invoice = self._lookup(params["InvoiceID"], {})
            if invoice is None and not _is_guid(params["InvoiceID"]):
                invoice = self._by_number(params["InvoiceID"], None, {})
            if invoice is None:
                raise _not_found()
            view = self._invoice_view(invoice, unitdp, False)
        return _json_reply(200, self._envelope("Invoices", [view]))

    # ------------------------------------------------------------------ writes

    def _write(
        self, request: Request, route: _Route, params: dict[str, str]
    ) -> tuple[_Reply, AfterCommit | None]:
        with self._lock:
            self._writes += 1
        key = request.headers.get("Idempotency-Key")
        entry: StoredAnswer | None = None
        slot = ("", "")
        if key is not None:
            if not key.strip():
                return _json_reply(
                    400, _problem(400, "Bad Request", "The Idempotency-Key header is empty")
                ), None
            if len(key) > MAX_IDEMPOTENCY_KEY:
                return _json_reply(
                    400,
                    _problem(
                        400,
                        "Bad Request",
                        f"The Idempotency-Key header must be at most {MAX_IDEMPOTENCY_KEY} "
                        "characters",
                    ),
                ), None
            fingerprint = hashlib.sha256(
                "\n".join(
                    [
                        route.method,
                        route.template,
                        params.get("InvoiceID", "").lower(),
                        request.query_string.decode("latin-1"),
                    ]
                ).encode()
                + b"\n"
                + request.get_data()
            ).hexdigest()
            slot = (self.settings.tenant_id, key)
            with self._lock:
                entry = self._idempotency.get(slot)
                if entry is not None:
                    if entry.pending:
                        return _json_reply(
                            409,
                            _problem(
                                409,
                                "Conflict",
                                "A request with this Idempotency-Key is still in progress",
                            ),
                        ), None
                    if entry.fingerprint != fingerprint:
                        return _json_reply(
                            400,
                            _problem(
                                400,
                                "Bad Request",
                                "The Idempotency-Key was already used for a different request",
                            ),
                        ), None
                    self.idempotent_replays += 1
                    return _Reply(entry.status, entry.body, entry.content_type), None
                entry = StoredAnswer(fingerprint)
                self._idempotency[slot] = entry
        fault: AfterCommit | None = None
        try:
            if route.template.startswith("/CreditNotes"):
                reply = self._write_credit_notes(request, route.method)
            else:
                reply = self._write_invoices(request, route.method, params.get("InvoiceID"))
        except _Abort as abort:
            reply = abort.reply
        except BaseException:
            if entry is not None:
                with self._lock:
                    self._idempotency.pop(slot, None)
            raise
        with self._lock:
            if entry is not None:
                entry.settle(reply.status, reply.body, reply.content_type)
            fault = self._commit_fault()
        return reply, fault

    def _elements(self, request: Request, name: str) -> list[JsonDict]:
        """The ``name`` array of a write's body: JSON checked against the spec's schema for
        ``name``, numbers read exactly, nulls dropped. Anything else is Xero's 400."""
        raw = request.get_data()
        if len(raw) > MAX_BODY_BYTES:
            raise _Abort(
                _Reply(413, b"Request Entity Too Large", content_type="text/plain; charset=utf-8")
            )
        try:
            plain = json.loads(raw, parse_constant=_reject_constant)
            exact = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _post_data_error(f"The request body is not valid JSON: {exc}") from None
        problems = validate_body(name, plain)
        if problems:
            raise _post_data_error(
                f"The request body does not match the {name} schema: "
                + "; ".join(str(p) for p in problems)
            )
        exact = strip_nulls(exact)
        elements = exact.get(name) if isinstance(exact, dict) else None
        if not isinstance(elements, list):
            raise _post_data_error(f"The request body has no {name} array")
        return elements

    def _write_invoices(self, request: Request, method: str, path_id: str | None) -> _Reply:
        summarize = self._bool_param(request, "summarizeErrors", True)
        unitdp = self._int_param(request, "unitdp") or 2
        self._bool_param(request, "allowBackorders", False)
        elements = self._elements(request, "Invoices")
        with self._lock:
            staged: dict[str, JsonDict] = {}
            saved_number = self._next_number
            outcomes: list[tuple[JsonDict | None, JsonDict, list[str]]] = []
            for element in elements:
                built, errors = self._build(element, method, path_id, unitdp, staged)
                if built is not None and not errors:
                    staged[built["InvoiceID"]] = built
                outcomes.append((built, element, errors))
            failed = any(errors for _b, _e, errors in outcomes)
            if summarize and failed:
                self._next_number = saved_number
                elements_out = [
                    self._error_element(element, errors)
                    for _built, element, errors in outcomes
                    if errors
                ]
                return _json_reply(
                    400,
                    {
                        "ErrorNumber": 10,
                        "Type": "ValidationException",
                        "Message": "A validation exception occurred",
                        "Elements": elements_out,
                    },
                )
            self.invoices.update(staged)
            out: list[JsonDict] = []
            for built, element, errors in outcomes:
                if errors or built is None:
                    out.append(self._error_element(element, errors))
                else:
                    view = self._invoice_view(self.invoices[built["InvoiceID"]], unitdp, False)
                    view["StatusAttributeString"] = "OK"
                    out.append(view)
        return _json_reply(200, self._envelope("Invoices", out))

    # ---- credit notes ------------------------------------------------------

    def _write_credit_notes(self, request: Request, method: str) -> _Reply:
        """Create credit notes. Lines are checked and totalled exactly as an invoice's of the
        matching type; an existing CreditNoteID (an update) is refused by this sandbox."""
        summarize = self._bool_param(request, "summarizeErrors", True)
        unitdp = self._int_param(request, "unitdp") or 2
        elements = self._elements(request, "CreditNotes")
        with self._lock:
            saved = self._next_credit_number
            outcomes = [(self._build_credit(e, method, unitdp), e) for e in elements]
            failed = any(errors for (_b, errors), _e in outcomes)
            if summarize and failed:
                self._next_credit_number = saved
                return _json_reply(
                    400,
                    {
                        "ErrorNumber": 10,
                        "Type": "ValidationException",
                        "Message": "A validation exception occurred",
                        "Elements": [
                            self._error_element(e, errors) for (_b, errors), e in outcomes if errors
                        ],
                    },
                )
            out: list[JsonDict] = []
            for (built, errors), element in outcomes:
                if errors or built is None:
                    out.append(self._error_element(element, errors))
                    continue
                self.credit_notes[built["CreditNoteID"]] = built
                view = self._invoice_view(built, unitdp, False)
                view["StatusAttributeString"] = "OK"
                out.append(view)
        return _json_reply(200, self._envelope("CreditNotes", out))

    def _build_credit(
        self, element: JsonDict, method: str, unitdp: int
    ) -> tuple[JsonDict | None, list[str]]:
        """One credit note element → the credit note it would store, or errors."""
        problem = _credit_problem(element, method)
        if problem is not None:
            return None, [problem]
        credit_type = str(element["Type"])
        invoice_type = CREDIT_NOTE_TYPES[credit_type]
        number = element.get("CreditNoteNumber")
        if number and any(c.get("CreditNoteNumber") == number for c in self.credit_notes.values()):
            return None, ["Credit Note # must be unique."]
        if not number and credit_type == "ACCRECCREDIT":
            number = f"CN-{self._next_credit_number:04d}"
            self._next_credit_number += 1
        data = {
            k: v
            for k, v in element.items()
            if k not in ("CreditNoteNumber", "Type", "DueDate", "CreditNoteID")
        }
        data["Type"] = invoice_type
        if number:
            data["InvoiceNumber"] = str(number)  # credit notes are numbered on their own
        built, errors = self._compute(data, None, unitdp, {})
        if built is None:
            return None, [e.replace("invoice", "credit note") for e in errors]
        note: JsonDict = {
            "Type": credit_type,
            "CreditNoteID": built["InvoiceID"],
            "CreditNoteNumber": str(number or ""),
            "Reference": built.get("Reference", ""),
            "Contact": built["Contact"],
            "DateString": built["DateString"],
            "Date": built["Date"],
            "Status": built["Status"],
            "LineAmountTypes": built["LineAmountTypes"],
            "LineItems": built["LineItems"],
            "SubTotal": built["SubTotal"],
            "TotalTax": built["TotalTax"],
            "Total": built["Total"],
            "RemainingCredit": built["Total"],
            "Allocations": [],
            "Payments": [],
            "AppliedAmount": Decimal("0.00"),
            "CurrencyCode": built["CurrencyCode"],
            "CurrencyRate": built["CurrencyRate"],
            "SentToContact": built["SentToContact"],
            "HasAttachments": False,
            "HasErrors": False,
            "UpdatedDateUTC": built["UpdatedDateUTC"],
        }
        return note, []

    def _get_credit_notes(self, request: Request, params: dict[str, str]) -> _Reply:
        unitdp = self._int_param(request, "unitdp") or 2
        where = request.args.get("where")
        match = parse_where(where, "CreditNote") if where else None
        since = self._if_modified_since(request)
        with self._lock:
            records = list(self.credit_notes.values())
            if match is not None:
                records = [r for r in records if match(r)]
            if since is not None:
                records = [
                    r
                    for r in records
                    if (parse_xero_datetime(r["UpdatedDateUTC"]) or since) > since
                ]
            records = _sorted(records, request.args.get("order"), "CreditNote")
            chunk, pagination = self._page(request, records)
            views = [self._invoice_view(r, unitdp, False) for r in chunk]
        return _json_reply(200, self._envelope("CreditNotes", views, pagination=pagination))

    def _get_credit_note(self, request: Request, params: dict[str, str]) -> _Reply:
        unitdp = self._int_param(request, "unitdp") or 2
        wanted = params["CreditNoteID"].lower()
        with self._lock:
            found = self.credit_notes.get(wanted) or next(
                (
                    c
                    for c in self.credit_notes.values()
                    if str(c.get("CreditNoteNumber", "")).lower() == wanted
                ),
                None,
            )
            if found is None:
                raise _not_found()
            view = self._invoice_view(found, unitdp, False)
        return _json_reply(200, self._envelope("CreditNotes", [view]))

    @staticmethod
    def _error_element(element: JsonDict, errors: list[str]) -> JsonDict:
        echo = copy.deepcopy(element)
        for name in ("Date", "DueDate", "ExpectedPaymentDate", "PlannedPaymentDate"):
            value = echo.get(name)
            if isinstance(value, str):
                parsed = parse_xero_datetime(value)
                if parsed is None:
                    echo.pop(name)
                else:
                    echo[name] = _date_fields(parsed.date())[0]
        echo["HasErrors"] = True
        echo["StatusAttributeString"] = "ERROR"
        echo["ValidationErrors"] = [{"Message": m} for m in errors]
        return echo

    # lookups (caller holds the lock); `staged` shadows committed invoices
    def _lookup(self, invoice_id: str, staged: Mapping[str, JsonDict]) -> JsonDict | None:
        key = invoice_id.lower()
        return staged.get(key) or self.invoices.get(key)

    def _by_number(
        self, number: str, invoice_type: str | None, staged: Mapping[str, JsonDict]
    ) -> JsonDict | None:
        wanted = number.casefold()
        merged = {**self.invoices, **staged}
        for invoice in merged.values():
            if str(invoice.get("InvoiceNumber", "")).casefold() != wanted:
                continue
            if invoice_type is None or invoice["Type"] == invoice_type:
                return invoice
        return None

    def _find_contact(self, ref: Mapping[str, Any]) -> tuple[JsonDict | None, str | None]:
        """Find the contact an invoice names: by ContactID, else ContactNumber, else Name."""
        for key, fold in (
            ("ContactID", str.lower),
            ("ContactNumber", str),
            ("Name", str.casefold),
        ):
            if key not in ref:
                continue
            wanted = fold(str(ref[key]))
            for contact in self.contacts:
                if key in contact and fold(str(contact[key])) == wanted:
                    return contact, None
            return None, f"Contact with {key} '{ref[key]}' could not be found"
        return None, "A Contact must be specified for this type of transaction"

    def _next_invoice_number(self, staged: Mapping[str, JsonDict]) -> str:
        while True:
            candidate = f"INV-{self._next_number:04d}"
            self._next_number += 1
            if self._by_number(candidate, None, staged) is None:
                return candidate

    def _build(
        self,
        element: JsonDict,
        method: str,
        path_id: str | None,
        unitdp: int,
        staged: dict[str, JsonDict],
    ) -> tuple[JsonDict | None, list[str]]:
        """Validate one invoice element; return the invoice it would store, or errors."""
        body_id = element.get("InvoiceID")
        existing: JsonDict | None = None
        if path_id is not None:
            if body_id is not None and str(body_id).lower() != path_id.lower():
                return None, ["The InvoiceID in the body does not match the one in the URL"]
            existing = self._lookup(path_id, staged) or (
                None if _is_guid(path_id) else self._by_number(path_id, None, staged)
            )
            if existing is None:
                return None, [f"Invoice '{path_id}' could not be found"]
        elif body_id is not None:
            if method == "PUT":
                return None, ["An InvoiceID cannot be given when creating an invoice with PUT"]
            existing = self._lookup(str(body_id), staged)
            if existing is None:
                return None, [f"Invoice with InvoiceID '{body_id}' could not be found"]
        elif method == "POST" and element.get("InvoiceNumber"):
            existing = self._by_number(str(element["InvoiceNumber"]), element.get("Type"), staged)
        if existing is not None:
            return self._update(existing, element, unitdp, staged)
        return self._create(element, unitdp, staged)

    def _update(
        self,
        existing: JsonDict,
        element: JsonDict,
        unitdp: int,
        staged: dict[str, JsonDict],
    ) -> tuple[JsonDict | None, list[str]]:
        current = existing["Status"]
        wanted = element.get("Status", current)
        if current == "AUTHORISED" and wanted == "VOIDED":
            voided = copy.deepcopy(existing)
            voided["Status"] = "VOIDED"
            voided["AmountDue"] = Decimal("0.00")
            voided["UpdatedDateUTC"] = _ms_date(_now_utc())
            return voided, []
        if current not in EDITABLE_STATUSES:
            return None, ["Invoice not of valid status for modification"]
        if wanted not in (*CREATE_STATUSES, "DELETED"):
            return None, ["Invoice not of valid status for modification"]
        if "Type" in element and element["Type"] != existing["Type"]:
            return None, ["The Type of an existing invoice cannot be changed"]
        merged: JsonDict = {
            "Type": existing["Type"],
            "Contact": {"ContactID": existing["Contact"]["ContactID"]},
            "LineItems": existing["LineItems"],
            "LineAmountTypes": existing["LineAmountTypes"],
            "CurrencyCode": existing["CurrencyCode"],
            "Status": existing["Status"],
            "InvoiceNumber": existing.get("InvoiceNumber", ""),
            "Date": existing["Date"],
        }
        for name in (
            "Reference",
            "DueDate",
            "BrandingThemeID",
            "Url",
            "CurrencyRate",
            "SentToContact",
            "ExpectedPaymentDate",
            "PlannedPaymentDate",
        ):
            if name in existing:
                merged[name] = existing[name]
        if "LineItems" not in element:
            merged["LineItems"] = [
                {k: v for k, v in line.items() if k in _CARRIED_LINE_FIELDS}
                for line in existing["LineItems"]
            ]
            merged["_carried_lines"] = True
        merged.update({k: v for k, v in element.items() if k != "InvoiceID"})
        if wanted == "DELETED":
            deleted = copy.deepcopy(existing)
            deleted["Status"] = "DELETED"
            deleted["UpdatedDateUTC"] = _ms_date(_now_utc())
            return deleted, []
        return self._compute(merged, existing, unitdp, staged)

    def _create(
        self, element: JsonDict, unitdp: int, staged: dict[str, JsonDict]
    ) -> tuple[JsonDict | None, list[str]]:
        status = element.get("Status", "DRAFT")
        if status not in CREATE_STATUSES:
            return None, [f"Invoice Status '{status}' cannot be used when creating an invoice"]
        return self._compute(element, None, unitdp, staged)

    def _compute(
        self,
        data: JsonDict,
        existing: JsonDict | None,
        unitdp: int,
        staged: dict[str, JsonDict],
    ) -> tuple[JsonDict | None, list[str]]:
        errors: list[str] = []
        header = self._header(data, errors)
        carried = bool(data.get("_carried_lines"))
        context = _LineContext(
            invoice_type=header.invoice_type,
            status=header.status,
            amount_types=header.amount_types,
            unit_places=4 if unitdp == 4 or carried else 2,
            old_line_ids=frozenset(
                str(line.get("LineItemID", "")).lower()
                for line in (existing or {}).get("LineItems", [])
            ),
        )
        lines_in = data.get("LineItems") or []
        if not lines_in and header.status != "DRAFT":
            errors.append("An invoice must have at least one line item to be approved")
        lines_out: list[_BuiltLine] = []
        for index, line in enumerate(lines_in, start=1):
            built = self._line(line, index, context, errors)
            if built is not None:
                lines_out.append(built)
        number = data.get("InvoiceNumber")
        if header.invoice_type == "ACCREC" and number:
            other = self._by_number(str(number), "ACCREC", staged)
            if other is not None and (
                existing is None or other["InvoiceID"] != existing["InvoiceID"]
            ):
                errors.append("Invoice # must be unique.")
        if errors or header.contact is None:
            return None, errors or ["A Contact must be specified for this type of transaction"]

        totals = _Totals.of(lines_out, header.amount_types)
        if totals.total < 0:
            return None, ["The invoice total cannot be negative"]
        if header.invoice_type == "ACCREC" and not number:
            number = (existing or {}).get("InvoiceNumber") or self._next_invoice_number(staged)
        invoice = self._assemble(
            data,
            header=header,
            totals=totals,
            lines=lines_out,
            existing=existing,
            number=str(number or ""),
        )
        return invoice, []

    def _header(self, data: JsonDict, errors: list[str]) -> _Header:
        invoice_type = data.get("Type")
        if invoice_type is None:
            errors.append("Invoice Type must be specified")
        elif invoice_type not in INVOICE_TYPES:
            errors.append(f"Invoice Type '{invoice_type}' is not ACCREC or ACCPAY")
        contact_ref = data.get("Contact")
        contact: JsonDict | None = None
        if not isinstance(contact_ref, dict) or not contact_ref:
            errors.append("A Contact must be specified for this type of transaction")
        else:
            contact, problem = self._find_contact(contact_ref)
            if problem:
                errors.append(problem)
            elif contact is not None and contact.get("ContactStatus") == "ARCHIVED":
                errors.append(f"The contact '{contact.get('Name')}' is archived")
        currency = data.get("CurrencyCode", self.base_currency)
        if currency not in {c.get("Code") for c in self.currencies}:
            errors.append(f"Organisation is not subscribed to currency {currency}")
        dates: dict[str, date] = {"Date": datetime.now(ORG_TIMEZONE).date()}
        for name in ("Date", "DueDate", "ExpectedPaymentDate", "PlannedPaymentDate"):
            if name in data:
                parsed = parse_xero_datetime(str(data[name]))
                if parsed is None:
                    errors.append(f"{name} '{data[name]}' is not a valid date")
                else:
                    dates[name] = parsed.date()
        return _Header(
            invoice_type=invoice_type,
            status=data.get("Status", "DRAFT"),
            contact=contact,
            currency=currency,
            amount_types=data.get("LineAmountTypes", "Exclusive"),
            dates=dates,
        )

    def _assemble(
        self,
        data: JsonDict,
        *,
        header: _Header,
        totals: _Totals,
        lines: list[_BuiltLine],
        existing: JsonDict | None,
        number: str,
    ) -> JsonDict:
        contact = header.contact or {}
        amount_paid = (existing or {}).get("AmountPaid", Decimal("0.00"))
        date_ms, date_string = _date_fields(header.dates["Date"])
        invoice: JsonDict = {
            "Type": header.invoice_type,
            "InvoiceID": existing["InvoiceID"] if existing else str(uuid.uuid4()),
            "InvoiceNumber": number,
            "Reference": data.get("Reference", ""),
            "Payments": [],
            "Prepayments": [],
            "Overpayments": [],
            "CreditNotes": [],
            "AmountDue": totals.total - amount_paid,
            "AmountPaid": amount_paid,
            "AmountCredited": Decimal("0.00"),
            "SentToContact": bool(data.get("SentToContact", False)),
            "CurrencyRate": _as_decimal(data.get("CurrencyRate")) or Decimal("1.000000"),
            "IsDiscounted": totals.discount > 0,
            "HasAttachments": bool((existing or {}).get("HasAttachments", False)),
            "HasErrors": False,
            "Contact": {
                k: contact[k]
                for k in ("ContactID", "ContactNumber", "Name", "ContactStatus")
                if k in contact
            },
            "DateString": date_string,
            "Date": date_ms,
            "Status": header.status,
            "LineAmountTypes": header.amount_types,
            "LineItems": [line.data for line in lines],
            "SubTotal": totals.sub_total,
            "TotalTax": totals.total_tax,
            "Total": totals.total,
            "UpdatedDateUTC": _ms_date(_now_utc()),
            "CurrencyCode": header.currency,
        }
        if totals.discount > 0:
            invoice["TotalDiscount"] = totals.discount
        if "DueDate" in header.dates:
            invoice["DueDate"], invoice["DueDateString"] = _date_fields(header.dates["DueDate"])
        for name in ("ExpectedPaymentDate", "PlannedPaymentDate"):
            if name in header.dates:
                invoice[name] = _date_fields(header.dates[name])[0]
        for name in ("BrandingThemeID", "Url"):
            if name in data:
                invoice[name] = data[name]
        return invoice

    # ---- one line item ---------------------------------------------------

    def _line(
        self, line: JsonDict, index: int, context: _LineContext, errors: list[str]
    ) -> _BuiltLine | None:
        where = f"Line {index}: "
        found: list[str] = []
        item, details, description = self._line_item(line, context, found)
        numbers = _LineNumbers.read(line, details, context, found)
        account, account_code = self._line_account(line, details, context, found)
        tax_type, rate = self._line_tax(line, details, account, context, found)
        tracking = self._line_tracking(numbers.tracking, found)
        errors.extend(where + message for message in found)
        if found:
            return None
        amounts = numbers.amounts(rate, context)
        if isinstance(amounts, str):
            errors.append(where + amounts)
            return None
        out: JsonDict = {}
        old_id = str(line.get("LineItemID", "")).lower()
        out["LineItemID"] = old_id if old_id in context.old_line_ids else str(uuid.uuid4())
        if description is not None:
            out["Description"] = description
        out.update(amounts.quantities)
        if "ItemCode" in line:
            out["ItemCode"] = line["ItemCode"]
            if item is not None:
                out["Item"] = {k: item[k] for k in ("ItemID", "Name", "Code") if k in item}
        if account_code:
            out["AccountCode"] = account_code
        if account is not None and "AccountID" in account:
            out["AccountID"] = account["AccountID"]
        if tax_type is not None:
            out["TaxType"] = tax_type
        out["TaxAmount"] = amounts.tax
        out["LineAmount"] = amounts.line_amount
        out["Tracking"] = tracking
        if numbers.discount_rate is not None:
            out["DiscountRate"] = numbers.discount_rate
        if numbers.discount_amount is not None:
            out["DiscountAmount"] = _round(numbers.discount_amount)
        return _BuiltLine(out, amounts.discount)

    def _line_tracking(self, given: list[Any], errors: list[str]) -> list[JsonDict]:
        """Each element names an active category and one of its active options, by Name and
        Option or by TrackingCategoryID and TrackingOptionID; a category at most once."""
        out: list[JsonDict] = []
        for element in given[:MAX_TRACKING]:
            if not isinstance(element, dict):
                errors.append("A tracking element must be an object")
                continue
            category_id = str(element.get("TrackingCategoryID", "")).lower()
            category_name = str(element.get("Name", "")).casefold()
            category = next(
                (
                    c
                    for c in self.tracking_categories
                    if (category_id and c["TrackingCategoryID"].lower() == category_id)
                    or (not category_id and c["Name"].casefold() == category_name)
                ),
                None,
            )
            shown = element.get("Name") or element.get("TrackingCategoryID") or ""
            if category is None or category.get("Status") != "ACTIVE":
                errors.append(f"The tracking category '{shown}' does not exist or is archived")
                continue
            option_id = str(element.get("TrackingOptionID", "")).lower()
            option_name = str(element.get("Option", "")).casefold()
            option = next(
                (
                    o
                    for o in category["Options"]
                    if (option_id and o["TrackingOptionID"].lower() == option_id)
                    or (not option_id and o["Name"].casefold() == option_name)
                ),
                None,
            )
            if option is None or option.get("Status") != "ACTIVE":
                wanted = element.get("Option") or element.get("TrackingOptionID") or ""
                errors.append(
                    f"The tracking option '{wanted}' does not exist or is archived in "
                    f"tracking category '{category['Name']}'"
                )
                continue
            if any(t["TrackingCategoryID"] == category["TrackingCategoryID"] for t in out):
                errors.append(f"The tracking category '{category['Name']}' is given twice")
                continue
            out.append(
                {
                    "TrackingCategoryID": category["TrackingCategoryID"],
                    "TrackingOptionID": option["TrackingOptionID"],
                    "Name": category["Name"],
                    "Option": option["Name"],
                }
            )
        return out

    def _line_item(
        self, line: JsonDict, context: _LineContext, errors: list[str]
    ) -> tuple[JsonDict | None, Mapping[str, Any], str | None]:
        item: JsonDict | None = None
        details: Mapping[str, Any] = {}
        if "ItemCode" in line:
            item = next((i for i in self.items if i.get("Code") == line["ItemCode"]), None)
            if item is None:
                errors.append(f"Item code '{line['ItemCode']}' is not valid")
            else:
                key = "PurchaseDetails" if context.invoice_type == "ACCPAY" else "SalesDetails"
                details = item.get(key) or {}
        description = line.get("Description")
        if description is None and item is not None:
            if context.invoice_type == "ACCPAY":
                description = item.get("PurchaseDescription")
            description = description or item.get("Description")
        if not description and "ItemCode" not in line:
            errors.append("The description field is mandatory for each line item.")
        return item, details, description

    def _line_account(
        self,
        line: JsonDict,
        details: Mapping[str, Any],
        context: _LineContext,
        errors: list[str],
    ) -> tuple[JsonDict | None, str | None]:
        code: str | None = line.get("AccountCode") or details.get("AccountCode")
        account: JsonDict | None = None
        if "AccountID" in line and "AccountCode" not in line:
            wanted = str(line["AccountID"]).lower()
            account = next(
                (a for a in self.accounts if str(a.get("AccountID", "")).lower() == wanted), None
            )
            if account is None:
                errors.append(f"Account with AccountID '{line['AccountID']}' could not be found")
                return None, None
            code = account.get("Code")
        elif code:
            account = next((a for a in self.accounts if a.get("Code") == code), None)
        if account is None:
            if code:
                errors.append(f"Account code '{code}' is not a valid code for this document.")
            elif context.status != "DRAFT":
                errors.append("An AccountCode is required to approve the invoice")
            return None, code
        if account.get("Status") != "ACTIVE":
            errors.append(
                f"Account code '{code}' has been archived, or has been deleted. "
                "Each line item must reference a valid account."
            )
        elif account.get("Type") == "BANK" or account.get("SystemAccount") in (
            "DEBTORS",
            "CREDITORS",
        ):
            errors.append(f"Account code '{code}' is not a valid code for this document.")
        return account, code

    def _line_tax(
        self,
        line: JsonDict,
        details: Mapping[str, Any],
        account: JsonDict | None,
        context: _LineContext,
        errors: list[str],
    ) -> tuple[str | None, Decimal]:
        tax_type: str | None = line.get("TaxType") or details.get("TaxType")
        if tax_type is None and account is not None:
            tax_type = account.get("TaxType")
        if tax_type is None:
            return None, Decimal(0)
        tax_rate = next((t for t in self.tax_rates if t.get("TaxType") == tax_type), None)
        unusable = (
            tax_rate is None
            or tax_rate.get("Status", "ACTIVE") != "ACTIVE"
            or (context.invoice_type == "ACCREC" and tax_rate.get("CanApplyToRevenue") is False)
        )
        if unusable or tax_rate is None:
            errors.append(
                f"The TaxType code '{tax_type}' does not exist or cannot be used "
                "for this type of transaction."
            )
            return tax_type, Decimal(0)
        rate = _as_decimal(tax_rate.get("EffectiveRate"))
        return tax_type, rate if rate is not None else Decimal(0)


# --------------------------------------------------------------------------
# value objects of the invoice computation


@dataclass(frozen=True)
class _Header:
    invoice_type: str | None
    status: str
    contact: JsonDict | None
    currency: str
    amount_types: str
    dates: dict[str, date]


@dataclass(frozen=True)
class _LineContext:
    invoice_type: str | None
    status: str
    amount_types: str
    unit_places: int
    old_line_ids: frozenset[str]


@dataclass(frozen=True)
class _BuiltLine:
    data: JsonDict
    discount: Decimal


@dataclass(frozen=True)
class _LineAmounts:
    quantities: JsonDict  # Quantity / UnitAmount, absent on description-only lines
    line_amount: Decimal
    tax: Decimal
    discount: Decimal


@dataclass(frozen=True)
class _LineNumbers:
    quantity: Decimal | None
    unit_amount: Decimal | None
    line_amount: Decimal | None
    tax_amount: Decimal | None
    discount_rate: Decimal | None
    discount_amount: Decimal | None
    tracking: list[Any]
    description_only: bool

    @classmethod
    def read(
        cls,
        line: JsonDict,
        details: Mapping[str, Any],
        context: _LineContext,
        errors: list[str],
    ) -> _LineNumbers:
        quantity = _as_decimal(line.get("Quantity"))
        given_unit = _as_decimal(line.get("UnitAmount"))
        unit_amount = (
            given_unit if given_unit is not None else _as_decimal(details.get("UnitPrice"))
        )
        if quantity is not None and _decimal_places(quantity) > QUANTITY_DP:
            errors.append(f"Quantity must have at most {QUANTITY_DP} decimal places")
        places = context.unit_places
        if unit_amount is not None and _decimal_places(unit_amount) > places:
            hint = "" if places == 4 else " (send unitdp=4 for four)"
            errors.append(f"UnitAmount must have at most {places} decimal places{hint}")
        tracking = list(line.get("Tracking") or [])
        if len(tracking) > 2:
            errors.append("A line item can have at most 2 tracking categories")
        numbers = cls(
            quantity=quantity,
            unit_amount=unit_amount,
            line_amount=_as_decimal(line.get("LineAmount")),
            tax_amount=_as_decimal(line.get("TaxAmount")),
            discount_rate=_as_decimal(line.get("DiscountRate")),
            discount_amount=_as_decimal(line.get("DiscountAmount")),
            tracking=tracking,
            description_only=(
                quantity is None
                and unit_amount is None
                and line.get("LineAmount") is None
                and "ItemCode" not in line
            ),
        )
        discounted = numbers.discount_rate is not None or numbers.discount_amount is not None
        if discounted and context.invoice_type == "ACCPAY":
            errors.append("Discounts are only supported on ACCREC invoices")
        return numbers

    def amounts(self, rate: Decimal, context: _LineContext) -> _LineAmounts | str:
        """LineAmount, tax and discount of the line, or the reason they disagree."""
        quantities: JsonDict = {}
        discount = Decimal("0.00")
        if self.description_only:
            line_amount = Decimal("0.00")
        else:
            qty = self.quantity if self.quantity is not None else Decimal(1)
            unit = self.unit_amount
            if unit is None and self.line_amount is not None and qty != 0:
                unit = _round(self.line_amount / qty, context.unit_places)
            unit = unit if unit is not None else Decimal(0)
            gross = qty * unit
            net = gross
            if self.discount_rate is not None:
                net = gross * (Decimal(100) - self.discount_rate) / Decimal(100)
            elif self.discount_amount is not None:
                net = gross - self.discount_amount
            line_amount = _round(net)
            discount = _round(gross) - line_amount
            if self.line_amount is not None and _round(self.line_amount) != line_amount:
                return (
                    f"The LineAmount {self.line_amount} does not equal Quantity x UnitAmount "
                    f"less discounts ({line_amount})"
                )
            quantities = {
                "Quantity": _round(qty, QUANTITY_DP),
                "UnitAmount": _round(unit, context.unit_places),
            }
        if context.amount_types == "NoTax":
            tax = Decimal("0.00")
        elif self.tax_amount is not None:
            tax = _round(self.tax_amount)
        elif context.amount_types == "Inclusive":
            tax = _round(line_amount * rate / (Decimal(100) + rate))
        else:
            tax = _round(line_amount * rate / Decimal(100))
        return _LineAmounts(quantities, line_amount, tax, discount)


@dataclass(frozen=True)
class _Totals:
    sub_total: Decimal
    total_tax: Decimal
    total: Decimal
    discount: Decimal

    @classmethod
    def of(cls, lines: Sequence[_BuiltLine], amount_types: str) -> _Totals:
        zero = Decimal("0.00")
        line_total = sum((line.data["LineAmount"] for line in lines), zero)
        total_tax = sum((line.data["TaxAmount"] for line in lines), zero)
        discount = sum((line.discount for line in lines), zero)
        if amount_types == "Inclusive":
            return cls(line_total - total_tax, total_tax, line_total, discount)
        return cls(line_total, total_tax, line_total + total_tax, discount)
