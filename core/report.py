"""The run report: what a sync did, for people (tables) and machines (--json)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from core.errors import AuthError, HourbridgeError, TerminalError, TransientError
from core.lease import LeaseHeldError


class PendingReason(StrEnum):
    UNMAPPED = "unmapped"
    UNAPPROVED = "unapproved"
    NON_BILLABLE = "non_billable"
    ALREADY_BILLED = "already_billed"
    RUNNING = "running"
    OUT_OF_PERIOD = "out_of_period"
    LATE = "late"  # of this period, which closed before it was invoiced: goes on the next open one


class InvoiceAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    DELETE = "delete"  # a DRAFT of ours that no longer holds any billable entry
    LOCKED = "locked"
    FAILED = "failed"


@dataclass
class UnmappedItem:
    """One missing mapping (a client, a task, a contact...) with what waits on it."""

    what: str
    entries: int = 0
    hours: Decimal = Decimal("0")
    value: dict[str, Decimal] = field(default_factory=dict)  # at the tracker's rates, by currency

    def at_stake(self) -> Decimal:
        """For sorting: the largest amount in any one currency."""
        return max(self.value.values(), default=Decimal("0"))


@dataclass
class EntryChange:
    """An entry that changed in the tracker after we had seen it: edited or deleted."""

    entry: str
    change: str
    client: str
    spent_date: str
    hours_before: Decimal
    hours_after: Decimal


@dataclass
class DriftSummary:
    """A billed entry that changed or disappeared, its delta and how it was handled.

    ``handling``: draft_updated (its invoice was still DRAFT and is rebuilt), adjustment,
    credit_note or flag (the profile's ``drift`` setting), or draft_of_other_period (its
    DRAFT belongs to a period not synced in this run).
    """

    entry: str
    client: str
    spent_date: str
    invoice: str  # the invoice that billed it: its number, else our key
    change: str  # edited or deleted
    hours_before: Decimal
    hours_after: Decimal
    delta_hours: Decimal
    delta_amount: Decimal
    currency: str
    handling: str
    outcome: str
    next_step: str


DRIFT_DECIMALS = ("hours_before", "hours_after", "delta_hours", "delta_amount")


@dataclass
class LineExplanation:
    """One planned line and why it says what it says (``preview --explain``)."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    rate_rule: str  # the rule(s) that gave its price
    rounding: str  # how its hours were rounded
    entries: int
    tax_type: str | None = None  # the target computes the tax itself, from this


@dataclass
class InvoiceSummary:
    key: str
    contact: str
    currency: str
    action: str
    lines: int
    entries: int
    subtotal: Decimal
    total: Decimal | None = None
    number: str | None = None
    remote_id: str | None = None
    error: str | None = None
    explain: list[LineExplanation] | None = None  # only when asked for (preview --explain)


@dataclass
class RunReport:
    run_id: str
    profile: str
    period: str
    dry_run: bool
    status: str = "running"
    trigger: str = "manual"  # manual, schedule or retry
    retry_of: str | None = None  # the run a retry repeats
    invoices_created: int = 0
    invoices_updated: int = 0
    invoices_unchanged: int = 0
    invoices_deleted: int = 0
    invoices_failed: int = 0
    invoices_left: int = 0  # writes an interrupted run did not send: the next run sends them
    entries_pulled: int = 0
    entries_billed: int = 0
    entries_pending: dict[str, int] = field(
        default_factory=lambda: {reason.value: 0 for reason in PendingReason}
    )
    unmapped: list[UnmappedItem] = field(default_factory=list)
    entries_changed: list[EntryChange] = field(default_factory=list)
    drifts: list[DriftSummary] = field(default_factory=list)  # billed entries that changed
    drift_totals: dict[str, dict[str, Decimal]] = field(default_factory=dict)  # by currency
    drifts_noted: int = 0  # billed entries changed without moving hours or price
    invoices: list[InvoiceSummary] = field(default_factory=list)
    writebacks_done: int = 0
    writebacks_failed: int = 0
    writebacks_skipped: int = 0
    receipts_attached: int = 0  # receipts newly attached to invoices in the target
    api_calls: dict[str, int] = field(default_factory=dict)
    api_retries: dict[str, int] = field(default_factory=dict)  # retries absorbed, per service
    api_rate_limited: dict[str, int] = field(default_factory=dict)  # of which throttled (429…)
    # what each provider's last answer said is left of its limits: {"xero": {"day": 4990}}
    api_remaining: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error_classes: dict[str, int] = field(default_factory=dict)  # run events by class
    mapping_version: int | None = None  # the stored mapping version used (None: the config's)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))  # type: ignore[no-any-return]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> RunReport:
        data = json.loads(text)
        data["unmapped"] = [
            UnmappedItem(
                u["what"],
                u["entries"],
                Decimal(u["hours"]),
                {k: Decimal(v) for k, v in u.get("value", {}).items()},
            )
            for u in data["unmapped"]
        ]
        data["entries_changed"] = [
            EntryChange(
                **{
                    **c,
                    "hours_before": Decimal(c["hours_before"]),
                    "hours_after": Decimal(c["hours_after"]),
                }
            )
            for c in data.get("entries_changed", [])
        ]
        data["drifts"] = [
            DriftSummary(**{**d, **{k: Decimal(d[k]) for k in DRIFT_DECIMALS}})
            for d in data.get("drifts", [])
        ]
        data["drift_totals"] = {
            currency: {k: Decimal(v) for k, v in sums.items()}
            for currency, sums in data.get("drift_totals", {}).items()
        }
        data["invoices"] = [
            InvoiceSummary(
                **{
                    **inv,
                    "subtotal": Decimal(inv["subtotal"]),
                    "total": None if inv["total"] is None else Decimal(inv["total"]),
                    "explain": _explanations(inv.get("explain")),
                }
            )
            for inv in data["invoices"]
        ]
        return cls(**data)


def _explanations(raw: list[dict[str, Any]] | None) -> list[LineExplanation] | None:
    if raw is None:
        return None
    money = ("quantity", "unit_price", "amount")
    return [LineExplanation(**{**x, **{k: Decimal(x[k]) for k in money}}) for x in raw]


class ErrorClass(StrEnum):
    """What kind of failure (or noteworthy outcome) a run event records."""

    MAPPING_MISSING = "mapping_missing"  # entries wait for a mapping in the config
    VALIDATION = "validation"  # bad data or config; retrying as-is will not help
    RATE_LIMITED = "rate_limited"  # a service throttled us; retry later
    AUTH = "auth"  # credentials refused
    NETWORK = "network"  # transient: no answer, 5xx, another run holding the lease
    TARGET_REJECTED = "target_rejected"  # the target refused one invoice; others went through
    DRIFT = "drift"  # an entry was edited or deleted in the tracker after we saw it


class EventKind(StrEnum):
    ENTRY = "entry"
    INVOICE = "invoice"
    RUN = "run"
    RETRY = "retry"  # retries a service needed and the run absorbed: not a failure


NEXT_STEPS: dict[ErrorClass, str] = {
    ErrorClass.MAPPING_MISSING: (
        "add the mapping in the config, then run `hourbridge sync --period {period}` again"
        " (a profile without `mapping:` in its config: `hourbridge mappings suggest` or"
        " `hourbridge mappings import`)"
    ),
    ErrorClass.VALIDATION: (
        "fix the data or config the message names, then run `hourbridge sync --period {period}`"
        " again"
    ),
    ErrorClass.RATE_LIMITED: "re-run later; the run is safe to repeat",
    ErrorClass.AUTH: (
        "check the access token in the environment variable the config names for that service"
        " (or reconnect the app), then re-run"
    ),
    ErrorClass.NETWORK: "re-run later; the run is safe to repeat",
    ErrorClass.TARGET_REJECTED: (
        "fix the invoice's cause (see message) and re-run; nothing else was affected"
    ),
    ErrorClass.DRIFT: "review the listed entries; their invoices follow the tracker on re-run",
}

# Message fragments that mark a transient error as throttling rather than a network fault.
RATE_LIMIT_MARKS = ("429", "throttl", "rate limit", "quota")

# First match wins, so subclasses come before their bases. LeaseHeldError (another process
# is syncing the profile) is "network": transient, and re-running later is the remedy.
EXCEPTION_CLASSES: tuple[tuple[type[BaseException], ErrorClass], ...] = (
    (AuthError, ErrorClass.AUTH),
    (TransientError, ErrorClass.NETWORK),  # or RATE_LIMITED, by RATE_LIMIT_MARKS
    (LeaseHeldError, ErrorClass.NETWORK),
    (TerminalError, ErrorClass.VALIDATION),
    (HourbridgeError, ErrorClass.VALIDATION),  # ConfigError and any other of ours
)


def classify_exception(exc: BaseException) -> ErrorClass:
    """The class of a run-level failure. Unexpected exceptions (bugs) count as validation."""
    for kind, error_class in EXCEPTION_CLASSES:
        if isinstance(exc, kind):
            if error_class is ErrorClass.NETWORK and isinstance(exc, TransientError):
                text = str(exc).lower()
                if any(mark in text for mark in RATE_LIMIT_MARKS):
                    return ErrorClass.RATE_LIMITED
            return error_class
    return ErrorClass.VALIDATION


def next_step(error_class: ErrorClass, period: str) -> str:
    return NEXT_STEPS[error_class].format(period=period)


@dataclass(frozen=True)
class RunEvent:
    """One failure or noteworthy outcome of a run, stored in ``run_events``."""

    kind: EventKind
    error_class: ErrorClass
    subject: str
    message: str
    entries: int | None = None
    hours: Decimal | None = None
    amount: Decimal | None = None


def run_events(report: RunReport, failure: BaseException | None = None) -> list[RunEvent]:
    """The events a finished run records: missing mappings, rejected invoices, the run's own
    failure (``failure``, the exception that stopped it) and entries changed in a tracker."""
    events = [
        RunEvent(
            EventKind.ENTRY,
            ErrorClass.MAPPING_MISSING,
            subject=item.what,
            message=f"{item.entries} entries ({item.hours} h) wait for this mapping",
            entries=item.entries,
            hours=item.hours,
        )
        for item in report.unmapped
    ]
    events += [
        RunEvent(
            EventKind.INVOICE,
            ErrorClass.TARGET_REJECTED,
            subject=f"invoice {inv.key} ({inv.contact})",
            message=inv.error or "rejected by the target",
            entries=inv.entries,
            amount=inv.subtotal,
        )
        for inv in report.invoices
        if inv.action == InvoiceAction.FAILED.value
    ]
    if failure is not None:
        events.append(
            RunEvent(
                EventKind.RUN,
                classify_exception(failure),
                subject=f"run of profile {report.profile} for {report.period}",
                message=report.errors[-1] if report.errors else str(failure),
            )
        )
    billed = {d.entry for d in report.drifts}
    events += [
        RunEvent(
            EventKind.ENTRY,
            ErrorClass.DRIFT,
            subject=f"entry {c.entry} ({c.client}, {c.spent_date})",
            message=f"{c.change} in the tracker: {c.hours_before} h → {c.hours_after} h",
            hours=c.hours_after,
        )
        for c in report.entries_changed
        if c.entry not in billed
    ]
    events += [
        RunEvent(
            EventKind.ENTRY,
            ErrorClass.DRIFT,
            subject=f"entry {d.entry} ({d.client}, {d.spent_date}) billed on {d.invoice}",
            message=(
                f"{d.change} after invoicing: {d.hours_before} h → {d.hours_after} h, delta "
                f"{d.delta_hours} h, {d.delta_amount} {d.currency}; {d.handling}: {d.outcome}."
                f" Next: {d.next_step}"
            ),
            hours=d.delta_hours,
            amount=d.delta_amount,
        )
        for d in report.drifts
    ]
    events += [
        RunEvent(
            EventKind.RETRY,
            ErrorClass.RATE_LIMITED if report.api_rate_limited.get(service) else ErrorClass.NETWORK,
            subject=service,
            message=f"{count} retries absorbed ({report.api_rate_limited.get(service, 0)} "
            "rate-limited)",
            entries=count,
        )
        for service, count in sorted(report.api_retries.items())
        if count
    ]
    return events


def drift_totals(drifts: list[DriftSummary]) -> dict[str, dict[str, Decimal]]:
    """Delta hours and money per currency, over every drift listed."""
    out: dict[str, dict[str, Decimal]] = {}
    for d in drifts:
        sums = out.setdefault(d.currency, {"hours": Decimal("0"), "amount": Decimal("0")})
        sums["hours"] += d.delta_hours
        sums["amount"] += d.delta_amount
    return out


def count_classes(events: list[RunEvent]) -> dict[str, int]:
    """Failure events per class, every class present (zero included) so the keys never vary.
    Absorbed retries (kind ``retry``) are not failures and are not counted here."""
    counts = dict.fromkeys((c.value for c in ErrorClass), 0)
    for event in events:
        if event.kind is not EventKind.RETRY:
            counts[event.error_class.value] += 1
    return counts


def _jsonable(value: Any) -> Any:
    """Decimals become strings (exact), never floats."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
