"""A deterministic "realistic agency month" for the sandbox fakes.

``build_agency_month(spec)`` returns Harvest objects (clients, users, tasks,
projects, time entries) shaped like Harvest API v2 responses, and the Xero
objects (contacts, items, accounts, tax rates, currencies) the fake Xero
starts with. Everything is derived from ``SeedSpec`` alone: ids are fixed
offsets, randomness comes from ``random.Random(spec.seed)``, Xero GUIDs are
``uuid5`` names in a fixed namespace and timestamps are computed from the
period, never read from the wall clock. The same spec always gives the same
data, byte for byte.

Money is kept exact: hours are built as integer hundredths and rates as
integers, and only turned into JSON numbers (floats, as Harvest sends them)
when an object is emitted.
"""

from __future__ import annotations

import calendar
import random
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

__all__ = [
    "DEFAULT_SPEC",
    "AgencyMonth",
    "SeedSpec",
    "build_agency_month",
    "harvest_time_entry_ids_by_status",
]

# Fixed id bases: ids depend on the position of an object only.
CLIENT_ID_BASE = 5_000_000
PROJECT_ID_BASE = 14_000_000
TASK_ID_BASE = 8_000_000
USER_ID_BASE = 1_780_000
ENTRY_ID_BASE = 2_100_000_000
USER_ASSIGNMENT_ID_BASE = 125_000_000
TASK_ASSIGNMENT_ID_BASE = 155_000_000
INVOICE_ID_BASE = 13_150_000

#: Namespace for every Xero GUID the seed derives (uuid5). Never change it:
#: GUIDs would move and stored mappings in tests would break.
XERO_NAMESPACE = uuid.UUID("6f1c2b8e-3d4a-5b6c-8d7e-9f0a1b2c3d4e")

APPROVED_LOCK_REASON = "Item Approved and Locked for this Time Period"
INVOICED_LOCK_REASON = "Item Invoiced and Locked for this Time Period"

_TS = "%Y-%m-%dT%H:%M:%SZ"
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class SeedSpec:
    period: str = "2026-10"  # YYYY-MM, the month most entries fall in
    clients: int = 30
    entries: int = 3000  # approx number of time entries in the month
    seed: int = 2026  # random.Random(seed): fully deterministic output


DEFAULT_SPEC = SeedSpec()


@dataclass
class AgencyMonth:
    spec: SeedSpec
    clients: list[dict[str, Any]]
    users: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    projects: list[dict[str, Any]]
    time_entries: list[dict[str, Any]]
    xero_contacts: list[dict[str, Any]]
    xero_items: list[dict[str, Any]]
    xero_accounts: list[dict[str, Any]]
    xero_tax_rates: list[dict[str, Any]]
    xero_currencies: list[dict[str, Any]]
    base_currency: str = "NZD"
    unmapped_client_ids: list[int] = field(default_factory=list)
    expense_categories: list[dict[str, Any]] = field(default_factory=list)
    expenses: list[dict[str, Any]] = field(default_factory=list)
    xero_tracking_categories: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------
# Static catalogue
# --------------------------------------------------------------------------

# name, currency, street, city, postcode, country. Currencies are interleaved
# so that any prefix has a realistic mix (mostly NZD, several USD, a few EUR
# and GBP). Names are unique; a few are deliberately non-ASCII.
_ClientRow = tuple[str, str, str, str, str, str]

_CLIENT_CATALOGUE: tuple[_ClientRow, ...] = (
    ("Acme Corporation", "USD", "1200 Market Street", "San Francisco", "94102", "United States"),
    ("Kōwhai Health Trust", "NZD", "12 Cuba Street", "Wellington", "6011", "New Zealand"),
    ("Nørdisk Design ApS", "EUR", "Vesterbrogade 28", "København V", "1620", "Denmark"),
    ("Harbour City Dental", "NZD", "88 Lambton Quay", "Wellington", "6011", "New Zealand"),
    ("Pinnacle Outdoor Gear Ltd", "GBP", "14 Camden High Street", "London", "NW1 0JH", "UK"),
    ("Tasman Freight Logistics", "NZD", "3 Port Road", "Nelson", "7010", "New Zealand"),
    ("Brightside Analytics Inc.", "USD", "500 Congress Ave", "Austin", "78701", "United States"),
    ("Southern Alps Tourism", "NZD", "21 Shotover Street", "Queenstown", "9300", "New Zealand"),
    ("Café Lumière SARL", "EUR", "7 Rue de la Paix", "Paris", "75002", "France"),
    ("Riverbend Veterinary Clinic", "NZD", "45 Victoria Street", "Hamilton", "3204", "NZ"),
    ("Manukau Motor Group", "NZD", "220 Great South Road", "Auckland", "2104", "New Zealand"),
    ("Greenleaf Organics Inc.", "USD", "77 Pike Street", "Seattle", "98101", "United States"),
    ("Ōtautahi Craft Brewing Co.", "NZD", "9 Welles Street", "Christchurch", "8011", "NZ"),
    ("Thistle & Rose Publishing Ltd", "GBP", "3 George Street", "Edinburgh", "EH2 2HT", "UK"),
    ("Aotearoa Legal Partners", "NZD", "151 Queen Street", "Auckland", "1010", "New Zealand"),
    ("Blue Heron Software LLC", "USD", "2 Canal Street", "Portland", "97209", "United States"),
    ("Waitematā Sailing Club", "NZD", "1 Westhaven Drive", "Auckland", "1011", "New Zealand"),
    ("Müller & Söhne GmbH", "EUR", "Friedrichstraße 120", "Berlin", "10117", "Germany"),
    ("Kiwi Solar Installations", "NZD", "60 Cameron Road", "Tauranga", "3110", "New Zealand"),
    ("Redwood Capital Advisors", "USD", "400 Park Avenue", "New York", "10022", "United States"),
    ("Coromandel Coastal Retreats", "NZD", "5 Albert Street", "Whitianga", "3510", "NZ"),
    ("Hawke's Bay Wine Collective", "NZD", "30 Marine Parade", "Napier", "4110", "NZ"),
    ("Northwind Traders", "USD", "18 Harbor Blvd", "Boston", "02110", "United States"),
    ("Rimu Architecture Studio", "NZD", "16 Tory Street", "Wellington", "6011", "New Zealand"),
    ("Queenstown Adventure Co.", "NZD", "35 Camp Street", "Queenstown", "9300", "New Zealand"),
    ("Fernhill Primary School", "NZD", "2 School Road", "Fernhill", "9300", "New Zealand"),
    ("Tūī Financial Services", "NZD", "99 Willis Street", "Wellington", "6011", "New Zealand"),
    ("Canterbury Agritech", "NZD", "11 Lincoln Road", "Christchurch", "8024", "New Zealand"),
    ("Summit Physiotherapy", "NZD", "72 Devon Street", "New Plymouth", "4310", "NZ"),
    ("Lakeside Property Management", "NZD", "8 Lake Terrace", "Taupō", "3330", "NZ"),
    ("Pacific Rim Imports", "USD", "950 Ocean Blvd", "Long Beach", "90802", "United States"),
    ("Dunedin Heritage Trust", "NZD", "40 Princes Street", "Dunedin", "9016", "New Zealand"),
    ("Napier Art Deco Festival", "NZD", "7 Tennyson Street", "Napier", "4110", "New Zealand"),
    ("Bay of Plenty Kiwifruit Growers", "NZD", "120 Jellicoe Street", "Te Puke", "3119", "NZ"),
    ("Hutt Valley Engineering", "NZD", "25 Rutherford Street", "Lower Hutt", "5010", "NZ"),
    ("Wānaka Lavender Farm", "NZD", "3 Ballantyne Road", "Wānaka", "9305", "New Zealand"),
)

_FIRST_NAMES = (
    "Aroha", "Liam", "Zoë", "Mateo", "Priya", "Tom", "Mere", "José", "Hannah", "Søren",
    "Grace", "Wiremu", "Chloé", "Daniel", "Ava", "Rangi", "Isla", "Noah", "Mei", "Oliver",
    "Ruby", "Finn", "Sakura", "Jack",
)  # fmt: skip
_LAST_NAMES = (
    "Ngata", "Walker", "Clarke", "Álvarez", "Patel", "Wilson", "Pōmare", "García", "Smith",
    "Østergaard", "Thompson", "Tipene", "Dubois", "Brown", "Taylor", "Henare", "Campbell",
    "Lee", "Chen", "Martin", "Young", "O'Connor", "Tanaka", "Anderson",
)  # fmt: skip
_USER_COUNT = 20

# name, billable_by_default, default rate (or None), Xero item code, weight in billable work
_TASK_CATALOGUE: tuple[tuple[str, bool, int | None, str | None, int], ...] = (
    ("Design", True, 150, "DESIGN", 18),
    ("Development", True, 165, "DEV", 40),
    ("Project Management", True, 140, "PM", 14),
    ("QA", True, 120, "QA", 10),
    ("Consulting", True, 200, "CONSULT", 8),
    ("Support", True, 110, "SUPPORT", 10),
    ("Internal Meeting", False, None, None, 0),
    ("Training", False, None, None, 0),
)

_PROJECT_KINDS = (
    ("Website Redesign", "WEB"),
    ("Mobile App", "APP"),
    ("Brand Refresh", "BRAND"),
    ("E-commerce Platform", "SHOP"),
    ("Support Retainer", "RET"),
    ("Data Dashboard", "DASH"),
    ("CRM Integration", "CRM"),
    ("Marketing Campaign", "MKT"),
    ("Intranet Portal", "INTRA"),
    ("Booking System", "BOOK"),
)

_SHORT_NOTES = (
    "Homepage hero layout",
    "Fixed checkout rounding bug",
    "Sprint planning",
    "Client call re: scope change",
    "Code review",
    "Deploy to staging",
    "Accessibility audit (WCAG 2.2)",
    "Wireframes for onboarding flow",
    "Investigated 500 errors on /api/orders",
    "Content migration",
    "Weekly status report",
    "Bug triage 🐛",
    "Performance tuning ⚡ — image pipeline",
    "Réunion avec l'équipe — révision du logo",
    "Kōrero with the client about te reo Māori labels",
    "Übersetzung der Produkttexte prüfen",
    "Logo variations ✏️🎨",
    "Release 2.4 🚀",
    "Database index tuning",
    "Unit tests for invoice export",
    "Stakeholder workshop",
    "Fixed timezone bug (NZDT → UTC)",
    "Email template tweaks",
    "QA pass on iOS 18 / Android 15",
)

_LONG_NOTE_SENTENCES = (
    "Worked through the outstanding items from Tuesday's review with the client's product team.",
    "Refactored the pricing module so that currency rounding happens once, at the line level.",
    "Paired with QA on the regression suite; two flaky tests were quarantined and ticketed.",
    "Updated the deployment runbook and walked the on-call engineer through the rollback steps.",
    "Drafted the copy for the new onboarding emails and circulated it for sign-off.",
    "Reviewed analytics for the last sprint: bounce rate on mobile dropped by about 12 %.",
    "Met with the stakeholders to agree on the acceptance criteria for phase two — naïve "
    "assumptions about the legacy data were corrected.",
    "Followed up on the accessibility findings and fixed colour contrast on the forms.",
)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _parse_period(period: str) -> tuple[int, int]:
    parts = period.split("-")
    if len(parts) != 2 or len(parts[0]) != 4 or len(parts[1]) != 2:
        raise ValueError(f"period must be YYYY-MM, got {period!r}")
    year, month = int(parts[0]), int(parts[1])
    if not 1 <= month <= 12:
        raise ValueError(f"period must be YYYY-MM, got {period!r}")
    return year, month


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TS)


def _at(day: date, minute_of_day: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minute_of_day)


def _clock_12h(minute_of_day: int) -> str:
    hour, minute = divmod(minute_of_day % (24 * 60), 60)
    suffix = "am" if hour < 12 else "pm"
    return f"{(hour % 12) or 12}:{minute:02d}{suffix}"


def _hours(hundredths: int) -> float:
    """Hours as Harvest sends them: a JSON number with at most two decimals."""
    return float((Decimal(hundredths) * _CENT).quantize(_CENT))


def _money(amount: int) -> float:
    """An integer-valued rate as a JSON number (Harvest sends e.g. 150.0)."""
    return float(Decimal(amount))


def _xero_guid(kind: str, key: object) -> str:
    return str(uuid.uuid5(XERO_NAMESPACE, f"{kind}:{key}"))


def _ascii_slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.replace("ø", "o").replace("Ø", "O"))
    ascii_text = decomposed.encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum())


def _ms_date(moment: datetime) -> str:
    """Xero's JSON date format, e.g. ``/Date(1573755038314+0000)/``."""
    millis = int(moment.timestamp()) * 1000
    return f"/Date({millis}+0000)/"


def _client_catalogue(count: int) -> list[_ClientRow]:
    rows = list(_CLIENT_CATALOGUE[:count])
    extra = 0
    while len(rows) < count:
        base = _CLIENT_CATALOGUE[extra % len(_CLIENT_CATALOGUE)]
        extra += 1
        suffix = f" (Division {extra // len(_CLIENT_CATALOGUE) + 2})"
        rows.append((base[0] + suffix, *base[1:]))
    return rows


def _long_note(rng: random.Random) -> str:
    sentences = list(_LONG_NOTE_SENTENCES)
    rng.shuffle(sentences)
    text = ""
    for sentence in sentences:
        if len(text) >= 480:
            break
        text = f"{text} {sentence}".strip()
    return text[:520]


def _note(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.10:
        return None
    if roll < 0.14:
        return _long_note(rng)
    return rng.choice(_SHORT_NOTES)


def _days(first: date, last: date) -> list[date]:
    days = []
    day = first
    while day <= last:
        days.append(day)
        day += timedelta(days=1)
    return days


# --------------------------------------------------------------------------
# Builder
# --------------------------------------------------------------------------


@dataclass
class _Context:
    """What the builders share while one month is being made."""

    spec: SeedSpec
    rng: random.Random
    period_start: date
    period_end: date
    setup_epoch: datetime
    user_rates: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> (rate, cost)
    task_rates: dict[int, int] = field(default_factory=dict)
    project_team: dict[int, list[int]] = field(default_factory=dict)
    project_weight: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Slot:
    day: date
    category: str  # approved | billed | unapproved | nonbillable | running
    project_id: int | None  # forced project, else drawn by weight


def _build_users(ctx: _Context) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = []
    for i in range(_USER_COUNT):
        uid = USER_ID_BASE + 1 + i
        first = _FIRST_NAMES[i % len(_FIRST_NAMES)]
        last = _LAST_NAMES[(i * 7 + 3) % len(_LAST_NAMES)]
        rate = ctx.rng.randrange(95, 221, 5)
        cost = ctx.rng.randrange(45, min(rate - 20, 120) + 1, 5)
        ctx.user_rates[uid] = (rate, cost)
        created = ctx.setup_epoch + timedelta(days=i * 9, hours=ctx.rng.randrange(0, 9))
        users.append(
            {
                "id": uid,
                "first_name": first,
                "last_name": last,
                "email": f"{_ascii_slug(first)}.{_ascii_slug(last)}@hourbridge-agency.example",
                "telephone": "",
                "timezone": "Auckland",
                "has_access_to_all_future_projects": False,
                "is_contractor": i >= _USER_COUNT - 3,
                "is_active": True,
                "weekly_capacity": 144000,
                "default_hourly_rate": _money(rate),
                "cost_rate": _money(cost),
                "roles": ["Developer"] if i % 3 else ["Designer"],
                "access_roles": ["administrator"] if i == 0 else ["member"],
                "avatar_url": "https://d3s3969qhosaug.cloudfront.net/v2/user.png",
                "created_at": _ts(created),
                "updated_at": _ts(created + timedelta(days=30)),
            }
        )
    return users


def _build_tasks(ctx: _Context) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for i, (name, billable, rate, _code, _weight) in enumerate(_TASK_CATALOGUE):
        created = ctx.setup_epoch + timedelta(hours=i)
        tid = TASK_ID_BASE + 1 + i
        if rate is not None:
            ctx.task_rates[tid] = rate
        tasks.append(
            {
                "id": tid,
                "name": name,
                "billable_by_default": billable,
                "default_hourly_rate": None if rate is None else _money(rate),
                "is_default": True,
                "is_active": True,
                "created_at": _ts(created),
                "updated_at": _ts(created),
            }
        )
    return tasks


def _build_clients(ctx: _Context, rows: list[_ClientRow]) -> list[dict[str, Any]]:
    clients: list[dict[str, Any]] = []
    for i, (name, currency, street, city, postcode, country) in enumerate(rows):
        created = ctx.setup_epoch + timedelta(days=10 + i * 7, hours=ctx.rng.randrange(0, 9))
        clients.append(
            {
                "id": CLIENT_ID_BASE + 1 + i,
                "name": name,
                "is_active": True,
                "address": f"{street}\n{city} {postcode}\n{country}",
                "statement_key": f"{ctx.rng.getrandbits(128):032x}",
                "created_at": _ts(created),
                "updated_at": _ts(created + timedelta(days=2)),
                "currency": currency,
            }
        )
    return clients


def _build_projects(
    ctx: _Context, clients: list[dict[str, Any]], user_ids: list[int]
) -> list[dict[str, Any]]:
    rng = ctx.rng
    projects: list[dict[str, Any]] = []
    for client_index, client in enumerate(clients):
        n_projects = 1 if rng.random() < 0.55 else 2
        for kind_index in rng.sample(range(len(_PROJECT_KINDS)), n_projects):
            pid = PROJECT_ID_BASE + 1 + len(projects)
            kind_name, kind_code = _PROJECT_KINDS[kind_index]
            roll = rng.random()
            bill_by = "People" if roll < 0.65 else "Project" if roll < 0.9 else "Tasks"
            hourly_rate = rng.randrange(120, 201, 10) if bill_by == "Project" else None
            budget = float(rng.randrange(40, 400, 10)) if rng.random() < 0.5 else None
            created = ctx.setup_epoch + timedelta(days=20 + client_index * 7 + len(projects))
            projects.append(
                {
                    "id": pid,
                    "name": kind_name,
                    "code": f"{kind_code}-{client_index + 1:02d}",
                    "is_active": True,
                    "is_billable": True,
                    "is_fixed_fee": False,
                    "bill_by": bill_by,
                    "budget": budget,
                    "budget_by": "project" if budget is not None else "none",
                    "budget_is_monthly": False,
                    "notify_when_over_budget": budget is not None,
                    "over_budget_notification_percentage": 80.0,
                    "show_budget_to_all": False,
                    "created_at": _ts(created),
                    "updated_at": _ts(created + timedelta(days=1)),
                    "starts_on": (created.date() + timedelta(days=3)).isoformat(),
                    "ends_on": None,
                    "over_budget_notification_date": None,
                    "notes": "",
                    "cost_budget": None,
                    "cost_budget_include_expenses": False,
                    "hourly_rate": None if hourly_rate is None else _money(hourly_rate),
                    "fee": None,
                    "client": {
                        "id": client["id"],
                        "name": client["name"],
                        "currency": client["currency"],
                    },
                }
            )
            ctx.project_team[pid] = sorted(rng.sample(user_ids, rng.randint(3, 6)))
            ctx.project_weight[pid] = rng.choice((1, 1, 2, 3, 5, 8))
    return projects


def _plan_slots(ctx: _Context, project_ids: list[int]) -> list[_Slot]:
    """Dates and categories of every entry, in spent_date order.

    ~spec.entries in the period plus ~3 % in the three days either side;
    ~8 % non-billable, ~7 % unapproved, ~3 % billed, exactly one running
    timer (on the last workday of the period), the rest approved. The first
    approved in-period slots go round-robin over all projects, three times,
    so every client (unmapped ones included) has approved billable time.
    """
    rng = ctx.rng
    n_in = ctx.spec.entries
    n_out = max(2, round(n_in * 0.03))
    total = n_in + n_out
    n_nonbillable = round(total * 0.08)
    n_unapproved = round(total * 0.07)
    n_billed = round(total * 0.03)
    n_approved = total - 1 - n_nonbillable - n_unapproved - n_billed

    in_days = _days(ctx.period_start, ctx.period_end)
    workdays = [d for d in in_days if d.weekday() < 5]
    weekend_days = [d for d in in_days if d.weekday() >= 5]
    before = [ctx.period_start - timedelta(days=k) for k in (1, 2, 3)]
    after = [ctx.period_end + timedelta(days=k) for k in (1, 2, 3)]

    dates: list[date] = []
    for _ in range(n_in - 1):  # the last in-period slot is the running timer
        pool = weekend_days if weekend_days and rng.random() < 0.06 else workdays
        dates.append(rng.choice(pool))
    dates.extend(rng.choice(before if k % 2 == 0 else after) for k in range(n_out))

    categories = (
        ["nonbillable"] * n_nonbillable
        + ["unapproved"] * n_unapproved
        + ["billed"] * n_billed
        + ["approved"] * n_approved
    )
    rng.shuffle(categories)
    plan = list(zip(dates, categories, strict=True))
    plan.append((workdays[-1], "running"))
    plan.sort(key=lambda item: item[0])  # ids ascend with spent_date

    approved_in_period = [
        i
        for i, (day, category) in enumerate(plan)
        if category == "approved" and ctx.period_start <= day <= ctx.period_end
    ]
    rng.shuffle(approved_in_period)
    forced = {
        slot: project_ids[k % len(project_ids)]
        for k, slot in enumerate(approved_in_period[: 3 * len(project_ids)])
    }
    return [_Slot(day, category, forced.get(i)) for i, (day, category) in enumerate(plan)]


@dataclass(frozen=True)
class _Catalogue:
    """Lookups the entry builder needs."""

    clients: dict[int, dict[str, Any]]
    users: dict[int, dict[str, Any]]
    projects: dict[int, dict[str, Any]]
    project_ids: list[int]
    project_weights: list[int]
    billable_tasks: list[dict[str, Any]]
    billable_weights: list[int]
    nonbillable_tasks: list[dict[str, Any]]
    project_index: dict[int, int]
    task_index: dict[int, int]
    user_index: dict[int, int]


def _entry_rate(ctx: _Context, project: dict[str, Any], task_id: int, user_rate: int) -> int:
    if project["bill_by"] == "Project":
        return int(Decimal(str(project["hourly_rate"])))
    if project["bill_by"] == "Tasks":
        return ctx.task_rates.get(task_id, user_rate)
    return user_rate


def _entry_hundredths(rng: random.Random, running: bool) -> int:
    if running:
        return rng.randint(25, 250)
    if rng.random() < 0.7:
        return rng.randint(25, 300)
    return rng.randint(300, 800)


def _entry_status(
    rng: random.Random, category: str, started: datetime, created: datetime
) -> tuple[str | None, datetime, datetime]:
    """Lock reason, created_at and updated_at for a category."""
    if category == "running":
        return None, started, started
    if category == "billed":
        later = timedelta(days=rng.randint(6, 10), minutes=rng.randrange(600))
        return INVOICED_LOCK_REASON, created, created + later
    if category in ("approved", "nonbillable"):
        later = timedelta(days=rng.randint(1, 5), minutes=rng.randrange(600))
        return APPROVED_LOCK_REASON, created, created + later
    return None, created, created + timedelta(minutes=rng.randrange(0, 30))


def _build_entry(
    ctx: _Context,
    cat: _Catalogue,
    entry_id: int,
    slot: _Slot,
    invoices: dict[int, dict[str, Any]],
) -> dict[str, Any]:
    rng = ctx.rng
    pid = slot.project_id or rng.choices(cat.project_ids, weights=cat.project_weights)[0]
    project = cat.projects[pid]
    client = cat.clients[project["client"]["id"]]
    uid = rng.choice(ctx.project_team[pid])
    user = cat.users[uid]
    billable = slot.category != "nonbillable"
    if billable:
        task = rng.choices(cat.billable_tasks, weights=cat.billable_weights)[0]
    else:
        task = rng.choice(cat.nonbillable_tasks)
    user_rate, user_cost = ctx.user_rates[uid]
    rate = _entry_rate(ctx, project, task["id"], user_rate)

    running = slot.category == "running"
    closed = slot.category in ("approved", "billed", "nonbillable")
    billed = slot.category == "billed"
    hundredths = _entry_hundredths(rng, running)
    rounded = -(-hundredths // 25) * 25  # round up to the next quarter hour
    start_minute = rng.randrange(8 * 60, 15 * 60, 5)
    duration = round(hundredths * 60 / 100)
    started = _at(slot.day, start_minute)
    created = started + timedelta(minutes=duration + rng.randrange(0, 90))
    lock_reason, created, updated = _entry_status(rng, slot.category, started, created)

    invoice: dict[str, Any] | None = None
    if billed:
        if client["id"] not in invoices:
            invoices[client["id"]] = {
                "id": INVOICE_ID_BASE + 1 + len(invoices),
                "number": str(1001 + len(invoices)),
            }
        invoice = dict(invoices[client["id"]])

    assignment_stamp = _ts(_at(date.fromisoformat(project["starts_on"]), 9 * 60))
    task_rate = ctx.task_rates.get(task["id"])
    return {
        "id": entry_id,
        "spent_date": slot.day.isoformat(),
        "hours": _hours(hundredths),
        "hours_without_timer": 0.0 if running else _hours(hundredths),
        "rounded_hours": _hours(rounded),
        "notes": _note(rng),
        "is_locked": closed,
        "locked_reason": lock_reason,
        "is_closed": closed,
        "is_billed": billed,
        "timer_started_at": _ts(started) if running else None,
        "started_time": _clock_12h(start_minute),
        "ended_time": None if running else _clock_12h(start_minute + duration),
        "is_running": running,
        "billable": billable,
        "budgeted": project["budget"] is not None,
        "billable_rate": _money(rate) if billable else None,
        "cost_rate": _money(user_cost),
        "created_at": _ts(created),
        "updated_at": _ts(updated),
        "user": {"id": uid, "name": f"{user['first_name']} {user['last_name']}"},
        "client": {"id": client["id"], "name": client["name"], "currency": client["currency"]},
        "project": {"id": pid, "name": project["name"], "code": project["code"]},
        "task": {"id": task["id"], "name": task["name"]},
        "user_assignment": {
            "id": USER_ASSIGNMENT_ID_BASE + cat.project_index[pid] * 100 + cat.user_index[uid],
            "is_project_manager": cat.user_index[uid] == 0,
            "is_active": True,
            "budget": None,
            "created_at": assignment_stamp,
            "updated_at": assignment_stamp,
            "hourly_rate": _money(user_rate),
        },
        "task_assignment": {
            "id": TASK_ASSIGNMENT_ID_BASE
            + cat.project_index[pid] * 100
            + cat.task_index[task["id"]],
            "billable": task["billable_by_default"],
            "is_active": True,
            "created_at": assignment_stamp,
            "updated_at": assignment_stamp,
            "hourly_rate": None if task_rate is None else _money(task_rate),
            "budget": None,
        },
        "invoice": invoice,
        "external_reference": None,
    }


def _build_time_entries(
    ctx: _Context,
    clients: list[dict[str, Any]],
    users: list[dict[str, Any]],
    tasks: list[dict[str, Any]],
    projects: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    project_ids = [p["id"] for p in projects]
    cat = _Catalogue(
        clients={c["id"]: c for c in clients},
        users={u["id"]: u for u in users},
        projects={p["id"]: p for p in projects},
        project_ids=project_ids,
        project_weights=[ctx.project_weight[pid] for pid in project_ids],
        billable_tasks=[t for t in tasks if t["billable_by_default"]],
        billable_weights=[row[4] for row in _TASK_CATALOGUE if row[1]],
        nonbillable_tasks=[t for t in tasks if not t["billable_by_default"]],
        project_index={p["id"]: i for i, p in enumerate(projects)},
        task_index={t["id"]: i for i, t in enumerate(tasks)},
        user_index={u["id"]: i for i, u in enumerate(users)},
    )
    invoices: dict[int, dict[str, Any]] = {}
    return [
        _build_entry(ctx, cat, ENTRY_ID_BASE + 1 + i, slot, invoices)
        for i, slot in enumerate(_plan_slots(ctx, project_ids))
    ]


def _xero_contact(
    guid: str, name: str, currency: str, *, customer: bool, status: str = "ACTIVE"
) -> dict[str, Any]:
    return {
        "ContactID": guid,
        "ContactStatus": status,
        "Name": name,
        "EmailAddress": f"accounts@{_ascii_slug(name)[:24]}.example",
        "Addresses": [],
        "IsSupplier": not customer,
        "IsCustomer": customer,
        "DefaultCurrency": currency,
        "HasAttachments": False,
    }


# How the contacts of the unmapped clients are named in Xero, from the client's name.
_SUGGESTIBLE_VARIANTS: tuple[Callable[[str], str], ...] = (
    lambda name: f"{name.upper()} LIMITED",
    lambda name: f"{name.lower()}, Ltd.",
)


def _build_xero_contacts(
    clients: list[dict[str, Any]],
    rows: list[_ClientRow],
    unmapped: list[int],
    stamp: str,
) -> list[dict[str, Any]]:
    contacts: list[dict[str, Any]] = []
    for client, row in zip(clients, rows, strict=True):
        if client["id"] in unmapped:
            continue
        _name, currency, street, city, postcode, country = row
        contact = _xero_contact(
            _xero_guid("contact", client["id"]), client["name"], currency, customer=True
        )
        contact["ContactNumber"] = f"HV-{client['id']}"
        contact["Addresses"] = [
            {
                "AddressType": "STREET",
                "AddressLine1": street,
                "City": city,
                "PostalCode": postcode,
                "Country": country,
            }
        ]
        contacts.append(contact)
    # Contacts that belong to no Harvest client: suppliers, a name-alike of a
    # mapped client (matching by name is visibly unsafe) and an archived
    # near-duplicate of an unmapped client.
    alike = f"{clients[0]['name'].split()[0]} Corp"
    extras = [
        _xero_contact(
            _xero_guid("contact-extra", 0), "Harbourside Stationery Ltd", "NZD", customer=False
        ),
        _xero_contact(
            _xero_guid("contact-extra", 1), "Inland Revenue Department", "NZD", customer=False
        ),
        _xero_contact(_xero_guid("contact-extra", 2), alike, clients[0]["currency"], customer=True),
    ]
    if unmapped:
        ghost = next(c for c in clients if c["id"] == unmapped[0])
        extras.append(
            _xero_contact(
                _xero_guid("contact-extra", 3),
                f"{ghost['name']} (old)",
                ghost["currency"],
                customer=True,
                status="ARCHIVED",
            )
        )
    # Contacts set up for the unmapped clients under slightly different names (case,
    # punctuation, a legal suffix): `hourbridge mappings suggest` must propose them.
    for i, client_id in enumerate(unmapped):
        client = next(c for c in clients if c["id"] == client_id)
        name = _SUGGESTIBLE_VARIANTS[i % len(_SUGGESTIBLE_VARIANTS)](client["name"])
        guid = _xero_guid("contact-variant", client_id)
        extras.append(_xero_contact(guid, name, client["currency"], customer=True))
    contacts.extend(extras)
    for contact in contacts:
        contact["UpdatedDateUTC"] = stamp
    return contacts


def _build_xero_items(stamp: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for name, billable, rate, code, _weight in _TASK_CATALOGUE:
        if not billable or code is None or rate is None:
            continue
        items.append(
            {
                "ItemID": _xero_guid("item", code),
                "Code": code,
                "Name": name,
                "Description": f"{name} services",
                "IsSold": True,
                "IsPurchased": False,
                "IsTrackedAsInventory": False,
                "SalesDetails": {
                    "UnitPrice": _money(rate),
                    "AccountCode": "200",
                    "TaxType": "OUTPUT2",
                },
                "UpdatedDateUTC": stamp,
            }
        )
    return items


def _build_xero_accounts(stamp: str) -> list[dict[str, Any]]:
    rows = (
        ("090", "Business Bank Account", "BANK", "ASSET", "NONE"),
        ("200", "Sales", "REVENUE", "REVENUE", "OUTPUT2"),
        ("260", "Other Revenue", "REVENUE", "REVENUE", "OUTPUT2"),
        ("310", "Cost of Goods Sold", "DIRECTCOSTS", "EXPENSE", "INPUT2"),
        ("429", "General Expenses", "EXPENSE", "EXPENSE", "INPUT2"),
        ("610", "Accounts Receivable", "CURRENT", "ASSET", "NONE"),
        ("820", "GST", "CURRLIAB", "LIABILITY", "NONE"),
    )
    system_accounts = {"610": "DEBTORS", "820": "GST"}
    accounts: list[dict[str, Any]] = []
    for code, name, acc_type, acc_class, tax_type in rows:
        account: dict[str, Any] = {
            "AccountID": _xero_guid("account", code),
            "Code": code,
            "Name": name,
            "Type": acc_type,
            "Status": "ACTIVE",
            "TaxType": tax_type,
            "Class": acc_class,
            "EnablePaymentsToAccount": False,
            "ShowInExpenseClaims": acc_class == "EXPENSE",
            "HasAttachments": False,
            "UpdatedDateUTC": stamp,
        }
        if acc_type == "BANK":
            account["BankAccountNumber"] = "0201000123456700"
            account["BankAccountType"] = "BANK"
            account["CurrencyCode"] = "NZD"
        if code in system_accounts:
            account["SystemAccount"] = system_accounts[code]
        accounts.append(account)
    return accounts


def _build_xero_tax_rates() -> list[dict[str, Any]]:
    rows = (
        ("GST on Income", "OUTPUT2", "OUTPUT", 15, True, False),
        ("GST on Expenses", "INPUT2", "INPUT", 15, False, True),
        ("No GST", "NONE", "NONE", 0, True, True),
        ("Zero Rated", "ZERORATEDOUTPUT", "OUTPUT", 0, True, False),
        ("Exempt Income", "EXEMPTOUTPUT", "EXEMPTOUTPUT", 0, True, False),
    )
    return [
        {
            "Name": name,
            "TaxType": tax_type,
            "ReportTaxType": report_type,
            "CanApplyToAssets": expenses,
            "CanApplyToEquity": expenses,
            "CanApplyToExpenses": expenses,
            "CanApplyToLiabilities": expenses,
            "CanApplyToRevenue": revenue,
            "DisplayTaxRate": float(pct),
            "EffectiveRate": float(pct),
            "Status": "ACTIVE",
            "TaxComponents": [
                {"Name": "GST", "Rate": float(pct), "IsCompound": False, "IsNonRecoverable": False}
            ],
        }
        for name, tax_type, report_type, pct, revenue, expenses in rows
    ]


_XERO_CURRENCIES = (
    ("NZD", "New Zealand Dollar"),
    ("USD", "United States Dollar"),
    ("EUR", "Euro"),
    ("GBP", "British Pound"),
    ("AUD", "Australian Dollar"),
)


def build_agency_month(spec: SeedSpec = DEFAULT_SPEC) -> AgencyMonth:
    """Build the whole month. The same ``spec`` gives byte-identical data."""
    if spec.clients < 1:
        raise ValueError("spec.clients must be at least 1")
    if spec.entries < 10:
        raise ValueError("spec.entries must be at least 10")
    year, month = _parse_period(spec.period)
    month_start = datetime(year, month, 1, tzinfo=UTC)
    ctx = _Context(
        spec=spec,
        rng=random.Random(spec.seed),
        period_start=month_start.date(),
        period_end=date(year, month, calendar.monthrange(year, month)[1]),
        setup_epoch=month_start - timedelta(days=400),  # set up well before the month
    )
    users = _build_users(ctx)
    tasks = _build_tasks(ctx)
    client_rows = _client_catalogue(spec.clients)
    clients = _build_clients(ctx, client_rows)
    projects = _build_projects(ctx, clients, [u["id"] for u in users])
    n_unmapped = min(2, len(clients) - 1)
    unmapped = sorted(ctx.rng.sample([c["id"] for c in clients], n_unmapped))
    time_entries = _build_time_entries(ctx, clients, users, tasks, projects)

    categories, expenses = _build_expenses(ctx, clients, projects, users)
    stamp = _ms_date(month_start - timedelta(days=30))
    return AgencyMonth(
        spec=spec,
        clients=clients,
        users=users,
        tasks=tasks,
        projects=projects,
        time_entries=time_entries,
        xero_contacts=_build_xero_contacts(clients, client_rows, unmapped, stamp),
        xero_items=_build_xero_items(stamp),
        xero_accounts=_build_xero_accounts(stamp),
        xero_tax_rates=_build_xero_tax_rates(),
        xero_currencies=[{"Code": code, "Description": desc} for code, desc in _XERO_CURRENCIES],
        base_currency="NZD",
        unmapped_client_ids=unmapped,
        expense_categories=categories,
        expenses=expenses,
        xero_tracking_categories=_build_xero_tracking_categories(),
    )


# Two tracking categories (Xero allows two active ones), each with an archived option.
_XERO_TRACKING: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Region", ("North Island", "South Island", "International"), "Chatham Islands"),
    ("Business unit", ("Design", "Engineering", "Consulting"), "Print"),
)


def _build_xero_tracking_categories() -> list[dict[str, Any]]:
    out = []
    for name, options, archived in _XERO_TRACKING:
        category_id = _xero_guid("tracking", name)
        out.append(
            {
                "TrackingCategoryID": category_id,
                "Name": name,
                "Status": "ACTIVE",
                "Options": [
                    {
                        "TrackingOptionID": _xero_guid("tracking-option", f"{name}/{option}"),
                        "Name": option,
                        "Status": "ARCHIVED" if option == archived else "ACTIVE",
                    }
                    for option in (*options, archived)
                ],
            }
        )
    return out


# --------------------------------------------------------------------------
# Expenses (Harvest v2 shape). Their own random stream, so time entries stay as they were.
# --------------------------------------------------------------------------

_EXPENSE_CATEGORIES: tuple[tuple[str, int | None, str | None], ...] = (
    # name, unit price in cents (None: a flat amount), unit name
    ("Mileage", 95, "km"),
    ("Travel", None, None),
    ("Software licences", None, None),
    ("Printing", 45, "page"),
)


def _cents(cents: int) -> float:
    """An amount in cents as the JSON number Harvest sends (at most two decimals)."""
    return float((Decimal(cents) * _CENT).quantize(_CENT))


def _build_expenses(
    ctx: _Context,
    clients: list[dict[str, Any]],
    projects: list[dict[str, Any]],
    users: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    spec, period_start, period_end = ctx.spec, ctx.period_start, ctx.period_end
    rng = random.Random(spec.seed + 7919)
    categories = [
        {
            "id": 4100001 + i,
            "name": name,
            "unit_name": unit,
            "unit_price": None if cents is None else _cents(cents),
            "is_active": True,
        }
        for i, (name, cents, unit) in enumerate(_EXPENSE_CATEGORIES)
    ]
    by_client = {c["id"]: c for c in clients}
    expenses: list[dict[str, Any]] = []
    days = _days(period_start, period_end)
    count = max(4, spec.entries // 25)
    for i in range(count):
        project = projects[rng.randrange(len(projects))]
        client = by_client[project["client"]["id"]]
        user = users[rng.randrange(len(users))]
        category = categories[rng.randrange(len(categories))]
        day = days[rng.randrange(len(days))]
        unit_cents = _EXPENSE_CATEGORIES[categories.index(category)][1]
        if unit_cents is None:
            units = None
            total_cents = rng.randrange(20, 900) * 100  # whole currency units
        else:
            units = rng.randrange(1, 60) * 10
            total_cents = units * unit_cents
        roll = rng.random()
        billable = roll > 0.1
        approved = roll > 0.2
        billed = approved and billable and rng.random() < 0.05
        created = _at(day, 17 * 60 + rng.randrange(120))
        receipt = (
            {
                "url": f"https://files.example/receipts/{4200001 + i}.pdf",
                "file_name": f"receipt-{4200001 + i}.pdf",
                "file_size": 20_000 + rng.randrange(200_000),
                "content_type": "application/pdf",
            }
            if unit_cents is None
            else None
        )
        expenses.append(
            {
                "id": 4200001 + i,
                "notes": rng.choice(["Client visit", "Taxi to workshop", "Annual licence", None]),
                "total_cost": _cents(total_cents),
                "units": units,
                "is_closed": approved,
                "is_locked": approved,
                "is_billed": billed,
                "locked_reason": "Item Approved and Locked for this Time Period"
                if approved
                else None,
                "spent_date": day.isoformat(),
                "created_at": _ts(created),
                "updated_at": _ts(created + timedelta(days=2)),
                "billable": billable,
                "receipt": receipt,
                "user": {"id": user["id"], "name": f"{user['first_name']} {user['last_name']}"},
                "user_assignment": None,
                "project": {"id": project["id"], "name": project["name"], "code": project["code"]},
                "expense_category": {
                    "id": category["id"],
                    "name": category["name"],
                    "unit_price": category["unit_price"],
                    "unit_name": category["unit_name"],
                },
                "client": {
                    "id": client["id"],
                    "name": client["name"],
                    "currency": client["currency"],
                },
                "invoice": {"id": 9100000 + client["id"] % 1000, "number": "H-EXP"}
                if billed
                else None,
            }
        )
    return categories, expenses


def harvest_time_entry_ids_by_status(month: AgencyMonth) -> dict[str, list[int]]:
    """Classify entry ids by what their fields say (not by how they were made).

    Keys: ``running``, ``nonbillable``, ``billed``, ``unapproved``,
    ``billable_approved`` (closed, billable, unbilled, not running: what a sync
    would invoice), ``out_of_period`` (spent_date outside ``spec.period``;
    these ids also appear in their status list).
    """
    prefix = month.spec.period + "-"
    out: dict[str, list[int]] = {
        "running": [],
        "nonbillable": [],
        "billed": [],
        "unapproved": [],
        "billable_approved": [],
        "out_of_period": [],
    }
    for entry in month.time_entries:
        eid = int(entry["id"])
        if not str(entry["spent_date"]).startswith(prefix):
            out["out_of_period"].append(eid)
        if entry["is_running"]:
            out["running"].append(eid)
        elif not entry["billable"]:
            out["nonbillable"].append(eid)
        elif entry["is_billed"]:
            out["billed"].append(eid)
        elif not entry["is_closed"]:
            out["unapproved"].append(eid)
        else:
            out["billable_approved"].append(eid)
    return out
