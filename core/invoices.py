"""The invoice builder: mapped entries → one plan per (target, contact, currency, period, seq).

Lines group entries by the configured grouping (entry, task, user, project, task+user or
date), and always by price, item, account, tax type, class, description template and
rounding, so a rate change mid-period gives a second line. Quantities are hours, rounded as
configured (exact by default); a line's amount is quantity × unit price rounded half-up to
cents, which is what Xero computes, so no line shows an amount its quantity and price
contradict. Expenses keep their own lines, by category and price, never rounded.

Line order within an invoice is stable: by the grouping's label (the task's text, the user's
or project's name, the date, or for ``entry`` the date and entry id), then the line's first
spent date, then unit price, item, account, tax type and class.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from core.model import EntryKind
from core.money import ZERO, cents
from core.periods import Period
from mapping.billing import RetainerUsage
from mapping.describe import render
from mapping.resolver import ContactRef, MappedEntry
from mapping.rounding import billable_minutes, line_hours, split_invoice_total
from mapping.rules import DEFAULT_TEMPLATES, Rounding


@dataclass(frozen=True, slots=True, order=True)
class PlannedLine:
    description: str
    quantity: Decimal
    unit_price: Decimal
    item_code: str | None
    account_code: str | None
    tax_type: str | None
    category: str | None = None  # QuickBooks Class
    tracking: tuple[tuple[str, str], ...] = ()  # Xero tracking (category, option) pairs
    # Why, for people (`preview --explain`); not part of what the target stores or compares.
    rate_rule: str = field(default="", compare=False)  # the rule(s) that gave the price
    rounding: str = field(default="", compare=False)  # how its hours were rounded
    entry_keys: tuple[str, ...] = field(default=(), compare=False)  # "source:id" billed here

    @property
    def amount(self) -> Decimal:
        return cents(self.quantity * self.unit_price)

    def signature(self) -> tuple[str, ...]:
        base: tuple[str, ...] = (
            self.description,
            str(self.quantity.normalize()),
            str(self.unit_price.normalize()),
            self.item_code or "",
            self.account_code or "",
            self.tax_type or "",
        )
        if self.category:
            base = (*base, self.category)
        if self.tracking:  # only when set, so invoices without tracking keep their hashes
            base = (*base, *(f"tracking:{name}={option}" for name, option in self.tracking))
        return base


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
    retainers: tuple[RetainerUsage, ...] = ()  # retainer hours this invoice accounts for
    line_amount_types: str | None = None  # the profile's; None: the target's own setting

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


_NO_ROUNDING = "none"


@dataclass(frozen=True, slots=True)
class _LineKey:
    """Entries with equal keys share a line."""

    label: tuple[str, ...]  # the grouping's part; also the first sort key
    kind: EntryKind
    item_code: str | None
    account_code: str | None
    tax_type: str | None
    unit_price: Decimal
    category: str | None
    template: str
    rounding: Rounding | None
    late_from: str | None  # a late entry's own period: its own line, marked
    tracking: tuple[tuple[str, str], ...]


def _label(mapped: MappedEntry) -> tuple[str, ...]:
    e = mapped.entry
    grouping = "task" if e.kind is EntryKind.EXPENSE else mapped.grouping
    if grouping == "entry":
        return (e.spent_date.isoformat(), e.source, e.source_id)
    if grouping == "user":
        return (e.user.name, e.user.id)
    if grouping == "project":
        return (e.project.name, e.project.id)
    if grouping == "task+user":
        return (mapped.description, e.user.name, e.user.id)
    if grouping == "date":
        return (e.spent_date.isoformat(),)
    return (mapped.description,)


def _key(mapped: MappedEntry) -> _LineKey:
    if mapped.entry.kind is EntryKind.EXPENSE:
        template = "{task}"
    else:
        template = mapped.template or DEFAULT_TEMPLATES[mapped.grouping]
    return _LineKey(
        label=_label(mapped),
        kind=mapped.entry.kind,
        item_code=mapped.item_code,
        account_code=mapped.account_code,
        tax_type=mapped.tax_type,
        unit_price=mapped.unit_price,
        category=mapped.category,
        template=template,
        rounding=mapped.rounding,
        late_from=mapped.late_from,
        tracking=mapped.tracking,
    )


def _distinct(values: Iterable[str]) -> str:
    return ", ".join(dict.fromkeys(v for v in values if v))


def _fields(members: Sequence[MappedEntry]) -> dict[str, str]:
    """The template's fields for one line; several values are listed once each, in order."""
    first = min(m.entry.spent_date for m in members)
    last = max(m.entry.spent_date for m in members)
    return {
        "client": _distinct(m.entry.client.name for m in members),
        "project": _distinct(m.entry.project.name for m in members),
        "task": _distinct(m.description for m in members),
        "user": _distinct(m.entry.user.name for m in members),
        "date_range": first.isoformat() if first == last else f"{first} – {last}",
        "notes": "; ".join(dict.fromkeys(n for m in members if (n := m.entry.notes.strip()))),
    }


def _sort_key(key: _LineKey, members: Sequence[MappedEntry]) -> tuple[object, ...]:
    return (
        key.label,
        members[0].entry.spent_date,
        key.unit_price,
        key.item_code or "",
        key.account_code or "",
        key.tax_type or "",
        key.category or "",
        key.tracking,
    )


def _invoice_stage(key: _LineKey) -> bool:
    r = key.rounding
    return r is not None and r.mode != _NO_ROUNDING and r.stage == "invoice"


def build_lines(
    entries: Sequence[MappedEntry], *, max_description: int | None = None
) -> tuple[PlannedLine, ...]:
    """Group, round and describe one invoice's entries, in a stable order.

    ``max_description``: the target's limit on a line's text (None: no limit).
    """
    ordered = sorted(entries, key=lambda m: (m.entry.spent_date, m.entry.source, m.entry.source_id))
    groups: dict[_LineKey, list[MappedEntry]] = {}
    for mapped in ordered:
        groups.setdefault(_key(mapped), []).append(mapped)
    keys = sorted(groups, key=lambda k: _sort_key(k, groups[k]))

    hours: dict[_LineKey, Decimal] = {}
    together: dict[tuple[Decimal, Rounding], list[_LineKey]] = defaultdict(list)
    for key in keys:
        members = groups[key]
        if _invoice_stage(key):
            assert key.rounding is not None
            together[(key.unit_price, key.rounding)].append(key)
        else:
            hours[key] = line_hours([m.entry.quantity for m in members], key.rounding)
    for (_price, rounding), shared in together.items():
        minutes = [
            sum((billable_minutes(m.entry.quantity, rounding) for m in groups[k]), ZERO)
            for k in shared
        ]
        hours.update(zip(shared, split_invoice_total(minutes, rounding), strict=True))

    lines = []
    for key in keys:
        members = groups[key]
        if hours[key] == ZERO:
            continue
        late = f" (late, from {key.late_from})" if key.late_from else ""
        room = None if max_description is None else max_description - len(late)
        lines.append(
            PlannedLine(
                description=render(key.template, _fields(members), room) + late,
                quantity=hours[key],
                unit_price=key.unit_price,
                item_code=key.item_code,
                account_code=key.account_code,
                tax_type=key.tax_type,
                category=key.category,
                tracking=key.tracking,
                rate_rule="; ".join(dict.fromkeys(m.rate_rule for m in members)),
                rounding=key.rounding.explain() if key.rounding else _NO_ROUNDING,
                entry_keys=tuple(str(m.entry.key) for m in members),
            )
        )
    return tuple(lines)


def build_plan(
    *,
    prefix: str,
    slot: InvoiceSlot,
    contact_id: str,
    contact_name: str,
    entries: Sequence[MappedEntry],
    due_days: int,
    max_description: int | None = None,
    mode_lines: Sequence[PlannedLine] = (),
    covered: Sequence[MappedEntry] = (),
    retainers: Sequence[RetainerUsage] = (),
    line_amount_types: str | None = None,
) -> InvoicePlan:
    """One invoice. ``entries`` are billed by the hour; ``mode_lines`` (retainer, overage,
    milestones, hours shown but not billed) come first, and ``covered`` entries are on the
    invoice through them rather than through lines of their own."""
    invoice_date = slot.period.end
    ordered = tuple(sorted(entries, key=lambda m: (m.entry.spent_date, m.entry.source_id)))
    everything = tuple(
        sorted((*ordered, *covered), key=lambda m: (m.entry.spent_date, m.entry.source_id))
    )
    return InvoicePlan(
        key=invoice_key(prefix, slot),
        slot=slot,
        contact_id=contact_id,
        contact_name=contact_name,
        invoice_date=invoice_date,
        due_date=invoice_date + timedelta(days=due_days),
        lines=(*mode_lines, *build_lines(ordered, max_description=max_description)),
        entries=everything,
        department=next((m.department for m in everything if m.department), None),
        retainers=tuple(retainers),
        line_amount_types=line_amount_types,
    )
