"""Edits after invoicing: entries that change or disappear once they are billed.

The ledger keeps each billed entry's content hash, hours and unit price as billed. On every
run, an entry whose hash moved on is handled by its invoice's state in the target:

- the invoice is still DRAFT: the sync engine rebuilds and updates the draft (nothing here
  but the report line);
- the invoice left DRAFT (approved, sent, paid, or deleted by someone): a drift is recorded,
  once, in ``drifts``, going from the last position handled (the ledger's, or the previous
  drift's) to the entry's new hours and price. The profile's ``drift`` setting says what
  happens to it:
  - ``flag``: nothing is pushed; the drift is recorded for review;
  - ``adjustment``: a line with the delta (negative for a reduction) goes onto the next
    invoice for that contact and currency, naming the original invoice and the entry. A
    reduction waits until an invoice is big enough to carry it (the target refuses a negative
    invoice total);
  - ``credit_note``: a reduction becomes a DRAFT credit note, an increase an adjustment line.

A drift's state follows the invoice (or credit note) that settles it, like the ledger:
``open`` → ``pushed`` (committed before the write) → ``settled`` (committed with the target's
confirmation). A run that died between the two is settled by the next one, which looks the
invoice or credit note up by its key first. So a re-run never adds a second adjustment, and
a later re-edit adds only the new delta.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlmodel import Session, col, select

from connectors.base import CreditNotePlan
from core.invoices import InvoicePlan, PlannedLine
from core.model import SourceEntry
from core.money import ZERO, cents
from core.report import DriftSummary
from core.tables import (
    DriftRow,
    DriftState,
    InvoiceRow,
    InvoiceStatus,
    LedgerRow,
    SourceEntryRow,
)
from mapping.resolver import MappedEntry, Resolver, Unmapped


class DriftMode(StrEnum):
    FLAG = "flag"
    ADJUSTMENT = "adjustment"
    CREDIT_NOTE = "credit_note"


DRAFT_UPDATED = "draft_updated"  # the handling reported for an edit on a DRAFT invoice
DRAFT_ELSEWHERE = "draft_of_other_period"  # an edit on a DRAFT of a period not being synced

NEXT_STEPS = {
    DriftState.OPEN.value: "it goes on the next invoice to this contact and currency",
    DriftState.PUSHED.value: "re-run: the write is confirmed or retried, never doubled",
    DriftState.SETTLED.value: "review the DRAFT that carries it before approving it",
    DriftState.FLAGGED.value: (
        "review it, then adjust by hand in the target (or set the profile's drift: "
        "adjustment or credit_note for later drifts)"
    ),
    DriftState.NOTED.value: "nothing to bill: hours and price are unchanged",
    DRAFT_UPDATED: "review the updated DRAFT before approving it",
    DRAFT_ELSEWHERE: "run `hourbridge sync --period {period}` to update that DRAFT",
}

Slot = tuple[str, str]  # (contact reference as stored on the invoice row, currency)


DriftKey = tuple[str, str, int]  # (source, source_id, seq): a drift's primary key


def changed_elsewhere(session: Session, profile: str, period: str) -> list[str]:
    """Other periods whose invoices, not known to have left DRAFT, hold a billed entry that
    changed since: their state in the target must be looked up to handle it."""
    query = (
        select(InvoiceRow.period)
        .join(LedgerRow, col(LedgerRow.invoice_key) == col(InvoiceRow.key))
        .join(
            SourceEntryRow,
            (col(SourceEntryRow.source) == col(LedgerRow.source))
            & (col(SourceEntryRow.source_id) == col(LedgerRow.source_id)),
        )
        .where(
            InvoiceRow.profile == profile,
            InvoiceRow.period != period,
            InvoiceRow.status != InvoiceStatus.LOCKED.value,
            col(LedgerRow.confirmed_hash).is_not(None),
            col(SourceEntryRow.content_hash) != col(LedgerRow.entry_hash),
        )
        .distinct()
    )
    return sorted(session.exec(query))


def drift_key(row: DriftRow) -> DriftKey:
    return (row.source, row.source_id, row.seq)


class DriftBook:
    """One run's handling of drifts, called by the sync engine at its stages."""

    def __init__(
        self,
        *,
        profile: str,
        prefix: str,
        mode: str,
        resolver: Resolver,
        clock: Callable[[], datetime],
    ) -> None:
        self._profile = profile
        self._prefix = prefix
        self._mode = DriftMode(mode)
        self._resolver = resolver
        self._clock = clock
        self._entries: dict[tuple[str, str], SourceEntry] = {}
        self._attached: dict[str, list[DriftKey]] = {}  # invoice key → drifts on it
        # detected or handled in this run; the row as last seen, for a dry run's report
        self._touched: dict[DriftKey, DriftRow] = {}
        self._drafts: list[DriftSummary] = []
        self._last: dict[tuple[str, str], DriftRow] | None = None
        self._noted_drafts = 0

    # -- detection (during planning) --------------------------------------------------------

    def check_locked(
        self, session: Session, entry: SourceEntry, lrow: LedgerRow, invoice: InvoiceRow
    ) -> None:
        """``entry`` is billed on ``invoice``, which left DRAFT: record a drift if it moved."""
        if lrow.confirmed_hash is None:
            return  # never reached the target: the engine bills it anew
        key = (entry.source, entry.source_id)
        last = self._latest(session).get(key)
        known_hash = last.entry_hash if last else lrow.entry_hash
        if last is not None:
            self._entries[key] = entry  # its drifts may need it to price their lines
        if entry.content_hash == known_hash:
            return
        self._entries[key] = entry
        hours_before = last.hours_after if last else lrow.quantity
        price_before = last.price_after if last else lrow.unit_price
        hours_after, price_after, problem = self._position(entry, price_before)
        now = self._clock()
        lines = _delta_lines("", (hours_before, price_before), (hours_after, price_after), None)
        delta_amount = sum((line.amount for line in lines), ZERO)
        if problem is not None:
            state = DriftState.FLAGGED
        elif hours_before == hours_after and price_before == price_after:
            state = DriftState.NOTED
        elif self._mode is DriftMode.FLAG:
            state = DriftState.FLAGGED
        else:
            state = DriftState.OPEN
        row = DriftRow(
            source=entry.source,
            source_id=entry.source_id,
            seq=(last.seq + 1) if last else 1,
            profile=self._profile,
            invoice_key=invoice.key,
            invoice_number=invoice.number,
            contact=invoice.contact,
            currency=invoice.currency,
            period=invoice.period,
            change="deleted" if entry.deleted else "edited",
            entry_hash=entry.content_hash,
            hours_before=hours_before,
            price_before=price_before,
            hours_after=hours_after,
            price_after=price_after,
            delta_hours=hours_after - hours_before,
            delta_amount=delta_amount,
            mode=self._mode.value,
            state=state.value,
            note=problem,
            detected_at=now,
            updated_at=now,
        )
        session.add(row)
        self._touched[drift_key(row)] = row
        self._latest(session)[key] = row

    def check_draft(
        self, entry: SourceEntry, lrow: LedgerRow, invoice: InvoiceRow, *, this_run: bool
    ) -> None:
        """``entry`` is on a DRAFT of ours: report the change. ``this_run``: the run rebuilds
        that draft (its period is the one synced); else it waits for its period's sync."""
        if lrow.confirmed_hash is None or entry.content_hash == lrow.entry_hash:
            return
        handling = DRAFT_UPDATED if this_run else DRAFT_ELSEWHERE
        name = invoice.number or invoice.key
        outcome = (
            f"the DRAFT {name} is updated in place"
            if this_run
            else f"the DRAFT {name} of {invoice.period} still holds the old version"
        )
        hours_after, price_after, _problem = self._position(entry, lrow.unit_price)
        before = cents(lrow.quantity * lrow.unit_price)
        if hours_after == lrow.quantity and price_after == lrow.unit_price:
            self._noted_drafts += 1  # a note or a tracker's own mark: nothing to bill
            return
        self._drafts.append(
            DriftSummary(
                entry=f"{entry.source}:{entry.source_id}",
                client=entry.client.name,
                spent_date=entry.spent_date.isoformat(),
                invoice=invoice.number or invoice.key,
                change="deleted" if entry.deleted else "edited",
                hours_before=lrow.quantity,
                hours_after=hours_after,
                delta_hours=hours_after - lrow.quantity,
                delta_amount=cents(hours_after * price_after) - before,
                currency=invoice.currency,
                handling=handling,
                outcome=outcome,
                next_step=NEXT_STEPS[handling].format(period=invoice.period),
            )
        )

    def _position(self, entry: SourceEntry, price: Decimal) -> tuple[Decimal, Decimal, str | None]:
        """Hours and unit price the entry is worth now; a problem if it can't be priced."""
        if entry.deleted or not entry.billable or entry.running:
            return ZERO, price, None
        mapped = self._resolver.resolve(entry)
        if isinstance(mapped, Unmapped):
            return entry.quantity, price, "cannot price it now: " + ", ".join(mapped.missing)
        return entry.quantity, mapped.unit_price, None

    def _latest(self, session: Session) -> dict[tuple[str, str], DriftRow]:
        """Each entry's latest drift, read once per run (one query, not one per entry)."""
        if self._last is None:
            self._last = {}
            rows = session.exec(
                select(DriftRow)
                .where(DriftRow.profile == self._profile)
                .order_by(col(DriftRow.seq))
            )
            for row in rows:
                self._last[(row.source, row.source_id)] = row
        return self._last

    # -- adjustments (planning) ------------------------------------------------------------

    def slots(
        self, session: Session, period: str, invoices: dict[str, InvoiceRow]
    ) -> dict[Slot, list[DriftRow]]:
        """Drifts that go on this period's invoices, by slot: open ones from this or an earlier
        period, and those already carried by one of this period's drafts (they stay on it)."""
        out: dict[Slot, list[DriftRow]] = {}
        rows = session.exec(
            select(DriftRow).where(
                DriftRow.profile == self._profile,
                col(DriftRow.state).in_(
                    [DriftState.OPEN.value, DriftState.PUSHED.value, DriftState.SETTLED.value]
                ),
            )
        )
        for row in rows:
            if row.state == DriftState.OPEN.value:
                if row.period > period or self._credits(row):
                    continue
            else:
                carrier = invoices.get(row.settled_by or "")
                if (
                    carrier is None
                    or carrier.period != period
                    or carrier.status == InvoiceStatus.LOCKED.value
                ):
                    continue
            out.setdefault((row.contact, row.currency), []).append(row)
        return out

    def attach(
        self, session: Session, plan: InvoicePlan, drifts: Sequence[DriftRow]
    ) -> InvoicePlan:
        """The plan with the adjustment lines of ``drifts``. A reduction that would take the
        invoice below zero stays open, for a later invoice."""
        lines = list(plan.lines)
        total = plan.subtotal
        attached: list[DriftKey] = []
        ordered = sorted(drifts, key=lambda d: (d.state == DriftState.OPEN.value, -d.delta_amount))
        for row in ordered:
            extra = self._lines(session, row)
            if extra is None:
                continue
            amount = sum((line.amount for line in extra), ZERO)
            if row.state == DriftState.OPEN.value and total + amount < ZERO:
                continue
            total += amount
            lines.extend(extra)
            attached.append(drift_key(row))
        self._attached[plan.key] = attached
        if not attached:
            return plan
        return replace(plan, lines=tuple(lines))

    def _lines(self, session: Session, row: DriftRow) -> tuple[PlannedLine, ...] | None:
        entry = self._entries.get((row.source, row.source_id))
        mapped = self._resolver.resolve(entry) if entry is not None else None
        if not isinstance(mapped, MappedEntry):
            return None  # the entry's mapping is gone: it waits, reported as open
        label = _label(row, mapped)
        return _delta_lines(
            label, (row.hours_before, row.price_before), (row.hours_after, row.price_after), mapped
        )

    def record(self, session: Session, key: str, *, writing: bool) -> None:
        """Before the write: the plan's open drifts are pushed on invoice ``key``."""
        now = self._clock()
        for pk in self._attached.get(key, []):
            row = session.get(DriftRow, pk)
            if row is None or row.state != DriftState.OPEN.value:
                continue
            row.state = (DriftState.PUSHED if writing else DriftState.SETTLED).value
            row.settled_by = key
            row.updated_at = now
            session.add(row)
            self._touched[drift_key(row)] = row

    def confirm(self, session: Session, key: str) -> None:
        """The target confirmed invoice (or credit note) ``key``: its drifts are settled."""
        self._move(session, key, DriftState.PUSHED, DriftState.SETTLED)

    def revert(self, session: Session, key: str) -> None:
        """The write of ``key`` did not land: its pushed drifts are open again."""
        self._move(session, key, DriftState.PUSHED, DriftState.OPEN)

    def _move(self, session: Session, key: str, old: DriftState, new: DriftState) -> None:
        now = self._clock()
        rows = session.exec(
            select(DriftRow).where(DriftRow.settled_by == key, DriftRow.state == old.value)
        )
        for row in rows:
            row.state = new.value
            row.settled_by = key if new is not DriftState.OPEN else None
            row.updated_at = now
            session.add(row)
            self._touched[drift_key(row)] = row

    # -- credit notes ------------------------------------------------------------------------

    def _credits(self, row: DriftRow) -> bool:
        return row.mode == DriftMode.CREDIT_NOTE.value and row.delta_amount < ZERO

    def credit_prefix(self) -> str:
        return f"{self._prefix}/{self._profile}/cn/"

    def credit_key(self, row: DriftRow) -> str:
        did = f"{row.source}:{row.source_id}#{row.seq}"
        digest = hashlib.sha256(did.encode()).hexdigest()[:12]
        return f"{self.credit_prefix()}{digest}"

    def credit_drifts(self, session: Session) -> list[DriftKey]:
        """Reductions that become credit notes, not yet settled."""
        rows = session.exec(
            select(DriftRow).where(
                DriftRow.profile == self._profile,
                DriftRow.mode == DriftMode.CREDIT_NOTE.value,
                col(DriftRow.state).in_([DriftState.OPEN.value, DriftState.PUSHED.value]),
            )
        )
        return [drift_key(r) for r in rows if self._credits(r) and not _on_invoice(r)]

    def credit_plan(
        self, row: DriftRow, contact_id: str, contact_name: str, on: date
    ) -> CreditNotePlan | None:
        entry = self._entries.get((row.source, row.source_id))
        mapped = self._resolver.resolve(entry) if entry is not None else None
        if not isinstance(mapped, MappedEntry):
            return None
        lines = _delta_lines(
            _label(row, mapped, credit=True),
            (row.hours_after, row.price_after),
            (row.hours_before, row.price_before),
            mapped,
        )
        return CreditNotePlan(
            key=self.credit_key(row),
            contact_id=contact_id,
            contact_name=contact_name,
            currency=row.currency,
            credit_date=on,
            lines=lines,
        )

    def mark(self, session: Session, row: DriftRow, state: DriftState, key: str | None) -> None:
        row.state = state.value
        row.settled_by = key
        row.updated_at = self._clock()
        session.add(row)
        self._touched[drift_key(row)] = row

    # -- the report --------------------------------------------------------------------------

    def summaries(self, session: Session | None) -> tuple[list[DriftSummary], int]:
        """Every drift detected or handled in this run, with its final state; and how many
        changes moved neither hours nor price (notes, a tracker's invoiced mark): only
        counted, since there is nothing to bill or review in money."""
        out = list(self._drafts)
        noted = self._noted_drafts
        for pk, row in sorted(self._touched.items()):
            current = row if session is None else session.get(DriftRow, pk)
            if current is None:
                continue
            if current.state == DriftState.NOTED.value:
                noted += 1
            else:
                out.append(_summary(current, self._entries.get(pk[:2])))
        return out, noted


def _on_invoice(row: DriftRow) -> bool:
    """A credit-note drift already carried by an invoice (not a credit note)."""
    return row.settled_by is not None and "/cn/" not in row.settled_by


def _label(row: DriftRow, mapped: MappedEntry, *, credit: bool = False) -> str:
    e = mapped.entry
    what = "Credit for" if credit else "Adjustment to"
    change = "deleted" if row.change == "deleted" else f"{row.hours_before} h → {row.hours_after} h"
    return (
        f"{what} invoice {row.invoice_number or row.invoice_key}: {mapped.description}, "
        f"{e.user.name}, {e.spent_date.isoformat()} (entry {row.source}:{row.source_id}, "
        f"{change})"
    )


def _delta_lines(
    label: str,
    before: tuple[Decimal, Decimal],
    after: tuple[Decimal, Decimal],
    item: MappedEntry | None,
) -> tuple[PlannedLine, ...]:
    """Lines taking ``before`` (hours, price) to ``after``: one line of the hours' delta at an
    unchanged price, else the old position reversed and the new one."""
    (hours_before, price_before), (hours_after, price_after) = before, after
    if price_before == price_after:
        parts = [(hours_after - hours_before, price_after)]
    else:
        parts = [(-hours_before, price_before), (hours_after, price_after)]

    def line(quantity: Decimal, price: Decimal) -> PlannedLine:
        return PlannedLine(
            description=label,
            quantity=quantity,
            unit_price=price,
            item_code=item.item_code if item else None,
            account_code=item.account_code if item else None,
            tax_type=item.tax_type if item else None,
            category=item.category if item else None,
            rate_rule="drift adjustment",
            rounding="none",
        )

    return tuple(line(q, p) for q, p in parts if q != ZERO)


def _summary(row: DriftRow, entry: SourceEntry | None) -> DriftSummary:
    state = DriftState(row.state)
    if state is DriftState.SETTLED or state is DriftState.PUSHED:
        kind = "credit note" if row.settled_by and "/cn/" in row.settled_by else "invoice"
        verb = "on" if state is DriftState.SETTLED else "sent with, unconfirmed,"
        outcome = f"{verb} {kind} {row.settled_by}"
    elif (
        state is DriftState.OPEN
        and row.mode == DriftMode.CREDIT_NOTE.value
        and (row.delta_amount < ZERO)
    ):
        outcome = "waits for its credit note: the next run tries again"
    elif state is DriftState.OPEN:
        outcome = "waits for the next invoice to this contact and currency"
    else:  # flagged (noted drifts are only counted, never listed)
        outcome = "flagged for review: nothing pushed" + (f" ({row.note})" if row.note else "")
    return DriftSummary(
        entry=f"{row.source}:{row.source_id}",
        client=entry.client.name if entry else "",
        spent_date=entry.spent_date.isoformat() if entry else "",
        invoice=row.invoice_number or row.invoice_key,
        change=row.change,
        hours_before=row.hours_before,
        hours_after=row.hours_after,
        delta_hours=row.delta_hours,
        delta_amount=row.delta_amount,
        currency=row.currency,
        handling=row.mode,
        outcome=outcome,
        next_step=NEXT_STEPS[state.value],
    )
