"""Billing modes other than hourly: retainers and fixed fees, per client or project.

- **Retainer:** a fixed ``amount`` per period covers ``hours``; hours beyond what is available
  (``hours`` plus any rolled over) are billed as overage at ``overage_rate``. Unused hours
  ``lapse`` or ``roll_over`` into the next period (optionally capped). The retainer line is on
  the period's invoice even when no hours were tracked.
- **Fixed fee:** each milestone (date, amount, description, item) is billed on the invoice of
  the period holding its date. Hours tracked in scope are shown on a zero-priced line and are
  not billed; their entries count as covered by that invoice.

An agreement names a ``client`` (a key of ``clients``, which gives the contact) and optionally
a ``project`` of that client, which narrows it; a project's agreement wins over its client's.
This module is pure: the numbers, never the database.
"""

from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.model import SourceEntry

ZERO = Decimal(0)

#: Fields the retainer's line templates may name.
RETAINER_FIELDS = ("period", "hours", "used", "available", "rolled_in", "rolled_out", "overage")
#: Fields the fixed fee's hours line may name.
FIXED_FEE_FIELDS = ("period", "hours")


def check_fields(template: str, allowed: tuple[str, ...]) -> str:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"bad template {template!r}: {exc}") from None
    for _text, name, spec, conversion in parsed:
        if name is not None and (name not in allowed or spec or conversion):
            known = " ".join("{" + f + "}" for f in allowed)
            raise ValueError(f"template {template!r}: use only {known}")
    return template


class _Agreement(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, coerce_numbers_to_str=True, populate_by_name=True
    )

    client: str = Field(min_length=1, description="a key of clients: its contact is invoiced")
    project: str | None = Field(
        default=None, min_length=1, description="only this project of the client"
    )
    currency: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{3}$",
        description="invoice currency; default: the client rule's currency (one is needed)",
    )
    item_code: str | None = Field(
        default=None, min_length=1, max_length=30, description="item of its lines"
    )
    account_code: str | None = Field(
        default=None, min_length=1, max_length=10, description="revenue account of its lines"
    )

    from_: dt.date | None = Field(
        default=None,
        alias="from",
        description="first date it applies to: periods ending before it are billed hourly",
    )
    until: dt.date | None = Field(
        default=None,
        description="last date it applies to: periods starting after it are billed hourly",
    )

    def active(self, first: dt.date, last: dt.date) -> bool:
        """Whether it applies to a period from ``first`` to ``last`` (it overlaps its dates)."""
        return (self.from_ is None or last >= self.from_) and (
            self.until is None or first <= self.until
        )

    @property
    def key(self) -> str:
        """Names the agreement in the ledger: the client id, "/" and the project id."""
        return self.client if self.project is None else f"{self.client}/{self.project}"

    def covers(self, entry: SourceEntry) -> bool:
        def same(configured: str, actual: str) -> bool:
            return configured in (actual, f"{entry.source}:{actual}")

        return same(self.client, entry.client.id) and (
            self.project is None or same(self.project, entry.project.id)
        )


def _check_dates(agreement: _Agreement) -> None:
    if agreement.from_ and agreement.until and agreement.until < agreement.from_:
        raise ValueError(f"until {agreement.until} is before from {agreement.from_}")


class Retainer(_Agreement):
    """A fixed amount per period covering some hours; overage beyond; rollover or lapse."""

    amount: Decimal = Field(ge=0, decimal_places=2, description="billed every period")
    hours: Decimal = Field(gt=0, decimal_places=4, description="hours the amount covers")
    overage_rate: Decimal = Field(
        ge=0, decimal_places=4, description="hourly rate of hours beyond those available"
    )
    unused: Literal["lapse", "roll_over"] = Field(
        default="lapse", description="unused hours lapse, or roll over to the next period"
    )
    rollover_cap_hours: Decimal | None = Field(
        default=None, ge=0, decimal_places=4, description="roll_over: at most this many hours"
    )
    description: str = Field(
        default="Retainer {period}: {used} of {available} h used",
        min_length=1,
        description="the retainer line's text; fields {period} {hours} {used} {available} "
        "{rolled_in} {rolled_out} {overage}",
    )
    overage_description: str = Field(
        default="Overage {period}: {overage} h beyond {available} h",
        min_length=1,
        description="the overage line's text (same fields)",
    )
    overage_item_code: str | None = Field(
        default=None, min_length=1, max_length=30, description="default: item_code"
    )
    overage_account_code: str | None = Field(
        default=None, min_length=1, max_length=10, description="default: account_code"
    )

    @field_validator("description", "overage_description")
    @classmethod
    def _fields(cls, value: str) -> str:
        return check_fields(value, RETAINER_FIELDS)

    @model_validator(mode="after")
    def _consistent(self) -> Retainer:
        _check_dates(self)
        if not (self.item_code or self.account_code):
            raise ValueError("give item_code, account_code or both")
        if self.rollover_cap_hours is not None and self.unused != "roll_over":
            raise ValueError("rollover_cap_hours needs unused: roll_over")
        return self


class Milestone(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    date: dt.date = Field(description="billed on the invoice of the period holding this date")
    amount: Decimal = Field(ge=0, decimal_places=2)
    description: str = Field(min_length=1, max_length=4000)
    item_code: str | None = Field(
        default=None, min_length=1, max_length=30, description="default: the fixed fee's"
    )
    account_code: str | None = Field(
        default=None, min_length=1, max_length=10, description="default: the fixed fee's"
    )


class FixedFee(_Agreement):
    """Milestone amounts at dates; the hours tracked are shown, not billed."""

    milestones: list[Milestone] = Field(min_length=1)
    hours_description: str = Field(
        default="Hours tracked (fixed fee, not billed) {period}",
        min_length=1,
        description="text of the zero-priced line showing the hours; fields {period} {hours}",
    )

    @field_validator("hours_description")
    @classmethod
    def _fields(cls, value: str) -> str:
        return check_fields(value, FIXED_FEE_FIELDS)

    @model_validator(mode="after")
    def _consistent(self) -> FixedFee:
        _check_dates(self)
        if not (self.item_code or self.account_code):
            raise ValueError("give item_code, account_code or both")
        return self


Agreement = Retainer | FixedFee


@dataclass(frozen=True, slots=True)
class RetainerUsage:
    """One retainer's hours on one invoice. ``used`` and ``overage`` count every invoice of the
    period so far (a later invoice of a period adds to an approved earlier one)."""

    retainer: str  # Retainer.key
    seq: int  # the period's invoice for the contact this is about
    included: Decimal
    rolled_in: Decimal
    used: Decimal
    overage: Decimal
    rolled_out: Decimal

    @property
    def available(self) -> Decimal:
        return self.included + self.rolled_in


def retainer_usage(
    rule: Retainer, *, key: str, seq: int, used: Decimal, rolled_in: Decimal
) -> RetainerUsage:
    """The arithmetic: available = hours + rolled in; overage = used beyond available;
    rolled out = what is unused, capped, when unused hours roll over (else 0)."""
    available = rule.hours + rolled_in
    overage = max(ZERO, used - available)
    unused = max(ZERO, available - used)
    out = ZERO
    if rule.unused == "roll_over":
        cap = rule.rollover_cap_hours
        out = unused if cap is None else min(unused, cap)
    return RetainerUsage(key, seq, rule.hours, rolled_in, used, overage, out)


def active_agreements(
    agreements: list[Agreement], first: dt.date, last: dt.date
) -> list[Agreement]:
    """The agreements that apply to a period from ``first`` to ``last``."""
    return [a for a in agreements if a.active(first, last)]


def agreement_for(agreements: list[Agreement], entry: SourceEntry) -> Agreement | None:
    """The agreement covering an entry: one naming its project wins over its client's."""
    found = [a for a in agreements if a.covers(entry)]
    return min(found, key=lambda a: a.project is None, default=None)


def milestones_in(fee: FixedFee, first: dt.date, last: dt.date) -> list[Milestone]:
    return sorted(
        (m for m in fee.milestones if first <= m.date <= last),
        key=lambda m: (m.date, m.description),
    )


def hours_text(value: Decimal) -> str:
    """4.5000 → "4.5", 20 → "20"."""
    text = f"{value.normalize():f}"
    return text


__all__ = [
    "Agreement",
    "FixedFee",
    "Milestone",
    "Retainer",
    "RetainerUsage",
    "active_agreements",
    "agreement_for",
    "milestones_in",
    "retainer_usage",
]
