"""Numbers, money and times as the organisation writes them (babel, ``organisation.locale``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_currency, format_decimal


@dataclass(frozen=True)
class Formats:
    locale: str
    tz: ZoneInfo

    def money(self, amount: Decimal | None, currency: str) -> str:
        if amount is None:
            return ""
        return format_currency(amount, currency, locale=self.locale)

    def moneys(self, amounts: dict[str, Decimal]) -> str:
        """Several currencies: "US$1,200.00 · NZ$300.00" (largest currency code order)."""
        return " · ".join(self.money(v, c) for c, v in sorted(amounts.items())) or "—"

    def number(self, value: Decimal | int | None, places: int = 2) -> str:
        if value is None:
            return ""
        pattern = "#,##0." + "0" * places if places else "#,##0"
        return format_decimal(value, format=pattern, locale=self.locale)

    def when(self, moment: datetime | None) -> str:
        if moment is None:
            return "—"
        return format_datetime(moment.astimezone(self.tz), "medium", locale=self.locale)
