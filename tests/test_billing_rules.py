"""Hand-worked billing cases: rates by level and date, rounding, grouping, descriptions.

Each case lists its entries and rules, and the invoice lines worked out by hand, with the
arithmetic in a comment. The cases go through the real resolver and invoice builder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import load_config
from core.errors import ConfigError
from core.invoices import build_lines
from core.model import EntryKind, Ref, SourceEntry
from mapping.describe import cut
from mapping.resolver import MappedEntry, Resolver, Unmapped
from mapping.rules import MappingRules
from tests.conftest import example_config, write_config
from tests.helpers import commented_example

USERS = {"U1": "Ana", "U2": "Bob"}
PROJECTS = {"P1": "Brand", "P2": "Web"}
TASKS = {"T1": "Design", "T2": "Dev"}


def e(
    source_id: str,
    day: int,
    hours: str,
    *,
    user: str = "U1",
    project: str = "P1",
    task: str = "T1",
    rate: str | None = "100",
    notes: str = "",
) -> SourceEntry:
    return SourceEntry(
        source="harvest",
        source_id=source_id,
        kind=EntryKind.TIME,
        spent_date=date(2026, 10, day),
        quantity=Decimal(hours),
        unit_price=None if rate is None else Decimal(rate),
        currency="NZD",
        client=Ref("C1", "Acme"),
        project=Ref(project, PROJECTS[project]),
        task=Ref(task, TASKS[task]),
        user=Ref(user, USERS[user]),
        notes=notes,
        billable=True,
        approved=True,
        billed_in_source=False,
        running=False,
        updated_at=datetime(2026, 11, 1, tzinfo=UTC),
    )


BASE: dict[str, Any] = {
    "clients": {"C1": {"contact_number": "C-1"}},
    "tasks": {"T1": {"item_code": "DESIGN"}, "T2": {"item_code": "DEV"}},
}
ONE_ITEM = {"T1": {"item_code": "SVC"}, "T2": {"item_code": "SVC"}}  # tasks share an item

# (description, hours, unit price, amount[, rate rule])
Line = tuple[str, ...]


@dataclass
class Case:
    name: str
    entries: list[SourceEntry]
    rules: dict[str, Any]
    lines: list[Line]
    max_description: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    # ---- rate levels: each beats the next less specific one -----------------------------
    Case(
        "tracker rate, trusted by default",
        [e("1", 5, "1.5")],
        {},
        [("Design", "1.5", "100", "150.00", "tracker rate")],  # 1.5 × 100
    ),
    Case(
        "profile default beats the tracker",
        [e("1", 5, "2")],
        {"rates": [{"rate": "90"}]},
        [("Design", "2", "90", "180.00", "rates[0]: default")],  # 2 × 90
    ),
    Case(
        "user beats the profile default",
        [e("1", 5, "2")],
        {"rates": [{"rate": "90"}, {"user": "U1", "rate": "110"}]},
        [("Design", "2", "110", "220.00", "rates[1]: user U1")],  # 2 × 110
    ),
    Case(
        "client beats user",
        [e("1", 5, "2")],
        {
            "rates": [{"user": "U1", "rate": "110"}],
            "clients": {"C1": {"contact_number": "C-1", "rate": "120"}},
        },
        [("Design", "2", "120", "240.00", "client C1")],  # 2 × 120
    ),
    Case(
        "client+user beats client",
        [e("1", 5, "2")],
        {
            "rates": [{"client": "C1", "user": "U1", "rate": "130"}],
            "clients": {"C1": {"contact_number": "C-1", "rate": "120"}},
        },
        [("Design", "2", "130", "260.00", "rates[0]: client+user C1/U1")],  # 2 × 130
    ),
    Case(
        "project beats client+user",
        [e("1", 5, "2")],
        {
            "rates": [{"client": "C1", "user": "U1", "rate": "130"}],
            "projects": {"P1": {"rate": "140"}},
        },
        [("Design", "2", "140", "280.00", "project P1")],  # 2 × 140
    ),
    Case(
        "project+task beats project",
        [e("1", 5, "2")],
        {
            "rates": [{"project": "P1", "task": "T1", "rate": "150"}],
            "projects": {"P1": {"rate": "140"}},
        },
        [("Design", "2", "150", "300.00", "rates[0]: project+task P1/T1")],  # 2 × 150
    ),
    Case(
        "project+user beats project+task",
        [e("1", 5, "2")],
        {
            "rates": [
                {"project": "P1", "task": "T1", "rate": "150"},
                {"project": "P1", "user": "U1", "rate": "160"},
            ]
        },
        [("Design", "2", "160", "320.00", "rates[1]: project+user P1/U1")],  # 2 × 160
    ),
    Case(
        "project+task+user beats project+user",
        [e("1", 5, "2")],
        {
            "rates": [
                {"project": "P1", "user": "U1", "rate": "160"},
                {"project": "P1", "task": "T1", "user": "U1", "rate": "170"},
            ]
        },
        [("Design", "2", "170", "340.00", "rates[1]: project+task+user P1/T1/U1")],  # 2 × 170
    ),
    Case(
        "an entry-level override beats everything",
        [e("7", 5, "2"), e("8", 5, "1")],
        {
            "rates": [
                {"project": "P1", "task": "T1", "user": "U1", "rate": "170"},
                {"entry": "7", "rate": "80"},
            ]
        },
        [
            ("Design", "2", "80", "160.00", "rates[1]: entry 7"),  # 2 × 80
            ("Design", "1", "170", "170.00", "rates[0]: project+task+user P1/T1/U1"),  # 1 × 170
        ],
    ),
    Case(
        "an id qualified by its source beats the bare id",
        [e("1", 5, "2")],
        {"rates": [{"project": "harvest:P1", "rate": "145"}], "projects": {"P1": {"rate": "140"}}},
        [("Design", "2", "145", "290.00", "rates[0]: project harvest:P1")],  # 2 × 145
    ),
    # ---- rates with dates ----------------------------------------------------------------
    Case(
        "a mid-month rate change splits the line (dates inclusive)",
        [e("1", 5, "2"), e("2", 14, "1"), e("3", 15, "1"), e("4", 20, "2.5")],
        {
            "rates": [
                {"project": "P1", "user": "U1", "rate": "160", "until": "2026-10-14"},
                {"project": "P1", "user": "U1", "rate": "175", "from": "2026-10-15"},
            ]
        },
        [
            # 5th + 14th: (2 + 1) × 160
            ("Design", "3", "160", "480.00", "rates[0]: project+user P1/U1 until 2026-10-14"),
            # 15th + 20th: (1 + 2.5) × 175
            ("Design", "3.5", "175", "612.50", "rates[1]: project+user P1/U1 from 2026-10-15"),
        ],
    ),
    Case(
        "before a dated rule starts, the next level applies",
        [e("1", 10, "2"), e("2", 16, "1")],
        {
            "rates": [{"project": "P1", "user": "U1", "rate": "175", "from": "2026-10-15"}],
            "projects": {"P1": {"rate": "140"}},
        },
        [
            ("Design", "2", "140", "280.00", "project P1"),  # 10th: 2 × 140
            ("Design", "1", "175", "175.00", "rates[0]: project+user P1/U1 from 2026-10-15"),
        ],
    ),
    Case(
        "equal prices from two rules share a line that names both",
        [e("1", 5, "1"), e("2", 6, "2", user="U2")],
        {
            "rates": [{"project": "P1", "user": "U1", "rate": "150"}],
            "projects": {"P1": {"rate": "150"}},
        },
        # (1 + 2) × 150
        [("Design", "3", "150", "450.00", "rates[0]: project+user P1/U1; project P1")],
    ),
    # ---- rounding ------------------------------------------------------------------------
    Case(
        "entry stage, up to 15 minutes",
        [e("1", 5, "0.3"), e("2", 6, "1.1")],
        {"rounding": {"increment_minutes": 15, "mode": "up", "stage": "entry"}},
        [("Design", "1.75", "100", "175.00")],  # 18 min → 30, 66 → 75: 105 min = 1.75 h × 100
    ),
    Case(
        "entry stage, nearest 6 minutes",
        [e("1", 5, "0.33"), e("2", 6, "0.47")],
        {"rounding": {"increment_minutes": 6, "mode": "nearest"}},
        [("Design", "0.8", "100", "80.00")],  # 19.8 min → 18, 28.2 → 30: 48 min = 0.8 h × 100
    ),
    Case(
        "entry stage, nearest rounds an exact half up",
        [e("1", 5, "0.125")],
        {"rounding": {"increment_minutes": 15, "mode": "nearest"}},
        [("Design", "0.25", "100", "25.00")],  # 7.5 min is half of 15 → 15 min = 0.25 h × 100
    ),
    Case(
        "entry stage, down to 15 minutes",
        [e("1", 5, "0.3"), e("2", 6, "1.1")],
        {"rounding": {"increment_minutes": 15, "mode": "down"}},
        [("Design", "1.25", "100", "125.00")],  # 18 → 15, 66 → 60: 75 min = 1.25 h × 100
    ),
    Case(
        "line stage, up to 15 minutes: the line's total is rounded once",
        [e("1", 5, "0.3"), e("2", 6, "1.1")],
        {"rounding": {"increment_minutes": 15, "stage": "line"}},
        [("Design", "1.5", "100", "150.00")],  # 18 + 66 = 84 min → 90 = 1.5 h × 100
    ),
    Case(
        "line stage, down to 6 minutes",
        [e("1", 5, "0.34"), e("2", 6, "0.47")],
        {"rounding": {"increment_minutes": 6, "mode": "down", "stage": "line"}},
        [("Design", "0.8", "100", "80.00")],  # 20.4 + 28.2 = 48.6 min → 48 = 0.8 h × 100
    ),
    Case(
        "invoice stage: the total is rounded, the extra increment goes to the largest remainder",
        [e("1", 5, "0.3"), e("2", 6, "1.1", task="T2")],
        {"rounding": {"increment_minutes": 15, "stage": "invoice"}},
        [
            # 18 + 66 = 84 min → 90 = 6 increments; floors 1 (rem 3) + 4 (rem 6) = 5; +1 → Dev
            ("Design", "0.25", "100", "25.00"),  # 1 × 15 min = 0.25 h × 100
            ("Dev", "1.25", "100", "125.00"),  # 5 × 15 min = 1.25 h × 100
        ],
    ),
    Case(
        "invoice stage rounds each unit price on its own",
        [e("1", 5, "0.3"), e("2", 6, "0.2", task="T2", rate="120")],
        {"rounding": {"increment_minutes": 15, "mode": "nearest", "stage": "invoice"}},
        [
            ("Design", "0.25", "100", "25.00"),  # @100: 18 min → nearest 15 = 0.25 h × 100
            ("Dev", "0.25", "120", "30.00"),  # @120: 12 min → nearest 15 = 0.25 h × 120
        ],
    ),
    Case(
        "a per-entry minimum, then rounding per entry",
        [e("1", 5, "0.1"), e("2", 6, "1.02")],
        {"rounding": {"increment_minutes": 6, "minimum_minutes": 30}},
        [("Design", "1.6", "100", "160.00")],  # 6 min → min 30; 61.2 → 66: 96 min = 1.6 h
    ),
    Case(
        "a per-entry minimum at the line stage",
        [e("1", 5, "0.05"), e("2", 6, "0.05"), e("3", 7, "0.6")],
        {"rounding": {"increment_minutes": 15, "stage": "line", "minimum_minutes": 15}},
        [("Design", "1.25", "100", "125.00")],  # 3 → 15, 3 → 15, 36: 66 min → 75 = 1.25 h
    ),
    Case(
        "a project's rounding overrides the profile's, and splits the line",
        [e("1", 5, "0.3"), e("2", 6, "0.3", project="P2")],
        {"rounding": {"increment_minutes": 15}, "projects": {"P2": {"rounding": {"mode": "none"}}}},
        [
            ("Design", "0.5", "100", "50.00"),  # P1: 18 min → up 15 = 30 min = 0.5 h × 100
            ("Design", "0.3", "100", "30.00"),  # P2: exact 0.3 h × 100
        ],
    ),
    Case(
        "a client's rounding overrides the profile's",
        [e("1", 5, "0.33")],
        {
            "rounding": {"increment_minutes": 15},
            "clients": {
                "C1": {
                    "contact_number": "C-1",
                    "rounding": {"increment_minutes": 6, "mode": "down"},
                }
            },
        },
        [("Design", "0.3", "100", "30.00")],  # 19.8 min → down 6 = 18 min = 0.3 h × 100
    ),
    Case(
        "one-minute increments: hours to 4 decimals, amount from that quantity",
        [e("1", 5, "0.11", rate="99.99")],
        {"rounding": {"increment_minutes": 1}},
        [("Design", "0.1167", "99.99", "11.67")],  # 6.6 min → 7 = 0.11666… → 0.1167 × 99.99
    ),
    # ---- grouping and descriptions -------------------------------------------------------
    Case(
        "entry grouping: one line per entry, empty notes leave no dangling colon",
        [e("1", 5, "1", notes="Logo sketches"), e("2", 6, "0.5")],
        {"grouping": "entry"},
        [
            ("Design (Ana, 2026-10-05): Logo sketches", "1", "100", "100.00"),  # 1 × 100
            ("Design (Ana, 2026-10-06)", "0.5", "100", "50.00"),  # 0.5 × 100
        ],
    ),
    Case(
        "user grouping, tasks sharing an item share the user's line",
        [e("1", 5, "1"), e("2", 6, "2", user="U2"), e("3", 7, "0.5", task="T2")],
        {"grouping": "user", "tasks": ONE_ITEM},
        [
            ("Ana: Design, Dev", "1.5", "100", "150.00"),  # (1 + 0.5) × 100
            ("Bob: Design", "2", "100", "200.00"),  # 2 × 100
        ],
    ),
    Case(
        "project grouping",
        [e("1", 5, "1"), e("2", 6, "2", project="P2"), e("3", 7, "0.5", task="T2")],
        {"grouping": "project", "tasks": ONE_ITEM},
        [
            ("Brand: Design, Dev", "1.5", "100", "150.00"),  # (1 + 0.5) × 100
            ("Web: Design", "2", "100", "200.00"),  # 2 × 100
        ],
    ),
    Case(
        "task+user grouping",
        [e("1", 5, "1"), e("2", 6, "2", user="U2"), e("3", 7, "0.25")],
        {"grouping": "task+user"},
        [
            ("Design – Ana", "1.25", "100", "125.00"),  # (1 + 0.25) × 100
            ("Design – Bob", "2", "100", "200.00"),  # 2 × 100
        ],
    ),
    Case(
        "date grouping, by day in date order",
        [e("1", 6, "1"), e("2", 5, "2", task="T2"), e("3", 5, "0.5")],
        {"grouping": "date", "tasks": ONE_ITEM},
        [
            ("2026-10-05: Dev, Design", "2.5", "100", "250.00"),  # (2 + 0.5) × 100
            ("2026-10-06: Design", "1", "100", "100.00"),  # 1 × 100
        ],
    ),
    Case(
        "a template with every field; a task rule's description names the task",
        [e("1", 5, "1", notes="a"), e("2", 7, "1", user="U2", notes="b"), e("3", 6, "1")],
        {
            "line_description": "{client} | {project} | {task} | {user} | {date_range} | {notes}",
            "tasks": {"T1": {"item_code": "DESIGN", "description": "Design work"}},
        },
        [
            (
                "Acme | Brand | Design work | Ana, Bob | 2026-10-05 – 2026-10-07 | a; b",
                "3",
                "100",
                "300.00",  # 3 × 100
            )
        ],
    ),
    Case(
        "notes longer than the target allows are cut at a word boundary and marked",
        [e("1", 5, "1", notes="alpha beta gamma delta epsilon zeta")],
        {"line_description": "{task}: {notes}"},
        # 30 characters: "Design: " (8) + notes cut to 22: "alpha beta gamma" + "…"
        [("Design: alpha beta gamma…", "1", "100", "100.00")],
        max_description=30,
    ),
]


def bill(case: Case) -> list[tuple[object, ...]]:
    """The case's lines as (description, hours, unit price, amount, rate rule)."""
    rules = MappingRules.model_validate({**BASE, **case.rules})
    resolver = Resolver(rules)
    mapped = [resolver.resolve(entry) for entry in case.entries]
    assert all(isinstance(m, MappedEntry) for m in mapped), mapped
    lines = build_lines(
        [m for m in mapped if isinstance(m, MappedEntry)], max_description=case.max_description
    )
    for line in lines:  # what no line may ever do: contradict its own quantity and price
        assert line.amount == (line.quantity * line.unit_price).quantize(Decimal("0.01"))
    return [
        (line.description, line.quantity, line.unit_price, line.amount, line.rate_rule)
        for line in lines
    ]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hand_worked_case(case: Case) -> None:
    got = bill(case)
    want = [(d, Decimal(q), Decimal(p), Decimal(a), *rule) for d, q, p, a, *rule in case.lines]
    # a case that names no rate rule checks the rest of each line
    assert [g[: len(w)] for g, w in zip(got, want, strict=False)] == want
    assert len(got) == len(want)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_line_order_does_not_depend_on_the_order_entries_arrive_in(case: Case) -> None:
    backwards = Case(case.name, case.entries[::-1], case.rules, case.lines, case.max_description)
    assert bill(backwards) == bill(case)


def test_without_trust_in_the_tracker_an_entry_without_a_rule_waits() -> None:
    rules = MappingRules.model_validate({**BASE, "trust_tracker_rate": False})
    resolved = Resolver(rules).resolve(e("1", 5, "1"))
    assert isinstance(resolved, Unmapped)
    assert resolved.missing == ("rate for project P1 'Brand' (trust_tracker_rate is false)",)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            {
                "rates": [
                    {"project": "P1", "user": "U1", "rate": "1", "until": "2026-10-15"},
                    {"project": "P1", "user": "U1", "rate": "2", "from": "2026-10-15"},
                ]
            },
            "rate rule rates[1] (project+user P1/U1 from 2026-10-15) overlaps rates[0] "
            "(project+user P1/U1 until 2026-10-15)",
        ),
        (
            {
                "rates": [{"client": "C1", "rate": "1", "from": "2026-10-01"}],
                "clients": {"C1": {"contact_number": "C-1", "rate": "2"}},
            },
            "rate rule clients.C1.rate (client C1) overlaps rates[0] (client C1 from 2026-10-01)",
        ),
        ({"rates": [{"task": "T1", "rate": "1"}]}, "a rate rule names task; name one of"),
        (
            {"rates": [{"rate": "1", "from": "2026-10-02", "until": "2026-10-01"}]},
            "until 2026-10-01 is before from 2026-10-02",
        ),
        ({"line_description": "{task} by {person}"}, "unknown field {person}"),
        ({"rounding": {"increment_minutes": 15, "minimum_minutes": 20}}, "not a multiple"),
    ],
)
def test_bad_rules_are_config_errors_naming_the_rule(
    rules: dict[str, Any], message: str, tmp_path: Path
) -> None:
    data = example_config()
    data["profiles"]["agency-monthly"]["mapping"] = {**BASE, **rules}
    path = write_config(tmp_path / "c.yaml", data)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"HARVEST_ACCESS_TOKEN": "x", "XERO_ACCESS_TOKEN": "y"})
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}: profiles.agency-monthly.mapping")


def test_cut_keeps_words_whole_and_marks_the_cut() -> None:
    assert cut("short", 10) == "short"
    assert cut("alpha beta gamma", 12) == "alpha beta…"  # "alpha beta g" would split gamma
    assert cut("alpha beta gamma", 11) == "alpha beta…"  # the room ends at the boundary
    assert cut("supercalifragilistic", 6) == "super…"  # one long word: cut inside it
    assert len(cut("x " * 5000, 4000)) <= 4000


def test_rules_round_trip_through_model_dump() -> None:
    rules = MappingRules.model_validate(
        {
            **BASE,
            "rates": [{"project": "P1", "rate": "150", "from": "2026-10-15"}],
            "rounding": {"increment_minutes": 6, "stage": "line"},
            "grouping": "task+user",
            "line_description": "{task} – {user}",
        }
    )
    assert MappingRules.model_validate(rules.model_dump()) == rules
    assert MappingRules.model_validate(rules.model_dump(by_alias=True, mode="json")) == rules
    assert rules.model_dump(by_alias=True)["rates"][0]["from"] == date(2026, 10, 15)
    # ids written as YAML numbers are the same ids
    numeric = MappingRules.model_validate(yaml.safe_load("rates: [{project: 14000001, rate: 9}]"))
    assert numeric.rates[0].project == "14000001"


def test_the_commented_rate_and_rounding_examples_in_the_example_config_are_valid() -> None:
    """The commented mapping examples (rates, rounding, grouping, line text) must validate."""
    examples = commented_example("rates:")
    assert {"rates", "trust_tracker_rate", "rounding", "grouping", "line_description"} <= set(
        examples
    )
    mapping = example_config()["profiles"]["agency-monthly"]["mapping"]
    rules = MappingRules.model_validate({**mapping, **examples})
    assert len(rules.rates) == 7
    assert rules.rounding is not None and rules.rounding.minimum_minutes == 30
