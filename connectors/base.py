"""The contracts connectors implement. Trackers produce canonical entries; targets take plans."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from core.invoices import InvoicePlan, PlannedLine
from core.model import SourceEntry, WritebackResult
from core.periods import Period
from mapping.resolver import ContactKind, ContactRef


@dataclass(frozen=True)
class PullRequest:
    """What to pull.

    Every entry spent on or after ``spent_from`` and changed since ``updated_since`` (all of
    them when None). If ``window`` is given and the source cannot report deletions itself,
    the pull must also list every live entry spent within it (first to last day inclusive),
    so the engine can tell which entries disappeared.
    """

    spent_from: date
    updated_since: datetime | None
    window: tuple[date, date] | None = None


@runtime_checkable
class TrackerSource(Protocol):
    """A time tracker. ``pull`` yields every entry matching the request, paging to the end.

    ``reports_deletions``: True if an incremental pull yields deleted entries itself (with
    ``deleted=True``); False if the engine must infer deletions from the window's listing.
    """

    name: str
    reports_deletions: bool

    def pull(self, request: PullRequest) -> Iterator[SourceEntry]: ...


@dataclass(frozen=True)
class RemoteContact:
    contact_id: str
    name: str
    number: str | None
    currency: str | None


@dataclass(frozen=True)
class Directory:
    """The target's contacts and item codes (and tax codes where checked), fetched once."""

    contacts: dict[ContactRef, RemoteContact]
    item_codes: frozenset[str]
    tax_codes: frozenset[str] | None = None  # None: the target validates tax codes itself
    requires_item: bool = False  # every line needs an item (QuickBooks), not just an account
    open_names: bool = False  # no directory to check (import files): any contact name goes
    classes: frozenset[str] | None = None  # QuickBooks Classes (names and Ids); None: unused
    departments: frozenset[str] | None = None  # QuickBooks Departments; None: unused
    max_description: int | None = None  # longest line text the target takes; None: no limit
    item_names: dict[str, str] = field(default_factory=dict)  # item code → name (suggestions)

    def contact(self, ref: ContactRef) -> RemoteContact | None:
        if self.open_names:  # the name is the identity: (ID, name) comes back from grouping
            if ref.kind is ContactKind.NUMBER:
                return None
            return RemoteContact(contact_id=ref.value, name=ref.value, number=None, currency=None)
        if ref.kind is ContactKind.ID:
            return self.contacts.get(ContactRef(ref.kind, ref.value.lower()))
        return self.contacts.get(ref)


@dataclass(frozen=True)
class RemoteInvoice:
    invoice_id: str
    number: str | None
    reference: str
    status: str
    content_hash: str
    subtotal: Decimal
    total_tax: Decimal
    total: Decimal
    has_attachments: bool | None = None  # None: the target doesn't say


@dataclass(frozen=True)
class PushResult:
    key: str
    ok: bool
    remote: RemoteInvoice | None = None
    errors: tuple[str, ...] = ()


@runtime_checkable
class InvoicedWriter(Protocol):
    """A tracker that can be told which entries were invoiced (Clockify, Toggl; not Harvest)."""

    name: str

    def mark_invoiced(self, source_ids: Sequence[str]) -> WritebackResult: ...


@dataclass(frozen=True)
class Receipt:
    """A receipt file as the tracker serves it."""

    file_name: str
    content_type: str
    content: bytes


@runtime_checkable
class ReceiptSource(Protocol):
    """A tracker whose expenses' ``receipt_url`` it can download (with its own credentials)."""

    name: str

    def fetch_receipt(self, url: str) -> Receipt: ...


@runtime_checkable
class AttachmentTarget(Protocol):
    """A target that takes files on its invoices (Xero's Attachments API).

    ``attached_files`` lists the file names already on an invoice (so a re-run never attaches
    the same receipt twice); ``attach`` adds one file under ``file_name``.
    """

    max_attachments: int

    def attached_files(self, invoice_id: str) -> set[str]: ...

    def attach(self, invoice_id: str, file_name: str, receipt: Receipt) -> None: ...


@runtime_checkable
class AccountingTarget(Protocol):
    """An accounting system that takes invoice plans.

    ``load_directory`` and ``find_invoices`` are the per-run look-ups; ``push`` creates
    (remote id None) or updates DRAFT invoices and yields one result per plan.
    """

    name: str

    def load_directory(self) -> Directory: ...

    def fingerprint(self, plan: InvoicePlan) -> str:
        """The content hash of what this target would store for ``plan``, computed the same
        way as ``RemoteInvoice.content_hash``, so the two compare equal when nothing changed."""
        ...

    def find_invoices(self, reference_prefix: str, period: Period) -> dict[str, RemoteInvoice]:
        """Our invoices for ``period``: those whose key starts with ``reference_prefix``."""
        ...

    def push(self, plans: Sequence[tuple[InvoicePlan, str | None]]) -> Iterator[PushResult]: ...


@runtime_checkable
class BatchedTarget(Protocol):
    """A target whose ``push`` sends its plans in batches of ``push_batch_size`` (one request,
    or one per kind of write, per batch). The engine hands it one batch at a time, so a run
    asked to stop can stop between two batches with every answer recorded. A target without
    it gets all its plans in one call (an import file is written once)."""

    @property
    def push_batch_size(self) -> int: ...


@dataclass(frozen=True)
class CreditNotePlan:
    """A DRAFT credit note for a reduction billed on an invoice that left DRAFT.

    ``key`` is deterministic (sent as Reference), so a look-up before each write keeps a
    re-run or a retry from creating a second one. Line quantities are the hours credited.
    """

    key: str
    contact_id: str
    contact_name: str
    currency: str
    credit_date: date
    lines: tuple[PlannedLine, ...]

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0"))


@dataclass(frozen=True)
class RemoteCreditNote:
    credit_note_id: str
    number: str | None
    reference: str
    status: str
    total: Decimal


@dataclass(frozen=True)
class CreditNoteResult:
    key: str
    ok: bool
    remote: RemoteCreditNote | None = None
    errors: tuple[str, ...] = ()


@runtime_checkable
class CreditNoteTarget(Protocol):
    """A target that also takes credit notes (Xero: ACCRECCREDIT)."""

    def find_credit_notes(self, reference_prefix: str) -> dict[str, RemoteCreditNote]:
        """Our credit notes: those whose Reference starts with ``reference_prefix``."""
        ...

    def push_credit_notes(self, plans: Sequence[CreditNotePlan]) -> Iterator[CreditNoteResult]:
        """Create each as a DRAFT credit note; one result per plan."""
        ...
