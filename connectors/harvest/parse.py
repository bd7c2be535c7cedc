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


def parse_time_entry(source: str, raw: object) -> SourceEntry:
    """Parse one entry, or raise SourceDataError naming the source, the entry id and the field."""
    if not isinstance(raw, dict):
        raise SourceDataError(f"{source}: time entry is not an object: {str(raw)[:80]!r}")
    entry_id = raw.get("id")
    where = f"{source}: time entry {entry_id}"
    if not isinstance(entry_id, int):
        raise SourceDataError(f"{where}: field 'id' must be an integer")
    field = "?"
    try:
        field = "spent_date"
        spent = date.fromisoformat(str(raw["spent_date"]))
        field = "hours"
        hours = to_decimal(raw["hours"], what="hours")
        if hours < 0:
            raise ValueError("hours must not be negative")
        field = "billable_rate"
        rate_raw = raw.get("billable_rate")
        rate: Decimal | None = None if rate_raw is None else to_decimal(rate_raw, what="rate")
        field = "updated_at"
        updated = datetime.fromisoformat(str(raw["updated_at"]).replace("Z", "+00:00"))
        if updated.tzinfo is None:
            raise ValueError("updated_at has no timezone")
        field = "client"
        client_raw = raw.get("client")
        currency = client_raw.get("currency") if isinstance(client_raw, dict) else None
        if not (isinstance(currency, str) and len(currency) == 3):
            raise ValueError("client.currency must be a 3-letter code")
        flags = {}
        for flag in ("billable", "is_closed", "is_billed", "is_running"):
            field = flag
            value = raw.get(flag)
            if not isinstance(value, bool):
                raise ValueError(f"{flag} must be true or false")
            flags[flag] = value
    except KeyError as exc:
        raise SourceDataError(f"{where}: missing field {exc.args[0]!r}") from None
    except ValueError as exc:
        raise SourceDataError(f"{where}: field {field!r}: {exc}") from None
    return SourceEntry(
        source=source,
        source_id=str(entry_id),
        kind=EntryKind.TIME,
        spent_date=spent,
        quantity=hours,
        unit_price=rate,
        currency=currency,
        client=_ref(raw, "client", where),
        project=_ref(raw, "project", where),
        task=_ref(raw, "task", where),
        user=_ref(raw, "user", where),
        notes=str(raw.get("notes") or ""),
        billable=flags["billable"],
        approved=flags["is_closed"],
        billed_in_source=flags["is_billed"],
        running=flags["is_running"],
        updated_at=updated,
    )
