"""Tools for the finance staff who maintain mappings (the CLI uses them; a web console will too).

- ``wanted``: every source client, task and expense category of a period's entries whose
  mapping is missing, or names a contact or item the target doesn't have;
- ``suggest``: target contacts and items for them by fuzzy name match, each with a score;
- ``apply``: the mapping with the chosen suggestions written in, by the target's stable ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from connectors.base import Directory
from core.model import EntryKind, Ref, SourceEntry
from core.periods import Period
from mapping import documents
from mapping.resolver import ContactKind, ContactRef
from mapping.rules import MappingRules
from mapping.suggest import Candidate, Match, Matcher

CLIENTS, TASKS, EXPENSES = "clients", "tasks", "expense_categories"
DEFAULTS = {TASKS: "default_task", EXPENSES: "default_expense"}
CONTACT_FIELDS = ("contact_id", "contact_number", "contact_name")


@dataclass
class Wanted:
    """A source entity whose entries can't be billed until it maps to something that exists."""

    section: str  # clients, tasks or expense_categories: where its rule goes
    key: str  # the rule's key: the source id ("SOURCE:ID" when several sources)
    name: str  # the tracker's current name (for matching and display only)
    why: str
    entries: int = 0  # time entries and expenses
    hours: Decimal = field(default_factory=Decimal)  # of the time entries
    # at stake, at the trackers' rates, by currency (entries without a rate add nothing)
    value: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Suggestion:
    wanted: Wanted
    matches: tuple[Match, ...]  # best first

    @property
    def chosen(self) -> Match | None:
        """The best match, unless another candidate scores the same (then a person decides)."""
        if not self.matches:
            return None
        if len(self.matches) > 1 and self.matches[1].score == self.matches[0].score:
            return None
        return self.matches[0]


def _rule(rules: Mapping[str, Any], source: str, source_id: str) -> Any:
    return rules.get(f"{source}:{source_id}") or rules.get(source_id)


def _contact_ref(rule: Any) -> ContactRef | None:
    for name, kind in zip(CONTACT_FIELDS, ContactKind, strict=True):
        value = getattr(rule, name, None)
        if value:
            return ContactRef(kind, str(value))
    return None


def wanted(
    rules: MappingRules,
    entries: Iterable[SourceEntry],
    directory: Directory,
    period: Period,
    *,
    qualify: bool,
) -> list[Wanted]:
    """What the period's live, billable entries wait on, most hours first.

    ``qualify``: key rules "SOURCE:ID" (a profile with several sources), else by the bare id.
    """
    found: dict[tuple[str, str], Wanted] = {}

    def note(section: str, entry: SourceEntry, ref: Ref, why: str) -> None:
        key = f"{entry.source}:{ref.id}" if qualify else ref.id
        item = found.setdefault((section, key), Wanted(section, key, ref.name, why))
        item.entries += 1
        if entry.kind is EntryKind.TIME:  # an expense's quantity is units, not hours
            item.hours += entry.quantity
        if entry.unit_price is not None:
            amount = entry.quantity * entry.unit_price
            item.value[entry.currency] = item.value.get(entry.currency, Decimal(0)) + amount

    for entry in entries:
        if entry.deleted or entry.running or not entry.billable or entry.billed_in_source:
            continue
        if not period.contains(entry.spent_date):
            continue
        client_rule = _rule(rules.clients, entry.source, entry.client.id)
        if client_rule is None:
            why = "no rule"
        else:
            ref = _contact_ref(client_rule)
            known = ref is not None and (directory.open_names or directory.contact(ref) is not None)
            why = "" if known else f"contact {ref} not found in the target"
        if why:
            note(CLIENTS, entry, entry.client, why)
        section = EXPENSES if entry.kind is EntryKind.EXPENSE else TASKS
        task_rule = _rule(getattr(rules, section), entry.source, entry.task.id)
        if task_rule is None:
            task_rule = getattr(rules, DEFAULTS[section])
        item = getattr(task_rule, "item_code", None) if task_rule is not None else None
        if task_rule is None:
            why = "no rule"
        elif item and not directory.open_names and item not in directory.item_codes:
            why = f"item {item} not found in the target"
        elif directory.requires_item and not item:
            why = "this target needs an item on every line"
        else:
            why = ""
        if why:
            note(section, entry, entry.task, why)
    return sorted(found.values(), key=lambda w: (w.section, -w.hours, w.key))


def contact_candidates(directory: Directory) -> list[Candidate]:
    seen: dict[str, Candidate] = {}
    for contact in directory.contacts.values():
        if contact.contact_id in seen or not contact.name:
            continue
        label = f"{contact.name} ({contact.number or contact.contact_id})"
        seen[contact.contact_id] = Candidate(contact.contact_id, (contact.name,), label)
    return list(seen.values())


def item_candidates(directory: Directory) -> list[Candidate]:
    candidates = []
    for code in sorted(directory.item_codes):
        name = directory.item_names.get(code)
        names = (code, name) if name and name != code else (code,)
        candidates.append(Candidate(code, names, f"{code} ({name})" if name else code))
    return candidates


def suggest(
    items: Iterable[Wanted], directory: Directory, *, min_score: float, limit: int = 3
) -> list[Suggestion]:
    """Target contacts (for clients) and items (for tasks and expense categories) by name."""
    contacts = Matcher(contact_candidates(directory))
    goods = Matcher(item_candidates(directory))
    return [
        Suggestion(
            w,
            tuple(
                (contacts if w.section == CLIENTS else goods).best(
                    w.name, min_score=min_score, limit=limit
                )
            ),
        )
        for w in items
    ]


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


def apply(rules: MappingRules, chosen: Iterable[tuple[Wanted, Match]]) -> MappingRules:
    """The rules with each choice written in by the target's stable id: a client's contact
    (ContactID where the target has one, else its exact name), a task's item code. A rule
    that already exists keeps its other fields. Validated as a whole."""
    data = documents.dump(rules)
    for want, match in chosen:
        section = data.setdefault(want.section, {})
        rule = dict(section.get(want.key) or {})
        if want.section == CLIENTS:
            for name in CONTACT_FIELDS:
                rule.pop(name, None)
            if _is_uuid(match.candidate.id):
                rule["contact_id"] = match.candidate.id
            else:
                rule["contact_name"] = match.candidate.names[0]
        else:
            rule["item_code"] = match.candidate.id
        section[want.key] = rule
    return MappingRules.model_validate(data)
