"""Import files: invoice plans → Xero / QuickBooks Online invoice CSVs, written atomically.

The documented headers below are typed in from the sources (not imported from the module),
so they check the module independently:

- Xero: the sales invoice template (Business → Invoices → Import → Download template file) as
  quoted verbatim by public code, with the template's instructions (online.flippingbook.com/
  view/399081/31: same InvoiceNumber for every line of an invoice; dates DD/MM/YYYY) and
  entryrocket.com/guides/xero-csv-import-guide (dates follow the organisation's region).
- QuickBooks Online: the invoice import sample file's header (US edition) as quoted verbatim
  by public code, and Intuit's list of auto-mapped headers (quickbooks.intuit.com/learn-support
  /en-ca/.../394876, which includes "Item tax code"); then our two additions, ItemTaxCode and
  Currency Code (see connectors/importfiles/formats.py for why).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.importfiles import (
    QUICKBOOKS_COLUMNS,
    XERO_COLUMNS,
    invoice_number,
    parse_quickbooks_csv,
    parse_xero_csv,
    quickbooks_invoice_rows,
    render_csv,
    write_atomically,
    xero_invoice_rows,
)
from connectors.quickbooks.target import doc_number
from core.invoices import InvoicePlan, InvoiceSlot, build_plan
from core.model import EntryKind, Ref, SourceEntry
from core.periods import Period
from mapping.resolver import ContactKind, ContactRef, MappedEntry

# Xero's sales invoice import template, header row, in order (a star marks a required column).
DOCUMENTED_XERO_HEADER = (
    "*ContactName,EmailAddress,POAddressLine1,POAddressLine2,POAddressLine3,POAddressLine4,"
    "POCity,PORegion,POPostalCode,POCountry,*InvoiceNumber,Reference,*InvoiceDate,*DueDate,"
    "InventoryItemCode,*Description,*Quantity,*UnitAmount,Discount,*AccountCode,*TaxType,"
    "TrackingName1,TrackingOption1,TrackingName2,TrackingOption2,Currency,BrandingTheme"
)
# QuickBooks Online's invoice import sample file (US), then ItemTaxCode and Currency Code.
DOCUMENTED_QBO_HEADER = (
    "*InvoiceNo,*Customer,*InvoiceDate,*DueDate,Terms,Location,Memo,Item(Product/Service),"
    "ItemDescription,ItemQuantity,ItemRate,*ItemAmount,Service Date"
    ",ItemTaxCode,Currency Code"
)
XERO_REQUIRED = [c for c in DOCUMENTED_XERO_HEADER.split(",") if c.startswith("*")]
QBO_REQUIRED = [c for c in DOCUMENTED_QBO_HEADER.split(",") if c.startswith("*")]
OCTOBER = Period(2026, 10)
DAY_MONTH_YEAR = re.compile(r"\d{2}/\d{2}/\d{4}")

CAFE = "Café Ñandú GmbH"
ZOE = "Zoë Šimůnková 🚀"
TRICKY = 'Design, "phase 2"\nsecond line'


def _entry(source_id: str, hours: str, **over: Any) -> SourceEntry:
    base: dict[str, Any] = {
        "source": "harvest",
        "source_id": source_id,
        "kind": EntryKind.TIME,
        "spent_date": date(2026, 10, 5),
        "quantity": Decimal(hours),
        "unit_price": None,
        "currency": "NZD",
        "client": Ref("10", "Client"),
        "project": Ref("20", "Web"),
        "task": Ref("30", "Dev"),
        "user": Ref("40", "Ana"),
        "notes": "",
        "billable": True,
        "approved": True,
        "billed_in_source": False,
        "running": False,
        "updated_at": datetime(2026, 10, 6, tzinfo=UTC),
    }
    base.update(over)
    return SourceEntry(**base)


def _mapped(
    entry: SourceEntry,
    *,
    description: str,
    price: str,
    contact: ContactRef,
    currency: str,
    item: str | None = "DEV",
    account: str | None = "200",
    tax: str | None = "15% GST on Income",
) -> MappedEntry:
    return MappedEntry(
        entry=entry,
        contact=contact,
        currency=currency,
        tax_type=tax,
        item_code=item,
        account_code=account,
        description=description,
        unit_price=Decimal(price),
        rate_rule="test",
    )


def _plan(
    name: str,
    lines: Sequence[tuple[str, str, str]],
    *,
    currency: str = "NZD",
    seq: int = 1,
    period: Period = OCTOBER,
    **mapped: Any,
) -> InvoicePlan:
    """A plan for contact ``name`` from (description, hours, price) entries."""
    contact = ContactRef(ContactKind.NAME, name)
    entries = [
        _mapped(
            _entry(f"{name}-{seq}-{i}", hours),
            description=desc,
            price=price,
            contact=contact,
            currency=currency,
            **mapped,
        )
        for i, (desc, hours, price) in enumerate(lines)
    ]
    slot = InvoiceSlot("agency-monthly", contact, currency, period, seq)
    return build_plan(
        prefix="hb",
        slot=slot,
        contact_id=f"id-{name}",
        contact_name=name,
        entries=entries,
        due_days=20,
    )


def _plans() -> list[InvoicePlan]:
    """Three contacts (two with unicode names), multi-line invoices, an empty plan, in no order."""
    return [
        _plan(
            ZOE,
            [("Support", "2", "120"), ("Support", "0.5", "120"), ("Support", "1", "135")],
            currency="EUR",
            seq=2,
        ),
        _plan(
            CAFE,
            [
                ("Development", "0.33", "99.99"),
                ("Development", "0.67", "99.99"),
                (TRICKY, "0.3333", "120.5"),  # 40.16265 → 40.16
                ("Review", "1.25", "150.00"),
                ("Development", "2", "150"),  # same task at a second rate: its own line
            ],
        ),
        _plan("Acme Ltd", [("Hosting", "1", "1234.5")], currency="USD"),
        _plan("Nobody", []),  # no lines: no invoice
        _plan(ZOE, [("Workshop", "3.75", "80")], currency="EUR"),
    ]


def _number(plan: InvoicePlan) -> str:
    return invoice_number(plan.key)


def _records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# ---- headers and required columns ---------------------------------------------------------


def test_headers_are_exactly_the_documented_ones() -> None:
    plans = _plans()
    xero = render_csv(XERO_COLUMNS, xero_invoice_rows(plans, number_of=_number))
    qbo = render_csv(QUICKBOOKS_COLUMNS, quickbooks_invoice_rows(plans, number_of=_number))
    assert xero.split(b"\r\n", 1)[0].decode() == DOCUMENTED_XERO_HEADER
    assert qbo.split(b"\r\n", 1)[0].decode() == DOCUMENTED_QBO_HEADER
    assert len(XERO_COLUMNS) == 27
    assert len(QUICKBOOKS_COLUMNS) == 15


def test_required_columns_are_filled_on_every_row() -> None:
    plans = _plans()
    xero = _records(render_csv(XERO_COLUMNS, xero_invoice_rows(plans, number_of=_number)))
    qbo = _records(
        render_csv(QUICKBOOKS_COLUMNS, quickbooks_invoice_rows(plans, number_of=_number))
    )
    for records, required in ((xero, XERO_REQUIRED), (qbo, QBO_REQUIRED)):
        header, rows = records[0], records[1:]
        assert len(rows) == 8  # lines: café 4, Zoë 2 + 1, Acme 1; the empty plan gives none
        for row in rows:
            assert len(row) == len(header)
            cells = dict(zip(header, row, strict=True))
            assert all(cells[column].strip() for column in required), cells


def test_a_missing_required_value_is_refused_not_left_blank() -> None:
    no_account = _plan("Acme Ltd", [("Hosting", "1", "10")], account=None)
    with pytest.raises(ValueError, match=r"required AccountCode empty"):
        xero_invoice_rows([no_account], number_of=_number)
    # QuickBooks needs no account on the line (the item carries it)
    assert quickbooks_invoice_rows([no_account], number_of=_number)[0]["*ItemAmount"] == "10.00"
    with pytest.raises(ValueError, match="empty invoice number"):
        xero_invoice_rows([no_account], number_of=lambda plan: " ")


# ---- values -------------------------------------------------------------------------------


def test_dates_are_in_the_documented_formats() -> None:
    plans = [p for p in _plans() if p.lines]
    by_key = {p.key: p for p in plans}
    for row in xero_invoice_rows(plans, number_of=_number):
        plan = by_key[row["Reference"]]
        assert DAY_MONTH_YEAR.fullmatch(row["*InvoiceDate"])
        assert datetime.strptime(row["*InvoiceDate"], "%d/%m/%Y").date() == plan.invoice_date
        assert datetime.strptime(row["*DueDate"], "%d/%m/%Y").date() == plan.due_date
    us = xero_invoice_rows(plans, number_of=_number, date_order="mdy")
    assert {row["*InvoiceDate"] for row in us} == {"10/31/2026"}
    assert {row["*DueDate"] for row in us} == {"11/20/2026"}
    for row in quickbooks_invoice_rows(plans, number_of=_number):
        plan = by_key[row["Memo"]]
        assert DAY_MONTH_YEAR.fullmatch(row["*InvoiceDate"])
        assert datetime.strptime(row["*InvoiceDate"], "%m/%d/%Y").date() == plan.invoice_date
        assert datetime.strptime(row["*DueDate"], "%m/%d/%Y").date() == plan.due_date
    dmy = quickbooks_invoice_rows(plans, number_of=_number, date_order="dmy")
    assert {row["*InvoiceDate"] for row in dmy} == {"31/10/2026"}


def test_numbers_are_exact_and_quantity_times_rate_gives_each_amount() -> None:
    plans = [p for p in _plans() if p.lines]
    by_key = {p.key: p for p in plans}
    xero_rows = xero_invoice_rows(plans, number_of=_number)
    qbo_rows = quickbooks_invoice_rows(plans, number_of=_number)
    expected_lines = [(by_key[k], line) for k in _file_order(plans) for line in by_key[k].lines]
    assert len(xero_rows) == len(qbo_rows) == len(expected_lines)
    for (plan, line), xero, qbo in zip(expected_lines, xero_rows, qbo_rows, strict=True):
        pairs = [(xero["*Quantity"], xero["*UnitAmount"]), (qbo["ItemQuantity"], qbo["ItemRate"])]
        for quantity, rate in pairs:
            assert "e" not in (quantity + rate).lower()  # plain notation, never exponent
            assert Decimal(quantity) == line.quantity  # exact: no float on the way
            assert Decimal(rate) == line.unit_price
            assert _cents(Decimal(quantity) * Decimal(rate)) == line.amount
        assert re.fullmatch(r"-?\d+\.\d{2}", qbo["*ItemAmount"])
        assert Decimal(qbo["*ItemAmount"]) == line.amount
        assert xero["*Description"] == qbo["ItemDescription"] == line.description
        assert xero["InventoryItemCode"] == qbo["Item(Product/Service)"] == line.item_code
        assert xero["*AccountCode"] == line.account_code
        assert xero["*TaxType"] == qbo["ItemTaxCode"] == line.tax_type
        assert xero["Reference"] == qbo["Memo"] == plan.key
        assert xero["*ContactName"] == qbo["*Customer"] == plan.contact_name
        assert xero["Currency"] == qbo["Currency Code"] == plan.slot.currency
    cafe = {row["ItemDescription"]: row for row in qbo_rows if row["*Customer"] == CAFE}
    assert (cafe[TRICKY]["ItemQuantity"], cafe[TRICKY]["ItemRate"]) == ("0.3333", "120.5")
    assert cafe[TRICKY]["*ItemAmount"] == "40.16"
    acme = next(row for row in xero_rows if row["*ContactName"] == "Acme Ltd")
    assert (acme["*Quantity"], acme["*UnitAmount"]) == ("1", "1234.5")
    # per invoice, the amounts add up to the plan's subtotal
    for plan in plans:
        total = sum(Decimal(r["*ItemAmount"]) for r in qbo_rows if r["Memo"] == plan.key)
        assert total == plan.subtotal


def _file_order(plans: Sequence[InvoicePlan]) -> list[str]:
    return [p.key for p in sorted(plans, key=lambda p: (p.contact_name, p.key))]


def test_lines_of_one_invoice_share_its_number_on_consecutive_rows() -> None:
    plans = _plans()
    for rows, number_col, key_col in (
        (xero_invoice_rows(plans, number_of=_number), "*InvoiceNumber", "Reference"),
        (quickbooks_invoice_rows(plans, number_of=_number), "*InvoiceNo", "Memo"),
    ):
        numbers = [row[number_col] for row in rows]
        blocks = [n for i, n in enumerate(numbers) if i == 0 or numbers[i - 1] != n]
        assert len(blocks) == len(set(blocks)), "an invoice's rows are not consecutive"
        by_key = {p.key: p for p in plans}
        assert blocks == [invoice_number(k) for k in _file_order([p for p in plans if p.lines])]
        for number in blocks:
            block = [row for row in rows if row[number_col] == number]
            plan = by_key[block[0][key_col]]
            assert {row[key_col] for row in block} == {plan.key}
            assert len(block) == len(plan.lines) and len(plan.lines) >= 1
        assert max(numbers.count(n) for n in blocks) == 4  # the café's multi-line invoice


def test_invoices_come_in_contact_then_key_order_whatever_the_input_order() -> None:
    plans = _plans()
    rows = xero_invoice_rows(plans, number_of=_number)
    assert xero_invoice_rows(list(reversed(plans)), number_of=_number) == rows
    contacts = [row["*ContactName"] for row in rows]
    assert contacts == sorted(contacts)
    assert contacts[0] == "Acme Ltd" and contacts[-1] == ZOE


def test_two_invoices_with_one_number_or_one_key_are_refused() -> None:
    plans = [p for p in _plans() if p.lines]
    with pytest.raises(ValueError, match="invoice number 'INV-1' is given to both"):
        xero_invoice_rows(plans, number_of=lambda plan: "INV-1")
    with pytest.raises(ValueError, match="two plans have this key"):
        quickbooks_invoice_rows([plans[0], plans[0]], number_of=_number)
    with pytest.raises(ValueError, match="longer than QuickBooks' 21 characters"):
        quickbooks_invoice_rows(plans, number_of=lambda plan: "X" * 22 + plan.key)


def test_invoice_number_is_short_deterministic_and_matches_the_api_target() -> None:
    key = "hb/agency-monthly/2026-10/0bda122da2c4"
    assert invoice_number(key) == "HB2610-0bda122da2"
    for plan in _plans():
        number = invoice_number(plan.key)
        assert len(number) <= 21
        assert number == invoice_number(plan.key) == doc_number(plan.key)
    assert len({invoice_number(p.key) for p in _plans()}) == len(_plans())
    for bad in ("", "no-slashes", "hb/p/2026-13/0bda122da2c4", "hb/p/2026-10/xyz"):
        with pytest.raises(ValueError, match="not an invoice key"):
            invoice_number(bad)


# ---- bytes --------------------------------------------------------------------------------


def test_rendering_is_byte_identical_utf8_without_bom_with_crlf() -> None:
    first = render_csv(XERO_COLUMNS, xero_invoice_rows(_plans(), number_of=_number))
    again = render_csv(XERO_COLUMNS, xero_invoice_rows(_plans(), number_of=_number))
    assert first == again
    assert not first.startswith(codecs.BOM_UTF8)
    assert CAFE.encode("utf-8") in first and ZOE.encode("utf-8") in first
    # every record ends in CRLF; the only bare LF is the one inside the quoted description
    assert first.endswith(b"\r\n")
    assert first.replace(b"\r\n", b"").count(b"\n") == TRICKY.count("\n")
    assert b'"Design, ""phase 2""\nsecond line"' in first
    assert b"\r" not in first.replace(b"\r\n", b"")
    assert render_csv(["a", "b"], [{"a": "1"}]) == b"a,b\r\n1,\r\n"
    assert render_csv(["a"], []) == b"a\r\n"
    with pytest.raises(ValueError, match="unknown columns 'c'"):
        render_csv(["a", "b"], [{"a": "1", "c": "2"}])


def test_files_parse_back_to_the_same_rows_unicode_included() -> None:
    plans = _plans()
    xero_rows = xero_invoice_rows(plans, number_of=_number)
    qbo_rows = quickbooks_invoice_rows(plans, number_of=_number)
    xero = render_csv(XERO_COLUMNS, xero_rows)
    qbo = render_csv(QUICKBOOKS_COLUMNS, qbo_rows)
    assert parse_xero_csv(xero) == xero_rows
    assert parse_quickbooks_csv(qbo) == qbo_rows
    assert {row["*ContactName"] for row in parse_xero_csv(xero)} == {"Acme Ltd", CAFE, ZOE}
    # a spreadsheet re-save may add a BOM and LF endings: still the same rows
    resaved = codecs.BOM_UTF8 + xero.replace(b"\r\n", b"\n")
    assert parse_xero_csv(resaved) == xero_rows
    with pytest.raises(ValueError, match="line 1: unexpected header"):
        parse_quickbooks_csv(xero)
    ragged = qbo + b"HB2610-0bda122da2,Acme\r\n"
    with pytest.raises(ValueError, match=rf"line {len(qbo_rows) + 3}: 2 cells"):
        parse_quickbooks_csv(ragged)  # + 3: header, the extra line in TRICKY, 1-based
    with pytest.raises(ValueError, match="not UTF-8"):
        parse_xero_csv(b"\xff\xfe")
    with pytest.raises(ValueError, match="empty"):
        parse_xero_csv(b"")


# ---- the file on disk ----------------------------------------------------------------------


def _bytes() -> bytes:
    return render_csv(XERO_COLUMNS, xero_invoice_rows(_plans(), number_of=_number))


def test_write_atomically_writes_replaces_and_skips_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "xero-2026-10.csv"
    data = _bytes()
    assert write_atomically(path, data) is True
    assert path.read_bytes() == data
    past = 1_700_000_000_000_000_000
    os.utime(path, ns=(past, past))
    inode = path.stat().st_ino
    assert write_atomically(path, data) is False  # unchanged: not even touched
    assert path.stat().st_mtime_ns == past
    assert path.stat().st_ino == inode
    path.chmod(0o640)
    changed = data + b"Acme Ltd" + b"," * 26 + b"\r\n"
    assert write_atomically(path, changed) is True
    assert path.read_bytes() == changed
    assert path.stat().st_mode & 0o777 == 0o640  # permissions kept across the replace
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_crash_mid_write_leaves_the_old_file_and_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "qbo.csv"
    path.write_bytes(b"old contents\r\n")
    before = path.stat().st_mtime_ns

    def crash(*args: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, failing, crash)
    with pytest.raises(OSError, match="disk gone"):
        write_atomically(path, _bytes())
    monkeypatch.undo()
    assert path.read_bytes() == b"old contents\r\n"
    assert path.stat().st_mtime_ns == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qbo.csv"]
    # and a new file that never got there leaves nothing behind either
    monkeypatch.setattr(os, failing, crash)
    with pytest.raises(OSError, match="disk gone"):
        write_atomically(tmp_path / "new.csv", _bytes())
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qbo.csv"]
