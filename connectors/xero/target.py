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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

import urllib3
from xero_python.accounting import (
    AccountingApi,
    Contact,
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

from connectors.base import Directory, PushResult, Receipt, RemoteContact, RemoteInvoice
from connectors.xero.config import XeroConfig
from core.errors import TerminalError, TransientError
from core.http import CallCounter, RateBudget, RetryPolicy, raise_for
from core.invoices import InvoicePlan, PlannedLine, content_hash
from core.periods import Period
from mapping.resolver import ContactKind, ContactRef

SERVICE = "xero"
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
    ) -> None:
        self.name = name
        self._config = config
        self._calls = calls
        self._policy = policy or RetryPolicy(max_attempts=config.max_attempts)
        self._budget = RateBudget(config.calls_per_minute, 60.0, sleep=self._policy.sleep)
        self._tenant = str(config.tenant_id)
        self._run_nonce = uuid.uuid4().hex  # one target per run
        self._item_defaults: dict[str, tuple[str | None, str | None]] = {}
        # (category, option) case-folded → as Xero spells them; loaded when first needed
        self._tracking_names: dict[tuple[str, str], tuple[str, str]] | None = None
        # A static bearer token: no expiry known here and no refresh token, so the SDK never
        # tries to refresh by itself (the OAuth flow and token store come with their own issue).
        token = {
            "access_token": config.access_token.get_secret_value(),
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
        client = ApiClient(
            Configuration(oauth2_token=OAuth2Token()),
            oauth2_token_getter=lambda: token,
            oauth2_token_saver=lambda _new: None,
        )
        # No hidden retries: a PUT retried by urllib3 after a lost answer is invisible to us.
        client.rest_client.pool_manager = urllib3.PoolManager(num_pools=4, maxsize=4, retries=False)
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
        found: dict[str, RemoteInvoice] = {}
        for page in self._pages(
            lambda p: (
                self._api.get_invoices(
                    self._tenant, where=where, page=p, page_size=PAGE_SIZE
                ).invoices
            )
        ):
            for inv in page:
                remote = _remote(inv)
                if remote.status in ("DELETED", "VOIDED") and remote.reference in found:
                    continue  # a live invoice with the same key wins over a deleted one
                found[remote.reference] = remote
        return found

    # -- writes ---------------------------------------------------------------------------

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
                self._budget.acquire()
                self._calls.add(SERVICE)
                try:
                    return fn()
                except ApiException as exc:
                    headers = exc.headers or {}
                    raise_for(
                        self.name,
                        int(exc.status) if str(exc.status).isdigit() else 400,
                        headers.get("Retry-After"),
                        _api_detail(exc),
                    )
                    raise
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    raise TransientError(
                        f"{self.name}: no answer from Xero ({type(exc).__name__})"
                    ) from exc
        raise AssertionError("unreachable: tenacity reraises the last error")


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
