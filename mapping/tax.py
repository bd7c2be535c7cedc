"""Taxes, accounts and tracking: which tax code, account and tracking categories a line gets.

Precedence, most specific first (README: "Expenses, taxes and tracking"):

* tax: the item's rule (``tasks.<id>.tax_type`` or ``expense_categories.<id>.tax_type``),
  then the project's, then the client's, then the profile's ``default_tax_type``; with none,
  the target decides (Xero uses the item's or account's default tax);
* account: the item's rule (``account_code``); with none, the target's item default;
* tracking (Xero) : the project's ``tracking``, else the client's (a whole list, never merged),
  at most two categories, each named once;
* QuickBooks Class and Department: the project's, else the client's.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

MAX_TRACKING = 2  # Xero: at most two tracking categories per line


class TrackingRule(BaseModel):
    """One Xero tracking category and its option, both by name, as Xero's line takes them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, description="tracking category Name")
    option: str = Field(min_length=1, max_length=100, description="the category's Option")


Tracking = tuple[tuple[str, str], ...]
"""A line's tracking as (category name, option) pairs, in the order configured."""


def check_tracking(value: Sequence[TrackingRule] | None) -> Sequence[TrackingRule] | None:
    """At most two categories, each named once (Xero's rule for a line)."""
    if value is None:
        return None
    if len(value) > MAX_TRACKING:
        raise ValueError(
            f"{len(value)} tracking categories given; Xero takes at most {MAX_TRACKING} per line"
        )
    names = [t.name.casefold() for t in value]
    if len(set(names)) != len(names):
        raise ValueError("a tracking category is named twice; give each category once")
    return value


def first(*values: str | None) -> str | None:
    """The first value given, in precedence order."""
    return next((v for v in values if v is not None), None)


def tracking_of(*lists: Sequence[TrackingRule] | None) -> Tracking:
    """The first list given, in precedence order, as (name, option) pairs."""
    chosen = next((lst for lst in lists if lst is not None), None) or ()
    return tuple((t.name, t.option) for t in chosen)
