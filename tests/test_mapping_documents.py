"""Mapping documents (YAML and CSV), their diff, and name matching: no database, no network."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from mapping import documents
from mapping.documents import DocumentError, csv_columns, diff, from_csv, from_yaml, sections
from mapping.rules import MappingRules
from mapping.suggest import Candidate, Matcher, normalise, score
from tests.conftest import example_config


def _example_rules() -> MappingRules:
    return MappingRules.model_validate(example_config()["profiles"]["agency-monthly"]["mapping"])


def _rich_rules() -> MappingRules:
    return MappingRules.model_validate(
        {
            "clients": {
                "1": {
                    "contact_name": 'Müller, "Söhne" & Co',
                    "rate": "123.4567",
                    "currency": "EUR",
                },
                "harvest:2": {"contact_id": "b28624f7-a779-58d1-ac55-0b688260ec3a"},
                "3": {"contact_number": "HV-3", "qbo_class": "Design, Web", "qbo_department": "N"},
            },
            "projects": {"10": {"rate": "0"}, "11": {}},
            "tasks": {"7": {"item_code": "DEV", "description": "Line one,\nline two"}},
            "default_task": {"account_code": "200"},
            "expense_categories": {"9": {"account_code": "260"}},
            "default_tax_type": "OUTPUT2",
        }
    )


@pytest.mark.parametrize("fmt", documents.FORMATS)
@pytest.mark.parametrize("rules", [_example_rules(), _rich_rules(), MappingRules()])
def test_export_then_import_gives_the_same_rules(rules: MappingRules, fmt: str) -> None:
    chosen = documents.format_of(f"m.{fmt}", None)
    text = documents.render(rules, chosen, header="exported for a test\nsecond line")
    back = documents.parse(text, chosen, f"m.{fmt}")
    assert back == rules
    assert diff(rules, back).empty


def test_csv_has_a_row_per_rule_and_a_column_per_rule_field() -> None:
    rules = _rich_rules()
    lines = documents.to_csv(rules).splitlines()
    header = lines[0].split(",")
    assert header[:3] == ["section", "key", "value"]
    for section in sections():
        fields = section.model.model_fields if section.model else {}
        for name, info in fields.items():
            # generated from the model: new rule fields become columns, under their alias
            assert (info.alias or name) in header
    assert len(set(header)) == len(header)
    rows = list(csv.DictReader(io.StringIO(documents.to_csv(rules))))
    # 3 clients, 2 projects, 1 task, default_task, 1 expense category, default_tax_type
    assert [(r["section"], r["key"]) for r in rows] == [
        ("clients", "1"),
        ("clients", "harvest:2"),
        ("clients", "3"),
        ("projects", "10"),
        ("projects", "11"),
        ("tasks", "7"),
        ("default_task", ""),
        ("expense_categories", "9"),
        ("default_tax_type", ""),
    ]
    assert rows[0]["contact_name"] == 'Müller, "Söhne" & Co' and rows[0]["rate"] == "123.4567"
    assert rows[5]["description"] == "Line one,\nline two"
    assert rows[-1]["value"] == "OUTPUT2" and rows[-1]["item_code"] == ""


def test_no_rule_field_clashes_with_the_fixed_csv_columns() -> None:
    for section in sections():
        fields = set(section.model.model_fields) if section.model else set()
        assert not fields & set(documents.FIXED_COLUMNS), section.name
    assert csv_columns()[:3] == list(documents.FIXED_COLUMNS)


YAML_DOC = """\
# a comment
clients:
  "5000001":
    contact_number: HV-5000001
    currency: USD
  "5000002":
    contact_number: HV-5000002
    contact_name: Two Contacts
tasks:
  "8000001": {item_code: DESIGN}
"""


def _yaml_error(text: str) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        from_yaml(text, "m.yaml")
    return caught.value


def test_yaml_errors_name_the_file_the_line_and_the_field() -> None:
    error = _yaml_error(YAML_DOC)  # client 5000002 names two contacts
    assert str(error) == (
        "m.yaml: line 6: clients.5000002: give exactly one of contact_id, contact_number or "
        "contact_name"
    )
    bad_currency = YAML_DOC.replace("currency: USD", "currency: usd").replace(
        "    contact_name: Two Contacts\n", ""
    )
    error = _yaml_error(bad_currency)
    assert (error.line, error.field) == (5, "clients.5000001.currency")
    assert "\n" not in str(error)
    unknown = YAML_DOC.replace("    contact_name: Two Contacts\n", "").replace(
        "{item_code: DESIGN}", "{item_code: DESIGN, colour: red}"
    )
    error = _yaml_error(unknown)
    assert (error.line, error.field, error.message) == (9, "tasks.8000001.colour", "unknown key")
    unquoted = "clients:\n  5000001: {contact_number: HV-1}\n"
    assert _yaml_error(unquoted).line == 2
    error = _yaml_error("clients:\n  '1': {contact_number: A\n")
    assert error.where == "m.yaml" and error.line is not None
    duplicate = 'tasks:\n  "1": {item_code: A}\n  "1": {item_code: B}\n'
    error = _yaml_error(duplicate)
    assert (error.line, error.field) == (3, "1") and "first on line 2" in error.message
    assert _yaml_error("- just\n- a list\n").message.startswith("the document must be a mapping")


def _csv_error(text: str) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        from_csv(text, "m.csv")
    return caught.value


def test_csv_errors_name_the_file_the_line_and_the_column() -> None:
    header = ",".join(csv_columns())
    n = len(csv_columns())

    def row(**cells: str) -> str:
        return ",".join(cells.get(c, "") for c in csv_columns())

    good = [header, row(section="clients", key="1", contact_number="HV-1", rate="150.00")]
    assert from_csv("\n".join(good) + "\n", "m.csv").clients["1"].rate == Decimal("150.00")
    error = _csv_error("\n".join([*good, row(section="client", key="2")]))
    assert (error.line, error.field) == (3, "section")
    error = _csv_error("\n".join([*good, row(section="clients", key="2", contact_number="X",
                                             rate="lots")]))  # fmt: skip
    assert (error.line, error.field) == (3, "rate") and str(error).startswith("m.csv: line 3:")
    error = _csv_error("\n".join([*good, row(section="clients", key="1", contact_number="X")]))
    assert error.line == 3 and "first on line 2" in error.message
    error = _csv_error("\n".join([*good, "", row(section="tasks", key="5")]))
    assert error.line == 4 and "give item_code" in error.message
    error = _csv_error("\n".join([*good, row(section="clients", key="", contact_number="X")]))
    assert (error.line, error.field) == (3, "key")
    error = _csv_error(header.replace("rate", "rates") + "\n")
    assert (error.line, error.field, error.message) == (1, "rates", "unknown column")
    error = _csv_error("\n".join([*good, ",".join(["tasks", "5"] + [""] * (n - 3))]))
    assert error.line == 3 and f"expected {n} cells" in error.message
    error = _csv_error("\n".join([*good, row(section="default_tax_type")]))
    assert (error.line, error.field) == (3, "value")
    assert _csv_error("").line == 1


def test_diff_names_added_changed_and_removed_keys() -> None:
    before = _rich_rules()
    data: dict[str, Any] = before.model_dump(mode="json", exclude_defaults=True)
    data["clients"]["4"] = {"contact_number": "HV-4"}
    data["clients"]["1"]["rate"] = "99"
    del data["tasks"]["7"]
    data["default_tax_type"] = "NONE"
    del data["default_task"]
    change = diff(before, MappingRules.model_validate(data))
    assert change.added == ("clients 4",)
    assert change.changed == ("clients 1", "default_tax_type")
    assert change.removed == ("tasks 7", "default_task")
    assert change.summary().startswith("added 1 (clients 4); changed 2")
    assert diff(None, before).added[0] == "clients 1"


@pytest.mark.parametrize(
    ("tracker", "target"),
    [
        ("Waitematā Sailing Club", "WAITEMATĀ SAILING CLUB LIMITED"),
        ("Canterbury Agritech", "canterbury agritech, Ltd."),
        ("Nørdisk Design ApS", "Nordisk Design"),
        ("Hawke's Bay Wine Collective", "Hawkes Bay Wine Collective Ltd"),
        ("Thistle & Rose Publishing Ltd", "Thistle and Rose Publishing Limited"),
        ("Blue Heron Software LLC", "Blue Heron Software, Inc."),
        ("Pinnacle Pty Ltd", "PINNACLE"),
    ],
)
def test_names_that_differ_only_in_case_punctuation_accents_or_suffix_score_100(
    tracker: str, target: str
) -> None:
    assert normalise(tracker) == normalise(target)
    assert score(tracker, target) == 100


def test_different_names_score_lower_and_the_best_candidate_wins() -> None:
    assert score("Harbour City Dental", "Harbourside Stationery Ltd") < 80
    assert normalise("Ltd") == "ltd"  # a name that is only a suffix keeps it
    matcher = Matcher(
        [
            Candidate("a", ("Harbourside Stationery Ltd",), "A"),
            Candidate("b", ("Harbour City Dental Limited",), "B"),
            Candidate("c", ("Harbour City Dentistry",), "C"),
        ]
    )
    found = matcher.best("Harbour City Dental", min_score=80)
    assert [m.candidate.id for m in found] == ["b", "c"]
    assert found[0].score == 100 and found[1].score < 100
    assert matcher.best("Zebra Holdings", min_score=80) == []


class _DatedRate(BaseModel):
    """Shaped like rules to come: an alias for a keyword, dates, nested non-scalar values."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    rate: Decimal
    valid_from: date | None = Field(default=None, alias="from")
    until: date | None = None
    rounding: Literal["up", "nearest", "down"] = "nearest"
    users: list[str] = Field(default_factory=list)
    steps: dict[str, Decimal] = Field(default_factory=dict)


class _Future(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    clients: dict[str, _DatedRate] = Field(default_factory=dict)
    rates: list[_DatedRate] = Field(default_factory=list)
    minimums: dict[str, Decimal] = Field(default_factory=dict)
    fallback: _DatedRate | None = None
    increment_minutes: int = 6
    grouping: list[str] = Field(default_factory=list)


def test_new_kinds_of_fields_flow_through_csv_yaml_and_diff_without_changes() -> None:
    rules = _Future.model_validate(
        {
            "clients": {"1": {"rate": "150.00", "from": "2026-10-16", "users": ["u1", "u,2"]}},
            "rates": [
                {"rate": "99.5", "until": "2026-10-15", "steps": {"15": "1.25"}},
                {"rate": "120", "from": "2026-10-16", "rounding": "up"},
            ],
            "minimums": {"client:1": "0.25"},
            "fallback": {"rate": "80"},
            "increment_minutes": 15,
            "grouping": ["task", "user"],
        }
    )
    columns = csv_columns(_Future)
    assert {"from", "until", "rounding", "users", "steps"} <= set(columns)
    assert "valid_from" not in columns  # documents use the alias people write
    text = documents.to_csv(rules)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["section"], r["key"]) for r in rows] == [
        ("clients", "1"),
        ("rates", "1"),
        ("rates", "2"),
        ("minimums", "client:1"),
        ("fallback", ""),
        ("increment_minutes", ""),
        ("grouping", ""),
    ]
    assert rows[0]["users"] == '["u1","u,2"]' and rows[0]["from"] == "2026-10-16"
    assert rows[1]["steps"] == '{"15":"1.25"}' and rows[-1]["value"] == '["task","user"]'
    assert documents.read_csv(text, "f.csv", _Future) == rules
    assert documents.read_yaml(documents.to_yaml(rules), "f.yaml", _Future) == rules

    def edited(**cells: str) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows([{**rows[0], **cells}, *rows[1:]])
        return buffer.getvalue()

    for cells, column in (({"users": "[u1"}, "users"), ({"from": "2026-13-16"}, "from")):
        with pytest.raises(DocumentError) as caught:
            documents.read_csv(edited(**cells), "f.csv", _Future)
        assert (caught.value.line, caught.value.field) == (2, column)
    with pytest.raises(DocumentError) as caught:
        documents.read_yaml("rates:\n  - rate: '1'\n  - rate: x\n", "f.yaml", _Future)
    assert (caught.value.line, caught.value.field) == (3, "rates.1.rate")

    later = rules.model_copy(update={"increment_minutes": 6, "minimums": {}})
    change = diff(rules, later)
    assert change.changed == () and change.removed == ("minimums client:1", "increment_minutes")
