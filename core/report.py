"""The run report: what a sync did, for people (tables) and machines (--json)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any


class PendingReason(StrEnum):
    UNMAPPED = "unmapped"
    UNAPPROVED = "unapproved"
    NON_BILLABLE = "non_billable"
    ALREADY_BILLED = "already_billed"
    RUNNING = "running"
    OUT_OF_PERIOD = "out_of_period"


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


@dataclass
class RunReport:
    run_id: str
    profile: str
    period: str
    dry_run: bool
    status: str = "running"
    invoices_created: int = 0
    invoices_updated: int = 0
    invoices_unchanged: int = 0
    invoices_deleted: int = 0
    invoices_failed: int = 0
    entries_pulled: int = 0
    entries_billed: int = 0
    entries_pending: dict[str, int] = field(
        default_factory=lambda: {reason.value: 0 for reason in PendingReason}
    )
    unmapped: list[UnmappedItem] = field(default_factory=list)
    entries_changed: list[EntryChange] = field(default_factory=list)
    invoices: list[InvoiceSummary] = field(default_factory=list)
    writebacks_done: int = 0
    writebacks_failed: int = 0
    writebacks_skipped: int = 0
    api_calls: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))  # type: ignore[no-any-return]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> RunReport:
        data = json.loads(text)
        data["unmapped"] = [
            UnmappedItem(u["what"], u["entries"], Decimal(u["hours"])) for u in data["unmapped"]
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
        data["invoices"] = [
            InvoiceSummary(
                **{
                    **inv,
                    "subtotal": Decimal(inv["subtotal"]),
                    "total": None if inv["total"] is None else Decimal(inv["total"]),
                }
            )
            for inv in data["invoices"]
        ]
        return cls(**data)


def _jsonable(value: Any) -> Any:
    """Decimals become strings (exact), never floats."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
