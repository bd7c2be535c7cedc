"""The CSV-export source passes the connector contract, for each of its three layouts.

Each harness generates a detailed-report export (121 rows over 28 days of October 2026, one
row an exact duplicate of another) into pytest's tmp_path and edits that file as a user
re-exporting would. A file source has no pages (``page_size`` is ignored), no HTTP (no retries
or credentials: the contract skips those) and no change feed.

Expected ids are computed independently of the connector, from the harness's own rows and
the identity rule documented in connectors/csv/source.py: SHA-256 (first 48 hex digits) of the
JSON list [start date ISO, start time HH:MM:SS, end date ISO, end time, client, project, task,
user, description, hours], plus "-<occurrence>" among identical rows in file order. Hours are
written so that their decimal text is canonical (15-minute multiples: "0.25", "1.5", "2"),
which makes "duration as hours" unambiguous. On top of that, ``test_ids_are_one_per_row_and_
stable`` checks the count against the data rows and that a second pull gives the same ids.

Two contract checks cannot hold for this source by design, and are skipped in the subclasses
with the reason: the description is part of a row's identity (the exports carry no row id),
so editing the notes gives the row a new id, and the contract's "same id, new notes" lookup
has nothing to find (and the source strips every cell, so LONG_UNICODE's trailing space is
dropped). What does hold for CSV (the old id leaves the listing, a new id carries the new
notes, nothing else changes) is checked by the tests at the end of this module.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.base import PullRequest
from connectors.csv import CsvConfig, CsvSource
from connectors.testing import LONG_UNICODE, ConnectorContract, Harness, Sleeps
from core.errors import SourceDataError
from core.model import SourceEntry

FIRST_DAY = date(2026, 10, 1)
DAYS = 28
ROWS = 120
DUPLICATED = 5  # row 5 appears twice: ids "<digest>-0" and "<digest>-1"
BOM = "\ufeff"

_NO_ROW_ID = (
    "CSV exports carry no row id: the source derives it from the row's content, description "
    "included (connectors/csv/source.py), so editing the notes makes a new entry and the old "
    "id leaves the listing, while the contract looks the edited entry up by its old id"
)
EDIT_CHANGES_IDENTITY = (
    f"{_NO_ROW_ID}. The CSV form of this check: "
    "test_an_edited_description_is_a_new_entry_and_the_old_one_leaves"
)
UNICODE_CHANGES_IDENTITY = (
    f"{_NO_ROW_ID}; the source also strips every cell, so LONG_UNICODE's trailing space does "
    "not survive. The CSV form of this check: test_long_unicode_notes_survive_under_the_new_id"
)


@dataclass(frozen=True)
class Row:
    """One time entry as the harness knows it; each layout writes it in its own cells."""

    day: date
    start: str  # HH:MM:SS, 24-hour
    minutes: int  # a multiple of 15, so the hours' decimal text is canonical
    client: str
    project: str
    task: str
    first_name: str
    last_name: str
    notes: str
    billable: bool
    broken: bool = False  # the duration cell says "lots"

    @property
    def user(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def email(self) -> str:
        return f"{self.first_name.lower()}@example.com"

    @property
    def hours(self) -> str:
        return str(Decimal(self.minutes) / 60)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.day, datetime.strptime(self.start, "%H:%M:%S").time()) + (
            timedelta(minutes=self.minutes)
        )

    @property
    def clock(self) -> str:
        return f"{self.minutes // 60:02d}:{self.minutes % 60:02d}:00"

    @property
    def amount(self) -> str:
        return f"{Decimal(self.hours) * 100:.2f}"


CLIENTS = [("Café Ñandú GmbH", "Website relaunch"), ("Nordlicht AB", "Support"), ("Acme", "Ops")]
PEOPLE = [("Zoë", "Šimůnková"), ("Marco", "Rossi"), ("Ana", "Lee")]
TASKS = ["Design", "Development", "Meetings"]


def generated_rows() -> list[Row]:
    rows: list[Row] = []
    for i in range(ROWS):
        client, project = CLIENTS[i % len(CLIENTS)]
        first, last = PEOPLE[(i // 3) % len(PEOPLE)]
        notes = f"Entry {i}" if i % 4 else f'Entry {i}: review, "Über uns" page — ok'
        rows.append(
            Row(
                day=FIRST_DAY + timedelta(days=i % DAYS),
                start=f"{8 + i // DAYS:02d}:{15 * (i % 4):02d}:00",
                minutes=15 * (1 + i % 9),
                client=client,
                project=project,
                task=TASKS[i % len(TASKS)],
                first_name=first,
                last_name=last,
                notes=notes,
                billable=i % 10 != 9,
            )
        )
    rows.append(rows[DUPLICATED])
    return rows


# ---- the three layouts ----------------------------------------------------------------------


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"


def _us_date(day: date) -> str:
    return day.strftime("%m/%d/%Y")


def _us_time(moment: datetime) -> str:
    return moment.strftime("%I:%M:%S %p")


@dataclass(frozen=True)
class Layout:
    name: str
    file_name: str
    header_line: str  # as the tool writes it (see connectors/csv/formats.py for the sources)
    cells: Callable[[Row], list[str]]
    identity: Callable[[Row], list[str]]  # start date, start, end date, end (as the rule says)
    approved: str  # the CsvConfig setting this export needs
    bom: bool

    @property
    def header(self) -> list[str]:
        return self.header_line.split(",")


def _toggl_cells(row: Row) -> list[str]:
    return [
        row.user,
        row.email,
        row.client,
        row.project,
        row.task,
        row.notes,
        _yes(row.billable),
        row.day.isoformat(),
        row.start,
        row.end.date().isoformat(),
        row.end.strftime("%H:%M:%S"),
        "lots" if row.broken else row.clock,
        "",
        row.amount,
    ]


def _harvest_cells(row: Row) -> list[str]:
    return [
        row.day.isoformat(),
        row.client,
        row.project,
        "P-1",
        row.task,
        row.notes,
        "lots" if row.broken else row.hours,
        row.hours,
        _yes(row.billable),
        "No",
        "Yes",
        row.first_name,
        row.last_name,
        "Developer",
        "Yes",
        "100.00",
        row.amount,
        "50.00",
        "0.00",
        "Euro - EUR",
        "",
    ]


def _clockify_cells(row: Row) -> list[str]:
    start = datetime.combine(row.day, datetime.strptime(row.start, "%H:%M:%S").time())
    return [
        row.project,
        row.client,
        row.notes,
        row.task,
        row.user,
        "",
        row.email,
        "",
        _yes(row.billable),
        _us_date(row.day),
        _us_time(start),
        _us_date(row.end.date()),
        _us_time(row.end),
        "lots" if row.broken else row.clock,
        row.hours,
        "100.00",
        row.amount,
    ]


def _clocked(row: Row) -> list[str]:
    return [
        row.day.isoformat(),
        row.start,
        row.end.date().isoformat(),
        row.end.strftime("%H:%M:%S"),
    ]


LAYOUTS = {
    "toggl": Layout(
        "toggl",
        "toggl-detailed-october.csv",
        "User,Email,Client,Project,Task,Description,Billable,Start date,Start time,End date,"
        "End time,Duration,Tags,Amount (USD)",
        _toggl_cells,
        _clocked,
        approved="all",
        bom=True,  # Toggl writes UTF-8 with a BOM
    ),
    "harvest": Layout(
        "harvest",
        "harvest_time_report_2026-10.csv",
        "Date,Client,Project,Project Code,Task,Notes,Hours,Hours Rounded,Billable?,Invoiced?,"
        "Approved?,First Name,Last Name,Roles,Employee?,Billable Rate,Billable Amount,"
        "Cost Rate,Cost Amount,Currency,External Reference URL",
        _harvest_cells,
        lambda row: [row.day.isoformat(), "", "", ""],  # a date, no times
        approved="column",
        bom=False,
    ),
    "clockify": Layout(
        "clockify",
        "Clockify_Time_Report_Detailed_10_01_2026-10_31_2026.csv",
        "Project,Client,Description,Task,User,Group,Email,Tags,Billable,Start Date,Start Time,"
        "End Date,End Time,Duration (h),Duration (decimal),Billable Rate (USD),"
        "Billable Amount (USD)",
        _clockify_cells,
        _clocked,
        approved="all",
        bom=False,
    ),
}


def expected_id_list(layout: Layout, rows: list[Row]) -> list[str]:
    """Each row's id by the documented identity rule (names and text stripped), in file order."""
    seen: dict[str, int] = {}
    ids: list[str] = []
    for row in rows:
        texts = [row.client, row.project, row.task, row.user, row.notes]
        basis = [*layout.identity(row), *(text.strip() for text in texts), row.hours]
        raw = json.dumps(basis, ensure_ascii=False, separators=(",", ":")).encode()
        digest = hashlib.sha256(raw).hexdigest()[:48]
        ids.append(f"{digest}-{seen.get(digest, 0)}")
        seen[digest] = seen.get(digest, 0) + 1
    return ids


# ---- the harness ----------------------------------------------------------------------------


@dataclass
class CsvHarness:
    layout: Layout
    base_dir: Path
    rows: list[Row] = field(default_factory=generated_rows)
    http: bool = False
    first_day: date = FIRST_DAY
    renamed: dict[str, str] = field(default_factory=dict)  # old id → id after edit_notes

    def __post_init__(self) -> None:
        self._write()

    @property
    def path(self) -> Path:
        return self.base_dir / self.layout.file_name

    def _text(self, rows: list[Row]) -> str:
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(self.layout.header)
        writer.writerows(self.layout.cells(row) for row in rows)
        return buffer.getvalue()

    def _write(self) -> None:
        prefix = BOM if self.layout.bom else ""
        self.path.write_text(prefix + self._text(self.rows), encoding="utf-8", newline="")

    def source(self, *, page_size: int | None = None, sleeps: Sleeps | None = None) -> CsvSource:
        """page_size and sleeps do not apply: the whole file is read at once, with no HTTP."""
        config = CsvConfig.model_validate(
            {
                "type": "csv",
                "paths": [self.layout.file_name],
                "format": self.layout.name,
                "currency": "EUR",
                "timezone": "Europe/Berlin",
                "approved": self.layout.approved,
                "default_rate": Decimal("100"),
            }
        )
        return CsvSource(f"csv-{self.layout.name}", config, base_dir=self.base_dir)

    def ids(self) -> list[str]:
        return expected_id_list(self.layout, self.rows)

    def expected_ids(self, spent_from: date) -> set[str]:
        return {i for i, row in zip(self.ids(), self.rows, strict=True) if row.day >= spent_from}

    def bad_credentials_source(self) -> CsvSource:
        raise AssertionError("a file source has no credentials (http is False)")

    def fail_next(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        raise AssertionError("a file source makes no HTTP calls (http is False)")

    def _index(self, source_id: str) -> int:
        return self.ids().index(source_id)

    def edit_notes(self, source_id: str, notes: str) -> None:
        """Rewrite the row's description cell. Its id changes: see ``renamed``."""
        i = self._index(source_id)
        self.rows[i] = replace(self.rows[i], notes=notes)
        self._write()
        self.renamed[source_id] = self.ids()[i]

    def delete(self, source_id: str) -> None:
        del self.rows[self._index(source_id)]
        self._write()

    def corrupt(self, source_id: str) -> str:
        """The duration cell ("Duration", "Hours" or "Duration (h)") becomes "lots"."""
        i = self._index(source_id)
        self.rows[i] = replace(self.rows[i], broken=True)
        self._write()
        line = self._text(self.rows[:i]).count("\n") + 1  # the record's first physical line
        return f"{self.layout.file_name}: line {line}"


def pull(harness: CsvHarness, request: PullRequest | None = None) -> list[SourceEntry]:
    return list(harness.source().pull(request or PullRequest(harness.first_day, None)))


# ---- the contract ---------------------------------------------------------------------------


class _CsvContract(ConnectorContract):
    """The contract; the two checks that look an edited entry up by its old id are skipped."""

    def test_edits_and_deletions_are_seen_on_the_next_pull(self, harness: Harness) -> None:
        pytest.skip(EDIT_CHANGES_IDENTITY)

    def test_unicode_and_long_notes_survive(self, harness: Harness) -> None:
        pytest.skip(UNICODE_CHANGES_IDENTITY)

    def test_a_malformed_payload_names_the_source_and_the_entry(self, harness: Harness) -> None:
        """The contract's check: the error starts with the source, then file and line."""
        expected = sorted(harness.expected_ids(harness.first_day))
        where = harness.corrupt(expected[len(expected) // 2])
        source = harness.source()
        with pytest.raises(SourceDataError) as info:
            list(source.pull(PullRequest(harness.first_day, None)))
        message = str(info.value)
        assert where in message
        assert "\n" not in message
        assert message.startswith(f"{source.name}: ")


class TestCsvTogglContract(_CsvContract):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> CsvHarness:
        return CsvHarness(LAYOUTS["toggl"], tmp_path)


class TestCsvHarvestContract(_CsvContract):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> CsvHarness:
        return CsvHarness(LAYOUTS["harvest"], tmp_path)


class TestCsvClockifyContract(_CsvContract):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> CsvHarness:
        return CsvHarness(LAYOUTS["clockify"], tmp_path)


# ---- what holds for CSV instead ---------------------------------------------------------------


@pytest.fixture(params=sorted(LAYOUTS))
def csv_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CsvHarness]:
    yield CsvHarness(LAYOUTS[request.param], tmp_path)


def test_ids_are_one_per_row_and_stable(csv_harness: CsvHarness) -> None:
    first = [e.source_id for e in pull(csv_harness)]
    second = [e.source_id for e in pull(csv_harness)]
    assert len(first) == len(set(first)) == len(csv_harness.rows) == ROWS + 1
    assert set(first) == set(second) == csv_harness.expected_ids(FIRST_DAY)
    twin = csv_harness.ids()[DUPLICATED].removesuffix("-0")
    assert {f"{twin}-0", f"{twin}-1"} <= set(first)  # identical rows stay two entries
    from_21st = PullRequest(date(2026, 10, 21), None)
    later = {e.source_id for e in pull(csv_harness, from_21st)}
    assert later == csv_harness.expected_ids(from_21st.spent_from)
    assert len(later) == sum(1 for row in csv_harness.rows if row.day >= from_21st.spent_from)


def test_an_edited_description_is_a_new_entry_and_the_old_one_leaves(
    csv_harness: CsvHarness,
) -> None:
    before = {e.source_id: e for e in pull(csv_harness)}
    ids = sorted(before)
    edited, deleted = ids[1], ids[-2]
    csv_harness.edit_notes(edited, "edited after the pull")
    csv_harness.delete(deleted)
    window = (FIRST_DAY, max(e.spent_date for e in before.values()))
    after = {e.source_id: e for e in pull(csv_harness, PullRequest(FIRST_DAY, None, window=window))}
    new_id = csv_harness.renamed[edited]
    assert new_id != edited
    assert edited not in after and deleted not in after
    assert after[new_id].notes == "edited after the pull"
    assert after[new_id].quantity == before[edited].quantity
    assert set(after) == set(before) - {edited, deleted} | {new_id}
    unchanged = set(after) - {new_id}
    assert all(after[i].content_hash == before[i].content_hash for i in unchanged)


def test_long_unicode_notes_survive_under_the_new_id(csv_harness: CsvHarness) -> None:
    """All 1,300 characters survive except the trailing space: the source strips every cell."""
    target = sorted(csv_harness.expected_ids(FIRST_DAY))[60]
    csv_harness.edit_notes(target, LONG_UNICODE)
    entries = {e.source_id: e for e in pull(csv_harness)}
    assert LONG_UNICODE.endswith(" ")
    assert entries[csv_harness.renamed[target]].notes == LONG_UNICODE.strip()
    assert target not in entries


def test_the_harness_names_the_line_the_source_reports(csv_harness: CsvHarness) -> None:
    """corrupt() counts physical lines; a multi-line description before the row moves it."""
    ids = csv_harness.ids()
    csv_harness.edit_notes(ids[0], "first line\nsecond line")
    target = csv_harness.ids()[3]
    where = csv_harness.corrupt(target)
    assert where == f"{csv_harness.layout.file_name}: line 6"  # header, 2-line row 0, rows 1-2
    with pytest.raises(SourceDataError, match=where):
        pull(csv_harness)
