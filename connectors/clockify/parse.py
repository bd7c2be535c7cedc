"""Clockify JSON → canonical SourceEntry: detailed report rows and hydrated expenses.

Money arrives in cents (``hourlyRate.amount``, an expense's ``total``, a category's
``priceInCents``) and becomes Decimal by moving the decimal point, never through float.
Durations arrive as whole seconds from the detailed report and as ISO 8601 (``PT1H30M``) from
the time entry API; both are read exactly and divided by 3600 in Decimal.

Every malformed value raises ``SourceDataError`` on one line naming the source, the entry id
and the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, tzinfo
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from connectors import fields
from core.errors import SourceDataError
from core.model import EntryKind, Ref, SourceEntry
from core.money import to_decimal

EXPENSE_PREFIX = "expense-"
SECONDS_PER_HOUR = Decimal(3600)

_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)

T = TypeVar("T")


class ExpenseLookups(Protocol):
    """What an expense refers to by id only, looked up (lazily) by the client."""

    def category(self, category_id: str) -> Mapping[str, Any] | None: ...

    def client_currency(self, client_id: str) -> str | None: ...

    def workspace_currency(self) -> str: ...

    def user_name(self, user_id: str) -> str: ...


# --------------------------------------------------------------------------- conversions


def duration_seconds(value: object) -> Decimal:
    """Whole seconds (the reports API) or an ISO 8601 duration (the time entry API)."""
    if isinstance(value, bool):
        raise ValueError(f"expected seconds or an ISO 8601 duration, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return Decimal(value)
    if isinstance(value, str):
        found = _ISO_DURATION.fullmatch(value)
        if found is None or value.endswith(("P", "T")):
            raise ValueError(f"not an ISO 8601 duration: {value[:40]!r}")
        parts = {k: Decimal(v) if v else Decimal(0) for k, v in found.groupdict().items()}
        return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    raise ValueError(f"expected seconds or an ISO 8601 duration, got {type(value).__name__}")


def hours(seconds: Decimal) -> Decimal:
    """Seconds → hours. Exact whenever the hours terminate (any multiple of 9 s, so every
    multiple of 3 minutes); otherwise Decimal's 28 significant digits, the same each time."""
    return seconds / SECONDS_PER_HOUR


def from_cents(value: object) -> Decimal:
    """An integral number of cents → Decimal currency units (13550 → 135.50)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number of cents, got {str(value)[:40]!r}")
    amount = to_decimal(value, what="cents")
    if amount != amount.to_integral_value():
        raise ValueError(f"expected whole cents, got {value!r}")
    return amount.scaleb(-2)


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


def _object(value: object) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"must be an object, got {type(value).__name__}")
    return value


def _field(where: str, name: str, read: Callable[[], T]) -> T:
    """Run one conversion; any failure becomes a one-line SourceDataError naming the field."""
    try:
        return read()
    except KeyError:
        raise SourceDataError(f"{where}: missing field {name!r}") from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise SourceDataError(f"{where}: field {name!r}: {detail}") from None


def _ref(where: str, raw: Mapping[str, Any], id_key: str, name_key: str) -> Ref:
    """A Ref from two optional string fields; an absent id (no project, no task) is ""."""
    return Ref(
        id=_field(where, id_key, lambda: fields.optional_text(raw.get(id_key))),
        name=_field(where, name_key, lambda: fields.optional_text(raw.get(name_key))),
    )


# --------------------------------------------------------------------------- time entries


def row_id(source: str, raw: object) -> str:
    """The id of a detailed report row (``_id``; ``id`` as the time entry API names it)."""
    entry_id = raw.get("_id", raw.get("id")) if isinstance(raw, dict) else None
    if not isinstance(entry_id, str) or not entry_id:
        raise SourceDataError(f"{source}: detailed report row without an _id: {str(raw)[:80]!r}")
    return entry_id


def parse_report_row(source: str, raw: object, *, zone: tzinfo, approved: bool) -> SourceEntry:
    """One detailed report row. ``approved`` comes from the listing it was found in.

    A running timer (no end) is kept with ``running=True``. ``updated_at`` is the end time
    (the start for a running timer): the report carries no last-modified time.
    """
    entry_id = row_id(source, raw)
    assert isinstance(raw, dict)  # row_id checked it
    where = f"{source}: time entry {entry_id}"
    interval = _field(where, "timeInterval", lambda: _object(raw["timeInterval"]))
    start = _field(where, "timeInterval.start", lambda: fields.aware(interval["start"]))
    end_raw = interval.get("end")
    end = (
        None
        if end_raw is None
        else _field(where, "timeInterval.end", lambda: fields.aware(end_raw))
    )
    if end is not None and end < start:
        raise SourceDataError(f"{where}: field 'timeInterval.end': before the start")
    seconds = _field(where, "timeInterval.duration", lambda: _seconds(interval, start, end))
    rate, currency = _field(where, "hourlyRate", lambda: _rate(raw))
    return SourceEntry(
        source=source,
        source_id=entry_id,
        kind=EntryKind.TIME,
        spent_date=start.astimezone(zone).date(),
        quantity=hours(seconds),
        unit_price=rate,
        currency=currency,
        client=_ref(where, raw, "clientId", "clientName"),
        project=_ref(where, raw, "projectId", "projectName"),
        task=_ref(where, raw, "taskId", "taskName"),
        user=_ref(where, raw, "userId", "userName"),
        notes=_field(where, "description", lambda: fields.optional_text(raw.get("description"))),
        billable=_field(where, "billable", lambda: fields.boolean(raw["billable"])),
        approved=approved,
        billed_in_source=_field(where, "invoicingState", lambda: _invoiced(raw)),
        running=end is None,
        updated_at=end or start,
    )


def _seconds(interval: Mapping[str, Any], start: datetime, end: datetime | None) -> Decimal:
    duration = interval.get("duration")
    if duration is not None:
        return duration_seconds(duration)
    if end is None:  # a running timer without a duration so far
        return Decimal(0)
    return Decimal(int((end - start).total_seconds()))


def _rate(raw: Mapping[str, Any]) -> tuple[Decimal | None, str]:
    """(rate per hour or None, currency). A rate of 0 is Clockify's "no rate set": None."""
    rate = raw.get("hourlyRate")
    if rate is None:
        return None, fields.currency(raw.get("currency"))
    rate = _object(rate)
    amount = from_cents(rate.get("amount"))
    currency = fields.currency(rate.get("currency") or raw.get("currency"))
    return (amount if amount else None), currency


def _invoiced(raw: Mapping[str, Any]) -> bool:
    state = raw.get("invoicingState")
    if state in ("INVOICED", "UNINVOICED"):
        return bool(state == "INVOICED")
    if state is None and isinstance(raw.get("invoiced"), bool):  # the time entry API's name
        return bool(raw["invoiced"])
    raise ValueError(f"must be INVOICED or UNINVOICED, got {str(state)[:40]!r}")


# --------------------------------------------------------------------------- expenses


def expense_key(source: str, raw: object) -> tuple[str, date, bool]:
    """(expense id, date, locked): enough to decide whether to keep it, before the lookups."""
    expense_id = raw.get("id") if isinstance(raw, dict) else None
    if not isinstance(expense_id, str) or not expense_id:
        raise SourceDataError(f"{source}: expense without an id: {str(raw)[:80]!r}")
    assert isinstance(raw, dict)
    where = f"{source}: expense {expense_id}"
    day = _field(where, "date", lambda: _day(raw["date"]))
    locked = _field(where, "locked", lambda: fields.boolean(raw.get("locked", False)))
    return expense_id, day, locked


def _day(value: object) -> date:
    """``yyyy-MM-dd``; a date-time is read for the date it names."""
    if not isinstance(value, str):
        raise ValueError(f"expected a date, got {value!r}")
    return date.fromisoformat(value[:10] if len(value) > 10 and value[10] == "T" else value)


def parse_expense(
    source: str, raw: object, *, zone: tzinfo, lookups: ExpenseLookups, workspace_url: str
) -> SourceEntry:
    """One hydrated expense (``GET .../expenses``) as kind EXPENSE, id ``expense-<id>``.

    Unit-priced categories keep units × unit price when that equals the total; anything else
    is 1 × total. The task Ref is the expense category. ``approved`` is ``locked`` (Clockify
    locks an expense once its approval request is approved); ``updated_at`` is the start of
    the expense's day in ``zone`` (expenses carry no last-modified time).
    """
    expense_id, day, locked = expense_key(source, raw)
    assert isinstance(raw, dict)
    where = f"{source}: expense {expense_id}"
    category = _field(where, "category", lambda: _category(raw, lookups))
    total = _field(where, "total", lambda: _non_negative(from_cents(raw["total"])))
    units = _field(
        where, "quantity", lambda: _non_negative(to_decimal(raw["quantity"], what="value"))
    )
    price = _field(where, "category.priceInCents", lambda: _unit_price(category))
    quantity, unit_price = (Decimal(1), total)
    if price is not None and units * price == total:
        quantity, unit_price = units, price
    project = _field(where, "project", lambda: _object(raw.get("project") or {}))
    client = _ref(where, project, "clientId", "clientName")
    currency = _field(
        where,
        "project.clientId",
        lambda: fields.currency(
            (lookups.client_currency(client.id) if client.id else None)
            or lookups.workspace_currency()
        ),
    )
    user_id = _field(where, "userId", lambda: fields.optional_text(raw["userId"]))
    file_id = _field(where, "fileId", lambda: fields.optional_text(raw.get("fileId")))
    return SourceEntry(
        source=source,
        source_id=f"{EXPENSE_PREFIX}{expense_id}",
        kind=EntryKind.EXPENSE,
        spent_date=day,
        quantity=quantity,
        unit_price=unit_price,
        currency=currency,
        client=client,
        project=_ref(where, project, "id", "name"),
        task=_ref(where, category, "id", "name"),
        user=Ref(user_id, lookups.user_name(user_id)),
        notes=_field(where, "notes", lambda: fields.optional_text(raw.get("notes"))),
        billable=_field(where, "billable", lambda: fields.boolean(raw["billable"])),
        approved=locked,
        billed_in_source=False,  # Clockify's API has no invoiced flag for expenses
        running=False,
        updated_at=datetime.combine(day, time.min, tzinfo=zone),
        receipt_url=(f"{workspace_url}/expenses/{expense_id}/files/{file_id}" if file_id else None),
    )


def _category(raw: Mapping[str, Any], lookups: ExpenseLookups) -> Mapping[str, Any]:
    embedded = raw.get("category")
    if embedded is not None:
        return _object(embedded)
    category_id = fields.optional_text(raw.get("categoryId"))
    found = lookups.category(category_id) if category_id else None
    if found is None:
        raise ValueError(f"no such expense category {category_id!r}")
    return _object(found)


def _unit_price(category: Mapping[str, Any]) -> Decimal | None:
    """The category's unit price, if it has one."""
    price_cents = category.get("priceInCents")
    if category.get("hasUnitPrice") is not True or price_cents is None:
        return None
    return _non_negative(from_cents(price_cents))
