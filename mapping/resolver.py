"""Resolve canonical entries to accounting targets and prices.

The resolver is pure: it reads rules and an entry and returns either a ``MappedEntry`` or an
``Unmapped`` naming everything that is missing. Nothing is ever dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from core.model import EntryKind, SourceEntry
from mapping.expenses import choose_markup
from mapping.rates import RateBook
from mapping.rules import ClientRule, Grouping, MappingRules, ProjectRule, Rounding, TaskRule
from mapping.tax import Tracking, first, tracking_of

R = TypeVar("R")


class ContactKind(StrEnum):
    ID = "contact_id"
    NUMBER = "contact_number"
    NAME = "contact_name"


@dataclass(frozen=True, slots=True, order=True)
class ContactRef:
    """How the mapping names an accounting contact; the target resolves it to its own id."""

    kind: ContactKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind.value}={self.value}"


@dataclass(frozen=True, slots=True)
class MappedEntry:
    entry: SourceEntry
    contact: ContactRef
    currency: str
    tax_type: str | None
    item_code: str | None
    account_code: str | None
    description: str
    unit_price: Decimal
    rate_rule: str
    category: str | None = None  # QuickBooks Class of the line
    department: str | None = None  # QuickBooks Department of the invoice
    rounding: Rounding | None = None  # project's, else client's, else profile's; None: exact
    grouping: Grouping = "task"  # client's, else profile's
    template: str | None = None  # line description template; None: the grouping's default
    late_from: str | None = None  # a late entry's own (closed) period, marked on its line
    tracking: Tracking = ()  # Xero tracking (category, option) pairs: project's, else client's


@dataclass(frozen=True, slots=True)
class Unmapped:
    entry: SourceEntry
    missing: tuple[str, ...]


def _lookup(rules: Mapping[str, R], source: str, source_id: str) -> R | None:
    """A rule keyed "<source>:<id>" wins over one keyed by the bare id (ids are per tracker)."""
    return rules.get(f"{source}:{source_id}") or rules.get(source_id)


def _tracking(project_rule: ProjectRule | None, client_rule: ClientRule) -> Tracking:
    return tracking_of(project_rule.tracking if project_rule else None, client_rule.tracking)


def _contact_of(rule: ClientRule) -> ContactRef:
    if rule.contact_id is not None:
        return ContactRef(ContactKind.ID, str(rule.contact_id))
    if rule.contact_number is not None:
        return ContactRef(ContactKind.NUMBER, rule.contact_number)
    assert rule.contact_name is not None  # guaranteed by ClientRule's validator
    return ContactRef(ContactKind.NAME, rule.contact_name)


class Resolver:
    def __init__(self, rules: MappingRules) -> None:
        self._rules = rules
        self._rates = RateBook(rules)

    def resolve(self, entry: SourceEntry) -> MappedEntry | Unmapped:
        missing: list[str] = []
        client_rule = _lookup(self._rules.clients, entry.source, entry.client.id)
        if client_rule is None:
            missing.append(f"client {entry.client.id} {entry.client.name!r}")
        task_rule = self._task_rule(entry)
        if task_rule is None:
            kind = "expense category" if entry.kind is EntryKind.EXPENSE else "task"
            missing.append(f"{kind} {entry.task.id} {entry.task.name!r}")
        if (
            client_rule is not None
            and client_rule.currency
            and client_rule.currency != entry.currency
        ):
            missing.append(
                f"client {entry.client.id} is billed in {client_rule.currency} "
                f"but the tracker records {entry.currency}"
            )
        project_rule = _lookup(self._rules.projects, entry.source, entry.project.id)
        price, rule_name = self._rate(entry, client_rule, task_rule)
        if price is None:
            why = "" if self._rules.trust_tracker_rate else " (trust_tracker_rate is false)"
            missing.append(f"rate for project {entry.project.id} {entry.project.name!r}{why}")
        if missing or client_rule is None or task_rule is None or price is None:
            return Unmapped(entry, tuple(missing))
        return MappedEntry(
            entry=entry,
            contact=_contact_of(client_rule),
            currency=client_rule.currency or entry.currency,
            tax_type=first(
                task_rule.tax_type,
                project_rule.tax_type if project_rule else None,
                client_rule.tax_type,
                self._rules.default_tax_type,
            ),
            item_code=task_rule.item_code,
            account_code=task_rule.account_code,
            description=task_rule.description
            or entry.task.name
            or entry.project.name
            or ("Expenses" if entry.kind is EntryKind.EXPENSE else "Professional services"),
            unit_price=price,
            rate_rule=rule_name,
            category=self._category(entry, client_rule),
            department=first(
                project_rule.qbo_department if project_rule else None,
                client_rule.qbo_department,
            ),
            rounding=self._rounding(entry, client_rule),
            grouping=client_rule.grouping or self._rules.grouping,
            template=client_rule.line_description or self._rules.line_description,
            tracking=_tracking(project_rule, client_rule),
        )

    def _rounding(self, entry: SourceEntry, client_rule: ClientRule) -> Rounding | None:
        if entry.kind is EntryKind.EXPENSE:
            return None  # units, not time
        project_rule = _lookup(self._rules.projects, entry.source, entry.project.id)
        if project_rule is not None and project_rule.rounding is not None:
            return project_rule.rounding
        return client_rule.rounding or self._rules.rounding

    def _category(self, entry: SourceEntry, client_rule: ClientRule) -> str | None:
        project_rule = _lookup(self._rules.projects, entry.source, entry.project.id)
        if project_rule is not None and project_rule.qbo_class:
            return project_rule.qbo_class
        return client_rule.qbo_class

    def _expense_key(self, entry: SourceEntry) -> str:
        """Where the expense category's rule is configured, for `preview --explain`."""
        rules = self._rules.expense_categories
        for key in (f"{entry.source}:{entry.task.id}", entry.task.id):
            if key in rules:
                return f"expense_categories.{key}"
        return "default_expense"

    def _task_rule(self, entry: SourceEntry) -> TaskRule | None:
        if entry.kind is EntryKind.EXPENSE:
            rules, default = self._rules.expense_categories, self._rules.default_expense
        else:
            rules, default = self._rules.tasks, self._rules.default_task
        return _lookup(rules, entry.source, entry.task.id) or default

    def _rate(
        self, entry: SourceEntry, client_rule: ClientRule | None, task_rule: TaskRule | None
    ) -> tuple[Decimal | None, str]:
        if entry.kind is EntryKind.EXPENSE:  # at cost, or with the most specific markup
            if entry.unit_price is None:
                return None, "none"
            key = self._expense_key(entry)
            markup = choose_markup(
                (key, task_rule.markup_percent if task_rule else None),
                (
                    f"clients.{entry.client.id}",
                    client_rule.expense_markup_percent if client_rule else None,
                ),
                self._rules.expense_markup_percent,
            )
            return markup.apply(entry.unit_price), markup.explain()
        choice = self._rates.rate_for(entry)
        if choice is None:
            return None, "none"
        return choice.rate, choice.rule
