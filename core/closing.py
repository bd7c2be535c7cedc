"""Which period's invoice an entry goes on, once periods can close (README: Periods and
closing).

An entry belongs to the period holding its spent date. While that period is open, it is billed
there. Once the period has closed (``close_after_days``, core.periods), an entry of it that is
not already on one of its invoices is late: it goes onto the invoice of the next period that is
still open, marked with its own period, and while the closed period is being synced it waits
there as ``late``. An entry already on one of our invoices stays on it. Each entry has one
ledger row, so it is billed once, wherever it lands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from core.periods import Period, PeriodScheme


@dataclass(frozen=True, slots=True)
class Placement:
    here: bool  # billed on this period's invoice
    late_from: Period | None = None  # here, but late: its own period, closed
    waits_late: bool = False  # this period's own, closed: it goes on the next open one


def placement(
    scheme: PeriodScheme,
    spent: date,
    period: Period,
    now: datetime,
    tz: ZoneInfo,
    *,
    on_our_invoice: bool,
) -> Placement:
    """Where an entry spent on ``spent`` stands when ``period`` is synced at ``now``.

    ``on_our_invoice``: it is already on one of our (DRAFT) invoices of ``period``.
    """
    home = scheme.find(spent)
    if home is None:
        return Placement(here=False)
    if home == period:
        if on_our_invoice or not scheme.is_closed(period, now, tz):
            return Placement(here=True)
        return Placement(here=False, waits_late=True)
    if (
        home < period
        and scheme.is_closed(home, now, tz)
        and (on_our_invoice or scheme.billed_in(spent, now, tz) == period)
    ):
        return Placement(here=True, late_from=home)
    return Placement(here=False)
