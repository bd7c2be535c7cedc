"""The database schema. It changes only through the Alembic migrations in core/migrations."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import BigInteger, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.dbtypes import DecimalText, UTCDateTime


class LedgerState(StrEnum):
    PLANNED = "planned"  # assigned to an invoice key, not yet sent
    PUSHED = "pushed"  # sent in a write whose answer we have not seen
    CONFIRMED = "confirmed"  # the target confirmed the invoice holds this entry
    EXPORTED = "exported"  # in an import file awaiting the operator's confirmation: not billed


class InvoiceStatus(StrEnum):
    PLANNED = "planned"  # not yet in the target
    DRAFT = "draft"  # in the target as DRAFT; may still be updated
    LOCKED = "locked"  # no longer DRAFT in the target; never touched again
    FAILED = "failed"  # the target rejected it; see error
    EXPORTED = "exported"  # written to an import file; billed once the import is confirmed


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # some invoices failed
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # its process died; the next run of the profile found it


class SourceEntryRow(SQLModel, table=True):
    """The latest version seen of each tracker entry."""

    __tablename__ = "source_entries"

    source: str = Field(primary_key=True, max_length=64)
    source_id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)
    spent_date: date = Field(index=True)
    quantity: Decimal = Field(sa_type=DecimalText)
    unit_price: Decimal | None = Field(default=None, sa_type=DecimalText)
    currency: str = Field(max_length=3)
    client_id: str = Field(max_length=64, index=True)
    client_name: str = Field(max_length=255)
    project_id: str = Field(max_length=64)
    project_name: str = Field(max_length=255)
    task_id: str = Field(max_length=64)
    task_name: str = Field(max_length=255)
    user_id: str = Field(max_length=64)
    user_name: str = Field(max_length=255)
    notes: str = Field(default="", sa_type=Text)
    billable: bool
    approved: bool
    billed_in_source: bool
    running: bool
    deleted: bool = False
    receipt_url: str | None = Field(default=None, sa_type=Text)
    content_hash: str = Field(max_length=64)
    source_updated_at: datetime = Field(sa_type=UTCDateTime)
    first_seen_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)


class SyncCursor(SQLModel, table=True):
    """How far a source has been pulled. Committed with the entries it covers."""

    __tablename__ = "sync_cursors"

    source: str = Field(primary_key=True, max_length=64)
    covered_from: date
    updated_since: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class InvoiceRow(SQLModel, table=True):
    """One invoice we plan or have pushed, keyed by a deterministic key (sent as Reference)."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("profile", "contact", "currency", "period", "seq", name="uq_invoice_slot"),
    )

    key: str = Field(primary_key=True, max_length=64)
    profile: str = Field(max_length=32, index=True)
    target: str = Field(max_length=64)
    contact: str = Field(max_length=300, description="the mapping's contact reference")
    contact_id: str | None = Field(default=None, max_length=64)
    contact_name: str = Field(default="", max_length=255)
    currency: str = Field(max_length=3)
    period: str = Field(max_length=16, index=True, description="the period's label")
    seq: int = 1
    remote_id: str | None = Field(default=None, max_length=64)
    number: str | None = Field(default=None, max_length=64)
    status: str = Field(default=InvoiceStatus.PLANNED.value, max_length=16)
    remote_status: str | None = Field(default=None, max_length=16)
    subtotal: Decimal = Field(sa_type=DecimalText)
    total_tax: Decimal | None = Field(default=None, sa_type=DecimalText)
    total: Decimal | None = Field(default=None, sa_type=DecimalText)
    content_hash: str | None = Field(
        default=None, max_length=64, description="content last confirmed by the target"
    )
    pushed_hash: str | None = Field(
        default=None, max_length=64, description="content of a write not yet confirmed"
    )
    line_count: int = 0
    error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class LedgerRow(SQLModel, table=True):
    """Entry → invoice. The primary key on the entry alone means an entry is billed once."""

    __tablename__ = "ledger"

    source: str = Field(primary_key=True, max_length=64)
    source_id: str = Field(primary_key=True, max_length=64)
    invoice_key: str = Field(foreign_key="invoices.key", index=True, max_length=64)
    state: str = Field(max_length=16)
    entry_hash: str = Field(max_length=64, description="content hash of the entry as billed")
    confirmed_hash: str | None = Field(
        default=None,
        max_length=64,
        description="invoice content at which the target last confirmed holding this entry",
    )
    quantity: Decimal = Field(sa_type=DecimalText)
    unit_price: Decimal = Field(sa_type=DecimalText)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class WritebackState(StrEnum):
    PENDING = "pending"  # the target confirmed the invoice; the tracker has not been told
    DONE = "done"
    FAILED = "failed"  # tried and failed; retried on the next run
    SKIPPED = "skipped"  # the tracker cannot record it (e.g. Clockify expenses): never retried


class WritebackRow(SQLModel, table=True):
    """Telling a tracker an entry was invoiced. Recorded with the confirmation, sent after."""

    __tablename__ = "writebacks"

    source: str = Field(primary_key=True, max_length=64)
    source_id: str = Field(primary_key=True, max_length=64)
    invoice_key: str = Field(max_length=64)
    state: str = Field(default=WritebackState.PENDING.value, max_length=16, index=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=Text)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ReceiptAttachmentRow(SQLModel, table=True):
    """An entry's receipt, attached to one of our invoices in the target (so never twice)."""

    __tablename__ = "receipt_attachments"

    invoice_key: str = Field(primary_key=True, max_length=64)
    source: str = Field(primary_key=True, max_length=64)
    source_id: str = Field(primary_key=True, max_length=64)
    file_name: str = Field(max_length=255)
    attached_at: datetime = Field(sa_type=UTCDateTime)


class LeaseRow(SQLModel, table=True):
    """Who is syncing a profile, until when. One row per profile; expired rows are taken over."""

    __tablename__ = "leases"

    profile: str = Field(primary_key=True, max_length=32)
    owner: str = Field(max_length=128)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    acquired_at: datetime = Field(sa_type=UTCDateTime)


class SyncRunRow(SQLModel, table=True):
    __tablename__ = "sync_runs"

    id: str = Field(primary_key=True, max_length=32)
    profile: str = Field(max_length=32, index=True)
    period: str = Field(max_length=16)
    dry_run: bool = False
    status: str = Field(max_length=16)
    trigger: str = Field(
        default="manual",
        max_length=16,
        sa_column_kwargs={"server_default": "manual"},
        description="manual, schedule or retry",
    )
    retry_of: str | None = Field(default=None, max_length=32, description="the run retried")
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    report: str = Field(default="{}", sa_type=Text, description="the run report as JSON")


class RunEventRow(SQLModel, table=True):
    """One failure or noteworthy outcome of a run, with its class (core.report.ErrorClass)."""

    __tablename__ = "run_events"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="sync_runs.id", index=True, max_length=32)
    kind: str = Field(max_length=16, description="entry, invoice or run")
    error_class: str = Field(max_length=32)
    subject: str = Field(sa_type=Text, description="what it is about, e.g. an invoice key")
    message: str = Field(sa_type=Text)
    entries: int | None = None
    hours: Decimal | None = Field(default=None, sa_type=DecimalText)
    amount: Decimal | None = Field(default=None, sa_type=DecimalText)
    created_at: datetime = Field(sa_type=UTCDateTime)


class ConnectionStatus(StrEnum):
    OK = "ok"
    NEEDS_REAUTH = "needs_reauth"  # the provider refused the refresh token: connect again


class OAuthConnectionRow(SQLModel, table=True):
    """One connected organisation's OAuth2 token set, encrypted (core.vault) with a key held
    outside the database. Refreshed under a lock on this row (core.tokens)."""

    __tablename__ = "oauth_connections"

    name: str = Field(primary_key=True, max_length=32)
    provider: str = Field(max_length=16)
    tenant_id: str = Field(max_length=64, description="Xero tenant id or QuickBooks realm id")
    tenant_name: str = Field(default="", max_length=255)
    token_set: str = Field(sa_type=Text, description="encrypted JSON: access, refresh, scope")
    expires_at: datetime = Field(sa_type=UTCDateTime, description="the access token's expiry")
    previous_refresh: str | None = Field(
        default=None,
        sa_type=Text,
        description="encrypted refresh token the current set was obtained with; kept until "
        "the current refresh token has been used once",
    )
    status: str = Field(default=ConnectionStatus.OK.value, max_length=16)
    refreshed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class StoredSecretRow(SQLModel, table=True):
    """A named secret (`hourbridge secrets set NAME`, used as ${secret:NAME}), encrypted."""

    __tablename__ = "stored_secrets"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_type=Text, description="encrypted")
    updated_at: datetime = Field(sa_type=UTCDateTime)


class MappingVersionRow(SQLModel, table=True):
    """One version of a profile's mapping (a MappingRules document as JSON). The highest
    version is the current one; older ones are kept as the history of who changed what."""

    __tablename__ = "mapping_versions"
    __table_args__ = (UniqueConstraint("profile", "version", name="uq_mapping_version"),)

    id: int | None = Field(default=None, primary_key=True)
    profile: str = Field(max_length=32, index=True)
    version: int
    rules: str = Field(sa_type=Text, description="MappingRules as JSON, keyed by source ids")
    author: str = Field(max_length=128)
    note: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)


class AlertRow(SQLModel, table=True):
    """One alert message sent (or attempted) after a run, per channel: at most one per run."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("run_id", "channel", name="uq_alert_run_channel"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True, max_length=32)
    profile: str = Field(max_length=32)
    channel: str = Field(max_length=16, description="webhook or email")
    reasons: str = Field(sa_type=Text, description="why it fired, comma-separated")
    delivered: bool
    error: str | None = Field(default=None, sa_type=Text, description="redacted")
    created_at: datetime = Field(sa_type=UTCDateTime)


class DriftState(StrEnum):
    OPEN = "open"  # waits to go onto the next invoice (or a credit note)
    PUSHED = "pushed"  # sent with the invoice or credit note named in settled_by, unconfirmed
    SETTLED = "settled"  # the target confirmed the invoice or credit note that carries it
    FLAGGED = "flagged"  # recorded for review; nothing pushed (drift: flag, or cannot be priced)
    NOTED = "noted"  # changed, but neither hours nor money moved (a note, say): nothing to do


class DriftRow(SQLModel, table=True):
    """An entry that changed or disappeared after its invoice left DRAFT, handled once.

    One row per change seen, numbered per entry: each goes from the position the previous one
    (or the ledger, for the first) left, so a later re-edit settles only the new delta.
    """

    __tablename__ = "drifts"

    source: str = Field(primary_key=True, max_length=64)
    source_id: str = Field(primary_key=True, max_length=64)
    seq: int = Field(primary_key=True)
    profile: str = Field(max_length=32, index=True)
    invoice_key: str = Field(max_length=64, description="the invoice that billed the entry")
    invoice_number: str | None = Field(default=None, max_length=64)
    contact: str = Field(max_length=300, description="that invoice's contact reference")
    currency: str = Field(max_length=3)
    period: str = Field(max_length=16, description="that invoice's period")
    change: str = Field(max_length=16, description="edited or deleted")
    entry_hash: str = Field(max_length=64, description="content hash the entry changed to")
    hours_before: Decimal = Field(sa_type=DecimalText)
    price_before: Decimal = Field(sa_type=DecimalText)
    hours_after: Decimal = Field(sa_type=DecimalText)
    price_after: Decimal = Field(sa_type=DecimalText)
    delta_hours: Decimal = Field(sa_type=DecimalText)
    delta_amount: Decimal = Field(sa_type=DecimalText)
    mode: str = Field(max_length=16, description="adjustment, credit_note or flag")
    state: str = Field(max_length=16, index=True)
    settled_by: str | None = Field(
        default=None, max_length=64, description="key of the invoice or credit note carrying it"
    )
    note: str | None = Field(default=None, sa_type=Text)
    detected_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class RetainerBalanceRow(SQLModel, table=True):
    """A retainer's hours in one period: what came in, what was used, what rolls on.

    Written with the invoice it describes (in the transaction that records that invoice), and
    recomputed, never added to, when the period is planned again: a re-run can't count twice.
    """

    __tablename__ = "retainer_balances"

    profile: str = Field(primary_key=True, max_length=32)
    retainer: str = Field(primary_key=True, max_length=140, description="client[/project] ids")
    period: str = Field(primary_key=True, max_length=16)
    seq: int = Field(primary_key=True, description="the period's invoice for the contact")
    invoice_key: str = Field(max_length=64)
    hours_included: Decimal = Field(sa_type=DecimalText)
    hours_in: Decimal = Field(sa_type=DecimalText, description="rolled over from the period before")
    hours_used: Decimal = Field(sa_type=DecimalText)
    hours_overage: Decimal = Field(sa_type=DecimalText)
    hours_out: Decimal = Field(sa_type=DecimalText, description="rolled over to the next period")
    updated_at: datetime = Field(sa_type=UTCDateTime)


class UserRow(SQLModel, table=True):
    """A person who may sign in to the web console (`hourbridge users add`)."""

    __tablename__ = "console_users"

    name: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=16, description="viewer or finance")
    password_hash: str = Field(sa_type=Text, description="argon2id, never the password")
    created_at: datetime = Field(sa_type=UTCDateTime)


class ApprovalRow(SQLModel, table=True):
    """A person approved a profile's planned invoices for a period (the console's Approve).
    ``fingerprint`` names exactly what they saw: a later change to the plan needs a new one."""

    __tablename__ = "approvals"

    id: int | None = Field(default=None, primary_key=True)
    profile: str = Field(max_length=32, index=True)
    period: str = Field(max_length=16)
    fingerprint: str = Field(max_length=64)
    approved_by: str = Field(max_length=64)
    approved_at: datetime = Field(sa_type=UTCDateTime)
    run_id: str | None = Field(default=None, max_length=32, description="the push it started")


class ConsoleAuditRow(SQLModel, table=True):
    """What a console user changed outside the mapping store (which keeps its own authors):
    approvals, retries, connections removed."""

    __tablename__ = "console_audit"

    id: int | None = Field(default=None, primary_key=True)
    user: str = Field(max_length=64)
    action: str = Field(max_length=32)
    subject: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)


class CallBudgetRow(SQLModel, table=True):
    """Calls made in one fixed window of one provider account's budget, by every process on
    this database (core.budgets). Windows start at whole multiples of their period since the
    epoch; old ones are deleted when a new one opens, and by the retention job."""

    __tablename__ = "call_budgets"

    provider: str = Field(primary_key=True, max_length=32)
    account: str = Field(primary_key=True, max_length=128)
    period_ms: int = Field(primary_key=True, sa_type=BigInteger)
    window_start_ms: int = Field(primary_key=True, sa_type=BigInteger)
    calls: int


class CallSlotRow(SQLModel, table=True):
    """One place under a provider account's concurrency limit (Xero's 5, QuickBooks' 10 calls
    at once), shared by every process on this database (core.budgets.SharedGate). A place is
    free when it has no holder or its hold expired (a process that died mid-call)."""

    __tablename__ = "call_slots"

    provider: str = Field(primary_key=True, max_length=32)
    account: str = Field(primary_key=True, max_length=128)
    slot: int = Field(primary_key=True)
    holder: str | None = Field(default=None, max_length=64)
    expires_at_ms: int = Field(default=0, sa_type=BigInteger)
