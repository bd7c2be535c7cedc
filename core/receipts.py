"""Receipts: an expense's receipt, where the tracker gives one, goes onto its invoice.

After the push, for every invoice of ours in the target that bills expenses with a receipt
not yet recorded in the ledger (table ``receipt_attachments``) as attached to it, the
target's attachments are listed (one call, skipped for an invoice the target says has none),
and each receipt not there is downloaded from its tracker and attached under a name derived
from the entry (``receipt-<source>-<id>.<ext>``), then recorded. So a re-run costs no call for
receipts already recorded, and a run after a crash between an attachment and its record
finds it in the listing: the same receipt is never attached twice. A receipt that can't be
fetched or attached is a warning, retried on the next run; it never fails or changes the
invoice.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from connectors.base import AttachmentTarget, Receipt, ReceiptSource
from core.errors import HourbridgeError
from core.model import SourceEntry
from core.tables import ReceiptAttachmentRow

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class InvoiceReceipts:
    """One of our invoices in the target, with the entries it bills."""

    invoice_id: str
    key: str
    label: str
    entries: Sequence[SourceEntry]
    recorded: frozenset[tuple[str, str]]  # (source, source_id) whose receipt we know is on it
    has_attachments: bool | None  # what the target said; None: unknown


@dataclass
class AttachOutcome:
    attached: int = 0
    recorded: list[tuple[str, SourceEntry, str]] = field(default_factory=list)  # key, entry, file
    warnings: list[str] = field(default_factory=list)


def receipt_stem(entry: SourceEntry) -> str:
    """The file name of an entry's receipt in the target, without its extension."""
    return _UNSAFE.sub("-", f"receipt-{entry.source}-{entry.source_id}")


def receipt_name(entry: SourceEntry, receipt: Receipt) -> str:
    """``receipt-<source>-<id>.<ext>``: the extension of the tracker's file name, else one
    for its content type, else ``pdf``."""
    suffix = receipt.file_name.rsplit(".", 1)[-1].lower() if "." in receipt.file_name else ""
    if not suffix:
        guessed = mimetypes.guess_extension(receipt.content_type.split(";")[0].strip())
        suffix = (guessed or ".pdf").lstrip(".")
    return f"{receipt_stem(entry)}.{suffix}"


def attach_receipts(
    target: AttachmentTarget,
    sources: Mapping[str, ReceiptSource],
    invoices: Sequence[InvoiceReceipts],
) -> AttachOutcome:
    """Attach each receipt not yet recorded as attached. An invoice whose receipts are all
    recorded costs no call; otherwise its attachments are listed first (unless the target
    says it has none), so a receipt attached by a run that died before recording it is
    recorded now, not attached again."""
    outcome = AttachOutcome()
    for invoice in invoices:
        wanted = [
            e
            for e in invoice.entries
            if e.receipt_url
            and e.source in sources
            and (e.source, e.source_id) not in invoice.recorded
        ]
        if not wanted:
            continue
        label = invoice.label
        try:
            present = (
                set()
                if invoice.has_attachments is False
                else target.attached_files(invoice.invoice_id)
            )
        except HourbridgeError as exc:
            outcome.warnings.append(f"invoice {label}: attachments not listed (will retry): {exc}")
            continue
        by_stem = {name.rsplit(".", 1)[0]: name for name in present}
        for entry in sorted(wanted, key=lambda e: (e.source, e.source_id)):
            stem = receipt_stem(entry)
            if stem in by_stem:  # attached by an earlier run that did not record it
                outcome.recorded.append((invoice.key, entry, by_stem[stem]))
                continue
            if len(present) >= target.max_attachments:
                outcome.warnings.append(
                    f"invoice {label}: receipt of {entry.key} not attached: the target takes "
                    f"at most {target.max_attachments} attachments per invoice"
                )
                continue
            assert entry.receipt_url is not None
            try:
                receipt = sources[entry.source].fetch_receipt(entry.receipt_url)
                name = receipt_name(entry, receipt)
                target.attach(invoice.invoice_id, name, receipt)
            except HourbridgeError as exc:
                outcome.warnings.append(
                    f"invoice {label}: receipt of {entry.key} not attached (will retry): {exc}"
                )
                continue
            present.add(name)
            by_stem[stem] = name
            outcome.attached += 1
            outcome.recorded.append((invoice.key, entry, name))
    return outcome


def recorded_receipts(
    session: Session, invoice_keys: Sequence[str]
) -> dict[str, frozenset[tuple[str, str]]]:
    """For each invoice key, the (source, source_id) whose receipt is recorded as attached."""
    found: dict[str, set[tuple[str, str]]] = {}
    for start in range(0, len(invoice_keys), 500):
        chunk = invoice_keys[start : start + 500]
        rows = session.exec(
            select(ReceiptAttachmentRow).where(col(ReceiptAttachmentRow.invoice_key).in_(chunk))
        )
        for row in rows:
            found.setdefault(row.invoice_key, set()).add((row.source, row.source_id))
    return {key: frozenset(pairs) for key, pairs in found.items()}


def record_receipts(
    session: Session, attached: Sequence[tuple[str, SourceEntry, str]], now: datetime
) -> None:
    """Record receipts now on their invoices (merge: recording twice is harmless)."""
    for key, entry, name in attached:
        session.merge(
            ReceiptAttachmentRow(
                invoice_key=key,
                source=entry.source,
                source_id=entry.source_id,
                file_name=name,
                attached_at=now,
            )
        )
