"""The rules finance staff configure: which source entity becomes which accounting entity.

Every rule is keyed by the tracker's stable id (a string), never by a name: names change.
"""

from __future__ import annotations

import string
from datetime import date
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mapping.billing import Agreement, FixedFee, Retainer
from mapping.tax import TrackingRule, check_tracking

CurrencyCode = str

Grouping = Literal["entry", "task", "user", "project", "task+user", "date"]
RoundingMode = Literal["none", "up", "nearest", "down"]
RoundingStage = Literal["entry", "line", "invoice"]

#: The fields a line description template may name, each filled from the line's entries.
TEMPLATE_FIELDS = ("client", "project", "task", "user", "date_range", "notes")

#: The description of a line when no template is configured, per grouping.
DEFAULT_TEMPLATES: dict[str, str] = {
    "entry": "{task} ({user}, {date_range}): {notes}",
    "task": "{task}",
    "user": "{user}: {task}",
    "project": "{project}: {task}",
    "task+user": "{task} – {user}",
    "date": "{date_range}: {task}",
}


def check_template(template: str) -> str:
    """A description template may name only TEMPLATE_FIELDS, as plain ``{name}``."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"bad template {template!r}: {exc}") from None
    for _text, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS:
            shown = "{" + name + "}" if name else "{}"
            raise ValueError(
                f"unknown field {shown} in template {template!r}; "
                f"known: {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
            )
        if spec or conversion:
            raise ValueError(f"field {{{name}}} in template {template!r} takes no format")
    return template


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rounding(_Rule):
    """How billed time is rounded. Quantities are hours to 4 decimal places (Xero's limit)."""

    increment_minutes: int = Field(
        default=1, ge=1, le=1440, description="round to multiples of this many minutes"
    )
    mode: RoundingMode = Field(
        default="up",
        description="up | nearest (half up) | down | none (exact hours; the minimum still applies)",
    )
    stage: RoundingStage = Field(
        default="entry",
        description="entry: each entry; line: each line's total; invoice: the invoice's total "
        "per unit price, split over its lines in whole increments (README: Rounding)",
    )
    minimum_minutes: int | None = Field(
        default=None,
        ge=1,
        le=1440,
        description="each entry bills at least this many minutes; a multiple of the increment",
    )

    @model_validator(mode="after")
    def _minimum_fits(self) -> Rounding:
        if (
            self.minimum_minutes is not None
            and self.mode != "none"
            and self.minimum_minutes % self.increment_minutes
        ):
            raise ValueError(
                f"minimum_minutes {self.minimum_minutes} is not a multiple of "
                f"increment_minutes {self.increment_minutes}"
            )
        return self

    def explain(self) -> str:
        """For people: "up to 15 min per entry, min 30 min"."""
        minimum = f", min {self.minimum_minutes} min" if self.minimum_minutes else ""
        if self.mode == "none":
            return f"none{minimum}"
        return f"{self.mode} to {self.increment_minutes} min per {self.stage}{minimum}"


RATE_LEVELS: tuple[tuple[str, ...], ...] = (
    ("entry",),
    ("project", "task", "user"),
    ("project", "user"),
    ("project", "task"),
    ("project",),
    ("client", "user"),
    ("client",),
    ("user",),
    (),
)
"""The rate levels, most specific first; a rule's level is the set of ids it names."""


class RateRule(_Rule):
    """An hourly rate for the entries it names, optionally within dates (inclusive)."""

    # `from` is a Python keyword: the field is from_, written `from`; either is read back.
    # Ids written as YAML numbers (project: 14000001) are read as the strings they are.
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, coerce_numbers_to_str=True
    )

    rate: Decimal = Field(ge=0, decimal_places=4, description="hourly rate")
    entry: str | None = Field(
        default=None, min_length=1, description="one entry's id: an entry-level override"
    )
    project: str | None = Field(default=None, min_length=1, description="project id")
    task: str | None = Field(default=None, min_length=1, description="task id (with project)")
    user: str | None = Field(default=None, min_length=1, description="user id")
    client: str | None = Field(default=None, min_length=1, description="client id")
    from_: date | None = Field(
        default=None,
        alias="from",
        description="first spent date (organisation's timezone) the rate applies to",
    )
    until: date | None = Field(default=None, description="last spent date it applies to")

    @model_validator(mode="after")
    def _a_known_level(self) -> RateRule:
        if self.level_ids not in RATE_LEVELS:
            raise ValueError(
                f"a rate rule names {'+'.join(self.level_ids)}; name one of: entry; project "
                "(with task, user or both); client (with or without user); user; or none "
                "(the profile default)"
            )
        if self.from_ is not None and self.until is not None and self.until < self.from_:
            raise ValueError(f"until {self.until} is before from {self.from_}")
        return self

    @property
    def level_ids(self) -> tuple[str, ...]:
        named = {
            "entry": self.entry,
            "project": self.project,
            "task": self.task,
            "user": self.user,
            "client": self.client,
        }
        order = ("entry", "project", "task", "client", "user")
        found = tuple(k for k in order if named[k] is not None)
        return next((lvl for lvl in RATE_LEVELS if set(lvl) == set(found)), found)

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(str(getattr(self, name)) for name in self.level_ids)

    def describe(self) -> str:
        """ "project+user 14000001/1780003 from 2026-10-15" or "default"."""
        level = "+".join(self.level_ids) or "default"
        text = f"{level} {'/'.join(self.values)}" if self.level_ids else level
        if self.from_ is not None:
            text += f" from {self.from_}"
        if self.until is not None:
            text += f" until {self.until}"
        return text


class ClientRule(_Rule):
    """A source client → an accounting contact, plus its tax type, currency and rate."""

    contact_id: UUID | None = Field(default=None, description="Xero ContactID")
    contact_number: str | None = Field(
        default=None, max_length=50, description="Xero ContactNumber"
    )
    contact_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="exact contact Name (Xero) or customer DisplayName (QuickBooks)",
    )
    tax_type: str | None = Field(
        default=None,
        description="Xero TaxType, or QuickBooks tax code name or Id (the item's and the "
        "project's win)",
    )
    currency: CurrencyCode | None = Field(
        default=None,
        pattern=r"^[A-Z]{3}$",
        description="invoice currency; must equal the tracker's client currency",
    )
    rate: Decimal | None = Field(
        default=None,
        ge=0,
        decimal_places=4,
        description="hourly rate: a client-level rate rule without dates (see rates)",
    )
    qbo_class: str | None = Field(
        default=None, min_length=1, description="QuickBooks Class (name or Id) on its lines"
    )
    qbo_department: str | None = Field(
        default=None,
        min_length=1,
        description="QuickBooks Department / location (name or Id) on its invoices",
    )
    tracking: list[TrackingRule] | None = Field(
        default=None,
        description="Xero tracking categories on its lines, at most 2: [{name, option}]",
    )
    expense_markup_percent: Decimal | None = Field(
        default=None,
        ge=0,
        le=1000,
        decimal_places=4,
        description="markup on its expenses' unit prices, in percent; 0: at cost",
    )
    rounding: Rounding | None = Field(
        default=None, description="overrides the profile's rounding for this client"
    )
    grouping: Grouping | None = Field(
        default=None, description="overrides the profile's grouping for this client"
    )
    line_description: str | None = Field(
        default=None,
        min_length=1,
        description="overrides the profile's line description template for this client",
    )

    @field_validator("line_description")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return None if value is None else check_template(value)

    @field_validator("tracking")
    @classmethod
    def _tracking(cls, value: list[TrackingRule] | None) -> list[TrackingRule] | None:
        return None if value is None else list(check_tracking(value) or [])

    @model_validator(mode="after")
    def _one_contact(self) -> ClientRule:
        given = [v for v in (self.contact_id, self.contact_number, self.contact_name) if v]
        if len(given) != 1:
            raise ValueError("give exactly one of contact_id, contact_number or contact_name")
        return self


class TaskRule(_Rule):
    """A source task (or expense category) → an item code and/or a revenue account code."""

    item_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=30,
        description="Xero Item Code, or QuickBooks item Name (QuickBooks needs one)",
    )
    account_code: str | None = Field(
        default=None, min_length=1, max_length=10, description="Xero revenue AccountCode"
    )
    description: str | None = Field(
        default=None, max_length=200, description="line text; default: the task's name"
    )
    tax_type: str | None = Field(
        default=None,
        min_length=1,
        description="Xero TaxType or QuickBooks tax code of its lines; wins over the "
        "project's and the client's",
    )
    markup_percent: Decimal | None = Field(
        default=None,
        ge=0,
        le=1000,
        decimal_places=4,
        description="expense categories only: markup on the unit price, in percent (wins "
        "over the client's); 0: at cost",
    )

    @model_validator(mode="after")
    def _something(self) -> TaskRule:
        if not (self.item_code or self.account_code):
            raise ValueError("give item_code, account_code or both")
        return self


class ProjectRule(_Rule):
    rate: Decimal | None = Field(
        default=None,
        ge=0,
        decimal_places=4,
        description="hourly rate: a project-level rate rule without dates (see rates)",
    )
    qbo_class: str | None = Field(
        default=None,
        min_length=1,
        description="QuickBooks Class (name or Id) on its lines; wins over the client's",
    )
    qbo_department: str | None = Field(
        default=None,
        min_length=1,
        description="QuickBooks Department (name or Id) on its invoices; wins over the client's",
    )
    tax_type: str | None = Field(
        default=None,
        min_length=1,
        description="Xero TaxType or QuickBooks tax code; wins over the client's",
    )
    tracking: list[TrackingRule] | None = Field(
        default=None,
        description="Xero tracking categories, at most 2: [{name, option}]; replaces the client's",
    )
    rounding: Rounding | None = Field(
        default=None, description="overrides the client's and the profile's rounding"
    )

    @field_validator("tracking")
    @classmethod
    def _tracking(cls, value: list[TrackingRule] | None) -> list[TrackingRule] | None:
        return None if value is None else list(check_tracking(value) or [])


class MappingRules(_Rule):
    clients: dict[str, ClientRule] = Field(
        default_factory=dict, description='by client id (or "SOURCE:ID")'
    )
    projects: dict[str, ProjectRule] = Field(
        default_factory=dict, description='by project id (or "SOURCE:ID")'
    )
    tasks: dict[str, TaskRule] = Field(
        default_factory=dict, description='by task id (or "SOURCE:ID")'
    )
    default_task: TaskRule | None = Field(
        default=None, description="for tasks without a rule; absent: such entries stay pending"
    )
    expense_categories: dict[str, TaskRule] = Field(
        default_factory=dict, description='by expense category id (or "SOURCE:ID")'
    )
    default_expense: TaskRule | None = Field(
        default=None, description="for expense categories without a rule"
    )
    default_tax_type: str | None = Field(
        default=None,
        description="for lines whose item, project and client name no tax_type",
    )
    expense_markup_percent: Decimal | None = Field(
        default=None,
        ge=0,
        le=1000,
        decimal_places=4,
        description="markup on expenses' unit prices, in percent, where neither the "
        "category nor the client sets one; absent or 0: at cost",
    )
    line_amount_types: Literal["Exclusive", "Inclusive", "NoTax"] | None = Field(
        default=None,
        description="whether unit prices include tax (Xero LineAmountTypes); overrides "
        "the Xero target's line_amount_types for this profile",
    )
    rates: list[RateRule] = Field(
        default_factory=list,
        description="rate rules with optional from/until dates; the most specific wins "
        "(README: Rates)",
    )
    trust_tracker_rate: bool = Field(
        default=True,
        description="with no rule for an entry, bill the tracker's own rate; false: such "
        "entries stay pending",
    )
    rounding: Rounding | None = Field(
        default=None, description="rounding of billed time; none: exact hours"
    )
    grouping: Grouping = Field(
        default="task",
        description="one line per: entry | task | user | project | task+user | date "
        "(and per price, item, account, tax and class)",
    )
    line_description: str | None = Field(
        default=None,
        min_length=1,
        description="line text template with {client} {project} {task} {user} "
        "{date_range} {notes}; default depends on grouping",
    )

    retainers: list[Retainer] = Field(
        default_factory=list,
        description="retainer billing per client or project (README: Billing modes)",
    )
    fixed_fees: list[FixedFee] = Field(
        default_factory=list,
        description="fixed-fee billing with milestones per client or project "
        "(README: Billing modes)",
    )

    @field_validator("line_description")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return None if value is None else check_template(value)

    @model_validator(mode="after")
    def _agreements_name_known_clients(self) -> MappingRules:
        seen: dict[str, str] = {}
        for where, agreement in self.agreements():
            client = self.clients.get(agreement.client)
            if client is None:
                raise ValueError(f"{where}: client {agreement.client!r} is not a key of clients")
            if not (agreement.currency or client.currency):
                raise ValueError(f"{where}: give currency here or on clients.{agreement.client}")
            if agreement.key in seen:
                raise ValueError(f"{where} and {seen[agreement.key]} both cover {agreement.key}")
            seen[agreement.key] = where
        return self

    def agreements(self) -> list[tuple[str, Agreement]]:
        """Every retainer and fixed fee, with where it is configured."""
        found: list[tuple[str, Agreement]] = [
            (f"retainers[{i}]", r) for i, r in enumerate(self.retainers)
        ]
        found += [(f"fixed_fees[{i}]", f) for i, f in enumerate(self.fixed_fees)]
        return found

    @model_validator(mode="after")
    def _markups_on_expenses_only(self) -> MappingRules:
        for key, rule in self.tasks.items():
            if rule.markup_percent is not None:
                raise ValueError(
                    f"tasks.{key}.markup_percent: markups apply to expense categories only "
                    "(time is priced by rates)"
                )
        if self.default_task is not None and self.default_task.markup_percent is not None:
            raise ValueError("default_task.markup_percent: markups apply to expenses only")
        return self

    @model_validator(mode="after")
    def _no_overlapping_rates(self) -> MappingRules:
        seen: dict[tuple[tuple[str, ...], tuple[str, ...]], list[tuple[str, RateRule]]] = {}
        for where, rule in self.rate_rules():
            key = (rule.level_ids, rule.values)
            for other_where, other in seen.get(key, []):
                if _overlap(rule, other):
                    raise ValueError(
                        f"rate rule {where} ({rule.describe()}) overlaps {other_where} "
                        f"({other.describe()}): their dates must not overlap"
                    )
            seen.setdefault(key, []).append((where, rule))
        return self

    def rate_rules(self) -> list[tuple[str, RateRule]]:
        """Every rate rule with where it is configured: ``rates`` and the client and project
        ``rate`` fields (which are client-level and project-level rules without dates)."""
        found = [(f"rates[{i}]", rule) for i, rule in enumerate(self.rates)]
        for key, client in self.clients.items():
            if client.rate is not None:
                found.append((f"clients.{key}.rate", RateRule(rate=client.rate, client=key)))
        for key, project in self.projects.items():
            if project.rate is not None:
                found.append((f"projects.{key}.rate", RateRule(rate=project.rate, project=key)))
        return found


def _overlap(a: RateRule, b: RateRule) -> bool:
    a_from, a_until = a.from_ or date.min, a.until or date.max
    b_from, b_until = b.from_ or date.min, b.until or date.max
    return a_from <= b_until and b_from <= a_until
