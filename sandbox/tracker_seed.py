"""Deterministic Toggl Track and Clockify data sets for the sandbox fakes.

``build_toggl(spec)`` and ``build_clockify(spec)`` derive one agency's month
the way ``sandbox.seed.build_agency_month`` does for Harvest, but shaped like
the two other trackers:

* Toggl: API v9 objects (clients, projects, project users, tasks, tags,
  users, time entries) plus what the Reports API v3 needs to render rows
  (per-project and per-project-user hourly rates, the project currency).
* Clockify: API v1 objects (clients, projects with memberships, tasks, tags,
  users, time entries with an ``hourlyRate`` snapshot, expenses and expense
  categories).

Some client names are the Harvest seed's own, so one agency can track the
same clients in two tools. Everything comes from ``SeedSpec`` alone:
``random.Random(spec.seed + offset)``, fixed id bases (Toggl) or hashed
ObjectId-like ids (Clockify), timestamps computed from the period.

Each tracker gets about ``spec.entries // 2`` entries in the period plus ~3 %
in the three days either side, with: ~8 % non-billable, ~7 % not approved,
~3 % already invoiced and exactly one running timer. Durations are whole
minutes in steps of 3 (0.05 h) and rates whole currency units, so hours × rate
is always exact in cents. Descriptions include empty ones, unicode/emoji and
~1,000-character ones.

Toggl has no approval or invoiced flag on time entries (approvals are a
Premium feature, and live in timesheets), so the seed marks approval with the
tag ``approved`` and invoicing with the tag ``invoiced``.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.seed import DEFAULT_SPEC, SeedSpec, build_agency_month

__all__ = [
    "APPROVED_TAG",
    "CLOCKIFY_API_KEY_OWNER_INDEX",
    "INVOICED_TAG",
    "ClockifyData",
    "TogglData",
    "build_clockify",
    "build_toggl",
    "clockify_entry_ids_by_status",
    "clockify_iso_duration",
    "clockify_oid",
    "toggl_entry_ids_by_status",
]

TOGGL_OFFSET = 101  # random.Random(spec.seed + offset): independent of the Harvest stream
CLOCKIFY_OFFSET = 202

# Toggl ids: integers, fixed bases, far from the Harvest seed's ranges.
TOGGL_ORGANIZATION_ID = 8_440_001
TOGGL_WORKSPACE_ID = 8_450_001
TOGGL_CLIENT_ID_BASE = 62_100_000
TOGGL_PROJECT_ID_BASE = 201_400_000
TOGGL_PROJECT_USER_ID_BASE = 128_600_000
TOGGL_TASK_ID_BASE = 93_700_000
TOGGL_USER_ID_BASE = 9_810_000
TOGGL_TAG_ID_BASE = 17_300_000
TOGGL_ENTRY_ID_BASE = 3_900_000_000
TOGGL_TIMESHEET_SETUP_ID_BASE = 410_000

APPROVED_TAG = "approved"
INVOICED_TAG = "invoiced"

#: The Clockify API key belongs to this user (index into ClockifyData.users).
CLOCKIFY_API_KEY_OWNER_INDEX = 0

_MINUTE_STEP = 3  # 3 minutes = 0.05 h: hours always have two decimals at most


# --------------------------------------------------------------------------
# Data classes
# --------------------------------------------------------------------------


@dataclass
class TogglData:
    """One Toggl Track workspace, as API v9 objects."""

    spec: SeedSpec
    workspace_id: int
    organization_id: int
    workspace: dict[str, Any]  # name, default_hourly_rate (whole units), default_currency, ...
    clients: list[dict[str, Any]]
    projects: list[dict[str, Any]]  # "rate" (whole units or None) and "currency" per project
    project_users: list[dict[str, Any]]  # per project member: "rate" (whole units or None)
    tasks: list[dict[str, Any]]
    users: list[dict[str, Any]]  # users[0] owns the API token and approves timesheets
    tags: list[dict[str, Any]]
    time_entries: list[dict[str, Any]]
    timesheet_setups: list[dict[str, Any]]

    def hourly_rate(self, project_id: int | None, user_id: int) -> tuple[int, str]:
        """(rate in cents, currency) the Reports API shows for a user's time on a project.

        Toggl's rate precedence [U: order not confirmed by a source]: the
        project member's rate, then the project's rate, then the workspace
        default rate. The currency is the project's, else the workspace's.
        """
        default = int(self.workspace["default_hourly_rate"])
        currency = str(self.workspace["default_currency"])
        if project_id is None:
            return default * 100, currency
        project = next((p for p in self.projects if p["id"] == project_id), None)
        if project is None:
            return default * 100, currency
        currency = str(project.get("currency") or currency)
        member = next(
            (
                pu
                for pu in self.project_users
                if pu["project_id"] == project_id and pu["user_id"] == user_id
            ),
            None,
        )
        if member is not None and member.get("rate") is not None:
            return int(member["rate"]) * 100, currency
        if project.get("rate") is not None:
            return int(project["rate"]) * 100, currency
        return default * 100, currency


@dataclass
class ClockifyData:
    """One Clockify workspace, as API v1 objects (ids are 24-hex strings)."""

    spec: SeedSpec
    workspace_id: str
    workspace: dict[str, Any]
    clients: list[dict[str, Any]]
    projects: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    users: list[dict[str, Any]]  # users[CLOCKIFY_API_KEY_OWNER_INDEX] owns the API key
    tags: list[dict[str, Any]]
    time_entries: list[dict[str, Any]]
    expense_categories: list[dict[str, Any]]
    expenses: list[dict[str, Any]]


# --------------------------------------------------------------------------
# Catalogues
# --------------------------------------------------------------------------

# Clients only one of the trackers has (name, currency).
_TOGGL_ONLY_CLIENTS = (
    ("Pōhutukawa Events Ltd", "NZD"),
    ("Zürich Fintech AG", "EUR"),
    ("Bluebird Coffee Roasters", "USD"),
)
_CLOCKIFY_ONLY_CLIENTS = (
    ("Kauri Coast Consulting", "NZD"),
    ("Østfold Marine AS", "EUR"),
    ("Lighthouse Learning Trust", "GBP"),
)

_FIRST_NAMES = (
    "Anahera", "Ben", "Chloé", "Dev", "Eru", "Freya", "Gustavo", "Hine", "Ingrid", "Jae-won",
    "Kiri", "Lucía", "Mikael", "Nadia", "Oscar", "Paora",
)  # fmt: skip
_LAST_NAMES = (
    "Te Whata", "Okafor", "Lefèvre", "Sharma", "Rāwiri", "Nilsson", "Pereira", "Morgan",
    "Johansson", "Park", "Tūhoe", "Fernández", "Koskinen", "Haddad", "Brennan", "Horomona",
)  # fmt: skip

_PROJECT_KINDS = (
    "Website Rebuild",
    "Mobile App",
    "Brand Identity",
    "Data Warehouse",
    "Support Retainer",
    "SEO Sprint",
    "Booking Platform",
    "Internal Tools",
)
_TASK_NAMES = ("Design", "Development", "Project Management", "QA", "Consulting")
_EXTRA_TAGS = ("meeting", "urgent", "client-visible", "Überstunden", "🚀 launch")

_SHORT_DESCRIPTIONS = (
    "Homepage hero layout",
    "Fixed checkout rounding bug",
    "Sprint planning",
    "Client call re: scope change",
    "Code review",
    "Deploy to staging",
    "Accessibility audit (WCAG 2.2)",
    "Bug triage 🐛",
    "Performance tuning ⚡ — image pipeline",
    "Réunion avec l'équipe — révision du logo",
    "Kōrero with the client about te reo Māori labels",
    "Übersetzung der Produkttexte prüfen",
    "Logo variations ✏️🎨",
    "Release 2.4 🚀",
    "数据迁移 — data migration dry run",
    "Тестирование платежей (payments QA)",
    "Weekly status report",
    "Unit tests for invoice export",
    "Fixed timezone bug (NZDT → UTC)",
    "Stakeholder workshop",
)
_LONG_SENTENCES = (
    "Worked through the outstanding review items with the client's product team.",
    "Refactored the pricing module so that currency rounding happens once, per line.",
    "Paired with QA on the regression suite; two flaky tests were quarantined and ticketed.",
    "Updated the deployment runbook and walked the on-call engineer through a rollback.",
    "Drafted the onboarding emails — naïve assumptions about legacy data were corrected.",
    "Reviewed sprint analytics: mobile bounce rate dropped by about 12 % 📉.",
    "Met the stakeholders to agree acceptance criteria for phase two (Māori & Pasifika UX).",
    "Followed up on accessibility findings and fixed colour contrast on every form.",
    "Migrated the staging database, verified row counts and re-ran the smoke tests ✅.",
    "Wrote up the decision log so the next reviewer knows why the cache layer moved.",
)

_TOGGL_COLORS = ("#0b83d9", "#9e5bd9", "#d94182", "#e36a00", "#bf7000", "#2da608", "#06a893")
_CLOCKIFY_COLORS = ("#03A9F4", "#4CAF50", "#FF9800", "#9C27B0", "#E91E63", "#607D8B")


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def clockify_oid(kind: str, key: object) -> str:
    """A deterministic 24-hex id (Clockify uses MongoDB ObjectIds)."""
    return hashlib.sha256(f"hourbridge-clockify:{kind}:{key}".encode()).hexdigest()[:24]


def clockify_iso_duration(seconds: int) -> str:
    """ISO 8601 duration as Clockify's time entry API writes it: ``PT1H30M``, ``PT0S``."""
    if seconds <= 0:
        return "PT0S"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if secs:
        out += f"{secs}S"
    return out


def _toggl_ts(moment: datetime) -> str:
    """Toggl v9 timestamps: RFC 3339 with an explicit offset, e.g. ``…T09:00:00+00:00``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _clockify_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _period_bounds(period: str) -> tuple[date, date]:
    parts = period.split("-")
    if len(parts) != 2 or len(parts[0]) != 4 or len(parts[1]) != 2:
        raise ValueError(f"period must be YYYY-MM, got {period!r}")
    year, month = int(parts[0]), int(parts[1])
    if not 1 <= month <= 12:
        raise ValueError(f"period must be YYYY-MM, got {period!r}")
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _at(day: date, minute_of_day: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minute_of_day)


def _long_description(rng: random.Random) -> str:
    """About 1,000 characters, cut at a word boundary."""
    sentences = list(_LONG_SENTENCES)
    text = ""
    while len(text) < 1000:
        rng.shuffle(sentences)
        text = f"{text} {' '.join(sentences)}".strip()
    cut = text[:1000]
    return cut[: cut.rfind(" ")].rstrip() if " " in cut else cut


def _description(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.06:
        return None
    if roll < 0.09:
        return ""
    if roll < 0.13:
        return _long_description(rng)
    return rng.choice(_SHORT_DESCRIPTIONS)


@dataclass(frozen=True)
class _Slot:
    day: date
    category: str  # approved | invoiced | unapproved | nonbillable | running


def _plan(rng: random.Random, spec: SeedSpec) -> list[_Slot]:
    """Days and categories of every entry, in date order (ids ascend with start)."""
    first, last = _period_bounds(spec.period)
    n_in = max(10, spec.entries // 2)
    n_out = max(2, round(n_in * 0.03))
    total = n_in + n_out
    n_nonbillable = round(total * 0.08)
    n_unapproved = round(total * 0.07)
    n_invoiced = round(total * 0.03)
    n_approved = total - 1 - n_nonbillable - n_unapproved - n_invoiced

    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    workdays = [d for d in days if d.weekday() < 5]
    weekends = [d for d in days if d.weekday() >= 5]
    before = [first - timedelta(days=k) for k in (1, 2, 3)]
    after = [last + timedelta(days=k) for k in (1, 2, 3)]

    dates: list[date] = []
    for _ in range(n_in - 1):  # the last in-period slot is the running timer
        pool = weekends if weekends and rng.random() < 0.05 else workdays
        dates.append(rng.choice(pool))
    dates.extend(rng.choice(before if k % 2 == 0 else after) for k in range(n_out))
    categories = (
        ["nonbillable"] * n_nonbillable
        + ["unapproved"] * n_unapproved
        + ["invoiced"] * n_invoiced
        + ["approved"] * n_approved
    )
    rng.shuffle(categories)
    plan = [_Slot(d, c) for d, c in zip(dates, categories, strict=True)]
    plan.append(_Slot(workdays[-1], "running"))
    plan.sort(key=lambda slot: slot.day)
    return plan


def _times(rng: random.Random, slot: _Slot) -> tuple[datetime, int]:
    """Start and duration in whole minutes (a multiple of 3)."""
    start_minute = rng.randrange(8 * 60, 15 * 60, 5)
    if slot.category == "running":
        minutes = rng.randrange(15, 150, _MINUTE_STEP)
    elif rng.random() < 0.7:
        minutes = rng.randrange(15, 180, _MINUTE_STEP)
    else:
        minutes = rng.randrange(180, 481, _MINUTE_STEP)
    return _at(slot.day, start_minute), minutes


@functools.lru_cache(maxsize=8)
def _harvest_clients(spec: SeedSpec) -> tuple[tuple[str, str], ...]:
    """The Harvest seed's client names and currencies (the month is built once per spec)."""
    return tuple((str(c["name"]), str(c["currency"])) for c in build_agency_month(spec).clients)


def _pick_clients(spec: SeedSpec, start: int, count: int) -> list[tuple[str, str]]:
    """Names and currencies of ``count`` Harvest clients from ``start`` (wrapping)."""
    harvest = _harvest_clients(spec)
    return [harvest[(start + k) % len(harvest)] for k in range(min(count, len(harvest)))]


def _users(rng: random.Random, count: int, name_offset: int) -> list[tuple[str, str, str]]:
    """(full name, email, timezone) for ``count`` people."""
    people = []
    for i in range(count):
        first = _FIRST_NAMES[(i + name_offset) % len(_FIRST_NAMES)]
        last = _LAST_NAMES[(i * 5 + name_offset) % len(_LAST_NAMES)]
        slug = "".join(
            ch for ch in f"{first}.{last}".lower() if ch.isascii() and (ch.isalnum() or ch == ".")
        )
        tz = rng.choice(
            ("Pacific/Auckland", "Pacific/Auckland", "Europe/Berlin", "America/New_York")
        )
        people.append((f"{first} {last}", f"{slug}@hourbridge-agency.example", tz))
    return people


# --------------------------------------------------------------------------
# Toggl
# --------------------------------------------------------------------------


def _toggl_workspace(stamp: str) -> dict[str, Any]:
    return {
        "id": TOGGL_WORKSPACE_ID,
        "organization_id": TOGGL_ORGANIZATION_ID,
        "name": "Hourbridge Sandbox Agency",
        "premium": True,
        "default_hourly_rate": 120,
        "default_currency": "NZD",
        "rounding": 1,
        "rounding_minutes": 0,
        "at": stamp,
    }


def _toggl_users(rng: random.Random, stamp: str) -> list[dict[str, Any]]:
    return [
        {
            "id": TOGGL_USER_ID_BASE + 1 + i,
            "email": email,
            "fullname": name,
            "timezone": tz,
            "default_workspace_id": TOGGL_WORKSPACE_ID,
            "beginning_of_week": 1,
            "image_url": "https://assets.track.toggl.com/images/profile.png",
            "at": stamp,
        }
        for i, (name, email, tz) in enumerate(_users(rng, 12, 0))
    ]


def _toggl_clients(
    rows: list[tuple[str, str]], epoch: datetime, owner: int
) -> list[dict[str, Any]]:
    return [
        {
            "id": TOGGL_CLIENT_ID_BASE + 1 + i,
            "wid": TOGGL_WORKSPACE_ID,
            "workspace_id": TOGGL_WORKSPACE_ID,
            "name": name,
            "archived": False,
            "at": _toggl_ts(epoch + timedelta(days=i)),
            "creator_id": owner,
            "notes": None,
        }
        for i, (name, _currency) in enumerate(rows)
    ]


@dataclass
class _TogglCatalogue:
    projects: list[dict[str, Any]] = field(default_factory=list)
    project_users: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    teams: dict[int, list[int]] = field(default_factory=dict)
    tasks_by_project: dict[int, list[int]] = field(default_factory=dict)


def _toggl_project(
    rng: random.Random,
    cat: _TogglCatalogue,
    *,
    client: dict[str, Any],
    kind: str,
    currency: str,
    created: datetime,
) -> int:
    pid = TOGGL_PROJECT_ID_BASE + 1 + len(cat.projects)
    rate = rng.randrange(110, 221, 5) if rng.random() < 0.6 else None
    cat.projects.append(
        {
            "id": pid,
            "workspace_id": TOGGL_WORKSPACE_ID,
            "wid": TOGGL_WORKSPACE_ID,
            "client_id": client["id"],
            "cid": client["id"],
            "name": kind,
            "is_private": False,
            "active": True,
            "billable": True,
            "template": False,
            "color": rng.choice(_TOGGL_COLORS),
            "rate": rate,
            "rate_last_updated": _toggl_ts(created) if rate is not None else None,
            "currency": currency,
            "estimated_hours": None,
            "actual_hours": None,
            "auto_estimates": None,
            "recurring": False,
            "created_at": _toggl_ts(created),
            "at": _toggl_ts(created + timedelta(days=1)),
            "server_deleted_at": None,
        }
    )
    return pid


def _toggl_members(
    rng: random.Random, cat: _TogglCatalogue, pid: int, user_ids: list[int], created: datetime
) -> None:
    team = sorted(rng.sample(user_ids, rng.randint(3, 5)))
    cat.teams[pid] = team
    for uid in team:
        rate = rng.randrange(120, 231, 5) if rng.random() < 0.3 else None
        cat.project_users.append(
            {
                "id": TOGGL_PROJECT_USER_ID_BASE + 1 + len(cat.project_users),
                "project_id": pid,
                "user_id": uid,
                "workspace_id": TOGGL_WORKSPACE_ID,
                "manager": uid == team[0],
                "rate": rate,
                "rate_last_updated": _toggl_ts(created) if rate is not None else None,
                "labor_cost": None,
                "group_id": None,
                "at": _toggl_ts(created),
            }
        )


def _toggl_tasks(rng: random.Random, cat: _TogglCatalogue, pid: int, created: datetime) -> None:
    for name in rng.sample(_TASK_NAMES, rng.randint(2, 3)):
        tid = TOGGL_TASK_ID_BASE + 1 + len(cat.tasks)
        cat.tasks_by_project.setdefault(pid, []).append(tid)
        cat.tasks.append(
            {
                "id": tid,
                "name": name,
                "workspace_id": TOGGL_WORKSPACE_ID,
                "project_id": pid,
                "user_id": None,
                "active": True,
                "estimated_seconds": None,
                "tracked_seconds": 0,
                "recurring": False,
                "at": _toggl_ts(created),
                "server_deleted_at": None,
            }
        )


def _toggl_catalogue(
    rng: random.Random,
    clients: list[dict[str, Any]],
    currencies: list[str],
    user_ids: list[int],
    epoch: datetime,
) -> _TogglCatalogue:
    cat = _TogglCatalogue()
    for client, currency in zip(clients, currencies, strict=True):
        for kind in rng.sample(_PROJECT_KINDS, 1 if rng.random() < 0.6 else 2):
            created = epoch + timedelta(days=20 + len(cat.projects))
            pid = _toggl_project(
                rng, cat, client=client, kind=kind, currency=currency, created=created
            )
            _toggl_members(rng, cat, pid, user_ids, created)
            _toggl_tasks(rng, cat, pid, created)
    return cat


def _toggl_updated_at(rng: random.Random, slot: _Slot, started: datetime, minutes: int) -> datetime:
    """``at``: after the stop, and days later once approved or invoiced (the tag was added)."""
    if slot.category == "running":
        return started
    updated = started + timedelta(minutes=minutes + rng.randrange(1, 90))
    if slot.category in ("approved", "nonbillable"):
        updated += timedelta(days=rng.randint(1, 5), minutes=rng.randrange(600))
    elif slot.category == "invoiced":
        updated += timedelta(days=rng.randint(6, 10), minutes=rng.randrange(600))
    return updated


def _toggl_entries(
    rng: random.Random, spec: SeedSpec, cat: _TogglCatalogue, tag_id: dict[str, int]
) -> list[dict[str, Any]]:
    project_ids = [p["id"] for p in cat.projects]
    weights = [rng.choice((1, 2, 3, 5, 8)) for _ in project_ids]
    entries: list[dict[str, Any]] = []
    for i, slot in enumerate(_plan(rng, spec)):
        pid = rng.choices(project_ids, weights=weights)[0]
        uid = rng.choice(cat.teams[pid])
        task_id = rng.choice(cat.tasks_by_project[pid]) if rng.random() < 0.75 else None
        started, minutes = _times(rng, slot)
        names = [APPROVED_TAG] if slot.category in ("approved", "invoiced", "nonbillable") else []
        if slot.category == "invoiced":
            names.append(INVOICED_TAG)
        if rng.random() < 0.15:
            names.append(rng.choice(_EXTRA_TAGS))
        running = slot.category == "running"
        entries.append(
            {
                "id": TOGGL_ENTRY_ID_BASE + 1 + i,
                "workspace_id": TOGGL_WORKSPACE_ID,
                "wid": TOGGL_WORKSPACE_ID,
                "project_id": pid,
                "pid": pid,
                "task_id": task_id,
                "tid": task_id,
                "user_id": uid,
                "uid": uid,
                "billable": slot.category != "nonbillable",
                "start": _toggl_ts(started),
                "stop": None if running else _toggl_ts(started + timedelta(minutes=minutes)),
                # A running entry's duration is negative: -(its start as a unix timestamp).
                "duration": -int(started.timestamp()) if running else minutes * 60,
                "description": _description(rng),
                "tags": sorted(names),
                "tag_ids": sorted(tag_id[n] for n in names),
                "duronly": True,
                "at": _toggl_ts(_toggl_updated_at(rng, slot, started, minutes)),
                "server_deleted_at": None,
                "permissions": None,
            }
        )
    return entries


def build_toggl(spec: SeedSpec | None = None) -> TogglData:
    """The Toggl workspace for ``spec``. The same spec gives byte-identical data."""
    spec = spec or DEFAULT_SPEC
    first_day, _last_day = _period_bounds(spec.period)
    rng = random.Random(spec.seed + TOGGL_OFFSET)
    epoch = datetime(first_day.year, first_day.month, 1, tzinfo=UTC) - timedelta(days=300)
    stamp = _toggl_ts(epoch)

    users = _toggl_users(rng, stamp)
    owner = int(users[0]["id"])
    client_rows = _pick_clients(spec, 0, 12) + list(_TOGGL_ONLY_CLIENTS)
    clients = _toggl_clients(client_rows, epoch, owner)
    cat = _toggl_catalogue(
        rng, clients, [currency for _name, currency in client_rows], [u["id"] for u in users], epoch
    )
    tags: list[dict[str, Any]] = [
        {
            "id": TOGGL_TAG_ID_BASE + 1 + i,
            "workspace_id": TOGGL_WORKSPACE_ID,
            "name": name,
            "at": stamp,
            "creator_id": owner,
            "deleted_at": None,
        }
        for i, name in enumerate([APPROVED_TAG, INVOICED_TAG, *_EXTRA_TAGS])
    ]
    entries = _toggl_entries(rng, spec, cat, {t["name"]: t["id"] for t in tags})
    setups = [
        {
            "id": TOGGL_TIMESHEET_SETUP_ID_BASE + 1 + i,
            "workspace_id": TOGGL_WORKSPACE_ID,
            "member_id": user["id"],
            "member_name": user["fullname"],
            "approver_id": owner,
            "approver_name": users[0]["fullname"],
            "periodicity": "weekly",
            "reminder_day": "Friday",
            "reminder_time": "17:00",
            "start_date": (first_day - timedelta(days=90)).isoformat(),
            "end_date": None,
            "errors": [],
        }
        for i, user in enumerate(users[1:])
    ]
    return TogglData(
        spec=spec,
        workspace_id=TOGGL_WORKSPACE_ID,
        organization_id=TOGGL_ORGANIZATION_ID,
        workspace=_toggl_workspace(stamp),
        clients=clients,
        projects=cat.projects,
        project_users=cat.project_users,
        tasks=cat.tasks,
        users=users,
        tags=tags,
        time_entries=entries,
        timesheet_setups=setups,
    )


def toggl_entry_ids_by_status(data: TogglData) -> dict[str, list[int]]:
    """Classify entry ids by their fields (tags stand in for approval and invoicing).

    Keys: ``running`` (negative duration), ``nonbillable``, ``invoiced`` (tag
    ``invoiced``), ``unapproved`` (no tag ``approved``), ``billable_approved``
    (what a sync would bill), ``out_of_period`` (start outside ``spec.period``;
    these ids are also in their status list), ``deleted`` (server_deleted_at).
    """
    prefix = data.spec.period + "-"
    out: dict[str, list[int]] = {
        key: []
        for key in (
            "running",
            "nonbillable",
            "invoiced",
            "unapproved",
            "billable_approved",
            "out_of_period",
            "deleted",
        )
    }
    for entry in data.time_entries:
        eid = int(entry["id"])
        if entry.get("server_deleted_at"):
            out["deleted"].append(eid)
            continue
        if not str(entry["start"]).startswith(prefix):
            out["out_of_period"].append(eid)
        tags = entry.get("tags") or []
        if int(entry["duration"]) < 0:
            out["running"].append(eid)
        elif not entry["billable"]:
            out["nonbillable"].append(eid)
        elif INVOICED_TAG in tags:
            out["invoiced"].append(eid)
        elif APPROVED_TAG not in tags:
            out["unapproved"].append(eid)
        else:
            out["billable_approved"].append(eid)
    return out


# --------------------------------------------------------------------------
# Clockify
# --------------------------------------------------------------------------

# name, unit, price in cents (None: the amount is entered directly)
_EXPENSE_CATEGORIES: tuple[tuple[str, str, int | None], ...] = (
    ("Travel", "", None),
    ("Mileage", "km", 95),
    ("Software licences", "", None),
    ("Printing", "page", 15),
)
_EXPENSE_NOTES = (
    "Taxi to client workshop 🚕",
    "Parking — Wellington CBD",
    "Figma seats (Oct)",
    "Printed brand guidelines for the board",
    "Kilometres: Auckland ↔ Hamilton",
    "",
)
_CLOCKIFY_DEFAULT_RATE = 110  # whole units, workspace currency


def _clockify_workspace(ws: str) -> dict[str, Any]:
    return {
        "id": ws,
        "name": "Hourbridge Sandbox Agency (Clockify)",
        "hourlyRate": {"amount": _CLOCKIFY_DEFAULT_RATE * 100, "currency": "NZD"},
        "costRate": {"amount": 0, "currency": "NZD"},
        "workspaceSettings": {
            "timeRoundingInReports": False,
            "onlyAdminsSeeBillableRates": True,
            "onlyAdminsCreateProject": True,
            "lockTimeEntries": None,
            "defaultBillableProjects": True,
            "trackTimeDownToSecond": True,
            "timeTrackingMode": "DEFAULT",
            "numberFormat": "COMMA_PERIOD",
            "currencyFormat": "CURRENCY_SPACE_VALUE",
            "durationFormat": "FULL",
        },
        "featureSubscriptionType": "PRO",
        "imageUrl": "",
        "memberships": [],
    }


def _clockify_users(rng: random.Random, ws: str) -> list[dict[str, Any]]:
    return [
        {
            "id": clockify_oid("user", i),
            "email": email,
            "name": name,
            "status": "ACTIVE",
            "activeWorkspace": ws,
            "defaultWorkspace": ws,
            "profilePicture": "https://img.clockify.me/no-user-image.png",
            "settings": {"timeZone": tz, "weekStart": "MONDAY", "dateFormat": "YYYY-MM-DD"},
            "memberships": [],
            "customFields": [],
        }
        for i, (name, email, tz) in enumerate(_users(rng, 10, 5))
    ]


@dataclass
class _ClockifyCatalogue:
    projects: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    teams: dict[str, list[str]] = field(default_factory=dict)
    tasks_by_project: dict[str, list[str]] = field(default_factory=dict)
    member_rate: dict[tuple[str, str], int] = field(default_factory=dict)  # whole units
    project_rate: dict[str, int] = field(default_factory=dict)
    project_currency: dict[str, str] = field(default_factory=dict)

    def rate(self, project_id: str, user_id: str) -> int:
        """The rate Clockify snapshots on an entry: member, then project, then workspace [U]."""
        return (
            self.member_rate.get((project_id, user_id))
            or self.project_rate.get(project_id)
            or _CLOCKIFY_DEFAULT_RATE
        )


def _money(units: int | None, currency: str) -> dict[str, Any] | None:
    return None if units is None else {"amount": units * 100, "currency": currency}


def _clockify_project(
    rng: random.Random,
    cat: _ClockifyCatalogue,
    client: dict[str, Any],
    kind: str,
    user_ids: list[str],
) -> None:
    pid = clockify_oid("project", len(cat.projects))
    currency = str(client["currencyCode"])
    rate = rng.randrange(110, 221, 5) if rng.random() < 0.6 else None
    team = sorted(rng.sample(user_ids, rng.randint(3, 5)))
    cat.teams[pid] = team
    cat.project_currency[pid] = currency
    if rate is not None:
        cat.project_rate[pid] = rate
    memberships = []
    for uid in team:
        member_rate = rng.randrange(120, 231, 5) if rng.random() < 0.3 else None
        if member_rate is not None:
            cat.member_rate[(pid, uid)] = member_rate
        memberships.append(
            {
                "userId": uid,
                "hourlyRate": _money(member_rate, currency),
                "costRate": None,
                "targetId": pid,
                "membershipType": "PROJECT",
                "membershipStatus": "ACTIVE",
            }
        )
    cat.projects.append(
        {
            "id": pid,
            "name": kind,
            "clientId": client["id"],
            "clientName": client["name"],
            "workspaceId": client["workspaceId"],
            "billable": True,
            "color": rng.choice(_CLOCKIFY_COLORS),
            "archived": False,
            "public": False,
            "template": False,
            "note": "",
            "duration": "PT0S",
            "estimate": {"estimate": "PT0S", "type": "AUTO"},
            "budgetEstimate": None,
            "hourlyRate": _money(rate, currency),
            "costRate": None,
            "memberships": memberships,
        }
    )
    for name in rng.sample(_TASK_NAMES, rng.randint(2, 3)):
        tid = clockify_oid("task", len(cat.tasks))
        cat.tasks_by_project.setdefault(pid, []).append(tid)
        cat.tasks.append(
            {
                "id": tid,
                "name": name,
                "projectId": pid,
                "assigneeIds": [],
                "assigneeId": None,
                "userGroupIds": [],
                "estimate": "PT0S",
                "status": "ACTIVE",
                "duration": "PT0S",
                "billable": True,
                "hourlyRate": None,
                "costRate": None,
            }
        )


def _clockify_approval(rng: random.Random, slot: _Slot, user_id: str) -> tuple[str, str | None]:
    """(approvalStatus, approvalRequestId) [U: field names]. Weekly requests per user."""
    request_id = clockify_oid("approval", (user_id, *slot.day.isocalendar()[:2]))
    if slot.category in ("approved", "invoiced", "nonbillable"):
        return "APPROVED", request_id
    if slot.category == "unapproved" and rng.random() < 0.5:
        return "PENDING", request_id
    return "NOT_SUBMITTED", None


def _clockify_entries(
    rng: random.Random, spec: SeedSpec, ws: str, cat: _ClockifyCatalogue, tag_ids: list[str]
) -> list[dict[str, Any]]:
    project_ids = [p["id"] for p in cat.projects]
    weights = [rng.choice((1, 2, 3, 5, 8)) for _ in project_ids]
    entries: list[dict[str, Any]] = []
    for i, slot in enumerate(_plan(rng, spec)):
        pid = rng.choices(project_ids, weights=weights)[0]
        uid = rng.choice(cat.teams[pid])
        task_id = rng.choice(cat.tasks_by_project[pid]) if rng.random() < 0.75 else None
        started, minutes = _times(rng, slot)
        running = slot.category == "running"
        currency = cat.project_currency[pid]
        status, request_id = _clockify_approval(rng, slot, uid)
        entries.append(
            {
                "id": clockify_oid("time-entry", i),
                "description": _description(rng) or "",
                "tagIds": [rng.choice(tag_ids)] if rng.random() < 0.15 else [],
                "userId": uid,
                "billable": slot.category != "nonbillable",
                "taskId": task_id,
                "projectId": pid,
                "workspaceId": ws,
                "timeInterval": {
                    "start": _clockify_ts(started),
                    "end": None if running else _clockify_ts(started + timedelta(minutes=minutes)),
                    "duration": None if running else clockify_iso_duration(minutes * 60),
                },
                "customFieldValues": [],
                "type": "REGULAR",
                "kioskId": None,
                "hourlyRate": _money(cat.rate(pid, uid), currency),
                "costRate": {"amount": 0, "currency": currency},
                "isLocked": status == "APPROVED",
                # [U] these three names are the sandbox's: the reports API filters on
                # approvalState / invoicingState, the entry DTO's own fields are unconfirmed.
                "approvalRequestId": request_id,
                "approvalStatus": status,
                "invoiced": slot.category == "invoiced",
            }
        )
    return entries


def _clockify_expenses(
    rng: random.Random,
    spec: SeedSpec,
    ws: str,
    cat: _ClockifyCatalogue,
    categories: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    first_day, last_day = _period_bounds(spec.period)
    days = [first_day + timedelta(days=k) for k in range((last_day - first_day).days + 1)]
    outside = [first_day - timedelta(days=2), last_day + timedelta(days=2)]
    project_ids = [p["id"] for p in cat.projects]
    count = max(8, spec.entries // 50)
    expenses: list[dict[str, Any]] = []
    for i in range(count):
        category = (
            categories[i % len(categories)] if i < len(categories) else rng.choice(categories)
        )
        pid = rng.choice(project_ids)
        day = outside[i % 2] if i >= count - 2 else rng.choice(days)
        if category["hasUnitPrice"]:
            quantity = rng.randint(5, 240)
            total = quantity * int(category["priceInCents"])
        else:
            quantity, total = 1, rng.randrange(1500, 95001, 50)
        receipt = rng.random() < 0.7
        expenses.append(
            {
                "id": clockify_oid("expense", i),
                "workspaceId": ws,
                "userId": rng.choice(cat.teams[pid]),
                "projectId": pid,
                "taskId": None,
                "categoryId": category["id"],
                "date": day.isoformat(),
                "quantity": quantity,
                "total": total,  # [U] cents; the spec types it as a double
                "billable": rng.random() < 0.8,
                "notes": rng.choice(_EXPENSE_NOTES),
                "fileId": clockify_oid("file", i) if receipt else None,
                "fileName": f"receipt-{i + 1:03d}.pdf" if receipt else None,
                "locked": False,
            }
        )
    return expenses


def build_clockify(spec: SeedSpec | None = None) -> ClockifyData:
    """The Clockify workspace for ``spec``. The same spec gives byte-identical data."""
    spec = spec or DEFAULT_SPEC
    _period_bounds(spec.period)
    rng = random.Random(spec.seed + CLOCKIFY_OFFSET)
    ws = clockify_oid("workspace", 0)
    users = _clockify_users(rng, ws)
    client_rows = _pick_clients(spec, 6, 12) + list(_CLOCKIFY_ONLY_CLIENTS)
    clients = [
        {
            "id": clockify_oid("client", i),
            "name": name,
            "workspaceId": ws,
            "archived": False,
            "address": "",
            "note": "",
            "email": None,
            "currencyId": clockify_oid("currency", currency),
            "currencyCode": currency,
        }
        for i, (name, currency) in enumerate(client_rows)
    ]
    cat = _ClockifyCatalogue()
    user_ids = [str(u["id"]) for u in users]
    for client in clients:
        for kind in rng.sample(_PROJECT_KINDS, 1 if rng.random() < 0.6 else 2):
            _clockify_project(rng, cat, client, kind, user_ids)
    tags = [
        {"id": clockify_oid("tag", i), "name": name, "workspaceId": ws, "archived": False}
        for i, name in enumerate(_EXTRA_TAGS)
    ]
    categories = [
        {
            "id": clockify_oid("expense-category", i),
            "name": name,
            "unit": unit,
            "priceInCents": price,
            "hasUnitPrice": price is not None,
            "archived": False,
            "workspaceId": ws,
        }
        for i, (name, unit, price) in enumerate(_EXPENSE_CATEGORIES)
    ]
    entries = _clockify_entries(rng, spec, ws, cat, [str(t["id"]) for t in tags])
    return ClockifyData(
        spec=spec,
        workspace_id=ws,
        workspace=_clockify_workspace(ws),
        clients=clients,
        projects=cat.projects,
        tasks=cat.tasks,
        users=users,
        tags=tags,
        time_entries=entries,
        expense_categories=categories,
        expenses=_clockify_expenses(rng, spec, ws, cat, categories),
    )


def clockify_entry_ids_by_status(data: ClockifyData) -> dict[str, list[str]]:
    """Like ``toggl_entry_ids_by_status``, from Clockify's approval and invoiced fields."""
    prefix = data.spec.period + "-"
    out: dict[str, list[str]] = {
        key: []
        for key in (
            "running",
            "nonbillable",
            "invoiced",
            "unapproved",
            "billable_approved",
            "out_of_period",
        )
    }
    for entry in data.time_entries:
        eid = str(entry["id"])
        interval = entry["timeInterval"]
        if not str(interval["start"]).startswith(prefix):
            out["out_of_period"].append(eid)
        if interval["end"] is None:
            out["running"].append(eid)
        elif not entry["billable"]:
            out["nonbillable"].append(eid)
        elif entry["invoiced"]:
            out["invoiced"].append(eid)
        elif entry["approvalStatus"] != "APPROVED":
            out["unapproved"].append(eid)
        else:
            out["billable_approved"].append(eid)
    return out
