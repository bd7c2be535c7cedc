"""The canonical model: what every tracker connector produces, whatever its source.

Entries are immutable. Their identity is (source, source_id); their ``content_hash`` changes
whenever anything that affects billing changes, so edits can be noticed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum


class EntryKind(StrEnum):
    TIME = "time"
    EXPENSE = "expense"


@dataclass(frozen=True, slots=True)
class Ref:
    """A source-side entity (client, project, task, user): a stable id and a display name."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class EntryKey:
    source: str
    source_id: str

    def __str__(self) -> str:
        return f"{self.source}:{self.source_id}"


@dataclass(frozen=True, slots=True)
class SourceEntry:
    """A time entry or an expense as the tracker reports it, in canonical form.

    ``quantity`` is hours for time and units for expenses; ``unit_price`` is the tracker's
    billable rate (None when the tracker gives none). ``currency`` is the client's currency.
    """

    source: str
    source_id: str
    kind: EntryKind
    spent_date: date
    quantity: Decimal
    unit_price: Decimal | None
    currency: str
    client: Ref
    project: Ref
    task: Ref
    user: Ref
    notes: str
    billable: bool
    approved: bool
    billed_in_source: bool
    running: bool
    updated_at: datetime
    deleted: bool = False
    receipt_url: str | None = None
    content_hash: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.updated_at.tzinfo is None:
            raise ValueError(f"{self.key}: updated_at must be timezone-aware")
        if not self.content_hash:
            object.__setattr__(self, "content_hash", compute_hash(self))

    @property
    def key(self) -> EntryKey:
        return EntryKey(self.source, self.source_id)


def compute_hash(entry: SourceEntry) -> str:
    """SHA-256 over every field that affects billing (not updated_at, which moves on any touch)."""
    payload = {
        "kind": entry.kind.value,
        "spent_date": entry.spent_date.isoformat(),
        "quantity": str(entry.quantity.normalize()),
        "unit_price": None if entry.unit_price is None else str(entry.unit_price.normalize()),
        "currency": entry.currency,
        "client": [entry.client.id, entry.client.name],
        "project": [entry.project.id, entry.project.name],
        "task": [entry.task.id, entry.task.name],
        "user": [entry.user.id, entry.user.name],
        "notes": entry.notes,
        "billable": entry.billable,
        "approved": entry.approved,
        "billed_in_source": entry.billed_in_source,
        "running": entry.running,
        "deleted": entry.deleted,
    }
    raw = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, slots=True)
class WritebackResult:
    """Which entries a tracker now knows are invoiced (by source id), and why others failed."""

    done: tuple[str, ...]
    failed: dict[str, str]  # retried on later runs
    skipped: dict[str, str] = field(default_factory=dict)  # can never be marked: not retried
