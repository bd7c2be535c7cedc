"""Exact money: Decimal end to end, rounded half-up to cents only where a target needs it."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
ZERO = Decimal("0")


def to_decimal(value: object, *, what: str) -> Decimal:
    """Convert a JSON number or string to Decimal without passing through binary float error.

    JSON numbers arrive as float from most parsers; ``str(float)`` gives the shortest repr
    that round-trips, which is the decimal the provider wrote.
    """
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what}: expected a number, got {value!r}")
    if isinstance(value, int | float | str):
        try:
            result = Decimal(str(value))
        except InvalidOperation as exc:
            raise ValueError(f"{what}: not a number: {value!r}") from exc
        if not result.is_finite():
            raise ValueError(f"{what}: not a finite number: {value!r}")
        return result
    raise ValueError(f"{what}: expected a number, got {type(value).__name__}")


def cents(amount: Decimal) -> Decimal:
    """Round half-up to cents (the way Xero rounds line amounts)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)
