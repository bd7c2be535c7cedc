"""The invoice builder: mapped entries → one plan per (target, contact, currency, period, seq).

Lines group entries by task and price. Quantities are exact hours; a line's amount is
quantity × unit price rounded half-up to cents, which is what Xero computes.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from core.money import ZERO, cents
from core.periods import Period
from mapping.resolver import ContactRef, MappedEntry


@dataclass(frozen=True, slots=True, order=True)
class PlannedLine:
    description: str
    quantity: Decimal
    unit_price: Decimal
    item_code: str | None
    account_code: str | None
    tax_type: str | None
    category: str | None = None  # QuickBooks Class

    @property
    def amount(self) -> Decimal:
        return cents(self.quantity * self.unit_price)

    def signature(self) -> tuple[str, ...]:
        base = (
            self.description,
            str(self.quantity.normalize()),
            str(self.unit_price.normalize()),
            self.item_code or "",
            self.account_code or "",
            self.tax_type or "",
        )
        return (*base, self.category) if self.category else base


@dataclass(frozen=True, slots=True)
class InvoiceSlot:
    profile: str
    contact: ContactRef
    currency: str
    period: Period
    seq: int


@dataclass(frozen=True)
class InvoicePlan:
    key: str
    slot: InvoiceSlot
    contact_id: str
    contact_name: str
    invoice_date: date
    due_date: date
    lines: tuple[PlannedLine, ...]
    entries: tuple[MappedEntry, ...]
    department: str | None = None  # QuickBooks Department

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)

    @property
    def content_hash(self) -> str:
        return content_hash(
            self.contact_id, self.slot.currency, self.invoice_date, self.due_date, self.lines
        )


def invoice_key(prefix: str, slot: InvoiceSlot) -> str:
    """Deterministic: the same slot always gets the same key, sent to the target as Reference."""
    basis = f"{slot.profile}|{slot.contact}|{slot.currency}|{slot.period}|{slot.seq}"
    digest = hashlib.sha256(basis.encode()).hexdigest()[:12]
    return f"{reference_prefix(prefix, slot.profile, slot.period)}{digest}"


def reference_prefix(prefix: str, profile: str, period: Period) -> str:
    """All keys of one profile and period share this prefix, so one query finds them."""
    return f"{prefix}/{profile}/{period}/"


def content_hash(
    contact_id: str, currency: str, invoice_date: date, due_date: date, lines: Iterable[PlannedLine]
) -> str:
    payload = {
        "contact": contact_id.lower(),
        "currency": currency,
        "date": invoice_date.isoformat(),
        "due": due_date.isoformat(),
        "lines": sorted(line.signature() for line in lines),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# description, item, account, tax, unit price, class: entries alike in all of these share a line
_Group = tuple[str, str | None, str | None, str | None, Decimal, str | None]


def build_lines(entries: Sequence[MappedEntry]) -> tuple[PlannedLine, ...]:
    """Group by task and price (a task billed at two rates gives two lines), in a stable order."""
    groups: dict[_Group, Decimal] = defaultdict(lambda: ZERO)
    for mapped in entries:
        group = (
            mapped.description,
            mapped.item_code,
            mapped.account_code,
            mapped.tax_type,
            mapped.unit_price,
            mapped.category,
        )
        groups[group] += mapped.entry.quantity
    lines = [
        PlannedLine(
            description=desc,
            quantity=qty,
            unit_price=price,
            item_code=item,
            account_code=account,
            tax_type=tax,
            category=category,
        )
        for (desc, item, account, tax, price, category), qty in groups.items()
        if qty != ZERO
    ]
    return tuple(
        sorted(lines, key=lambda line: (line.description, line.unit_price, line.category or ""))
    )


def build_plan(
    *,
    prefix: str,
    slot: InvoiceSlot,
    contact_id: str,
    contact_name: str,
    entries: Sequence[MappedEntry],
    due_days: int,
) -> InvoicePlan:
    invoice_date = slot.period.end
    ordered = tuple(sorted(entries, key=lambda m: (m.entry.spent_date, m.entry.source_id)))
    return InvoicePlan(
        key=invoice_key(prefix, slot),
        slot=slot,
        contact_id=contact_id,
        contact_name=contact_name,
        invoice_date=invoice_date,
        due_date=invoice_date + timedelta(days=due_days),
        lines=build_lines(ordered),
        entries=ordered,
        department=next((m.department for m in ordered if m.department), None),
    )
