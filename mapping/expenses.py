"""Expenses: passed on at cost, or with a markup, keeping units × unit price.

The markup is a percentage of the unit price. Precedence, most specific first: the expense
category's rule (``expense_categories.<id>.markup_percent``), then the client's
(``clients.<id>.expense_markup_percent``), then the profile's (``expense_markup_percent``);
with none of them, or 0, the expense is billed at cost. The marked-up unit price is rounded
half up to cents, and the line's amount is units × that unit price (to the cent), so a
mileage expense of 120 km at 0.95 with 10 % becomes 120 × 1.05 = 126.00, never 125.40.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

HUNDRED = Decimal(100)
CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Markup:
    """A markup in percent and where it is configured (for `preview --explain`)."""

    percent: Decimal
    rule: str

    def apply(self, unit_price: Decimal) -> Decimal:
        """The unit price with the markup, rounded half up to cents; at cost: unchanged."""
        if self.percent == 0:
            return unit_price
        return (unit_price * (HUNDRED + self.percent) / HUNDRED).quantize(CENT, ROUND_HALF_UP)

    def explain(self) -> str:
        if self.percent == 0:
            return "expense at cost" if not self.rule else f"expense at cost ({self.rule})"
        return f"expense +{self.percent.normalize():f}% markup ({self.rule})"


AT_COST = Markup(Decimal(0), "")


def choose_markup(
    category: tuple[str, Decimal | None],
    client: tuple[str, Decimal | None],
    profile: Decimal | None,
) -> Markup:
    """The most specific markup given: (where, percent) of the category's rule, then the
    client's, then the profile's; none: at cost."""
    for where, percent in (category, client, ("expense_markup_percent", profile)):
        if percent is not None:
            return Markup(percent, where)
    return AT_COST
