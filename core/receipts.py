"""Receipts: an expense's receipt, where the tracker gives one, goes onto its invoice.

After the push, for every invoice of ours in the target that bills expenses with a receipt,
the target's attachments are listed once, and each receipt not yet there is downloaded from
its tracker and attached under a name derived from the entry (``receipt-<source>-<id>.<ext>``).
So a re-run, or a run after a crash between the invoice and its attachments, never attaches
the same receipt twice. A receipt that can't be fetched or attached is a warning, retried on
the next run; it never fails or changes the invoice.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from connectors.base import AttachmentTarget, Receipt, ReceiptSource
from core.errors import HourbridgeError
from core.model import SourceEntry

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class AttachOutcome:
    attached: int = 0
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
    invoices: Sequence[tuple[str, str, Sequence[SourceEntry]]],
) -> AttachOutcome:
    """Attach each missing receipt. ``invoices``: (remote id, label, entries billed on it)."""
    outcome = AttachOutcome()
    for invoice_id, label, entries in invoices:
        wanted = [e for e in entries if e.receipt_url and e.source in sources]
        if not wanted:
            continue
        try:
            present = target.attached_files(invoice_id)
        except HourbridgeError as exc:
            outcome.warnings.append(f"invoice {label}: attachments not listed (will retry): {exc}")
            continue
        stems = {name.rsplit(".", 1)[0] for name in present}
        for entry in sorted(wanted, key=lambda e: (e.source, e.source_id)):
            if receipt_stem(entry) in stems:
                continue  # attached by an earlier run
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
                target.attach(invoice_id, name, receipt)
            except HourbridgeError as exc:
                outcome.warnings.append(
                    f"invoice {label}: receipt of {entry.key} not attached (will retry): {exc}"
                )
                continue
            present.add(name)
            stems.add(receipt_stem(entry))
            outcome.attached += 1
    return outcome
