"""Billing periods: calendar months in the organisation's timezone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, slots=True, order=True)
class Period:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        m = _MONTH.match(text.strip())
        if not m:
            raise ValueError(f"period {text!r} is not of the form YYYY-MM (for example 2026-10)")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def containing(cls, moment: datetime, tz: ZoneInfo) -> Period:
        """The period an instant falls in, seen from the organisation's timezone."""
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        local = moment.astimezone(tz)
        return cls(local.year, local.month)

    @property
    def start(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def end(self) -> date:
        """The last day of the period (inclusive)."""
        nxt = self.next()
        return nxt.start - timedelta(days=1)

    def next(self) -> Period:
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Period:
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def contains(self, day: date) -> bool:
        return day.year == self.year and day.month == self.month

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"
