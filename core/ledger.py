"""Persistence of entries, cursors, invoices and the billing ledger.

The ledger's primary key is the entry itself, so an entry can sit on one invoice only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime

from sqlmodel import Session, col, select

from core.model import EntryKind, Ref, SourceEntry, WritebackResult
from core.money import ZERO
from core.report import EntryChange
from core.tables import (
    InvoiceRow,
    InvoiceStatus,
    LedgerRow,
    LedgerState,
    SourceEntryRow,
    SyncCursor,
    WritebackRow,
    WritebackState,
)


def upsert_entries(
    session: Session,
    source: str,
    entries: Iterable[SourceEntry],
    now: datetime,
    *,
    window: tuple[date, date] | None = None,
) -> list[EntryChange]:
    """Store the latest version of each entry; report entries edited or deleted since seen.

    With ``window``, the pull listed every live entry spent in it: a stored entry of the
    window that the pull did not return was deleted in the tracker.
    """
    existing = {
        row.source_id: row
        for row in session.exec(select(SourceEntryRow).where(SourceEntryRow.source == source))
    }
    seen: set[str] = set()
    changes: list[EntryChange] = []
    for entry in entries:
        seen.add(entry.source_id)
        row = existing.get(entry.source_id)
        if row is None:
            row = SourceEntryRow.model_validate(
                {"source": source, "source_id": entry.source_id, "first_seen_at": now}
                | _fields(entry, now)
            )
            existing[entry.source_id] = row
            session.add(row)
            continue
        if row.content_hash != entry.content_hash:
            changes.append(_change(row, entry))
        if row.content_hash != entry.content_hash or row.source_updated_at != entry.updated_at:
            for name, value in _fields(entry, now).items():
                setattr(row, name, value)
            session.add(row)
    if window is not None:
        first, last = window
        for source_id, row in existing.items():
            if source_id in seen or row.deleted or not first <= row.spent_date <= last:
                continue
            gone = replace(_entry(row), deleted=True, content_hash="")
            changes.append(_change(row, gone))
            for name, value in _fields(gone, now).items():
                setattr(row, name, value)
            session.add(row)
    return changes


def _change(row: SourceEntryRow, entry: SourceEntry) -> EntryChange:
    return EntryChange(
        entry=f"{row.source}:{row.source_id}",
        change="deleted" if entry.deleted and not row.deleted else "edited",
        client=row.client_name,
        spent_date=row.spent_date.isoformat(),
        hours_before=row.quantity,
        hours_after=ZERO if entry.deleted else entry.quantity,
    )


def _fields(entry: SourceEntry, now: datetime) -> dict[str, object]:
    return {
        "kind": entry.kind.value,
        "spent_date": entry.spent_date,
        "quantity": entry.quantity,
        "unit_price": entry.unit_price,
        "currency": entry.currency,
        "client_id": entry.client.id,
        "client_name": entry.client.name,
        "project_id": entry.project.id,
        "project_name": entry.project.name,
        "task_id": entry.task.id,
        "task_name": entry.task.name,
        "user_id": entry.user.id,
        "user_name": entry.user.name,
        "notes": entry.notes,
        "billable": entry.billable,
        "approved": entry.approved,
        "billed_in_source": entry.billed_in_source,
        "running": entry.running,
        "deleted": entry.deleted,
        "receipt_url": entry.receipt_url,
        "content_hash": entry.content_hash,
        "source_updated_at": entry.updated_at,
        "last_seen_at": now,
    }


def load_entries(session: Session, source: str) -> list[SourceEntry]:
    rows = session.exec(
        select(SourceEntryRow)
        .where(SourceEntryRow.source == source)
        .order_by(col(SourceEntryRow.spent_date), col(SourceEntryRow.source_id))
    )
    return [_entry(row) for row in rows]


def _entry(row: SourceEntryRow) -> SourceEntry:
    return SourceEntry(
        source=row.source,
        source_id=row.source_id,
        kind=EntryKind(row.kind),
        spent_date=row.spent_date,
        quantity=row.quantity,
        unit_price=row.unit_price,
        currency=row.currency,
        client=Ref(row.client_id, row.client_name),
        project=Ref(row.project_id, row.project_name),
        task=Ref(row.task_id, row.task_name),
        user=Ref(row.user_id, row.user_name),
        notes=row.notes,
        billable=row.billable,
        approved=row.approved,
        billed_in_source=row.billed_in_source,
        running=row.running,
        deleted=row.deleted,
        receipt_url=row.receipt_url,
        updated_at=row.source_updated_at,
        content_hash=row.content_hash,
    )


def get_cursor(session: Session, source: str) -> SyncCursor | None:
    return session.get(SyncCursor, source)


def ledger_rows(session: Session, source: str) -> dict[str, LedgerRow]:
    rows = session.exec(select(LedgerRow).where(LedgerRow.source == source))
    return {row.source_id: row for row in rows}


def invoice_rows(session: Session, profile: str) -> dict[str, InvoiceRow]:
    rows = session.exec(select(InvoiceRow).where(InvoiceRow.profile == profile))
    return {row.key: row for row in rows}


def rows_for_invoice(session: Session, key: str) -> list[LedgerRow]:
    return list(session.exec(select(LedgerRow).where(LedgerRow.invoice_key == key)))


def rows_for_entries(
    session: Session, keys: Iterable[tuple[str, str]], chunk: int = 500
) -> dict[tuple[str, str], LedgerRow]:
    """The ledger rows of these (source, source_id) keys that exist, in a query per source
    and ``chunk`` ids, not one per entry."""
    by_source: dict[str, list[str]] = defaultdict(list)
    for source, source_id in keys:
        by_source[source].append(source_id)
    found: dict[tuple[str, str], LedgerRow] = {}
    for source, ids in by_source.items():
        for start in range(0, len(ids), chunk):
            rows = session.exec(
                select(LedgerRow).where(
                    LedgerRow.source == source,
                    col(LedgerRow.source_id).in_(ids[start : start + chunk]),
                )
            )
            found.update(((row.source, row.source_id), row) for row in rows)
    return found


def pending_writebacks(session: Session, source: str, max_attempts: int = 20) -> list[str]:
    rows = session.exec(
        select(WritebackRow).where(
            WritebackRow.source == source,
            col(WritebackRow.state).in_(
                [WritebackState.PENDING.value, WritebackState.FAILED.value]
            ),
            WritebackRow.attempts < max_attempts,
        )
    )
    return sorted(row.source_id for row in rows)


def record_writebacks(
    session: Session, source: str, result: WritebackResult, now: datetime
) -> None:
    for source_id in result.done:
        row = session.get(WritebackRow, (source, source_id))
        if row is not None:
            row.state = WritebackState.DONE.value
            row.attempts += 1
            row.last_error = None
            row.updated_at = now
            session.add(row)
    outcomes = [(WritebackState.FAILED, result.failed), (WritebackState.SKIPPED, result.skipped)]
    for state, errors in outcomes:
        for source_id, error in errors.items():
            _mark(session, (source, source_id), state, error, now)


def _mark(
    session: Session, key: tuple[str, str], state: WritebackState, error: str, now: datetime
) -> None:
    row = session.get(WritebackRow, key)
    if row is not None:
        row.state = state.value
        row.attempts += 1
        row.last_error = error[:2000]
        row.updated_at = now
        session.add(row)


def confirm_exported(
    session: Session,
    profile: str,
    period: str,
    *,
    keys: set[str] | None,
    writers: set[str],
    now: datetime,
) -> tuple[list[InvoiceRow], int]:
    """An import was confirmed: its invoices' entries become billed, the invoices locked."""
    invoices = [
        row
        for row in invoice_rows(session, profile).values()
        if row.period == period
        and row.status == InvoiceStatus.EXPORTED.value
        and (keys is None or row.key in keys)
    ]
    billed = 0
    for invoice in invoices:
        for lrow in rows_for_invoice(session, invoice.key):
            if lrow.state != LedgerState.EXPORTED.value:
                continue
            lrow.state = LedgerState.CONFIRMED.value
            lrow.updated_at = now
            session.add(lrow)
            billed += 1
            if lrow.source in writers:
                session.merge(
                    WritebackRow(
                        source=lrow.source,
                        source_id=lrow.source_id,
                        invoice_key=invoice.key,
                        updated_at=now,
                    )
                )
        invoice.status = InvoiceStatus.LOCKED.value
        invoice.updated_at = now
        session.add(invoice)
    return invoices, billed


def locked_keys(session: Session, profile: str, period: str) -> set[str]:
    return {
        row.key
        for row in invoice_rows(session, profile).values()
        if row.period == period and row.status == InvoiceStatus.LOCKED.value
    }
