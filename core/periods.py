"""Billing periods in the organisation's timezone: monthly (the default), weekly, semi-monthly
or custom, and when a period closes.

A period is a run of local dates, first to last inclusive, with a label that names it in
invoice keys, reports and ``--period``:

- monthly: ``2026-10``, the calendar month;
- weekly: ``2026-W43``, seven days from the configured ``week_start``; a week is named after
  the ISO week of its fourth day, so with the default Monday start it is the ISO week itself;
- semi-monthly: ``2026-10-H1`` (1st to 15th) and ``2026-10-H2`` (16th to the month's end);
- custom: ``2026-10-05``, its first date: either ``every_days`` days from an ``anchor`` date,
  or explicit ``ranges`` that follow each other without gaps.

An entry belongs to the period holding its spent date (the tracker's local date).

Closing: with ``close_after_days: N`` a period closes at 00:00 in the organisation's timezone
on the day N+1 days after its last day (``N: 0`` closes it at midnight after its last day;
monthly October with ``N: 5`` closes at 2026-11-06 00:00). From then on, entries of that
period that are not already on one of its invoices are late: they go onto the invoice of the
next period that is still open, marked with their own period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

PeriodKind = Literal["monthly", "weekly", "semi-monthly", "custom"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_HALF = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])-H([12])$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

#: How each kind is written on the command line, with an example.
NOTATION: dict[str, tuple[str, str]] = {
    "monthly": ("YYYY-MM", "2026-10"),
    "weekly": ("YYYY-Www", "2026-W43"),
    "semi-monthly": ("YYYY-MM-H1 or YYYY-MM-H2", "2026-10-H2"),
    "custom": ("a date YYYY-MM-DD in the period", "2026-10-05"),
}


def _month_end(first: date) -> date:
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


class Period:
    """A billing period: local dates ``start`` to ``end`` inclusive, named by ``label``.

    ``Period(2026, 10)`` is the calendar month; other kinds come from a ``PeriodScheme``.
    Equal periods have equal dates and label; ``str()`` is the label.
    """

    __slots__ = ("end", "label", "scheme", "start")

    start: date
    end: date
    label: str
    scheme: PeriodScheme

    def __init__(self, year: int, month: int) -> None:
        first = date(year, month, 1)
        self._set(first, _month_end(first), f"{year:04d}-{month:02d}", MONTHLY)

    def _set(self, start: date, end: date, label: str, scheme: PeriodScheme) -> None:
        self.start, self.end, self.label, self.scheme = start, end, label, scheme

    @classmethod
    def of(cls, start: date, end: date, label: str, scheme: PeriodScheme) -> Period:
        period = cls.__new__(cls)
        period._set(start, end, label, scheme)
        return period

    @classmethod
    def parse(cls, text: str) -> Period:
        """A calendar month written YYYY-MM."""
        return MONTHLY.parse(text)

    @classmethod
    def containing(cls, moment: datetime, tz: ZoneInfo) -> Period:
        """The calendar month an instant falls in, seen from the organisation's timezone."""
        return MONTHLY.containing(moment, tz)

    @property
    def year(self) -> int:
        return self.start.year

    @property
    def month(self) -> int:
        return self.start.month

    def next(self) -> Period:
        return self.scheme.after(self)

    def previous(self) -> Period:
        return self.scheme.before(self)

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def _key(self) -> tuple[date, date, str]:
        return (self.start, self.end, self.label)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Period) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: Period) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Period) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Period) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Period) -> bool:
        return self._key() >= other._key()

    def __str__(self) -> str:
        return self.label

    def __repr__(self) -> str:
        return f"Period({self.label!r}: {self.start} – {self.end})"


@dataclass(frozen=True, slots=True)
class PeriodScheme:
    """How a profile cuts time into billing periods, and when they close."""

    kind: PeriodKind = "monthly"
    week_start: int = 0  # Monday = 0, as date.weekday()
    every_days: int | None = None
    anchor: date | None = None
    ranges: tuple[tuple[date, date], ...] = ()
    close_after_days: int | None = None

    # -- finding periods ------------------------------------------------------------------

    def find(self, day: date) -> Period | None:
        """The period holding ``day``; None only past the ends of explicit custom ranges."""
        finders = {
            "monthly": self._month,
            "weekly": self._week,
            "semi-monthly": self._half,
            "custom": self._custom,
        }
        return finders[self.kind](day)

    def _month(self, day: date) -> Period:
        first = day.replace(day=1)
        return Period.of(first, _month_end(first), f"{day.year:04d}-{day.month:02d}", self)

    def _week(self, day: date) -> Period:
        start = day - timedelta(days=(day.weekday() - self.week_start) % 7)
        year, week, _ = (start + timedelta(days=3)).isocalendar()
        return Period.of(start, start + timedelta(days=6), f"{year:04d}-W{week:02d}", self)

    def _half(self, day: date) -> Period:
        first = day.replace(day=1)
        month = f"{day.year:04d}-{day.month:02d}"
        if day.day <= 15:
            return Period.of(first, first.replace(day=15), f"{month}-H1", self)
        return Period.of(first.replace(day=16), _month_end(first), f"{month}-H2", self)

    def _custom(self, day: date) -> Period | None:
        if self.every_days is not None and self.anchor is not None:
            steps = (day - self.anchor).days // self.every_days
            start = self.anchor + timedelta(days=steps * self.every_days)
            end = start + timedelta(days=self.every_days - 1)
            return Period.of(start, end, start.isoformat(), self)
        for start, end in self.ranges:
            if start <= day <= end:
                return Period.of(start, end, start.isoformat(), self)
        return None

    def for_date(self, day: date) -> Period:
        found = self.find(day)
        if found is None:
            first, last = self.ranges[0][0], self.ranges[-1][1]
            raise ValueError(f"no custom period holds {day} (the ranges run {first} – {last})")
        return found

    def containing(self, moment: datetime, tz: ZoneInfo) -> Period:
        """The period an instant falls in, seen from the organisation's timezone."""
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        return self.for_date(moment.astimezone(tz).date())

    def after(self, period: Period) -> Period:
        return self.for_date(period.end + timedelta(days=1))

    def before(self, period: Period) -> Period:
        return self.for_date(period.start - timedelta(days=1))

    def parse(self, text: str) -> Period:
        """A period in this kind's notation (NOTATION); ValueError with the expected form."""
        value = text.strip()
        found: Period | None = None
        try:
            found = self._parse(value)
        except ValueError as exc:
            if "no custom period" in str(exc):
                raise
        if found is None:
            form, example = NOTATION[self.kind]
            raise ValueError(
                f"period {text!r} is not a {self.kind} period: write {form} (for example {example})"
            )
        return found

    def _parse(self, value: str) -> Period | None:
        """The first date of the period ``value`` names, as this kind writes it."""
        day: date | None = None
        if self.kind == "monthly" and (m := _MONTH.match(value)):
            day = date(int(m.group(1)), int(m.group(2)), 1)
        elif self.kind == "weekly" and (m := _WEEK.match(value)):
            monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
            # the week whose fourth day is in that ISO week starts between the Friday before
            # (monday - 3, weekday 4) and the Thursday of it, on week_start
            day = monday - timedelta(days=3 - (self.week_start - 4) % 7)
        elif self.kind == "semi-monthly" and (m := _HALF.match(value)):
            day = date(int(m.group(1)), int(m.group(2)), 1 if m.group(3) == "1" else 16)
        elif self.kind == "custom" and _DATE.match(value):
            day = date.fromisoformat(value)
        return None if day is None else self.for_date(day)

    # -- closing --------------------------------------------------------------------------

    def closes_at(self, period: Period, tz: ZoneInfo) -> datetime | None:
        """When ``period`` closes (00:00 local, close_after_days after the day after its end);
        None: periods never close."""
        if self.close_after_days is None:
            return None
        day = period.end + timedelta(days=1 + self.close_after_days)
        return datetime.combine(day, time(0), tzinfo=tz)

    def is_closed(self, period: Period, now: datetime, tz: ZoneInfo) -> bool:
        closes = self.closes_at(period, tz)
        return closes is not None and now >= closes

    def billed_in(self, day: date, now: datetime, tz: ZoneInfo) -> Period | None:
        """The period whose invoice takes an entry spent on ``day`` that is on no invoice yet:
        its own period while that is open, else the next period still open. None: no period
        holds the day (past the ends of custom ranges)."""
        home = self.find(day)
        while home is not None and self.is_closed(home, now, tz):
            try:
                home = self.after(home)
            except ValueError:
                return None
        return home


MONTHLY = PeriodScheme()


class DateRange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: date = Field(alias="from", description="first date of the period")
    until: date = Field(description="last date of the period (inclusive)")

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.until < self.from_:
            raise ValueError(f"until {self.until} is before from {self.from_}")
        return self


class PeriodConfig(BaseModel):
    """How a profile cuts time into billing periods (organisation's timezone), and closing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: PeriodKind = Field(
        default="monthly",
        description="monthly (--period 2026-10) | weekly (2026-W43) | semi-monthly "
        "(2026-10-H1: 1st-15th, 2026-10-H2: 16th-end) | custom (a date in the period)",
    )
    week_start: Weekday = Field(default="monday", description="weekly: the first day of each week")
    every_days: int | None = Field(
        default=None, ge=1, le=366, description="custom: periods of this many days from anchor"
    )
    anchor: date | None = Field(
        default=None, description="custom with every_days: the first day of one period"
    )
    ranges: list[DateRange] = Field(
        default_factory=list,
        description="custom: explicit periods [{from, until}], in order, without gaps",
    )
    close_after_days: int | None = Field(
        default=None,
        ge=0,
        le=366,
        description="a period closes at 00:00 (organisation's timezone) this many days after "
        "the day after its end; entries of a closed period not yet invoiced go onto the next "
        "open period's invoice, marked '(late, from PERIOD)'. Absent: periods never close",
    )

    @model_validator(mode="after")
    def _consistent(self) -> PeriodConfig:
        every = self.every_days is not None or self.anchor is not None
        if self.kind != "custom" and (every or self.ranges):
            raise ValueError("every_days, anchor and ranges belong to kind: custom")
        if self.kind != "weekly" and self.week_start != "monday":
            raise ValueError("week_start belongs to kind: weekly")
        if self.kind == "custom":
            if every == bool(self.ranges):
                raise ValueError("kind custom: give either every_days with anchor, or ranges")
            if every and (self.every_days is None or self.anchor is None):
                raise ValueError("kind custom: every_days and anchor go together")
            for before, after in zip(self.ranges, self.ranges[1:], strict=False):
                if after.from_ != before.until + timedelta(days=1):
                    raise ValueError(
                        f"ranges must follow each other without gaps or overlaps: one ends "
                        f"{before.until}, the next starts {after.from_}"
                    )
        return self

    def scheme(self) -> PeriodScheme:
        return PeriodScheme(
            kind=self.kind,
            week_start=WEEKDAYS.index(self.week_start),
            every_days=self.every_days,
            anchor=self.anchor,
            ranges=tuple((r.from_, r.until) for r in self.ranges),
            close_after_days=self.close_after_days,
        )
