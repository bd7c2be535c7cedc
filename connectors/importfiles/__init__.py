"""Import files for accounting systems: invoice plans → Xero / QuickBooks Online invoice CSVs.

``formats`` turns plans into rows with each importer's exact columns, dates and numbers;
``writer`` renders rows to deterministic CSV bytes, reads them back, and replaces a file
atomically only when its bytes change.
"""

from __future__ import annotations

from connectors.importfiles.config import ImportFileConfig
from connectors.importfiles.formats import (
    QUICKBOOKS_COLUMNS,
    QUICKBOOKS_REQUIRED,
    XERO_COLUMNS,
    XERO_REQUIRED,
    invoice_number,
    parse_quickbooks_csv,
    parse_xero_csv,
    quickbooks_invoice_rows,
    xero_invoice_rows,
)
from connectors.importfiles.target import ImportFileTarget
from connectors.importfiles.writer import read_csv, render_csv, write_atomically
from connectors.registry import BuildContext, ConnectorSpec


def _build(ctx: BuildContext, name: str, config: ImportFileConfig) -> ImportFileTarget:
    return ImportFileTarget(name, config, base_dir=ctx.base_dir)


XERO_CSV = ConnectorSpec(
    "xero_csv", "target", ImportFileConfig, _build, "Xero sales invoice import file (CSV)"
)
QUICKBOOKS_CSV = ConnectorSpec(
    "quickbooks_csv", "target", ImportFileConfig, _build, "QuickBooks Online invoice import (CSV)"
)

__all__ = [
    "QUICKBOOKS_COLUMNS",
    "QUICKBOOKS_CSV",
    "QUICKBOOKS_REQUIRED",
    "XERO_COLUMNS",
    "XERO_CSV",
    "XERO_REQUIRED",
    "ImportFileConfig",
    "ImportFileTarget",
    "invoice_number",
    "parse_quickbooks_csv",
    "parse_xero_csv",
    "quickbooks_invoice_rows",
    "read_csv",
    "render_csv",
    "write_atomically",
    "xero_invoice_rows",
]
