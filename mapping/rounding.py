"""Rounding billed time: pure Decimal arithmetic on minutes, giving hours to 4 decimals.

Quantities are hours. Rounding works in minutes: an increment of 6 minutes is 0.1 h, one of
15 minutes 0.25 h. A whole number of minutes that makes no finite decimal of hours (7 minutes
is 0.11666… h) is quantized half up to 0.0001 h, Xero's limit for a Quantity, and the line
amount is always computed from that quantity. ``up`` and ``down`` round away from and towards
zero; ``nearest`` rounds half up (away from zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_UP, ROUND_UP, Decimal

from mapping.rules import Rounding

SIXTY = Decimal(60)
HOUR_PLACES = Decimal("0.0001")
_MODES = {"up": ROUND_UP, "down": ROUND_DOWN, "nearest": ROUND_HALF_UP}


def hours_of(minutes: Decimal) -> Decimal:
    """Minutes → hours, exact when they have at most 4 decimals, else rounded half up."""
    hours = minutes / SIXTY
    quantized = hours.quantize(HOUR_PLACES, rounding=ROUND_HALF_UP)
    return hours if hours == quantized else quantized


def billable_minutes(hours: Decimal, rounding: Rounding | None) -> Decimal:
    """An entry's exact minutes, raised to the per-entry minimum when it is shorter."""
    minutes = hours * SIXTY
    minimum = rounding.minimum_minutes if rounding is not None else None
    if minimum is not None and Decimal(0) < minutes < minimum:
        return Decimal(minimum)
    return minutes


def round_minutes(minutes: Decimal, rounding: Rounding) -> Decimal:
    """Minutes to a whole number of increments, in the rounding's mode."""
    if rounding.mode == "none":
        return minutes
    increment = Decimal(rounding.increment_minutes)
    units = (minutes / increment).to_integral_value(rounding=_MODES[rounding.mode])
    return units * increment


def entry_hours(hours: Decimal, rounding: Rounding | None) -> Decimal:
    """One entry's billed hours when rounding per entry (or not at all)."""
    if rounding is None:
        return hours
    if rounding.mode == "none":
        minutes = billable_minutes(hours, rounding)
        return hours if minutes == hours * SIXTY else hours_of(minutes)
    return hours_of(round_minutes(billable_minutes(hours, rounding), rounding))


def line_hours(hours: Sequence[Decimal], rounding: Rounding | None) -> Decimal:
    """A line's billed hours for the ``entry`` and ``line`` stages (and no rounding)."""
    if rounding is None or rounding.mode == "none" or rounding.stage == "entry":
        return sum((entry_hours(h, rounding) for h in hours), Decimal(0))
    total = sum((billable_minutes(h, rounding) for h in hours), Decimal(0))
    return hours_of(round_minutes(total, rounding))


def split_invoice_total(line_minutes: Sequence[Decimal], rounding: Rounding) -> list[Decimal]:
    """The ``invoice`` stage, for the lines of one invoice sharing a unit price and rounding.

    Their total minutes are rounded once. That total is then split over the lines in whole
    increments: each line first gets its own minutes rounded down to an increment, and the
    increments left over go one each to the lines with the largest remainders (ties: the
    earlier line). So every line is a whole number of increments, and together they make the
    rounded total. Returns each line's hours, in the order given.
    """
    increment = Decimal(rounding.increment_minutes)
    total_units = round_minutes(sum(line_minutes, Decimal(0)), rounding) / increment
    units = [(m / increment).to_integral_value(rounding=ROUND_FLOOR) for m in line_minutes]
    remainders = [m - u * increment for m, u in zip(line_minutes, units, strict=True)]
    extra = int(total_units - sum(units, Decimal(0)))
    # 0 <= extra <= lines with a remainder: floor(sum) >= sum of floors, ceil(sum) <= sum of ceils
    order = sorted(range(len(units)), key=lambda i: (-remainders[i], i))
    for i in order[:extra]:
        units[i] += 1
    return [hours_of(u * increment) for u in units]
