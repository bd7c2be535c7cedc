"""Readers for the fields of a tracker's JSON: each takes the raw value and returns it typed,
or raises ``ValueError`` with a short message (the caller names the field and the row)."""

from __future__ import annotations

import re
from datetime import datetime

_CURRENCY = re.compile(r"[A-Za-z]{3}")


def clip(value: object) -> str:
    """The value as it came, for a message: repr, at most 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {clip(value)}")
    return value


def optional_text(value: object) -> str:
    """A string; null is the empty string."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {clip(value)}")
    return value


def timestamp(value: object) -> datetime:
    """An ISO 8601 / RFC 3339 date-time, with or without an offset."""
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 date-time, got {clip(value)}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date-time: {clip(value)}") from None


def aware(value: object) -> datetime:
    """A date-time that must carry its offset."""
    moment = timestamp(value)
    if moment.tzinfo is None:
        raise ValueError(f"date-time without an offset: {clip(value)}")
    return moment


def currency(value: object) -> str:
    """A 3-letter currency code, upper-cased."""
    if not (isinstance(value, str) and _CURRENCY.fullmatch(value)):
        raise ValueError(f"must be a 3-letter currency code, got {clip(value)}")
    return value.upper()
