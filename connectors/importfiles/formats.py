"""Invoice plans → rows of Xero's and QuickBooks Online's invoice import CSV files.

One row per invoice line; every row repeats its invoice's number, contact and dates, and the
rows of one invoice are consecutive. Invoices are ordered by (contact name, key) and lines
keep the plan's order, so the same plans always give the same rows. A plan without lines is
no invoice (the sync engine deletes such drafts) and gives no rows.

Xero, Business → Invoices → Import → "Download template file" (sales invoices)::

    *ContactName,EmailAddress,POAddressLine1,POAddressLine2,POAddressLine3,POAddressLine4,
    POCity,PORegion,POPostalCode,POCountry,*InvoiceNumber,Reference,*InvoiceDate,*DueDate,
    InventoryItemCode,*Description,*Quantity,*UnitAmount,Discount,*AccountCode,*TaxType,
    TrackingName1,TrackingOption1,TrackingName2,TrackingOption2,Currency,BrandingTheme

  A star marks a required column. Rows with the same InvoiceNumber are the lines of one
  invoice; numbers must differ between the invoices of a file and from those already in Xero.
  Dates are written in the organisation's regional format: DD/MM/YYYY (AU, NZ, UK, ...; the
  template instructions' "Use the format DD/MM/YYYY") or MM/DD/YYYY (US), so ``date_order``
  is a parameter ("dmy" by default). UnitAmount is all tax-exclusive or all tax-inclusive
  (chosen on import; our prices are exclusive); TaxType is the tax rate's name as Xero shows
  it; totals and tax are computed by Xero (the template has no amount column). Imported
  invoices arrive as drafts. At most 500 invoices per file (the template's instructions;
  entryrocket reports roughly 500 *lines*): splitting a larger batch is the caller's job.

  Sources (read 2026): help.xero.com/Help/Accounts_InvoiceImport.htm (import with "Xero's CSV
  template"; invoices "come into Xero as drafts"); the template's instructions as reproduced in
  the "sblive Xero Guide" (online.flippingbook.com/view/399081/31: "If you want to import
  multiple line items on a single invoice, use the same invoice number for each line item";
  dates DD/MM/YYYY; tax rate display name; 500 invoices per file); entryrocket.com/guides/
  xero-csv-import-guide (tested against a live organisation, June 2026: header spelling is
  case- and space-sensitive, the leading star is optional, rows are grouped into one invoice
  by InvoiceNumber; dates in the region's format); splitforge.app/blog/xero-csv-import-errors
  -fix (DD/MM/YYYY AU/NZ/UK, MM/DD/YYYY US). The header line itself is the current template as
  quoted verbatim, with the same 27 columns in the same order, by two unrelated public
  codebases (a PayPal→Xero conversion script and an invoicing app's "re-importable into Xero"
  export); older templates (without Reference, Discount and BrandingTheme, with Total and
  TaxAmount) also circulate and are not what is written here.

QuickBooks Online, Settings → Import data → Invoices (QuickBooks Online Advanced)::

    *InvoiceNo,*Customer,*InvoiceDate,*DueDate,Terms,Location,Memo,Item(Product/Service),
    ItemDescription,ItemQuantity,ItemRate,*ItemAmount,Service Date,ItemTaxCode,Currency Code

  The first 13 columns are QuickBooks' sample import file (US edition), stars and all; Intuit
  lists the same fields as the headers its importer maps automatically ("*Invoice number,
  *Customer, *Invoice date, *Due date, Item tax code, Terms, Service Date, Item
  (Product/Service), Item Description, Item Quantity, Item Rate, *Item Amount, Memo"; other
  headers must be mapped by hand on the import screen). ItemTaxCode is the non-US editions'
  per-line tax code column (our lines carry a tax code, the QuickBooks target's TaxCodeRef, not
  a US "Taxable"/"TaxRate" pair, which we cannot fill). "Currency Code" carries the plan's
  currency for multicurrency companies; no sample file we found shows a currency column, so
  its name is our choice and it may need mapping by hand. Rows with the same InvoiceNo are
  one invoice. An invoice number has at most 21 characters (QuickBooks' DocNumber). The US
  sample writes dates MM/DD/YYYY and the importer asks which format the file uses, so
  ``date_order`` is a parameter ("mdy" by default). Memo carries our key (as PrivateNote does
  for the QuickBooks API target), ItemAmount is the line amount rounded half-up to cents.

  Sources (read 2026): quickbooks.intuit.com/learn-support/en-ca/sales-and-invoicing/do-we-
  need-to-map-field-everytime-when-import-invoices/01/394876 (Intuit's answer listing the
  default headers, pointing to the "Import invoices in batches" article); the sample file's
  header as quoted verbatim by several unrelated public codebases ("*InvoiceNo,*Customer,
  *InvoiceDate,*DueDate,Terms,Location,Memo,Item(Product/Service),ItemDescription,
  ItemQuantity,ItemRate,*ItemAmount,Service Date"; a Canadian one ends "...,ItemAmount,
  ItemTaxCode"); support.zed-systems.com/kb/a197 (DocNumber "Str 21").

Numbers: quantities and unit prices are the plan's exact Decimals written in plain notation
with trailing zeros dropped (1.2500 → "1.25", 1E+1 → "10"), never through float; amounts have
exactly two decimals. No thousands separators, no currency symbols.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Literal

from connectors.importfiles.writer import read_csv
from core.invoices import InvoicePlan, PlannedLine
from core.money import cents

DateOrder = Literal["dmy", "mdy"]
NumberOf = Callable[[InvoicePlan], str]

XERO_COLUMNS: tuple[str, ...] = (
    "*ContactName",
    "EmailAddress",
    "POAddressLine1",
    "POAddressLine2",
    "POAddressLine3",
    "POAddressLine4",
    "POCity",
    "PORegion",
    "POPostalCode",
    "POCountry",
    "*InvoiceNumber",
    "Reference",
    "*InvoiceDate",
    "*DueDate",
    "InventoryItemCode",
    "*Description",
    "*Quantity",
    "*UnitAmount",
    "Discount",
    "*AccountCode",
    "*TaxType",
    "TrackingName1",
    "TrackingOption1",
    "TrackingName2",
    "TrackingOption2",
    "Currency",
    "BrandingTheme",
)
XERO_REQUIRED: tuple[str, ...] = tuple(c for c in XERO_COLUMNS if c.startswith("*"))

QUICKBOOKS_COLUMNS: tuple[str, ...] = (
    "*InvoiceNo",
    "*Customer",
    "*InvoiceDate",
    "*DueDate",
    "Terms",
    "Location",
    "Memo",
    "Item(Product/Service)",
    "ItemDescription",
    "ItemQuantity",
    "ItemRate",
    "*ItemAmount",
    "Service Date",
    "ItemTaxCode",
    "Currency Code",
)
QUICKBOOKS_REQUIRED: tuple[str, ...] = tuple(c for c in QUICKBOOKS_COLUMNS if c.startswith("*"))
QUICKBOOKS_NUMBER_LIMIT = 21  # DocNumber

# 2026-10 (monthly), 2026-W43 (weekly), 2026-10-H1 (semi-monthly), 2026-10-05 (custom)
_PERIOD = re.compile(r"\d{2}(\d{2})-(0[1-9]|1[0-2]|W\d{2})(?:-(H[12]|\d{2}))?")
_DIGEST = re.compile(r"[0-9a-f]{10,}")


def invoice_number(key: str) -> str:
    """A short invoice number derived from a plan key: "HB" + yymm + "-" + 10 hex digits.

    ``hb/agency-monthly/2026-10/0bda122da2c4`` → ``HB2610-0bda122da2`` (17 characters, within
    QuickBooks' 21). The same key always gives the same number, as the QuickBooks API target
    derives its DocNumber.
    """
    head, slash, digest = key.rpartition("/")
    period = head.rpartition("/")[2]
    match = _PERIOD.fullmatch(period)
    if not slash or match is None or _DIGEST.fullmatch(digest) is None:
        raise ValueError(f"not an invoice key (<prefix>/<profile>/YYYY-MM/<hex>): {key!r}")
    return f"HB{match.group(1)}{match.group(2)}{match.group(3) or ''}-{digest[:10]}"


def plain(value: Decimal) -> str:
    """An exact Decimal in plain notation, trailing zeros dropped: 1.2500 → "1.25", 1E+1 → "10"."""
    if not value.is_finite():
        raise ValueError(f"not a finite number: {value}")
    if value.is_zero():
        return "0"
    return format(value.normalize(), "f")


def money(value: Decimal) -> str:
    """Rounded half-up to cents, always two decimals: 99.985 → "99.99", 300 → "300.00"."""
    return format(cents(value), "f")


def format_date(day: date, order: DateOrder) -> str:
    """DD/MM/YYYY ("dmy") or MM/DD/YYYY ("mdy"), zero-padded."""
    if order == "dmy":
        return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"
    if order == "mdy":
        return f"{day.month:02d}/{day.day:02d}/{day.year:04d}"
    raise ValueError(f"date_order must be dmy or mdy, not {order!r}")


def xero_invoice_rows(
    plans: Sequence[InvoicePlan], *, number_of: NumberOf, date_order: DateOrder = "dmy"
) -> list[dict[str, str]]:
    """Rows for Xero's sales invoice import: Reference = plan key, Currency = slot currency.

    Raises ValueError when a starred column would be empty (a line without an account code or
    tax type, say) or when two invoices would share a number or a key: Xero would reject the
    file or merge the invoices.
    """
    rows: list[dict[str, str]] = []
    for plan, number in _numbered(plans, number_of):
        for line in plan.lines:
            row = {
                "*ContactName": plan.contact_name,
                "*InvoiceNumber": number,
                "Reference": plan.key,
                "*InvoiceDate": format_date(plan.invoice_date, date_order),
                "*DueDate": format_date(plan.due_date, date_order),
                "InventoryItemCode": line.item_code or "",
                "*Description": line.description,
                "*Quantity": plain(line.quantity),
                "*UnitAmount": plain(line.unit_price),
                "*AccountCode": line.account_code or "",
                "*TaxType": line.tax_type or "",
                "Currency": plan.slot.currency,
            }
            _check_required(row, XERO_REQUIRED, plan, line)
            rows.append({column: row.get(column, "") for column in XERO_COLUMNS})
    return rows


def quickbooks_invoice_rows(
    plans: Sequence[InvoicePlan], *, number_of: NumberOf, date_order: DateOrder = "mdy"
) -> list[dict[str, str]]:
    """Rows for QuickBooks Online's invoice import: Memo = plan key, ItemAmount = line amount.

    Raises ValueError for an invoice number over 21 characters, a starred column that would be
    empty, or two invoices sharing a number or a key.
    """
    rows: list[dict[str, str]] = []
    for plan, number in _numbered(plans, number_of):
        if len(number) > QUICKBOOKS_NUMBER_LIMIT:
            raise ValueError(
                f"{plan.key}: invoice number {number!r} is longer than QuickBooks' "
                f"{QUICKBOOKS_NUMBER_LIMIT} characters"
            )
        for line in plan.lines:
            row = {
                "*InvoiceNo": number,
                "*Customer": plan.contact_name,
                "*InvoiceDate": format_date(plan.invoice_date, date_order),
                "*DueDate": format_date(plan.due_date, date_order),
                "Memo": plan.key,
                "Item(Product/Service)": line.item_code or "",
                "ItemDescription": line.description,
                "ItemQuantity": plain(line.quantity),
                "ItemRate": plain(line.unit_price),
                "*ItemAmount": money(line.amount),
                "ItemTaxCode": line.tax_type or "",
                "Currency Code": plan.slot.currency,
            }
            _check_required(row, QUICKBOOKS_REQUIRED, plan, line)
            rows.append({column: row.get(column, "") for column in QUICKBOOKS_COLUMNS})
    return rows


def parse_xero_csv(data: bytes) -> list[dict[str, str]]:
    """The rows of a Xero sales invoice import file with exactly ``XERO_COLUMNS``."""
    return read_csv(data, XERO_COLUMNS, title="Xero sales invoice import")


def parse_quickbooks_csv(data: bytes) -> list[dict[str, str]]:
    """The rows of a QuickBooks Online invoice import file with exactly ``QUICKBOOKS_COLUMNS``."""
    return read_csv(data, QUICKBOOKS_COLUMNS, title="QuickBooks Online invoice import")


def _numbered(plans: Sequence[InvoicePlan], number_of: NumberOf) -> list[tuple[InvoicePlan, str]]:
    """Plans with lines, in file order, each with its number; numbers and keys must be unique."""
    ordered = sorted((p for p in plans if p.lines), key=lambda p: (p.contact_name, p.key))
    keys: set[str] = set()
    owners: dict[str, str] = {}
    numbered: list[tuple[InvoicePlan, str]] = []
    for plan in ordered:
        if plan.key in keys:
            raise ValueError(f"{plan.key}: two plans have this key")
        keys.add(plan.key)
        number = number_of(plan)
        if not number.strip():
            raise ValueError(f"{plan.key}: empty invoice number")
        if number in owners:
            raise ValueError(
                f"invoice number {number!r} is given to both {owners[number]} and {plan.key}"
            )
        owners[number] = plan.key
        numbered.append((plan, number))
    return numbered


def _check_required(
    row: dict[str, str], required: Sequence[str], plan: InvoicePlan, line: PlannedLine
) -> None:
    empty = [column for column in required if not row.get(column, "").strip()]
    if empty:
        raise ValueError(
            f"{plan.key}: line {line.description!r}: required "
            f"{', '.join(c.lstrip('*') for c in empty)} empty"
        )
