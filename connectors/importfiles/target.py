"""Import files as a target: for organisations that import invoices instead of connecting.

One file per profile and period, ``<prefix>-<profile>-<YYYY-MM>-<format>.csv`` in the configured
directory. The file is the target's state: our invoices are found in it by key (Xero's
``Reference`` column, QuickBooks' ``Memo``), a re-run rewrites it only when something changed
(atomically: a crash never leaves half a file), and an unchanged period gives byte-identical
output. By default its entries are billed only once the operator confirms the import
(`hourbridge invoices confirm`), which also takes the imported invoices out of the file so
they are never imported twice; with ``billed_when: written`` writing the file is enough.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path

from connectors.base import Directory, PushResult, RemoteInvoice
from connectors.importfiles.config import ImportFileConfig
from connectors.importfiles.formats import (
    QUICKBOOKS_COLUMNS,
    XERO_COLUMNS,
    invoice_number,
    parse_quickbooks_csv,
    parse_xero_csv,
    quickbooks_invoice_rows,
    xero_invoice_rows,
)
from connectors.importfiles.writer import render_csv, write_atomically
from core.errors import SourceDataError, TerminalError
from core.invoices import InvoicePlan
from core.money import ZERO
from core.periods import Period

Rows = list[dict[str, str]]


class ImportFileTarget:
    def __init__(self, name: str, config: ImportFileConfig, *, base_dir: Path) -> None:
        self.name = name
        self._config = config
        self._dir = (base_dir / config.directory).resolve()
        xero = config.type == "xero_csv"
        self._columns = XERO_COLUMNS if xero else QUICKBOOKS_COLUMNS
        self._key_column = "Reference" if xero else "Memo"
        self._number_column = "*InvoiceNumber" if xero else "*InvoiceNo"
        self._contact_column = "*ContactName" if xero else "*Customer"
        self._parse: Callable[[bytes], Rows] = parse_xero_csv if xero else parse_quickbooks_csv
        order = config.date_order or ("dmy" if xero else "mdy")
        render = xero_invoice_rows if xero else quickbooks_invoice_rows
        self._rows: Callable[[Sequence[InvoicePlan]], Rows] = lambda plans: render(
            plans, number_of=lambda plan: invoice_number(plan.key), date_order=order
        )
        self._path: Path | None = None
        self.written: list[Path] = []
        self.awaits_confirmation = config.billed_when == "confirmed"

    def load_directory(self) -> Directory:
        return Directory(contacts={}, item_codes=frozenset(), open_names=True)

    def file_for(self, reference_prefix: str) -> Path:
        stem = reference_prefix.strip("/").replace("/", "-")
        return self._dir / f"{stem}-{self._config.type.removesuffix('_csv')}.csv"

    def find_invoices(self, reference_prefix: str, period: Period) -> dict[str, RemoteInvoice]:
        self._path = self.file_for(reference_prefix)
        found: dict[str, RemoteInvoice] = {}
        for key, rows in self._existing().items():
            if key.startswith(reference_prefix):
                found[key] = self._remote(key, rows, "DRAFT")
        return found

    def fingerprint(self, plan: InvoicePlan) -> str:
        try:
            return _digest(self._columns, self._rows([plan]))
        except ValueError:
            return "unwritable"  # push reports why, for this invoice alone

    def push(self, plans: Sequence[tuple[InvoicePlan, str | None]]) -> Iterator[PushResult]:
        if self._path is None:
            raise AssertionError("find_invoices runs before push")
        by_key = self._existing()
        results: list[PushResult] = []
        for plan, _remote_id in plans:
            if not plan.lines:
                gone = by_key.pop(plan.key, [])
                results.append(
                    PushResult(plan.key, ok=True, remote=self._remote(plan.key, gone, "DELETED"))
                )
                continue
            try:
                rows = self._rows([plan])
            except ValueError as exc:
                results.append(PushResult(plan.key, ok=False, errors=(f"{self.name}: {exc}",)))
                continue
            by_key[plan.key] = rows
            results.append(
                PushResult(plan.key, ok=True, remote=self._remote(plan.key, rows, "DRAFT"))
            )
        self._write(by_key)
        yield from results

    def remove(self, reference_prefix: str, keys: set[str]) -> int:
        """Take invoices out of the period's file (they were imported). Returns how many."""
        self._path = self.file_for(reference_prefix)
        by_key = self._existing()
        gone = [key for key in by_key if key in keys]
        if not gone:
            return 0
        for key in gone:
            del by_key[key]
        self._write(by_key)
        return len(gone)

    def _write(self, by_key: dict[str, Rows]) -> None:
        assert self._path is not None
        ordered = sorted(by_key.items(), key=lambda kv: (kv[1][0][self._contact_column], kv[0]))
        data = render_csv(self._columns, [row for _key, rows in ordered for row in rows])
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            changed = write_atomically(self._path, data)
        except OSError as exc:
            raise TerminalError(
                f"{self.name}: cannot write {self._path}: {exc.strerror or exc}"
            ) from exc
        if changed:
            self.written.append(self._path)

    def _existing(self) -> dict[str, Rows]:
        assert self._path is not None
        if not self._path.exists():
            return {}
        try:
            rows = self._parse(self._path.read_bytes())
        except (OSError, ValueError) as exc:
            raise SourceDataError(f"{self.name}: {self._path}: cannot read it back: {exc}") from exc
        grouped: dict[str, Rows] = defaultdict(list)
        for row in rows:
            grouped[row[self._key_column]].append(row)
        return dict(grouped)

    def _remote(self, key: str, rows: Rows, status: str) -> RemoteInvoice:
        amount = ZERO
        for row in rows:
            if "*ItemAmount" in row:
                amount += Decimal(row["*ItemAmount"])
            else:
                amount += (Decimal(row["*Quantity"]) * Decimal(row["*UnitAmount"])).quantize(
                    Decimal("0.01")
                )
        return RemoteInvoice(
            invoice_id=key,
            number=rows[0][self._number_column] if rows else None,
            reference=key,
            status=status,
            content_hash=_digest(self._columns, rows),
            subtotal=amount,
            total_tax=ZERO,
            total=amount,
        )


def _digest(columns: Sequence[str], rows: Rows) -> str:
    return hashlib.sha256(render_csv(columns, rows)).hexdigest()
