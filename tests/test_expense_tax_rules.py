"""Hand-worked cases: expense markups, units × unit price, tax precedence and tracking.

In the style of test_billing_rules.py: each case lists its entries and rules and the lines
worked out by hand, with the arithmetic in a comment. They go through the real resolver and
invoice builder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.base import RemoteContact
from core.config import load_config
from core.errors import ConfigError
from core.invoices import build_lines
from core.model import EntryKind, Ref, SourceEntry
from core.sync import currency_mismatch
from mapping.resolver import MappedEntry, Resolver
from mapping.rules import MappingRules
from sandbox.seed import SeedSpec, build_agency_month
from tests.conftest import example_config, write_config
from tests.helpers import commented_example

CATEGORIES = {"K1": "Mileage", "K2": "Travel"}


def x(
    source_id: str,
    units: str,
    unit_price: str,
    *,
    category: str = "K1",
    client: str = "C1",
    project: str = "P1",
) -> SourceEntry:
    """An expense: ``units`` at ``unit_price`` (a flat amount is 1 × its total)."""
    return SourceEntry(
        source="harvest",
        source_id=f"expense-{source_id}",
        kind=EntryKind.EXPENSE,
        spent_date=date(2026, 10, 7),
        quantity=Decimal(units),
        unit_price=Decimal(unit_price),
        currency="NZD",
        client=Ref(client, {"C1": "Acme", "C2": "Kowhai"}[client]),
        project=Ref(project, {"P1": "Brand", "P2": "Web"}[project]),
        task=Ref(category, CATEGORIES[category]),
        user=Ref("U1", "Ana"),
        notes="",
        billable=True,
        approved=True,
        billed_in_source=False,
        running=False,
        updated_at=datetime(2026, 11, 1, tzinfo=UTC),
    )


def t(source_id: str, hours: str, *, task: str = "T1", project: str = "P1") -> SourceEntry:
    """A time entry of ``hours`` at the tracker's 100 an hour."""
    return SourceEntry(
        source="harvest",
        source_id=source_id,
        kind=EntryKind.TIME,
        spent_date=date(2026, 10, 7),
        quantity=Decimal(hours),
        unit_price=Decimal(100),
        currency="NZD",
        client=Ref("C1", "Acme"),
        project=Ref(project, {"P1": "Brand", "P2": "Web"}[project]),
        task=Ref(task, {"T1": "Design", "T2": "Dev"}[task]),
        user=Ref("U1", "Ana"),
        notes="",
        billable=True,
        approved=True,
        billed_in_source=False,
        running=False,
        updated_at=datetime(2026, 11, 1, tzinfo=UTC),
    )


BASE: dict[str, Any] = {
    "clients": {
        "C1": {"contact_number": "C-1"},
        "C2": {"contact_number": "C-2", "expense_markup_percent": "5"},
    },
    "tasks": {"T1": {"item_code": "DESIGN"}, "T2": {"item_code": "DEV"}},
    "expense_categories": {
        "K1": {"item_code": "MILEAGE", "account_code": "260"},
        "K2": {"item_code": "TRAVEL", "account_code": "261"},
    },
}

# (description, quantity, unit price, amount, rate rule, item, account, tax, tracking)
Line = tuple[Any, ...]


@dataclass
class Case:
    name: str
    entries: list[SourceEntry]
    rules: dict[str, Any]
    lines: list[Line]


def merged(extra: dict[str, Any]) -> dict[str, Any]:
    out = {**BASE, **extra}
    for key in ("clients", "tasks", "expense_categories", "projects"):
        if key in extra and key in BASE:
            out[key] = {**BASE[key], **extra[key]}
    return out


CASES = [
    # ---- markup ------------------------------------------------------------------------
    Case(
        "an expense without a markup is billed at cost, units and unit price kept",
        [x("1", "120", "0.95")],
        {},
        # 120 km × 0.95 = 114.00
        [("Mileage", "120", "0.95", "114.00", "expense at cost", "MILEAGE", "260", None, ())],
    ),
    Case(
        "the profile's markup applies to the unit price, rounded to cents",
        [x("1", "120", "0.95")],
        {"expense_markup_percent": "10"},
        # 0.95 × 1.10 = 1.045 → 1.05 (half up); 120 × 1.05 = 126.00 (not 125.40)
        [
            (
                "Mileage",
                "120",
                "1.05",
                "126.00",
                "expense +10% markup (expense_markup_percent)",
                "MILEAGE",
                "260",
                None,
                (),
            )
        ],
    ),
    Case(
        "the client's markup beats the profile's",
        [x("1", "1", "250.00", category="K2", client="C2")],
        {"expense_markup_percent": "10"},
        # client C2: 5 %: 250.00 × 1.05 = 262.50
        [
            (
                "Travel",
                "1",
                "262.50",
                "262.50",
                "expense +5% markup (clients.C2)",
                "TRAVEL",
                "261",
                None,
                (),
            )
        ],
    ),
    Case(
        "the category's markup beats the client's, and 0 means at cost",
        [x("1", "40", "0.95", client="C2"), x("2", "1", "99.99", category="K2", client="C2")],
        {
            "expense_categories": {
                "K1": {"item_code": "MILEAGE", "account_code": "260", "markup_percent": "12.5"},
                "K2": {"item_code": "TRAVEL", "account_code": "261", "markup_percent": "0"},
            }
        },
        [
            # 0.95 × 1.125 = 1.06875 → 1.07; 40 × 1.07 = 42.80
            (
                "Mileage",
                "40",
                "1.07",
                "42.80",
                "expense +12.5% markup (expense_categories.K1)",
                "MILEAGE",
                "260",
                None,
                (),
            ),
            # 0 % on the category beats the client's 5 %: 1 × 99.99
            (
                "Travel",
                "1",
                "99.99",
                "99.99",
                "expense at cost (expense_categories.K2)",
                "TRAVEL",
                "261",
                None,
                (),
            ),
        ],
    ),
    Case(
        "expenses at one marked-up price share a line; units add up",
        [x("1", "30", "0.45"), x("2", "12", "0.45"), x("3", "10", "0.50")],
        {"expense_markup_percent": "20"},
        [
            # 0.45 × 1.2 = 0.54; (30 + 12) × 0.54 = 22.68
            ("Mileage", "42", "0.54", "22.68", None, "MILEAGE", "260", None, ()),
            # 0.50 × 1.2 = 0.60; 10 × 0.60 = 6.00
            ("Mileage", "10", "0.60", "6.00", None, "MILEAGE", "260", None, ()),
        ],
    ),
    Case(
        "markups never touch time",
        [t("1", "2")],
        {"expense_markup_percent": "10"},
        [("Design", "2", "100", "200.00", "tracker rate", "DESIGN", None, None, ())],
    ),
    # ---- tax precedence: item, then project, then client, then the profile default -----
    Case(
        "the profile default applies when nothing else names a tax",
        [t("1", "1")],
        {"default_tax_type": "OUTPUT2"},
        [("Design", "1", "100", "100.00", None, "DESIGN", None, "OUTPUT2", ())],
    ),
    Case(
        "the client's tax beats the profile default",
        [t("1", "1")],
        {
            "default_tax_type": "OUTPUT2",
            "clients": {"C1": {"contact_number": "C-1", "tax_type": "ZERORATEDOUTPUT"}},
        },
        [("Design", "1", "100", "100.00", None, "DESIGN", None, "ZERORATEDOUTPUT", ())],
    ),
    Case(
        "the project's tax beats the client's",
        [t("1", "1"), t("2", "1", project="P2")],
        {
            "clients": {"C1": {"contact_number": "C-1", "tax_type": "ZERORATEDOUTPUT"}},
            "projects": {"P2": {"tax_type": "EXEMPTOUTPUT"}},
            "grouping": "project",
        },
        [
            ("Brand: Design", "1", "100", "100.00", None, "DESIGN", None, "ZERORATEDOUTPUT", ()),
            ("Web: Design", "1", "100", "100.00", None, "DESIGN", None, "EXEMPTOUTPUT", ()),
        ],
    ),
    Case(
        "the item's tax beats the project's and the client's; the expense's too",
        [t("1", "1"), t("2", "2", task="T2", project="P2"), x("1", "1", "50.00", category="K2")],
        {
            "clients": {"C1": {"contact_number": "C-1", "tax_type": "ZERORATEDOUTPUT"}},
            "projects": {"P2": {"tax_type": "EXEMPTOUTPUT"}},
            "tasks": {"T2": {"item_code": "DEV", "tax_type": "OUTPUT2"}},
            "expense_categories": {
                "K2": {"item_code": "TRAVEL", "account_code": "261", "tax_type": "NONE"}
            },
        },
        [
            ("Design", "1", "100", "100.00", None, "DESIGN", None, "ZERORATEDOUTPUT", ()),
            ("Dev", "2", "100", "200.00", None, "DEV", None, "OUTPUT2", ()),  # item beats P2
            ("Travel", "1", "50.00", "50.00", None, "TRAVEL", "261", "NONE", ()),
        ],
    ),
    # ---- tracking: the project's list, else the client's ------------------------------
    Case(
        "the client's tracking goes on every line",
        [t("1", "1"), x("1", "10", "0.95")],
        {
            "clients": {
                "C1": {
                    "contact_number": "C-1",
                    "tracking": [
                        {"name": "Region", "option": "North Island"},
                        {"name": "Business unit", "option": "Design"},
                    ],
                }
            }
        },
        [
            (
                "Design",
                "1",
                "100",
                "100.00",
                None,
                "DESIGN",
                None,
                None,
                (("Region", "North Island"), ("Business unit", "Design")),
            ),
            (
                "Mileage",
                "10",
                "0.95",
                "9.50",
                None,
                "MILEAGE",
                "260",
                None,
                (("Region", "North Island"), ("Business unit", "Design")),
            ),
        ],
    ),
    Case(
        "a project's tracking replaces the client's, and splits the task's line",
        [t("1", "1"), t("2", "2", project="P2")],
        {
            "clients": {
                "C1": {
                    "contact_number": "C-1",
                    "tracking": [{"name": "Region", "option": "North Island"}],
                }
            },
            "projects": {"P2": {"tracking": [{"name": "Business unit", "option": "Web"}]}},
        },
        [
            (
                "Design",
                "2",
                "100",
                "200.00",
                None,
                "DESIGN",
                None,
                None,
                (("Business unit", "Web"),),
            ),
            (
                "Design",
                "1",
                "100",
                "100.00",
                None,
                "DESIGN",
                None,
                None,
                (("Region", "North Island"),),
            ),
        ],
    ),
]


def bill(case: Case) -> list[tuple[Any, ...]]:
    rules = MappingRules.model_validate(merged(case.rules))
    resolver = Resolver(rules)
    mapped = [resolver.resolve(entry) for entry in case.entries]
    assert all(isinstance(m, MappedEntry) for m in mapped), mapped
    lines = build_lines([m for m in mapped if isinstance(m, MappedEntry)])
    for line in lines:  # units × unit price is the amount, to the cent, on every line
        assert line.amount == (line.quantity * line.unit_price).quantize(Decimal("0.01"))
    return [
        (
            line.description,
            line.quantity,
            line.unit_price,
            line.amount,
            line.rate_rule,
            line.item_code,
            line.account_code,
            line.tax_type,
            line.tracking,
        )
        for line in lines
    ]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hand_worked_case(case: Case) -> None:
    got = bill(case)
    assert len(got) == len(case.lines)
    for line, want in zip(got, case.lines, strict=True):
        desc, qty, price, amount, rule, item, account, tax, tracking = want
        assert line[:4] == (desc, Decimal(qty), Decimal(price), Decimal(amount))
        if rule is not None:
            assert line[4] == rule
        assert line[5:] == (item, account, tax, tracking)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            {
                "clients": {
                    "C1": {
                        "contact_number": "C-1",
                        "tracking": [
                            {"name": "A", "option": "1"},
                            {"name": "B", "option": "2"},
                            {"name": "C", "option": "3"},
                        ],
                    }
                }
            },
            "3 tracking categories given; Xero takes at most 2 per line",
        ),
        (
            {
                "projects": {
                    "P1": {"tracking": [{"name": "A", "option": "1"}, {"name": "a", "option": "2"}]}
                }
            },
            "a tracking category is named twice",
        ),
        (
            {"tasks": {"T1": {"item_code": "DESIGN", "markup_percent": "10"}}},
            "tasks.T1.markup_percent: markups apply to expense categories only",
        ),
        ({"expense_markup_percent": "-5"}, "greater than or equal to 0"),
        ({"line_amount_types": "Gross"}, "'Exclusive', 'Inclusive' or 'NoTax'"),
    ],
)
def test_bad_expense_and_tax_rules_are_config_errors(
    rules: dict[str, Any], message: str, tmp_path: Path
) -> None:
    data = example_config()
    data["profiles"]["agency-monthly"]["mapping"] = merged(rules)
    path = write_config(tmp_path / "c.yaml", data)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"HARVEST_ACCESS_TOKEN": "x", "XERO_ACCESS_TOKEN": "y"})
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}: profiles.agency-monthly.mapping")


def test_the_commented_expense_and_tax_examples_in_the_example_config_are_valid() -> None:
    """The commented examples for markups, taxes, tracking and line amount types validate,
    and name tracking options the sandbox's Xero has."""
    examples = commented_example('expense_markup_percent: "10"')
    assert set(examples) == {
        "expense_markup_percent",
        "expense_categories",
        "clients",
        "projects",
        "line_amount_types",
    }
    mapping = example_config()["profiles"]["agency-monthly"]["mapping"]
    merged_rules = {**mapping, "expense_markup_percent": examples["expense_markup_percent"]}
    merged_rules["line_amount_types"] = examples["line_amount_types"]
    for key in ("expense_categories", "clients", "projects"):
        merged_rules[key] = {**mapping[key], **examples[key]}
    rules = MappingRules.model_validate(merged_rules)
    assert rules.expense_categories["4100001"].markup_percent == Decimal(15)
    client = rules.clients["5000002"]
    assert client.tracking is not None and len(client.tracking) == 2
    seeded = {
        (c["Name"], o["Name"])
        for c in build_agency_month(SeedSpec()).xero_tracking_categories
        for o in c["Options"]
        if o["Status"] == "ACTIVE"
    }
    named = {(t.name, t.option) for t in client.tracking} | {
        (t.name, t.option) for t in rules.projects["14000001"].tracking or []
    }
    assert named <= seeded


def test_a_contact_whose_default_currency_differs_is_refused_never_converted() -> None:
    """Xero's Contact.DefaultCurrency and QuickBooks' CurrencyRef arrive as the contact's
    currency; a contact without one takes any currency."""
    aud = RemoteContact(contact_id="1", name="Acme", number=None, currency="AUD")
    assert currency_mismatch(aud, "AUD") is None
    problem = currency_mismatch(aud, "NZD")
    assert problem is not None
    assert problem.startswith(
        "currency mismatch: the client is billed in NZD but contact 'Acme' has default "
        "currency AUD in the target"
    )
    assert currency_mismatch(RemoteContact("1", "Acme", None, None), "NZD") is None
    assert currency_mismatch(None, "NZD") is None


def test_quickbooks_class_and_department_come_from_the_project_else_the_client() -> None:
    rules = MappingRules.model_validate(
        merged(
            {
                "clients": {
                    "C1": {"contact_number": "C-1", "qbo_class": "Retail", "qbo_department": "NZ"}
                },
                "projects": {"P2": {"qbo_class": "Web", "qbo_department": "AU"}},
            }
        )
    )
    resolver = Resolver(rules)
    own, project = resolver.resolve(t("1", "1")), resolver.resolve(t("2", "1", project="P2"))
    assert isinstance(own, MappedEntry) and isinstance(project, MappedEntry)
    assert (own.category, own.department) == ("Retail", "NZ")
    assert (project.category, project.department) == ("Web", "AU")
