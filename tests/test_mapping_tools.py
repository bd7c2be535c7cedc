"""What waits on a mapping, suggestions for it, and applying them (no database, no network)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from connectors.base import Directory, RemoteContact
from core.mapping_tools import CLIENTS, EXPENSES, TASKS, apply, suggest, wanted
from core.model import EntryKind, Ref, SourceEntry
from core.periods import Period
from mapping.resolver import ContactKind, ContactRef
from mapping.rules import MappingRules
from tests.helpers import run_cli

OCT = Period(2026, 10)
XERO_ID = "b28624f7-a779-58d1-ac55-0b688260ec3a"


BASE = SourceEntry(
    source="harvest",
    source_id="0",
    kind=EntryKind.TIME,
    spent_date=date(2026, 10, 5),
    quantity=Decimal("1.5"),
    unit_price=Decimal(100),
    currency="NZD",
    client=Ref("c0", "Client"),
    project=Ref("p1", "Project"),
    task=Ref("t0", "Task"),
    user=Ref("u1", "Ana"),
    notes="",
    billable=True,
    approved=True,
    billed_in_source=False,
    running=False,
    updated_at=datetime(2026, 10, 6, tzinfo=UTC),
)


def _entry(n: int, client: tuple[str, str], task: tuple[str, str], **changes: Any) -> SourceEntry:
    return replace(
        BASE, source_id=str(n), client=Ref(*client), task=Ref(*task), content_hash="", **changes
    )


def _contact(
    contact_id: str, name: str, number: str | None = None
) -> dict[ContactRef, RemoteContact]:
    remote = RemoteContact(contact_id, name, number, "NZD")
    refs = {ContactRef(ContactKind.ID, contact_id.lower()): remote}
    refs[ContactRef(ContactKind.NAME, name)] = remote
    if number:
        refs[ContactRef(ContactKind.NUMBER, number)] = remote
    return refs


def _directory() -> Directory:
    contacts = _contact(XERO_ID, "KŌWHAI HEALTH TRUST LIMITED") | _contact(
        "0d2f7c1e-1111-4c1e-9c1e-0d6f2b8a7e11", "Harbour City Dental Ltd", "HV-4"
    )
    contacts |= _contact("0d2f7c1e-2222-4c1e-9c1e-0d6f2b8a7e11", "Twin Peaks Ltd")
    contacts |= _contact("0d2f7c1e-3333-4c1e-9c1e-0d6f2b8a7e11", "Twin Peaks Limited")
    return Directory(
        contacts=contacts,
        item_codes=frozenset({"DEV", "PM"}),
        item_names={"DEV": "Development", "PM": "Project Management"},
    )


def test_wanted_lists_missing_rules_and_targets_that_do_not_exist_by_hours() -> None:
    rules = MappingRules.model_validate(
        {
            "clients": {
                "c4": {"contact_number": "HV-404", "tax_type": "OUTPUT2"},  # not in the target
                "c5": {"contact_number": "HV-4"},
            },
            "tasks": {"t2": {"item_code": "GONE"}, "t3": {"item_code": "DEV"}},
        }
    )
    entries = [
        _entry(1, ("c2", "Kōwhai Health Trust"), ("t1", "Project management")),
        _entry(2, ("c2", "Kōwhai Health Trust"), ("t2", "Development"), quantity=Decimal(3)),
        _entry(3, ("c4", "Harbour City Dental"), ("t3", "Development")),
        _entry(4, ("c5", "Mapped"), ("t3", "Development")),
        _entry(5, ("c6", "Not billable"), ("t3", "Dev"), billable=False),
        _entry(6, ("c7", "Other month"), ("t3", "Dev"), spent_date=date(2026, 9, 30)),
        _entry(7, ("c5", "Mapped"), ("x1", "Travel"), kind=EntryKind.EXPENSE),
    ]
    found = wanted(rules, entries, _directory(), OCT, qualify=False)
    summary = [(w.section, w.key, w.why, w.entries, w.hours) for w in found]
    assert summary == [
        (CLIENTS, "c2", "no rule", 2, Decimal("4.5")),
        (CLIENTS, "c4", "contact contact_number=HV-404 not found in the target", 1, Decimal("1.5")),
        (EXPENSES, "x1", "no rule", 1, Decimal(0)),  # units are not hours
        (TASKS, "t2", "item GONE not found in the target", 1, Decimal(3)),
        (TASKS, "t1", "no rule", 1, Decimal("1.5")),
    ]
    qualified = wanted(rules, entries[:1], _directory(), OCT, qualify=True)
    assert [w.key for w in qualified] == ["harvest:c2", "harvest:t1"]


def test_suggestions_score_names_and_apply_writes_stable_ids_keeping_other_fields() -> None:
    rules = MappingRules.model_validate(
        {"clients": {"c4": {"contact_number": "HV-404", "tax_type": "OUTPUT2", "rate": "150"}}}
    )
    entries = [
        _entry(1, ("c2", "Kōwhai Health Trust"), ("t1", "Project management")),
        _entry(2, ("c4", "Harbour City Dental"), ("t9", "Development")),
        _entry(3, ("c8", "Twin Peaks"), ("t1", "Project management")),
        _entry(4, ("c9", "Nobody Alike"), ("t1", "Project management")),
    ]
    directory = _directory()
    found = suggest(wanted(rules, entries, directory, OCT, qualify=False), directory, min_score=80)
    by_key = {s.wanted.key: s for s in found}
    assert by_key["c2"].chosen is not None and by_key["c2"].chosen.score == 100
    assert by_key["c2"].chosen.candidate.id == XERO_ID
    assert by_key["c4"].chosen is not None and by_key["c4"].chosen.candidate.names == (
        "Harbour City Dental Ltd",
    )
    assert by_key["c8"].chosen is None and len(by_key["c8"].matches) == 2  # a tie: ask a person
    assert by_key["c9"].matches == ()
    assert by_key["t1"].chosen is not None and by_key["t1"].chosen.candidate.id == "PM"
    assert by_key["t9"].chosen is not None and by_key["t9"].chosen.candidate.id == "DEV"

    chosen = [(s.wanted, s.chosen) for s in found if s.chosen is not None]
    updated = apply(rules, chosen)
    assert str(updated.clients["c2"].contact_id) == XERO_ID
    c4 = updated.clients["c4"]
    assert (c4.contact_number, c4.tax_type, c4.rate) == (None, "OUTPUT2", Decimal(150))
    assert c4.contact_id is not None
    assert updated.tasks["t1"].item_code == "PM" and updated.tasks["t9"].item_code == "DEV"
    assert "c8" not in updated.clients and "c9" not in updated.clients

    # QuickBooks customers have numeric Ids, not ContactIDs: the exact DisplayName is written
    qbo = Directory(contacts=_contact("17", "Twin Peaks Ltd"), item_codes=frozenset())
    (only,) = suggest(
        wanted(MappingRules(), entries[2:3], qbo, OCT, qualify=False)[:1], qbo, min_score=80
    )
    assert only.chosen is not None
    assert apply(MappingRules(), [(only.wanted, only.chosen)]).clients["c8"].contact_name == (
        "Twin Peaks Ltd"
    )


def test_every_mappings_command_has_help() -> None:
    for command in ("export", "import", "history", "suggest", "unmapped"):
        result = run_cli("mappings", command, "--help")
        assert result.code == 0 and "Usage" in result.stdout
