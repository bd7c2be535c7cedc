"""The CSV-export source: Toggl Track, Harvest and Clockify detailed reports from disk.

The fixtures under tests/fixtures/csv are small hand-written exports; the expected values
below were worked out by hand from them (e.g. 00:47:00 = 47/60 h = 0.78333… → 0.7833).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import Session

from connectors.base import PullRequest, TrackerSource
from connectors.csv import CONNECTOR, CsvConfig, CsvSource
from connectors.csv.formats import parse_date, parse_hours, parse_time
from connectors.registry import BuildContext
from core import ledger
from core.db import open_database
from core.errors import SourceDataError
from core.http import CallCounter
from core.model import EntryKind, SourceEntry

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "csv"
BROKEN = FIXTURES / "broken"
OCTOBER = PullRequest(spent_from=date(2026, 10, 1), updated_since=None)
CAFE = "Café Ñandú GmbH"
ZOE = "Zoë Šimůnková"


def config(*paths: str, **overrides: Any) -> CsvConfig:
    settings: dict[str, Any] = {
        "type": "csv",
        "paths": list(paths),
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "approved": "all",
        "default_rate": Decimal("100"),
        "client_currencies": {"Nordlicht AB": "SEK"},
    }
    settings.update(overrides)
    return CsvConfig.model_validate(settings)


def pull(
    *paths: str,
    base_dir: Path = FIXTURES,
    request: PullRequest = OCTOBER,
    **overrides: Any,
) -> list[SourceEntry]:
    return list(CsvSource("exports", config(*paths, **overrides), base_dir=base_dir).pull(request))


def by_notes(entries: list[SourceEntry]) -> dict[str, SourceEntry]:
    found: dict[str, SourceEntry] = {}
    for entry in entries:
        found.setdefault(entry.notes, entry)
    return found


def mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


# ---- each format parses to exact values -----------------------------------------------------


def test_toggl_detailed_report() -> None:
    entries = pull("toggl-october.csv")
    assert [e.quantity for e in entries] == [
        Decimal("1.5"),  # 01:30:00
        Decimal("0.7833"),  # 00:47:00 = 0.78333… h, rounded half-up to 4 places
        Decimal("1"),
        Decimal("1"),  # the identical standup row, kept
        Decimal("0.25"),  # 00:15:00
        Decimal("1.25"),  # 01:15:00 across midnight
    ]
    assert sum(e.quantity for e in entries) == Decimal("5.7833")
    notes = by_notes(entries)

    first = notes["Homepage wireframes"]
    assert first.kind is EntryKind.TIME
    assert first.spent_date == date(2026, 10, 5)
    assert first.unit_price == Decimal("100")  # Toggl has no rate column: default_rate
    assert first.currency == "USD"  # named by the "Amount (USD)" header
    assert (first.client.id, first.client.name) == (CAFE, CAFE)
    assert (first.project.id, first.task.id, first.user.id) == ("Website relaunch", "Design", ZOE)
    assert (first.billable, first.approved, first.billed_in_source, first.running) == (
        True,
        True,
        False,
        False,
    )
    assert first.updated_at == mtime(FIXTURES / "toggl-october.csv")
    assert first.updated_at.tzinfo is UTC
    assert first.source == "exports"

    long_note = next(e for e in entries if e.notes.startswith("Homepage copy review"))
    assert len(long_note.notes) > 300
    assert 'swapped the "Über uns" photo, fixed the price table (3 tiers, not 4)' in long_note.notes
    assert long_note.notes.endswith("naming convention\nSecond line of the note.")

    admin = notes["Timesheets"]
    assert (admin.billable, admin.approved) == (False, False)  # approved: all = billable rows
    assert admin.task.id == ""

    night = notes["Night deploy"]
    assert night.spent_date == date(2026, 10, 7)  # the start date, not the end date
    assert night.currency == "SEK"  # client_currencies
    assert "Moodboard" not in notes  # 2026-09-30: before the period


def test_harvest_detailed_time_report() -> None:
    entries = pull("harvest-october.csv", approved="column")
    assert len(entries) == 6
    notes = by_notes(entries)

    logo = notes["Logo variations"]
    assert (logo.spent_date, logo.quantity, logo.unit_price, logo.currency) == (
        date(2026, 10, 1),
        Decimal("1.5"),
        Decimal("120.00"),
        "EUR",  # "Euro - EUR"
    )
    assert logo.user.id == ZOE  # First Name + Last Name

    support = notes["Fixed login, cleared cache"]
    assert (support.quantity, support.unit_price, support.currency) == (
        Decimal("0.25"),
        Decimal("950.00"),
        "SEK",
    )
    assert support.billed_in_source is True  # Invoiced? Yes

    meeting = notes["All hands"]
    assert meeting.billable is False
    assert meeting.unit_price == Decimal("100")  # a zero rate means none set: default_rate

    pairing = notes["Pair programming"]
    assert pairing.quantity == Decimal("2.33")  # Hours, not Hours Rounded (2.5)
    assert pairing.approved is False  # Approved? No
    assert pairing.unit_price == Decimal("150.00")

    assert "Kick-off" not in notes  # 2026-09-29


def test_clockify_detailed_report() -> None:
    entries = pull("clockify-october.csv")
    assert len(entries) == 4
    notes = by_notes(entries)

    wireframes = notes["Homepage wireframes"]
    assert wireframes.spent_date == date(2026, 10, 13)  # 10/13/2026: month first
    assert wireframes.quantity == Decimal("1.2833")  # Duration (h) 01:17:00, not the 1.28
    assert (wireframes.unit_price, wireframes.currency) == (Decimal("80.00"), "USD")
    assert wireframes.user.id == ZOE

    ticket = notes['Ticket #42, "urgent" login bug']
    assert (ticket.quantity, ticket.unit_price, ticket.currency) == (
        Decimal("0.5"),
        Decimal("100"),  # 0.00 in the export: default_rate
        "SEK",
    )
    assert ticket.task.id == ""

    lunch = notes["Lunch & learn"]
    assert (lunch.billable, lunch.approved, lunch.client.id) == (False, False, "")

    night = notes["Night deploy"]
    assert (night.spent_date, night.quantity) == (date(2026, 10, 15), Decimal("1.25"))


def test_clockify_settings_do_not_change_identity() -> None:
    """24-hour times, day-first dates and Compact durations: the same rows, the same ids."""
    full = by_notes(pull("clockify-october.csv"))
    compact = by_notes(pull("clockify-compact.csv"))
    for note in ("Homepage wireframes", "Night deploy"):
        assert compact[note].source_id == full[note].source_id
        assert compact[note].quantity == full[note].quantity
        assert compact[note].spent_date == full[note].spent_date


def test_semicolon_file_with_decimal_commas() -> None:
    notes = by_notes(pull("clockify-semicolon.csv"))
    first = notes["Homepage wireframes"]
    assert (first.spent_date, first.quantity, first.unit_price) == (
        date(2026, 10, 13),  # 13.10.2026
        Decimal("1.50"),  # Decimal duration format, "1,50"
        Decimal("80.50"),
    )
    assert notes["Rollback; then redeploy"].quantity == Decimal("0.75")


# ---- detection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "approved"),
    [
        ("toggl-october.csv", "toggl", "all"),
        ("harvest-october.csv", "harvest", "column"),
        ("clockify-october.csv", "clockify", "all"),
        ("clockify-semicolon.csv", "clockify", "all"),
    ],
)
def test_auto_detection_matches_the_explicit_format(name: str, fmt: str, approved: str) -> None:
    auto = pull(name, approved=approved)
    explicit = pull(name, approved=approved, format=fmt)
    assert auto == explicit
    assert auto


def test_header_matching_ignores_case_spacing_and_currency(tmp_path: Path) -> None:
    text = (FIXTURES / "clockify-october.csv").read_text(encoding="utf-8-sig")
    header, _, body = text.partition("\n")
    loose = header.upper().replace(",", " ,  ").replace("(USD)", " (eur)")
    (tmp_path / "loose.csv").write_text(loose + "\n" + body, encoding="utf-8")
    entries = pull("loose.csv", base_dir=tmp_path)
    assert [e.source_id for e in entries] == [e.source_id for e in pull("clockify-october.csv")]


def test_explicit_format_wins_and_names_what_is_missing() -> None:
    with pytest.raises(SourceDataError) as err:
        pull("toggl-october.csv", format="harvest")
    message = str(err.value)
    assert message.startswith(
        "exports: toggl-october.csv: line 1: not a Harvest detailed time report:"
    )
    assert 'missing "Date", "Notes", "Hours", "Invoiced?", "First Name", "Last Name";' in message


def test_unknown_header_lists_the_expected_columns() -> None:
    with pytest.raises(SourceDataError) as err:
        pull("unknown-header.csv", base_dir=BROKEN)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        "exports: unknown-header.csv: line 1: "
        'unknown header "Day", "Person", "Hours worked", "Comment";'
    )
    for expected in (
        'Toggl Track detailed report ("User", "Client", "Project", "Description", "Billable", '
        '"Start date", "Start time", "Duration")',
        'Harvest detailed time report ("Date", "Client", "Project", "Task", "Notes", "Hours", '
        '"Billable?", "Invoiced?", "First Name", "Last Name")',
        '"Duration (h)" or "Duration (decimal)"',
    ):
        assert expected in message


# ---- identity --------------------------------------------------------------------------------


def test_importing_the_same_file_twice_gives_the_same_ids(tmp_path: Path) -> None:
    first = pull("toggl-october.csv")
    again = pull("toggl-october.csv")
    assert [(e.source_id, e.content_hash) for e in again] == [
        (e.source_id, e.content_hash) for e in first
    ]
    # the same export saved again under another name, later: still the same entries
    shutil.copyfile(FIXTURES / "toggl-october.csv", tmp_path / "october-again.csv")
    copy = pull("october-again.csv", base_dir=tmp_path)
    assert [e.source_id for e in copy] == [e.source_id for e in first]
    assert len({e.source_id for e in first}) == len(first) == 6


def test_an_overlapping_export_gives_the_same_ids_to_shared_rows() -> None:
    month = pull("toggl-october.csv")
    week = pull("toggl-week-41.csv")  # three of the month's rows, in another order, no BOM
    assert [e.notes for e in week] == ["Night deploy", "Daily standup", "Homepage wireframes"]
    month_ids = {e.source_id: e for e in month}
    for entry in week:
        assert entry.source_id in month_ids
        assert entry.content_hash == month_ids[entry.source_id].content_hash
    standups = [e.source_id for e in month if e.notes == "Daily standup"]
    assert next(e.source_id for e in week if e.notes == "Daily standup") == standups[0]

    both = pull("toggl-week-41.csv", "toggl-october.csv")
    assert sorted(e.source_id for e in both) == sorted(month_ids)  # each row once


def test_identical_rows_stay_distinct() -> None:
    standups = [e for e in pull("toggl-october.csv") if e.notes == "Daily standup"]
    assert len(standups) == 2
    first, second = (e.source_id for e in standups)
    assert first != second
    assert first.rsplit("-", 1) == [second.rsplit("-", 1)[0], "0"]
    assert second.endswith("-1")
    reviews = [e for e in pull("harvest-october.csv") if e.notes == "Code review"]
    assert len({e.source_id for e in reviews}) == 2


def test_the_identity_rule_is_the_documented_one() -> None:
    entry = by_notes(pull("clockify-october.csv"))["Homepage wireframes"]
    basis = [
        "2026-10-13",
        "14:00:00",  # 02:00:00 PM
        "2026-10-13",
        "15:17:00",
        CAFE,
        "Website relaunch",
        "Design",
        ZOE,
        "Homepage wireframes",
        "1.2833",
    ]
    raw = json.dumps(basis, ensure_ascii=False, separators=(",", ":")).encode()
    assert entry.source_id == hashlib.sha256(raw).hexdigest()[:48] + "-0"
    assert len(entry.source_id) <= 64


def test_the_newest_file_wins_a_shared_id(tmp_path: Path) -> None:
    shutil.copyfile(FIXTURES / "toggl-october.csv", tmp_path / "a-month.csv")
    week = (FIXTURES / "toggl-week-41.csv").read_text(encoding="utf-8")
    edited = week.replace("Daily standup,Yes,", "Daily standup,No,")
    (tmp_path / "b-week.csv").write_text(edited, encoding="utf-8")

    def standup_billable(month_time: int, week_time: int) -> list[bool]:
        os.utime(tmp_path / "a-month.csv", (month_time, month_time))
        os.utime(tmp_path / "b-week.csv", (week_time, week_time))
        return [e.billable for e in pull("*.csv", base_dir=tmp_path) if e.notes == "Daily standup"]

    assert standup_billable(2_000_000_000, 1_900_000_000) == [True, True]
    assert standup_billable(1_900_000_000, 2_000_000_000) == [False, True]  # the -0 row edited


# ---- errors name the file, the line and the column ------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "harvest-bad-hours.csv",
            'exports: harvest-bad-hours.csv: line 3: column "Hours": not a number: "abc"',
        ),
        (
            # the multi-line note on lines 2-3 counts as two lines
            "toggl-bad-date.csv",
            'exports: toggl-bad-date.csv: line 4: column "Start date": not a date: "2026-13-05"',
        ),
        (
            "clockify-bad-billable.csv",
            'exports: clockify-bad-billable.csv: line 2: column "Billable": not yes or no: "Maybe"',
        ),
        ("toggl-ragged.csv", "exports: toggl-ragged.csv: line 3: 8 fields where the header has 14"),
    ],
)
def test_a_bad_row_is_one_line_naming_file_line_and_column(name: str, message: str) -> None:
    source = CsvSource("exports", config(name), base_dir=BROKEN)
    pulled = source.pull(OCTOBER)
    with pytest.raises(SourceDataError) as err:
        next(pulled)  # nothing is yielded before the whole file is checked
    assert str(err.value) == message


def test_a_bad_cell_before_the_period_still_fails() -> None:
    with pytest.raises(SourceDataError, match="line 3"):
        pull("harvest-bad-hours.csv", base_dir=BROKEN, request=PullRequest(date(2030, 1, 1), None))


def test_ambiguous_dates_need_date_order() -> None:
    with pytest.raises(SourceDataError) as err:
        pull("clockify-ambiguous-dates.csv", base_dir=BROKEN)
    assert str(err.value) == (
        'exports: clockify-ambiguous-dates.csv: dates such as "03/10/2026" (line 2) can be read '
        "day-first or month-first; set date_order: dmy or mdy"
    )
    dmy = pull("clockify-ambiguous-dates.csv", base_dir=BROKEN, date_order="dmy")
    assert [e.spent_date for e in dmy] == [date(2026, 10, 3), date(2026, 10, 5)]
    year = PullRequest(date(2026, 1, 1), None)
    mdy = pull("clockify-ambiguous-dates.csv", base_dir=BROKEN, date_order="mdy", request=year)
    assert [e.spent_date for e in mdy] == [date(2026, 3, 10), date(2026, 5, 10)]


def test_approved_column_is_required_when_configured() -> None:
    with pytest.raises(SourceDataError) as err:
        pull("toggl-october.csv", approved="column")
    assert str(err.value).startswith(
        "exports: toggl-october.csv: "
        'approved is "column" but a Toggl Track detailed report export has '
        'no "Approved?" column; set approved: all'
    )


def test_a_file_rate_in_another_currency_than_the_client_is_refused() -> None:
    with pytest.raises(SourceDataError) as err:
        pull("clockify-october.csv", client_currencies={CAFE: "EUR"})
    assert str(err.value) == (
        "exports: clockify-october.csv: line 2: "
        'column "Billable Rate (USD)": the rate is in USD but '
        f"client_currencies gives {CAFE!r} EUR"
    )


# ---- encodings -------------------------------------------------------------------------------


def test_bom_utf8_and_utf16_read_alike(tmp_path: Path) -> None:
    raw = (FIXTURES / "toggl-october.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the fixture is written as Toggl writes it
    text = raw.decode("utf-8-sig")
    (tmp_path / "plain.csv").write_bytes(text.encode("utf-8"))
    (tmp_path / "utf16.csv").write_bytes(text.encode("utf-16"))  # BOM + UTF-16 LE
    expected = [(e.source_id, e.content_hash) for e in pull("toggl-october.csv")]
    for name in ("plain.csv", "utf16.csv"):
        got = [(e.source_id, e.content_hash) for e in pull(name, base_dir=tmp_path)]
        assert got == expected
    assert pull("toggl-october.csv")[0].user.id == ZOE  # the BOM is not part of "User"


def test_text_that_is_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    text = (FIXTURES / "harvest-october.csv").read_text(encoding="utf-8")
    (tmp_path / "latin1.csv").write_bytes(text.encode("latin-1", errors="replace"))
    with pytest.raises(SourceDataError) as err:
        pull("latin1.csv", base_dir=tmp_path, approved="column")
    assert str(err.value).startswith("exports: latin1.csv: line 2: not UTF-8 text")


def test_blank_lines_and_a_trailing_totals_line_are_skipped(tmp_path: Path) -> None:
    text = (FIXTURES / "clockify-october.csv").read_text(encoding="utf-8-sig")
    totals = "Total,,,,,,,,,,,,,05:02:00,5.03,,182.67\n"
    (tmp_path / "totals.csv").write_text(text + "\n" + totals + "\n", encoding="utf-8")
    got = [e.source_id for e in pull("totals.csv", base_dir=tmp_path)]
    assert got == [e.source_id for e in pull("clockify-october.csv")]


def test_excel_separator_hint_line(tmp_path: Path) -> None:
    text = (FIXTURES / "clockify-semicolon.csv").read_text(encoding="utf-8")
    (tmp_path / "hinted.csv").write_text("sep=;\n" + text, encoding="utf-8")
    hinted = pull("hinted.csv", base_dir=tmp_path)
    assert [e.source_id for e in hinted] == [e.source_id for e in pull("clockify-semicolon.csv")]


# ---- period, files, config -------------------------------------------------------------------


def test_spent_from_filters_by_the_row_date() -> None:
    assert len(pull("toggl-october.csv", request=PullRequest(date(2026, 9, 1), None))) == 7
    later = pull("toggl-october.csv", request=PullRequest(date(2026, 10, 6), None))
    assert [e.notes for e in later] == [
        "Daily standup",
        "Daily standup",
        "Timesheets",
        "Night deploy",
    ]
    # updated_since is ignored: files have no change feed
    since = PullRequest(date(2026, 10, 1), datetime(2099, 1, 1, tzinfo=UTC))
    assert len(pull("toggl-october.csv", request=since)) == 6


def test_the_window_is_listed_in_full_because_deletions_are_not_reported() -> None:
    source = CsvSource("exports", config("toggl-october.csv"), base_dir=FIXTURES)
    assert isinstance(source, TrackerSource)
    assert source.reports_deletions is False
    october = (date(2026, 10, 1), date(2026, 10, 31))
    late = PullRequest(date(2026, 10, 6), datetime(2026, 10, 20, tzinfo=UTC), window=october)
    assert len(list(source.pull(late))) == 6  # the whole window, not only from the 6th
    september = PullRequest(date(2026, 10, 1), None, window=(date(2026, 9, 1), date(2026, 9, 30)))
    assert "Moodboard" in {e.notes for e in source.pull(september)}


def test_the_ledger_sees_an_edit_as_an_edit_and_a_removed_row_as_deleted(
    db_url: str, tmp_path: Path
) -> None:
    export = tmp_path / "october.csv"
    shutil.copyfile(FIXTURES / "toggl-october.csv", export)
    source = CsvSource("exports", config("*.csv"), base_dir=tmp_path)
    october = (date(2026, 10, 1), date(2026, 10, 31))
    request = PullRequest(date(2026, 10, 1), None, window=october)
    engine = open_database(db_url)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    try:
        with Session(engine) as session:
            assert ledger.upsert_entries(session, "exports", source.pull(request), now) == []
            session.commit()
        lines = export.read_bytes().decode("utf-8-sig").split("\r\n")
        second_standup = [i for i, line in enumerate(lines) if "Daily standup" in line][1]
        del lines[second_standup]
        edited = "\r\n".join(lines).replace("Timesheets,No,", "Timesheets,Yes,")
        export.write_bytes(edited.encode("utf-8"))
        with Session(engine) as session:
            changes = ledger.upsert_entries(
                session, "exports", source.pull(request), now, window=october
            )
            session.commit()
    finally:
        engine.dispose()
    assert sorted((c.change, c.client, c.entry.rsplit("-", 1)[1]) for c in changes) == [
        ("deleted", CAFE, "1"),  # one of the two identical standups left the export
        ("edited", "Internal", "0"),  # billable changed: the same entry, edited
    ]


def test_paths_are_files_or_globs_relative_to_base_dir() -> None:
    assert len(pull("harvest-*.csv", approved="column")) == 6
    source = CsvSource("exports", config("**/harvest-*.csv"), base_dir=FIXTURES)
    assert [p.name for p in source.files()] == ["harvest-bad-hours.csv", "harvest-october.csv"]
    assert pull("nothing-*.csv") == []
    with pytest.raises(SourceDataError) as err:
        pull("missing.csv")
    assert str(err.value) == "exports: missing.csv: no such file"


def test_config_is_validated() -> None:
    good = config("a.csv")
    assert good.format == "auto" and good.date_order == "auto"
    bad: dict[str, Any]
    for bad in (
        {"timezone": "Mars/Olympus"},
        {"currency": "euro"},
        {"client_currencies": {"Acme": "usd"}},
        {"paths": []},
        {"approved": "some"},
        {"colour": "blue"},
        {"default_rate": Decimal("-1")},
    ):
        with pytest.raises(ValidationError):
            config("a.csv", **bad)
    stripped = config("a.csv", client_currencies={" Acme ": "USD"})
    assert stripped.client_currencies == {"Acme": "USD"}


def test_the_connector_builds_a_source_rooted_at_the_config_folder() -> None:
    assert (CONNECTOR.type, CONNECTOR.role, CONNECTOR.config_model) == ("csv", "source", CsvConfig)
    ctx = BuildContext(calls=CallCounter(), policy=None, base_dir=FIXTURES)
    source = CONNECTOR.factory(ctx, "exports", config("toggl-october.csv"))
    assert isinstance(source, CsvSource)
    assert len(list(source.pull(OCTOBER))) == 6


# ---- cell parsers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("1:30:00", "1.5"),
        ("01:30:00", "1.5"),
        ("01:30", "1.5"),  # Clockify Compact
        ("1.50", "1.50"),  # decimal hours, kept as written
        ("0.79 h", "0.79"),
        ("47:06 min", "0.785"),  # Toggl Classic under an hour: 2826 s
        ("0:00:01", "0.0003"),  # 1/3600 h, rounded half-up
        ("25:00:00", "25"),
        ("0:20", "0.3333"),
    ],
)
def test_durations_become_exact_hours(text: str, hours: str) -> None:
    assert parse_hours(text, decimal_comma=False) == Decimal(hours)


def test_duration_and_time_errors() -> None:
    assert parse_hours("1,50", decimal_comma=True) == Decimal("1.50")
    for bad, message in (
        ("abc", 'not a number: "abc"'),
        ("1,50", 'not a number: "1,50"'),
        ("1:75:00", 'not a duration: "1:75:00"'),
        ("-1", 'must not be negative: "-1"'),
        ("", "empty"),
    ):
        with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
            parse_hours(bad, decimal_comma=False)
    assert parse_time("02:00:00 PM") == "14:00:00"
    assert parse_time("12:05 am") == "00:05:00"
    assert parse_time("12:30 PM") == "12:30:00"
    assert parse_time("9:05") == "09:05:00"
    for bad in ("24:00", "13:00 PM", "noon"):
        with pytest.raises(ValueError, match="not a time of day"):
            parse_time(bad)
    assert parse_date("2026-10-05", None) == date(2026, 10, 5)
    assert parse_date("5.10.2026", "dmy") == date(2026, 10, 5)
    assert parse_date("10-05-2026", "mdy") == date(2026, 10, 5)
    with pytest.raises(ValueError, match="not a date"):
        parse_date("31/02/2026", "dmy")
