"""Toggl JSON → canonical entries: workspace listings and Reports API v3 detailed-report rows.

A detailed-report row (``POST /reports/api/v3/workspace/{wid}/search/time_entries``, not
grouped) carries the entry's context and a ``time_entries`` list, normally of one item:

    {"user_id", "username", "project_id", "task_id", "billable", "description", "tag_ids",
     "billable_amount_in_cents", "hourly_rate_in_cents", "currency", "row_number",
     "time_entries": [{"id", "seconds", "start", "stop", "at", "at_tz"}]}

Fields used, and how:

* ``id`` → ``source_id`` (the time entry id, as a string);
* ``start`` → ``spent_date``: the calendar date of ``start`` as Toggl writes it (Toggl renders
  times in the token owner's profile timezone, the zone its own reports use), or in the
  configured ``timezone`` when one is set;
* ``seconds`` → ``quantity`` = seconds / 3600: exact whenever that has at most 4 decimals
  (whole seconds divisible by 9, e.g. any multiple of 3 minutes), otherwise rounded half-up to
  0.0001 h (0.36 s), the precision the CSV source and a Xero quantity use. A negative
  ``seconds`` is Toggl's running timer: ``running=True`` and quantity 0 (the engine keeps it
  pending; the elapsed time would change on every pull);
* ``hourly_rate_in_cents`` → ``unit_price`` = cents / 100, exact (None when Toggl hides it);
  ``currency`` → ``currency``. ``billable_amount_in_cents`` is type-checked only: invoices
  recompute quantity × rate, while Toggl's amount is already rounded per entry;
* ``at`` → ``updated_at`` (must carry an offset);
* ``user_id`` + ``username``, ``project_id``, ``task_id`` → refs; project, task and client
  names come from the workspace listings (the client is the project's client). An entry
  without a project has an empty client and project (``Ref("", "")``), as has a task-less
  entry's task;
* ``description`` → ``notes``; ``billable`` → ``billable``;
* ``tag_ids`` → ``approved`` (policy ``tag``: carries the approved tag; ``all``: always) and
  ``billed_in_source`` (carries the invoiced tag). Tag ids are matched by name through the
  workspace's tag listing.

Anything malformed raises ``SourceDataError`` naming the source, the entry id and the field,
in one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from connectors import fields
from core.errors import SourceDataError
from core.model import EntryKind, Ref, SourceEntry
from core.money import to_decimal

SECONDS_PER_HOUR = 3600
HOURS_PLACES = Decimal("0.0001")
NO_REF = Ref(id="", name="")


@dataclass(frozen=True)
class Project:
    name: str
    client_id: int | None


@dataclass(frozen=True)
class Catalogue:
    """Names by id, from one listing call each per pull (clients, projects, tasks, tags)."""

    clients: Mapping[int, str] = field(default_factory=dict)
    projects: Mapping[int, Project] = field(default_factory=dict)
    tasks: Mapping[int, str] = field(default_factory=dict)
    tags: Mapping[str, frozenset[int]] = field(default_factory=dict)  # name → ids

    def tag_ids(self, name: str) -> frozenset[int]:
        return self.tags.get(name, frozenset())


@dataclass(frozen=True)
class Rules:
    """How tags become flags, and which zone spent dates are read in."""

    approved_tag_ids: frozenset[int] | None  # None: every entry is approved (approval: all)
    invoiced_tag_ids: frozenset[int]
    zone: ZoneInfo | None = None


class _FieldError(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


# ---------------------------------------------------------------------- listings


def listing_items(source: str, what: str, body: object) -> list[dict[str, Any]]:
    """The items of a v9 listing: a bare array, or an envelope with ``data`` (tasks)."""
    items = body.get("data") if isinstance(body, dict) else body
    if items is None and isinstance(body, dict):
        items = []
    if not isinstance(items, list):
        raise SourceDataError(f"{source}: the {what} listing is not a JSON array")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise SourceDataError(f"{source}: the {what} listing: item {index} is not an object")
        item_id = item.get("id")
        if isinstance(item_id, bool) or not isinstance(item_id, int):
            raise SourceDataError(
                f"{source}: the {what} listing: item {index}: field 'id' must be an integer"
            )
    return items


def _name(source: str, what: str, item: dict[str, Any]) -> str:
    value = item.get("name")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SourceDataError(
            f"{source}: the {what} listing: {what[:-1]} {item['id']}: field 'name' must be a string"
        )
    return value


def names_by_id(source: str, what: str, items: list[dict[str, Any]]) -> dict[int, str]:
    return {int(item["id"]): _name(source, what, item) for item in items}


def projects_by_id(source: str, items: list[dict[str, Any]]) -> dict[int, Project]:
    projects: dict[int, Project] = {}
    for item in items:
        client_id = item.get("client_id", item.get("cid"))
        if client_id is not None and (
            isinstance(client_id, bool) or not isinstance(client_id, int)
        ):
            raise SourceDataError(
                f"{source}: the projects listing: project {item['id']}: field 'client_id' "
                "must be an integer or null"
            )
        projects[int(item["id"])] = Project(_name(source, "projects", item), client_id)
    return projects


def tags_by_name(source: str, items: list[dict[str, Any]]) -> dict[str, frozenset[int]]:
    found: dict[str, set[int]] = {}
    for item in items:
        if item.get("deleted_at"):
            continue
        found.setdefault(_name(source, "tags", item), set()).add(int(item["id"]))
    return {name: frozenset(ids) for name, ids in found.items()}


# ---------------------------------------------------------------------- report rows


def parse_row(source: str, raw: object, catalogue: Catalogue, rules: Rules) -> list[SourceEntry]:
    """One detailed-report row → its entries (one per item of ``time_entries``)."""
    if not isinstance(raw, dict):
        raise SourceDataError(f"{source}: report row is not an object: {fields.clip(raw)}")
    items = raw.get("time_entries")
    if not isinstance(items, list) or not items:
        raise SourceDataError(
            f"{source}: report row {fields.clip(raw.get('row_number'))}: field 'time_entries' "
            "must be a non-empty list"
        )
    return [_entry(source, raw, item, catalogue, rules) for item in items]


def _entry(
    source: str, row: dict[str, Any], item: object, catalogue: Catalogue, rules: Rules
) -> SourceEntry:
    if not isinstance(item, dict):
        raise SourceDataError(
            f"{source}: report row time entry is not an object: {fields.clip(item)}"
        )
    entry_id = item.get("id")
    where = f"{source}: time entry {fields.clip(entry_id)}"
    if isinstance(entry_id, bool) or not isinstance(entry_id, int) or entry_id < 1:
        raise SourceDataError(f"{where}: field 'id' must be a positive integer")
    field_name = "?"
    try:
        field_name = "seconds"
        seconds = _integer(item["seconds"])
        field_name = "start"
        spent = _spent_date(item["start"], rules.zone)
        field_name = "at"
        updated = fields.aware(item["at"])
        field_name = "billable"
        billable = fields.boolean(row["billable"])
        field_name = "description"
        notes = fields.optional_text(row.get("description"))
        field_name = "hourly_rate_in_cents"
        rate = _rate(row.get("hourly_rate_in_cents"))
        field_name = "billable_amount_in_cents"
        _optional_number(row.get("billable_amount_in_cents"))
        field_name = "currency"
        currency = fields.currency(row["currency"])
        field_name = "user_id"
        user = Ref(str(_integer(row["user_id"])), fields.optional_text(row.get("username")))
        field_name = "project_id"
        project_id = _optional_id(row.get("project_id"))
        field_name = "task_id"
        task_id = _optional_id(row.get("task_id"))
        field_name = "tag_ids"
        tag_ids = _id_set(row.get("tag_ids"))
    except KeyError as exc:
        raise SourceDataError(f"{where}: missing field {exc.args[0]!r}") from None
    except ValueError as exc:
        raise SourceDataError(f"{where}: field {field_name!r}: {exc}") from None
    running = seconds < 0
    project = catalogue.projects.get(project_id) if project_id is not None else None
    client_id = project.client_id if project is not None else None
    approved = rules.approved_tag_ids is None or bool(tag_ids & rules.approved_tag_ids)
    return SourceEntry(
        source=source,
        source_id=str(entry_id),
        kind=EntryKind.TIME,
        spent_date=spent,
        quantity=Decimal(0) if running else hours(seconds),
        unit_price=rate,
        currency=currency,
        client=NO_REF
        if client_id is None
        else Ref(str(client_id), catalogue.clients.get(client_id, "")),
        project=NO_REF
        if project_id is None
        else Ref(str(project_id), project.name if project is not None else ""),
        task=NO_REF if task_id is None else Ref(str(task_id), catalogue.tasks.get(task_id, "")),
        user=user,
        notes=notes,
        billable=billable,
        approved=approved,
        billed_in_source=bool(tag_ids & rules.invoiced_tag_ids),
        running=running,
        updated_at=updated,
    )


def hours(seconds: int) -> Decimal:
    """Whole seconds → hours: exact when it has at most 4 decimals, else rounded to 0.0001."""
    value = Decimal(seconds) / SECONDS_PER_HOUR
    if seconds % 9 == 0:  # seconds × 10⁴ / 3600 is then whole: the quotient above is exact
        return value
    return value.quantize(HOURS_PLACES, rounding=ROUND_HALF_UP)


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {fields.clip(value)}")
    return value


def _optional_id(value: object) -> int | None:
    if value is None:
        return None
    number = _integer(value)
    if number < 1:
        raise ValueError(f"expected a positive integer, got {number}")
    return number


def _id_set(value: object) -> frozenset[int]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise ValueError(f"expected a list of integers, got {fields.clip(value)}")
    return frozenset(_integer(v) for v in value)


def _spent_date(value: object, zone: ZoneInfo | None) -> date:
    moment = fields.timestamp(value)
    if zone is not None and moment.tzinfo is not None:
        moment = moment.astimezone(zone)
    return moment.date()


def _optional_number(value: object) -> Decimal | None:
    return None if value is None else to_decimal(value, what="amount")


def _rate(value: object) -> Decimal | None:
    cents = _optional_number(value)
    if cents is None:
        return None
    if cents < 0:
        raise ValueError(f"must not be negative, got {cents}")
    return cents.scaleb(-2)  # exact: cents / 100
