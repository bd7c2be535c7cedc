"""Xero as an accounting target, through the official xero-python SDK.

Looks up contacts, items and our own invoices once per run, then writes invoices in batches
with ``summarize_errors=False`` and an ``Idempotency-Key`` derived from the request body.
urllib3's own retries are switched off: every retry is ours, counted, and idempotent.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import urllib3
from xero_python.accounting import (
    AccountingApi,
    Contact,
    CreditNote,
    CreditNotes,
    CurrencyCode,
    Invoice,
    Invoices,
    LineAmountTypes,
    LineItem,
    LineItemTracking,
)
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.api_client.serializer import serialize
from xero_python.exceptions import ApiException

from connectors.base import (
    CreditNotePlan,
    CreditNoteResult,
    Directory,
    PushResult,
    Receipt,
    RemoteContact,
    RemoteCreditNote,
    RemoteInvoice,
)
from connectors.xero.config import XeroConfig
from core.errors import ConfigError, TerminalError, TransientError
from core.http import (
    BearerTokens,
    BudgetFactory,
    CallCounter,
    Limit,
    LocalBudgets,
    RetryPolicy,
    raise_for,
)
from core.invoices import InvoicePlan, PlannedLine, content_hash
from core.periods import Period
from mapping.resolver import ContactKind, ContactRef

SERVICE = "xero"
WINDOW_MARGIN_SECONDS = 1.0
PAGE_SIZE = 1000
UNITDP = 4  # unit prices may carry up to 4 decimals (rates like 123.4567)
MAX_ATTACHMENTS = 10  # Xero: at most 10 attachments per document
MAX_DESCRIPTION = 4000  # a line item's Description
T = TypeVar("T")


class XeroTarget:
    def __init__(
        self,
        name: str,
        config: XeroConfig,
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
        tenant = config.tenant_id or tokens.tenant
        if tenant is None:
            raise ConfigError(f"targets.{name}.tenant_id: no tenant (and no connection gives one)")
        self._tenant = str(tenant)
        # Per tenant: 60 calls a minute and 5,000 a day. Xero counts a call when it arrives, a
        # moment after we do: a second of margin keeps the minute's edge on our side.
        self._budget = (budgets or LocalBudgets())(
            SERVICE,
            self._tenant,
            [
                Limit(config.calls_per_minute, 60.0 + WINDOW_MARGIN_SECONDS, "minute"),
                Limit(config.calls_per_day, 86400.0, "day"),
            ],
            concurrent=config.concurrent_calls,
        )
        self._tokens = tokens
        self._used_token = ""
        self._run_nonce = uuid.uuid4().hex  # one target per run
        self._item_defaults: dict[str, tuple[str | None, str | None]] = {}
        # (category, option) case-folded → as Xero spells them; loaded when first needed
        self._tracking_names: dict[tuple[str, str], tuple[str, str]] | None = None
        # The token comes from our store (or the config) on every call. The SDK is given no
        # refresh token and no expiry, so it never refreshes by itself: refreshing is the
        # store's, under its database lock; a 401 makes us refresh once and retry.
        client = ApiClient(
            Configuration(oauth2_token=OAuth2Token()),
            oauth2_token_getter=self._sdk_token,
            oauth2_token_saver=self._sdk_saved,
        )
        # No hidden retries: a PUT retried by urllib3 after a lost answer is invisible to us.
        # The pool also reads Xero's limit headers from every answer, so the minute budget
        # follows what Xero says is left (other apps on the tenant spend it too).
        client.rest_client.pool_manager = _LimitWatchingPool(
            self._note_limits, num_pools=4, maxsize=4, retries=False
        )
        self._api = AccountingApi(client, base_url=str(config.base_url).rstrip("/"))

    # -- look-ups -------------------------------------------------------------------------

    def load_directory(self) -> Directory:
        contacts: dict[ContactRef, RemoteContact] = {}
        for page in self._pages(
            lambda p: self._api.get_contacts(self._tenant, page=p, page_size=PAGE_SIZE).contacts
        ):
            for c in page:
                remote = RemoteContact(
                    contact_id=str(c.contact_id),
                    name=c.name or "",
                    number=c.contact_number,
                    currency=_enum_value(c.default_currency),
                )
                contacts[ContactRef(ContactKind.ID, remote.contact_id.lower())] = remote
                if remote.number:
                    contacts[ContactRef(ContactKind.NUMBER, remote.number)] = remote
                if remote.name:
                    contacts.setdefault(ContactRef(ContactKind.NAME, remote.name), remote)
        items = self._call(lambda: self._api.get_items(self._tenant).items) or []
        for item in items:
            sales = item.sales_details
            if item.code and sales is not None:
                self._item_defaults[item.code] = (sales.account_code, _enum_value(sales.tax_type))
        return Directory(
            contacts=contacts,
            item_codes=frozenset(i.code for i in items if i.code),
            max_description=MAX_DESCRIPTION,
            item_names={i.code: i.name for i in items if i.code and i.name},
        )

    def fingerprint(self, plan: InvoicePlan) -> str:
        """Xero fills a line's missing AccountCode and TaxType from its item's sales details;
        the fingerprint does the same, so a re-run compares like with like."""
        return content_hash(
            plan.contact_id,
            plan.slot.currency,
            plan.invoice_date,
            plan.due_date,
            [self._as_stored(line) for line in plan.lines],
        )

    def _as_stored(self, line: PlannedLine) -> PlannedLine:
        account, tax = self._item_defaults.get(line.item_code or "", (None, None))
        return replace(
            line,
            account_code=line.account_code or account,
            tax_type=line.tax_type or tax,
            tracking=self._as_spelled(line.tracking),
        )

    def _as_spelled(self, tracking: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        """Xero matches tracking names regardless of case and stores its own spelling; so
        does the fingerprint (GET /TrackingCategories once, only if some line has tracking)."""
        if not tracking:
            return tracking
        if self._tracking_names is None:
            found = self._call(lambda: self._api.get_tracking_categories(self._tenant))
            self._tracking_names = {
                (str(c.name).casefold(), str(o.name).casefold()): (str(c.name), str(o.name))
                for c in (found.tracking_categories or [])
                for o in (c.options or [])
            }
        names = self._tracking_names
        return tuple(names.get((n.casefold(), o.casefold()), (n, o)) for n, o in tracking)

    def find_invoices(self, reference_prefix: str, period: Period) -> dict[str, RemoteInvoice]:
        """Every ACCREC invoice whose Reference starts with our prefix, keyed by Reference."""
        where = f'Type=="ACCREC" AND Reference.StartsWith("{_quote(reference_prefix)}")'
        pages = self._pages(
            lambda p: (
                self._api.get_invoices(
                    self._tenant, where=where, page=p, page_size=PAGE_SIZE
                ).invoices
            )
        )
        return _by_reference(_remote(inv) for page in pages for inv in page)

    # -- writes ---------------------------------------------------------------------------

    @property
    def push_batch_size(self) -> int:
        """Invoices per write request (``batch_size``): the engine may stop between batches."""
        return self._config.batch_size

    def push(self, plans: Sequence[tuple[InvoicePlan, str | None]]) -> Iterator[PushResult]:
        """Create (remote id None) or update DRAFT invoices, in batches; yield per invoice."""
        size = self._config.batch_size
        for start in range(0, len(plans), size):
            batch = plans[start : start + size]
            creates = [(p, rid) for p, rid in batch if rid is None]
            updates = [(p, rid) for p, rid in batch if rid is not None]
            for group, create in ((creates, True), (updates, False)):
                if group:
                    yield from self._write(group, create=create)

    def _write(
        self, batch: Sequence[tuple[InvoicePlan, str | None]], *, create: bool
    ) -> list[PushResult]:
        body = Invoices(invoices=[self._invoice(plan, rid) for plan, rid in batch])
        key = idempotency_key(serialize(body), create, self._run_nonce)
        if create:
            result = self._call(
                lambda: self._api.create_invoices(
                    self._tenant, body, summarize_errors=False, idempotency_key=key
                )
            )
        else:
            result = self._call(
                lambda: self._api.update_or_create_invoices(
                    self._tenant, body, summarize_errors=False, idempotency_key=key
                )
            )
        returned = list(result.invoices or [])
        if len(returned) != len(batch):
            raise TerminalError(
                f"{self.name}: sent {len(batch)} invoices, Xero answered for {len(returned)}"
            )
        out: list[PushResult] = []
        for (plan, _rid), inv in zip(batch, returned, strict=True):
            errors = tuple(e.message for e in (inv.validation_errors or []) if e.message)
            if inv.has_errors or errors:
                out.append(PushResult(plan.key, ok=False, errors=errors or ("rejected",)))
            else:
                out.append(PushResult(plan.key, ok=True, remote=_remote(inv)))
        return out

    def _invoice(self, plan: InvoicePlan, remote_id: str | None) -> Invoice:
        if not plan.lines:
            if remote_id is None:
                raise TerminalError(f"{self.name}: refusing to create an empty invoice {plan.key}")
            return Invoice(invoice_id=remote_id, status="DELETED")
        invoice = Invoice(
            type="ACCREC",
            contact=Contact(contact_id=plan.contact_id),
            line_items=[_line(line) for line in plan.lines],
            date=plan.invoice_date,
            due_date=plan.due_date,
            reference=plan.key,
            status="DRAFT",
            currency_code=CurrencyCode(plan.slot.currency),
            line_amount_types=LineAmountTypes(
                plan.line_amount_types or self._config.line_amount_types
            ),
        )
        if remote_id is not None:
            invoice.invoice_id = remote_id
        return invoice

    # -- credit notes (edits after invoicing: core.drift) ---------------------------------

    def find_credit_notes(self, reference_prefix: str) -> dict[str, RemoteCreditNote]:
        """Every ACCRECCREDIT credit note whose Reference starts with our prefix."""
        where = f'Type=="ACCRECCREDIT" AND Reference.StartsWith("{_quote(reference_prefix)}")'
        pages = self._pages(
            lambda p: (
                self._api.get_credit_notes(
                    self._tenant, where=where, page=p, page_size=PAGE_SIZE
                ).credit_notes
            )
        )
        return _by_reference(_remote_credit(note) for page in pages for note in page)

    def push_credit_notes(self, plans: Sequence[CreditNotePlan]) -> Iterator[CreditNoteResult]:
        """Create DRAFT ACCRECCREDIT credit notes, in batches; one result per plan."""
        size = self._config.batch_size
        for start in range(0, len(plans), size):
            batch = plans[start : start + size]
            body = CreditNotes(credit_notes=[self._credit_note(plan) for plan in batch])
            key = idempotency_key(serialize(body), True, self._run_nonce)
            result = self._call(
                functools.partial(
                    self._api.create_credit_notes,
                    self._tenant,
                    body,
                    summarize_errors=False,
                    idempotency_key=key,
                )
            )
            returned = list(result.credit_notes or [])
            if len(returned) != len(batch):
                raise TerminalError(
                    f"{self.name}: sent {len(batch)} credit notes, Xero answered for "
                    f"{len(returned)}"
                )
            for plan, note in zip(batch, returned, strict=True):
                errors = tuple(e.message for e in (note.validation_errors or []) if e.message)
                if note.has_errors or errors:
                    yield CreditNoteResult(plan.key, ok=False, errors=errors or ("rejected",))
                else:
                    yield CreditNoteResult(plan.key, ok=True, remote=_remote_credit(note))

    def _credit_note(self, plan: CreditNotePlan) -> CreditNote:
        return CreditNote(
            type="ACCRECCREDIT",
            contact=Contact(contact_id=plan.contact_id),
            line_items=[_line(line) for line in plan.lines],
            date=plan.credit_date,
            reference=plan.key,
            status="DRAFT",
            currency_code=CurrencyCode(plan.currency),
            line_amount_types=LineAmountTypes(self._config.line_amount_types),
        )

    # -- attachments (receipts) -------------------------------------------------------------

    @property
    def max_attachments(self) -> int:
        return MAX_ATTACHMENTS if self._config.attach_receipts else 0

    def attached_files(self, invoice_id: str) -> set[str]:
        """The file names already attached to an invoice (GET /Invoices/{id}/Attachments)."""
        if not self._config.attach_receipts:
            return set()
        found = self._call(lambda: self._api.get_invoice_attachments(self._tenant, invoice_id))
        return {a.file_name for a in (found.attachments or []) if a.file_name}

    def attach(self, invoice_id: str, file_name: str, receipt: Receipt) -> None:
        """PUT /Invoices/{id}/Attachments/{FileName} with the file as the raw body."""
        key = (
            "attach-"
            + hashlib.sha256(
                b"\n".join(
                    [
                        invoice_id.encode(),
                        file_name.encode(),
                        self._run_nonce.encode(),
                        receipt.content,
                    ]
                )
            ).hexdigest()
        )
        self._call(
            lambda: self._api.create_invoice_attachment_by_file_name(
                self._tenant,
                invoice_id,
                file_name,
                receipt.content,
                include_online=self._config.receipts_online,
                idempotency_key=key,
            )
        )

    # -- plumbing -------------------------------------------------------------------------

    def _sdk_token(self) -> dict[str, Any]:
        self._used_token = self._tokens.access_token()
        return {
            "access_token": self._used_token,
            "token_type": "Bearer",
            "scope": [
                "accounting.transactions",
                "accounting.contacts.read",
                "accounting.attachments",
                "accounting.settings.read",
            ],
            "expires_in": None,
            "expires_at": None,
        }

    def _sdk_saved(self, _token: object) -> None:
        raise TerminalError(f"{self.name}: xero-python tried to refresh the token by itself")

    def _note_limits(self, headers: Mapping[str, str]) -> None:
        for window, remaining in self._calls.note_limits(SERVICE, headers).items():
            self._budget.observe(window, remaining)

    def _pages(self, fetch: Callable[[int], list[Any] | None]) -> Iterator[list[Any]]:
        page = 1
        while True:
            items = self._call(functools.partial(fetch, page)) or []
            if items:
                yield items
            if len(items) < PAGE_SIZE:
                return
            page += 1

    def _call(self, fn: Callable[[], T]) -> T:
        for attempt in self._policy.retrying():
            with attempt:
                return self._once(fn)
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _once(self, fn: Callable[[], T]) -> T:
        """One call; once more if a 401 made the token store refresh the token."""
        refreshed = False
        while True:
            try:
                with self._budget.call():
                    self._calls.add(SERVICE)
                    return fn()
            except ApiException as exc:
                status = int(exc.status) if str(exc.status).isdigit() else 400
                if (
                    status == 401
                    and not refreshed
                    and self._tokens.after_unauthorized(self._used_token)
                ):
                    refreshed = True
                    continue
                headers = exc.headers or {}
                raise_for(self.name, status, headers.get("Retry-After"), _api_detail(exc))
                raise
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise TransientError(
                    f"{self.name}: no answer from Xero ({type(exc).__name__})"
                ) from exc


class _LimitWatchingPool(urllib3.PoolManager):
    """A PoolManager that hands every answer's headers to ``observe``."""

    def __init__(self, observe: Callable[[Mapping[str, str]], None], **kw: Any) -> None:
        super().__init__(**kw)
        self._observe = observe

    def urlopen(self, *args: Any, **kw: Any) -> urllib3.BaseHTTPResponse:
        response = super().urlopen(*args, **kw)
        self._observe(response.headers)
        return response


def idempotency_key(body: object, create: bool, nonce: str) -> str:
    """Same request content in the same run → same key (≤128 characters, never empty).

    The run's nonce keeps a later run from being answered with an earlier run's replayed
    rejection once its cause is fixed; across runs, duplicates are prevented by looking our
    invoices up by Reference first.
    """
    raw = json.dumps([body, nonce], sort_keys=True, default=str).encode()
    return ("create-" if create else "update-") + hashlib.sha256(raw).hexdigest()


def _quote(text: str) -> str:
    """Xero's filter language writes a quote inside a string as two quotes."""
    return text.replace('"', '""')


def _enum_value(value: object) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _dec(value: object) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal("0")


def _line(line: PlannedLine) -> LineItem:
    item = LineItem(
        description=line.description,
        quantity=line.quantity,
        unit_amount=line.unit_price,
    )
    if line.item_code:
        item.item_code = line.item_code
    if line.account_code:
        item.account_code = line.account_code
    if line.tax_type:
        item.tax_type = line.tax_type
    if line.tracking:
        item.tracking = [
            LineItemTracking(name=name, option=option) for name, option in line.tracking
        ]
    return item


class _Referenced(Protocol):
    @property
    def reference(self) -> str: ...
    @property
    def status(self) -> str: ...


R = TypeVar("R", bound=_Referenced)


def _by_reference(documents: Iterable[R]) -> dict[str, R]:
    """Documents keyed by Reference; a live one wins over a deleted or voided one with the
    same key (a key reused after its first document was deleted)."""
    found: dict[str, R] = {}
    for document in documents:
        if document.status in ("DELETED", "VOIDED") and document.reference in found:
            continue
        found[document.reference] = document
    return found


def _remote(inv: Invoice) -> RemoteInvoice:
    lines = [
        PlannedLine(
            description=li.description or "",
            quantity=_dec(li.quantity),
            unit_price=_dec(li.unit_amount),
            item_code=li.item_code,
            account_code=li.account_code,
            tax_type=li.tax_type,
            tracking=tuple((t.name or "", t.option or "") for t in (li.tracking or [])),
        )
        for li in (inv.line_items or [])
    ]
    inv_date = inv.date if isinstance(inv.date, date) else date.min
    due = inv.due_date if isinstance(inv.due_date, date) else date.min
    return RemoteInvoice(
        invoice_id=str(inv.invoice_id),
        number=inv.invoice_number,
        reference=inv.reference or "",
        status=_enum_value(inv.status) or "",
        content_hash=content_hash(
            str(inv.contact.contact_id) if inv.contact else "",
            _enum_value(inv.currency_code) or "",
            inv_date,
            due,
            lines,
        ),
        subtotal=_dec(inv.sub_total),
        total_tax=_dec(inv.total_tax),
        total=_dec(inv.total),
        has_attachments=bool(inv.has_attachments),
    )


def _remote_credit(note: CreditNote) -> RemoteCreditNote:
    return RemoteCreditNote(
        credit_note_id=str(note.credit_note_id),
        number=note.credit_note_number,
        reference=note.reference or "",
        status=_enum_value(note.status) or "",
        total=_dec(note.total),
    )


def _api_detail(exc: ApiException) -> str:
    body = exc.body
    try:
        data = json.loads(body) if body else None
    except (TypeError, ValueError):
        data = None
    if isinstance(data, dict):
        messages = [
            err.get("Message", "")
            for element in data.get("Elements", []) or []
            for err in element.get("ValidationErrors", []) or []
        ]
        text = data.get("Detail") or data.get("Message") or data.get("Title") or ""
        return "; ".join([str(text), *messages]).strip("; ") or str(exc.reason)
    return str(exc.reason)
