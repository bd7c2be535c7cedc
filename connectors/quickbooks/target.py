"""QuickBooks Online as an accounting target, through python-quickbooks.

QuickBooks has no DRAFT status: a "draft" here is an invoice never e-mailed (EmailStatus and
PrintStatus NotSet), not paid and not voided. Our deterministic key travels in PrivateNote.
PrivateNote cannot be queried, so our invoices of a period are found with one paged query on
TxnDate (every invoice we write is dated the period's last day) and filtered by key.

Every write is a single-invoice request with a ``requestid`` derived from its content, so a
retry after a lost answer is replayed by QuickBooks, not applied twice; and before writing
anything the engine has already looked our invoices up by key, because requestid alone has
let duplicates through for others. (python-quickbooks' batch helper sends no requestid, so
batches are not used.)
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

import requests
from quickbooks import QuickBooks
from quickbooks.exceptions import AuthorizationException, QuickbooksException
from quickbooks.objects.base import Ref
from quickbooks.objects.creditmemo import CreditMemo
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice

from connectors.base import (
    CreditNotePlan,
    CreditNoteResult,
    Directory,
    PushResult,
    RemoteContact,
    RemoteCreditNote,
    RemoteInvoice,
)
from connectors.quickbooks.config import QuickBooksConfig
from core.errors import AuthError, ConfigError, TerminalError, TransientError
from core.http import BearerTokens, BudgetFactory, CallCounter, Limit, LocalBudgets, RetryPolicy
from core.invoices import InvoicePlan, PlannedLine, content_hash
from core.periods import Period
from mapping.resolver import ContactKind, ContactRef

SERVICE = "quickbooks"
PAGE = 1000
T = TypeVar("T")
MAX_DESCRIPTION = 4000  # Line.Description
# a profile's line_amount_types (Xero's words) as QuickBooks' GlobalTaxCalculation
TAX_CALCULATION = {
    "Exclusive": "TaxExcluded",
    "Inclusive": "TaxInclusive",
    "NoTax": "NotApplicable",
}
PRODUCTION = "https://quickbooks.api.intuit.com/v3"
SANDBOX = "https://sandbox-quickbooks.api.intuit.com/v3"
_KEY = re.compile(
    r"[A-Za-z0-9]{1,8}/[a-z0-9][a-z0-9_-]{0,31}/\d{4}-(?:W\d{2}|\d{2}(?:-H[12]|-\d{2})?)/[0-9a-f]{12}"
)
_CREDIT_KEY = re.compile(r"[A-Za-z0-9]{1,8}/[a-z0-9][a-z0-9_-]{0,31}/cn/[0-9a-f]{12}")
THROTTLE_CODES = {3001}  # ThrottleExceeded
AUTH_CODES = {100, 3100, 3200}  # permission denied, auth failures


class _BearerSession(requests.Session):
    """What python-quickbooks needs of its session: ``request`` and ``access_token``.

    Replacing its OAuth2Session keeps token handling ours (the token store refreshes, under
    its database lock) and lets the sandbox run on plain-HTTP loopback. ``access_token`` is
    read on every request, so each call carries the store's current token.
    """

    def __init__(self, tokens: BearerTokens, timeout: float) -> None:
        super().__init__()
        self._tokens = tokens
        self._timeout = timeout
        self.used = ""

    @property
    def access_token(self) -> str:
        self.used = self._tokens.access_token()
        return self.used

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


class _AuthClient:
    """The four attributes QuickBooks(...) reads; with an access token it never refreshes."""

    def __init__(self, config: QuickBooksConfig, access_token: str) -> None:
        self.environment = config.environment
        self.client_id = config.client_id
        self.access_token = access_token
        self.refresh_token: str | None = None  # never refreshed by python-quickbooks


class QuickBooksTarget:
    def __init__(
        self,
        name: str,
        config: QuickBooksConfig,
        *,
        calls: CallCounter,
        policy: RetryPolicy | None = None,
        tokens: BearerTokens,
        budgets: BudgetFactory | None = None,
    ) -> None:
        self.name = name
        self._config = config
        self._calls = calls
        self._policy = calls.counted(
            policy or RetryPolicy(max_attempts=config.max_attempts), SERVICE
        )
        realm = config.realm_id or tokens.tenant
        if realm is None:
            raise ConfigError(f"targets.{name}.realm_id: no realm (and no connection gives one)")
        self._realm = realm
        # QuickBooks allows 500 calls per minute and 10 at once per realm.
        self._budget = (budgets or LocalBudgets())(
            SERVICE,
            str(realm),
            [Limit(config.calls_per_minute, 60.0, "minute")],
            concurrent=config.concurrent_calls,
        )
        self._tokens = tokens
        self._client: QuickBooks | None = None
        # Same content in the same run → same requestid (a lost answer is replayed, not
        # applied twice); a new run gets new ids, so a replayed rejection can't outlive its
        # cause. Across runs, duplicates are prevented by the look-up by key.
        self._run_nonce = uuid.uuid4().hex
        self._items: dict[str, str] = {}  # item name → Id
        self._item_names: dict[str, str] = {}  # Id → name
        self._tax: dict[str, str] = {}  # tax code name or Id → Id
        self._classes: dict[str, str] = {}  # class name or Id → Id
        self._departments: dict[str, str] = {}  # department name or Id → Id

    @property
    def _qb(self) -> QuickBooks:
        """python-quickbooks, built on first use with the current access token (so it never
        refreshes by itself); our session then supplies the token on every request."""
        if self._client is None:
            session = _BearerSession(self._tokens, self._config.timeout_seconds)
            auth = _AuthClient(self._config, session.access_token)
            qb = QuickBooks(
                auth_client=auth,
                refresh_token=None,
                company_id=self._realm,
                minorversion=self._config.minorversion,
                use_decimal=True,
            )
            qb.session = session
            url = str(self._config.base_url).rstrip("/") if self._config.base_url else None
            qb.api_url_v3 = url or PRODUCTION
            qb.sandbox_api_url_v3 = url or SANDBOX
            self._client = qb
        return self._client

    # -- look-ups -------------------------------------------------------------------------

    def load_directory(self) -> Directory:
        contacts: dict[ContactRef, RemoteContact] = {}
        for c in self._select("Customer"):
            remote = RemoteContact(
                contact_id=str(c["Id"]),
                name=str(c.get("DisplayName") or ""),
                number=None,
                currency=(c.get("CurrencyRef") or {}).get("value"),
            )
            contacts[ContactRef(ContactKind.ID, remote.contact_id)] = remote
            if remote.name:
                contacts.setdefault(ContactRef(ContactKind.NAME, remote.name), remote)
        for item in self._select("Item"):
            self._items[str(item["Name"])] = str(item["Id"])
            self._item_names[str(item["Id"])] = str(item["Name"])
        for code in self._select("TaxCode"):
            self._tax[str(code["Name"])] = str(code["Id"])
            self._tax[str(code["Id"])] = str(code["Id"])
        for entity, names in (("Class", self._classes), ("Department", self._departments)):
            for record in self._select(entity):
                names[str(record["Name"])] = str(record["Id"])
                names[str(record["Id"])] = str(record["Id"])
        return Directory(
            contacts=contacts,
            item_codes=frozenset(self._items),
            tax_codes=frozenset(self._tax),
            requires_item=True,
            classes=frozenset(self._classes),
            departments=frozenset(self._departments),
            max_description=MAX_DESCRIPTION,
        )

    def find_invoices(self, reference_prefix: str, period: Period) -> dict[str, RemoteInvoice]:
        found: dict[str, RemoteInvoice] = {}
        where = f"TxnDate >= '{period.start.isoformat()}'"
        for inv in self._select("Invoice", where):
            note = str(inv.get("PrivateNote") or "")
            match = _KEY.search(note)
            if match is None or not match.group(0).startswith(reference_prefix):
                continue
            found[match.group(0)] = self._remote(inv, match.group(0))
        return found

    def fingerprint(self, plan: InvoicePlan) -> str:
        """Accounts live on QuickBooks items, so lines compare without account codes."""
        lines = [
            _bare(line, self._tax_id(line.tax_type), self._class_id(line.category))
            for line in plan.lines
        ]
        return content_hash(
            plan.contact_id, plan.slot.currency, plan.invoice_date, plan.due_date, lines
        )

    # -- writes ---------------------------------------------------------------------------

    @property
    def push_batch_size(self) -> int:
        """One invoice per request: the engine may stop after any of them."""
        return 1

    def push(self, plans: Sequence[tuple[InvoicePlan, str | None]]) -> Iterator[PushResult]:
        for plan, remote_id in plans:
            yield self._write(plan, remote_id)

    def _write(self, plan: InvoicePlan, remote_id: str | None) -> PushResult:
        try:
            if not plan.lines:
                return self._delete(plan, remote_id)
            invoice = self._invoice(plan, remote_id)
            body = invoice.to_json()
            rid = request_id([body, self._run_nonce])
            saved = self._call(lambda: invoice.save(qb=self._qb, request_id=rid))
        except _RejectedError as exc:
            return PushResult(plan.key, ok=False, errors=(str(exc),))
        data = json.loads(saved.to_json())
        return PushResult(plan.key, ok=True, remote=self._remote(data, plan.key))

    def _delete(self, plan: InvoicePlan, remote_id: str | None) -> PushResult:
        if remote_id is None:
            raise TerminalError(f"{self.name}: refusing to create an empty invoice {plan.key}")
        current = self._current(remote_id)
        invoice = Invoice()
        invoice.Id = remote_id
        invoice.SyncToken = current["SyncToken"]
        rid = request_id([remote_id, current["SyncToken"], self._run_nonce])
        self._call(lambda: invoice.delete(qb=self._qb, request_id=rid))
        gone = self._remote(current, plan.key)
        return PushResult(
            plan.key,
            ok=True,
            remote=RemoteInvoice(
                gone.invoice_id,
                gone.number,
                plan.key,
                "DELETED",
                "",
                gone.subtotal,
                gone.total_tax,
                gone.total,
            ),
        )

    def _invoice(self, plan: InvoicePlan, remote_id: str | None) -> Invoice:
        invoice = Invoice()
        if remote_id is not None:
            invoice.Id = remote_id
            invoice.SyncToken = self._current(remote_id)["SyncToken"]
            invoice.sparse = False
        invoice.CustomerRef = _ref(plan.contact_id)
        invoice.CurrencyRef = _ref(plan.slot.currency)
        invoice.TxnDate = plan.invoice_date.isoformat()
        invoice.DueDate = plan.due_date.isoformat()
        invoice.PrivateNote = plan.key
        invoice.EmailStatus = "NotSet"
        invoice.PrintStatus = "NotSet"
        if self._config.doc_numbers == "ours":
            invoice.DocNumber = doc_number(plan.key)
        if plan.line_amount_types:
            invoice.GlobalTaxCalculation = TAX_CALCULATION[plan.line_amount_types]
        if plan.department:
            invoice.DepartmentRef = _ref(self._departments.get(plan.department, plan.department))
        for line in plan.lines:
            invoice.Line.append(self._line(line))
        return invoice

    def _line(self, line: PlannedLine) -> SalesItemLine:
        out = SalesItemLine()
        out.Description = line.description
        out.Amount = line.amount
        detail = SalesItemLineDetail()
        detail.ItemRef = _ref(self._items.get(line.item_code or "", line.item_code or ""))
        detail.Qty = line.quantity
        detail.UnitPrice = line.unit_price
        tax_id = self._tax_id(line.tax_type)
        if tax_id:
            detail.TaxCodeRef = _ref(tax_id)
        class_id = self._class_id(line.category)
        if class_id:
            detail.ClassRef = _ref(class_id)
        out.SalesItemLineDetail = detail
        return out

    # -- credit memos (edits after invoicing: core.drift) ---------------------------------

    def find_credit_notes(self, reference_prefix: str) -> dict[str, RemoteCreditNote]:
        """Our CreditMemos: the key travels in PrivateNote, which can't be queried, so every
        CreditMemo is listed (one paged query) and filtered by key."""
        found: dict[str, RemoteCreditNote] = {}
        for memo in self._select("CreditMemo"):
            match = _CREDIT_KEY.search(str(memo.get("PrivateNote") or ""))
            if match is None or not match.group(0).startswith(reference_prefix):
                continue
            found[match.group(0)] = _remote_memo(memo, match.group(0))
        return found

    def push_credit_notes(self, plans: Sequence[CreditNotePlan]) -> Iterator[CreditNoteResult]:
        """One CreditMemo per plan, each with a requestid derived from its content."""
        for plan in plans:
            memo = CreditMemo()
            memo.CustomerRef = _ref(plan.contact_id)
            memo.CurrencyRef = _ref(plan.currency)
            memo.TxnDate = plan.credit_date.isoformat()
            memo.PrivateNote = plan.key
            memo.Line = [self._line(line) for line in plan.lines]
            rid = request_id([memo.to_json(), self._run_nonce])
            try:
                saved = self._call(functools.partial(memo.save, qb=self._qb, request_id=rid))
            except _RejectedError as exc:
                yield CreditNoteResult(plan.key, ok=False, errors=(str(exc),))
                continue
            yield CreditNoteResult(
                plan.key, ok=True, remote=_remote_memo(json.loads(saved.to_json()), plan.key)
            )

    # -- plumbing -------------------------------------------------------------------------

    def _class_id(self, name: str | None) -> str | None:
        return None if name is None else self._classes.get(name, name)

    def _tax_id(self, tax_type: str | None) -> str | None:
        """Tax codes compare by Id: the mapping may name them by Name or by Id."""
        return None if tax_type is None else self._tax.get(tax_type, tax_type)

    def _current(self, remote_id: str) -> dict[str, Any]:
        data = self._call(lambda: self._qb.get_single_object("Invoice", remote_id))
        invoice = data.get("Invoice") if isinstance(data, dict) else None
        if not isinstance(invoice, dict):
            raise TerminalError(f"{self.name}: invoice {remote_id} not returned by QuickBooks")
        return invoice

    def _select(self, entity: str, where: str = "") -> Iterator[dict[str, Any]]:
        start = 1
        clause = f" WHERE {where}" if where else ""
        while True:
            # QuickBooks' query language, not SQL; every value in it is one we formatted
            sql = f"SELECT * FROM {entity}{clause} STARTPOSITION {start} MAXRESULTS {PAGE}"  # noqa: S608
            data = self._call(functools.partial(self._qb.query, sql))
            rows = (data.get("QueryResponse") or {}).get(entity) or []
            yield from rows
            if len(rows) < PAGE:
                return
            start += PAGE

    def _remote(self, inv: dict[str, Any], key: str) -> RemoteInvoice:
        lines: list[PlannedLine] = []
        for raw in inv.get("Line") or []:
            detail = raw.get("SalesItemLineDetail")
            if raw.get("DetailType") != "SalesItemLineDetail" or not isinstance(detail, dict):
                continue
            item_id = str((detail.get("ItemRef") or {}).get("value") or "")
            tax_id = (detail.get("TaxCodeRef") or {}).get("value")
            class_id = (detail.get("ClassRef") or {}).get("value")
            lines.append(
                PlannedLine(
                    description=str(raw.get("Description") or ""),
                    quantity=_dec(detail.get("Qty")),
                    unit_price=_dec(detail.get("UnitPrice")),
                    item_code=self._item_names.get(item_id, item_id),
                    account_code=None,
                    tax_type=str(tax_id) if tax_id else None,
                    category=str(class_id) if class_id else None,
                )
            )
        total = _dec(inv.get("TotalAmt"))
        tax = _dec((inv.get("TxnTaxDetail") or {}).get("TotalTax"))
        return RemoteInvoice(
            invoice_id=str(inv.get("Id")),
            number=inv.get("DocNumber"),
            reference=key,
            status=_status(inv),
            content_hash=content_hash(
                str((inv.get("CustomerRef") or {}).get("value") or ""),
                str((inv.get("CurrencyRef") or {}).get("value") or ""),
                _day(inv.get("TxnDate")),
                _day(inv.get("DueDate")),
                lines,
            ),
            subtotal=total - tax,
            total_tax=tax,
            total=total,
        )

    def _call(self, fn: Callable[[], T]) -> T:
        for attempt in self._policy.retrying():
            with attempt:
                return self._once(fn)
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _once(self, fn: Callable[[], T]) -> T:
        """One call; once more if a 401 made the token store refresh the token."""
        refreshed = False
        while True:
            qb = self._qb
            try:
                with self._budget.call():
                    self._calls.add(SERVICE)
                    return fn()
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise TransientError(
                    f"{self.name}: no answer from QuickBooks ({type(exc).__name__})"
                ) from exc
            except QuickbooksException as exc:
                session = qb.session
                used = session.used if isinstance(session, _BearerSession) else ""
                if (
                    isinstance(exc, AuthorizationException)
                    and exc.error_code == 401
                    and not refreshed
                    and self._tokens.after_unauthorized(used)
                ):
                    refreshed = True
                    continue
                raise _translate(self.name, exc) from None


class _RejectedError(TerminalError):
    """QuickBooks refused this one invoice (validation, closed period...): record, go on."""


def _translate(name: str, exc: QuickbooksException) -> Exception:
    code = int(exc.error_code) if str(exc.error_code).lstrip("-").isdigit() else 0
    text = f"{exc.message}: {exc.detail}".strip(": ") if exc.detail else str(exc.message)
    text = " ".join(text.split())[:500]
    if code in THROTTLE_CODES or "ThrottleExceeded" in text or "<IntuitResponse" in text:
        return TransientError(f"{name}: throttled by QuickBooks (Fault 3001)")
    if (isinstance(exc, AuthorizationException) and code in (401, 403)) or code in AUTH_CODES:
        return AuthError(f"{name}: credentials refused: {exc.message}")
    if code == 10000 and "403" in text:
        return AuthError(f"{name}: forbidden (HTTP 403): check realm_id and the app's access")
    if code == 10000 and re.search(r"status code '5\d\d'", text):
        return TransientError(f"{name}: QuickBooks server error: {text}")
    return _RejectedError(f"{name}: QuickBooks Fault {code}: {text}")


def _remote_memo(memo: dict[str, Any], key: str) -> RemoteCreditNote:
    return RemoteCreditNote(
        credit_note_id=str(memo.get("Id")),
        number=memo.get("DocNumber"),
        reference=key,
        status="DRAFT" if memo.get("EmailStatus") != "EmailSent" else "SENT",
        total=_dec(memo.get("TotalAmt")),
    )


def request_id(body: object) -> str:
    """Same content → same requestid (QuickBooks allows at most 50 characters)."""
    raw = body if isinstance(body, str) else json.dumps(body, sort_keys=True, default=str)
    return "hb-" + hashlib.sha256(raw.encode()).hexdigest()[:47]


def doc_number(key: str) -> str:
    """A DocNumber (at most 21 characters) derived from our key: HB2610-<10 hex> (monthly;
    HB26W43-, HB2610H1- and HB261005- for weekly, semi-monthly and custom periods)."""
    period = key.split("/")[2]
    return f"HB{period[2:].replace('-', '')}-{key.rsplit('/', 1)[1][:10]}"


def _status(inv: dict[str, Any]) -> str:
    note = str(inv.get("PrivateNote") or "")
    if note.startswith("Voided"):
        return "VOIDED"
    total, balance = _dec(inv.get("TotalAmt")), _dec(inv.get("Balance"))
    if balance < total:
        return "PAID"
    if inv.get("EmailStatus") == "EmailSent":
        return "SENT"
    return "DRAFT"


def _bare(line: PlannedLine, tax: str | None, category: str | None) -> PlannedLine:
    return PlannedLine(
        line.description, line.quantity, line.unit_price, line.item_code, None, tax, category
    )


def _ref(value: str) -> Ref:
    ref = Ref()
    ref.value = value
    return ref


def _dec(value: object) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal("0")


def _day(value: object) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return date.min
