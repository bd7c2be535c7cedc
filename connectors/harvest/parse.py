"""Harvest API v2 time entry JSON → canonical SourceEntry."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from core.errors import SourceDataError
from core.model import EntryKind, Ref, SourceEntry
from core.money import to_decimal


def _ref(raw: dict[str, Any], key: str, where: str) -> Ref:
    value = raw.get(key)
    if not isinstance(value, dict) or "id" not in value:
        raise SourceDataError(f"{where}: field {key!r} must be an object with an id")
    return Ref(id=str(value["id"]), name=str(value.get("name") or ""))


def _identify(source: str, raw: object, kind: str) -> tuple[dict[str, Any], int, str]:
    """The payload as an object, its id, and how errors name it: "<source>: <kind> <id>"."""
    if not isinstance(raw, dict):
        raise SourceDataError(f"{source}: {kind} is not an object: {str(raw)[:80]!r}")
    item_id = raw.get("id")
    where = f"{source}: {kind} {item_id}"
    if not isinstance(item_id, int):
        raise SourceDataError(f"{where}: field 'id' must be an integer")
    return raw, item_id, where


def _updated_at(raw: dict[str, Any]) -> datetime:
    updated = datetime.fromisoformat(str(raw["updated_at"]).replace("Z", "+00:00"))
    if updated.tzinfo is None:
        raise ValueError("updated_at has no timezone")
    return updated


def parse_time_entry(source: str, raw: object) -> SourceEntry:
    """Parse one entry, or raise SourceDataError naming the source, the entry id and the field."""
    data, entry_id, where = _identify(source, raw, "time entry")
    field = "?"
    try:
        field = "spent_date"
        spent = date.fromisoformat(str(data["spent_date"]))
        field = "hours"
        hours = to_decimal(data["hours"], what="hours")
        if hours < 0:
            raise ValueError("hours must not be negative")
        field = "billable_rate"
        rate_raw = data.get("billable_rate")
        rate: Decimal | None = None if rate_raw is None else to_decimal(rate_raw, what="rate")
        field = "updated_at"
        updated = _updated_at(data)
        field = "client"
        currency = _currency(data)
        field = "flags"
        flags = _flags(data, ("billable", "is_closed", "is_billed", "is_running"))
    except KeyError as exc:
        raise SourceDataError(f"{where}: missing field {exc.args[0]!r}") from None
    except ValueError as exc:
        raise SourceDataError(f"{where}: field {getattr(exc, 'field', field)!r}: {exc}") from None
    return SourceEntry(
        source=source,
        source_id=str(entry_id),
        kind=EntryKind.TIME,
        spent_date=spent,
        quantity=hours,
        unit_price=rate,
        currency=currency,
        client=_ref(data, "client", where),
        project=_ref(data, "project", where),
        task=_ref(data, "task", where),
        user=_ref(data, "user", where),
        notes=str(data.get("notes") or ""),
        billable=flags["billable"],
        approved=flags["is_closed"],
        billed_in_source=flags["is_billed"],
        running=flags["is_running"],
        updated_at=updated,
    )


def parse_expense(source: str, raw: object) -> SourceEntry:
    """Parse one Harvest expense. Unit-priced ones keep units × unit price; others are 1 × total."""
    data, expense_id, where = _identify(source, raw, "expense")
    field = "?"
    try:
        field = "spent_date"
        spent = date.fromisoformat(str(data["spent_date"]))
        field = "total_cost"
        total = to_decimal(data["total_cost"], what="total_cost")
        field = "expense_category"
        category = data["expense_category"]
        if not isinstance(category, dict):
            raise ValueError("must be an object")
        unit_price_raw = category.get("unit_price")
        units_raw = data.get("units")
        quantity, unit_price = Decimal(1), total
        if units_raw is not None and unit_price_raw is not None:
            field = "units"
            units = to_decimal(units_raw, what="units")
            price = to_decimal(unit_price_raw, what="unit_price")
            if units * price == total:
                quantity, unit_price = units, price
        field = "updated_at"
        updated = _updated_at(data)
        field = "client"
        currency = _currency(data)
        flags = _flags(data, ("billable", "is_closed", "is_billed"))
    except KeyError as exc:
        raise SourceDataError(f"{where}: missing field {exc.args[0]!r}") from None
    except ValueError as exc:
        raise SourceDataError(f"{where}: field {getattr(exc, 'field', field)!r}: {exc}") from None
    receipt = data.get("receipt")
    return SourceEntry(
        source=source,
        source_id=f"expense-{expense_id}",
        kind=EntryKind.EXPENSE,
        spent_date=spent,
        quantity=quantity,
        unit_price=unit_price,
        currency=currency,
        client=_ref(data, "client", where),
        project=_ref(data, "project", where),
        task=_ref(data, "expense_category", where),
        user=_ref(data, "user", where),
        notes=str(data.get("notes") or ""),
        billable=flags["billable"],
        approved=flags["is_closed"],
        billed_in_source=flags["is_billed"],
        running=False,
        updated_at=updated,
        receipt_url=str(receipt["url"])
        if isinstance(receipt, dict) and receipt.get("url")
        else None,
    )


def _currency(raw: dict[str, Any]) -> str:
    client = raw.get("client")
    currency = client.get("currency") if isinstance(client, dict) else None
    if not (isinstance(currency, str) and len(currency) == 3):
        raise ValueError("client.currency must be a 3-letter code")
    return currency


class _FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _flags(raw: dict[str, Any], names: tuple[str, ...]) -> dict[str, bool]:
    flags = {}
    for flag in names:
        value = raw.get(flag)
        if not isinstance(value, bool):
            raise _FieldError(flag, f"must be true or false, got {value!r}")
        flags[flag] = value
    return flags
