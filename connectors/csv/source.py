"""Detailed-report CSV exports on disk → canonical SourceEntry (see ``formats`` for layouts).

What a pull reads: every file that ``paths`` names (globs sorted, each file once), every row.
A file is parsed and checked whole before anything is yielded, so a bad row fails the pull
with a one-line ``SourceDataError`` (file, 1-based line, column) and yields nothing.

``updated_since`` is ignored: a file has no change feed, so every pull re-reads everything and
the ledger's content hashes tell what changed. Deletions are not reported
(``reports_deletions`` is False): every pull lists every row from ``spent_from`` on and every
row of ``window``, so the engine retires a row that left the files. The files are therefore
the whole truth for the period: keep every export that covers it (the month's, or all of its
weeks), not only the latest week.

``updated_at`` is the file's modification time (UTC). The three exports write local
wall-clock dates and times already (in the configured ``timezone``), so ``spent_date`` is the
row's start date as written, with no conversion.

Identity. The exports carry no row id, so ``source_id`` is derived from what identifies a row:
its start date, start time, end date, end time, client, project, task, user, description and
duration, each normalized (ISO date, 24-hour HH:MM:SS, names and text stripped, duration as
hours), serialized as JSON and hashed with SHA-256 (first 48 hex digits). Rows that are
identical in all of these within one file are told apart by their occurrence among those
rows: ``<digest>-0``, ``<digest>-1``, ... in file order. So re-importing a file gives the same
ids; a weekly export and the month's export give the same ids to the rows they share,
whatever the order; two identical 1h rows stay two entries. Flags, rates and amounts are not
part of the identity: changing them is an edit of the same entry. Changing an identifying
field in the tracker makes a new entry, and the old one disappears from the listing (so the
engine retires it) unless a superseded export still holds it: do not keep an older export that
overlaps a newer one after entries were edited in the tracker.

When several files hold the same id, the entry from the most recently modified file wins
(the later path on a tie), and each id is yielded once.
"""

from __future__ import annotations

import codecs
import csv
import glob
import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

from connectors.base import PullRequest
from connectors.csv.config import CsvConfig
from connectors.csv.formats import (
    DateOrder,
    DateSample,
    Header,
    detect,
    infer_order,
    parse_bool,
    parse_currency,
    parse_date,
    parse_hours,
    parse_money,
    parse_time,
)
from core.errors import SourceDataError
from core.model import EntryKind, Ref, SourceEntry

_GLOB_MAGIC = re.compile(r"[*?[]")
T = TypeVar("T")
DIGEST_CHARS = 48  # + "-" + occurrence: within the ledger's 64-character source_id


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    cells: list[str]


class _CellError(Exception):
    """A cell failed to parse: which role, and the parser's message."""

    def __init__(self, role: str, message: str) -> None:
        super().__init__(message)
        self.role = role


class CsvSource:
    """Time entries from detailed-report CSV exports of Toggl Track, Harvest or Clockify."""

    reports_deletions = False  # a row removed from the export is simply absent: list in full

    def __init__(self, name: str, config: CsvConfig, *, base_dir: Path) -> None:
        self.name = name
        self._config = config
        self._base_dir = base_dir

    def files(self) -> list[Path]:
        """The files ``paths`` names now, sorted; a literal path that is missing is an error."""
        found: dict[Path, None] = {}
        for pattern in self._config.paths:
            if _GLOB_MAGIC.search(pattern):
                matches = sorted(glob.glob(pattern, root_dir=self._base_dir, recursive=True))
                for match in matches:
                    path = self._base_dir / match
                    if path.is_file():
                        found.setdefault(path.resolve(), None)
            else:
                path = self._base_dir / pattern
                if not path.is_file():
                    raise SourceDataError(f"{self.name}: {pattern}: no such file")
                found.setdefault(path.resolve(), None)
        return sorted(found)

    def pull(self, request: PullRequest) -> Iterator[SourceEntry]:
        """Every row spent on or after ``spent_from`` or within ``window``, each id once."""
        best: dict[str, SourceEntry] = {}
        for path in self.files():
            for entry in self.read(path):
                in_window = request.window is not None and (
                    request.window[0] <= entry.spent_date <= request.window[1]
                )
                if entry.spent_date < request.spent_from and not in_window:
                    continue
                current = best.get(entry.source_id)
                if current is None or entry.updated_at >= current.updated_at:
                    best[entry.source_id] = entry
        yield from best.values()

    def read(self, path: Path) -> list[SourceEntry]:
        """Every row of one file, in file order, or SourceDataError for the first bad one."""
        label = self._label(path)
        try:
            raw = path.read_bytes()
            mtime = path.stat().st_mtime
        except OSError as exc:
            raise SourceDataError(f"{label}: cannot read: {exc.strerror or exc}") from None
        text = _decode(raw, label)
        header, rows, decimal_comma = self._parse(text, label)
        if self._config.approved == "column" and "approved" not in header.index:
            raise SourceDataError(
                f'{label}: approved is "column" but a {header.format.title} export has no '
                '"Approved?" column; set approved: all to count every billable row as approved'
            )
        order = self._date_order(header, rows, label)
        updated = datetime.fromtimestamp(mtime, tz=UTC)
        seen: Counter[str] = Counter()
        entries: list[SourceEntry] = []
        for row in rows:
            try:
                entry = self._entry(
                    header,
                    row,
                    order=order,
                    decimal_comma=decimal_comma,
                    updated=updated,
                    seen=seen,
                )
            except _CellError as exc:
                raise SourceDataError(
                    f'{label}: line {row.line}: column "{header.label(exc.role)}": {exc}'
                ) from None
            entries.append(entry)
        return entries

    # ---- file → rows ---------------------------------------------------------------------

    def _label(self, path: Path) -> str:
        """How errors name a file: the source, then the path (relative where possible)."""
        try:
            shown = path.relative_to(self._base_dir.resolve()).as_posix()
        except ValueError:
            shown = str(path)
        return f"{self.name}: {shown}"

    def _parse(self, text: str, label: str) -> tuple[Header, list[_Row], bool]:
        first, _, rest = text.partition("\n")
        delimiters = [",", ";"]
        skipped = 0
        if re.fullmatch(r"sep=.", first.rstrip("\r"), re.IGNORECASE):  # Excel's hint line
            delimiters = [first.rstrip("\r")[4]]
            text, skipped = rest, 1
        header_line = text.partition("\n")[0].rstrip("\r")
        header: Header | None = None
        problems: list[tuple[int, str]] = []  # (cells, message): report the likelier split
        delimiter = delimiters[0]
        for candidate in delimiters:
            cells = next(csv.reader([header_line], delimiter=candidate), [])
            try:
                header = detect(cells, self._config.format)
            except ValueError as exc:
                problems.append((len(cells), str(exc)))
                continue
            delimiter = candidate
            break
        if header is None:
            problem = max(problems, key=lambda p: p[0])[1]
            raise SourceDataError(f"{label}: line {1 + skipped}: {problem}")
        rows = _records(text, delimiter, label, skipped)[1:]
        kept: list[_Row] = []
        for row in rows:
            if not any(cell.strip() for cell in row.cells):
                continue
            extra = row.cells[header.width :]
            if len(row.cells) < header.width or any(cell.strip() for cell in extra):
                raise SourceDataError(
                    f"{label}: line {row.line}: {len(row.cells)} fields where the header has "
                    f"{header.width}"
                )
            if _is_total(header, row):
                continue
            kept.append(row)
        return header, kept, delimiter == ";"

    def _date_order(self, header: Header, rows: list[_Row], label: str) -> DateOrder | None:
        if self._config.date_order != "auto":
            return self._config.date_order
        samples = (
            DateSample(row.line, row.cells[header.index[role]])
            for row in rows
            for role in ("date", "end_date")
            if role in header.index
        )
        try:
            return infer_order(samples)
        except ValueError as exc:
            raise SourceDataError(f"{label}: {exc}") from None

    # ---- row → entry ---------------------------------------------------------------------

    def _entry(
        self,
        header: Header,
        row: _Row,
        *,
        order: DateOrder | None,
        decimal_comma: bool,
        updated: datetime,
        seen: Counter[str],
    ) -> SourceEntry:
        cells = _Cells(header, row)
        cell, parsed, optional = cells.cell, cells.parsed, cells.optional

        spent = parsed("date", lambda t: _required_date(t, order))
        start = optional("start_time", parse_time) or ""
        if "start_time" in header.index and not start:
            raise _CellError("start_time", "empty")
        end_date = optional("end_date", lambda t: parse_date(t, order))
        end = optional("end_time", parse_time) or ""
        hours = parsed("duration", lambda t: parse_hours(t, decimal_comma=decimal_comma))
        billable = parsed("billable", _required_bool)
        if self._config.approved == "all":
            approved = billable
        else:
            approved = parsed("approved", _required_bool)
        invoiced = optional("invoiced", parse_bool) or False
        if "invoiced" in header.index and not cell("invoiced"):
            raise _CellError("invoiced", "empty")
        rate = optional("rate", lambda t: parse_money(t, decimal_comma=decimal_comma))
        file_rate = rate if rate else None  # a blank or zero rate means no rate was set
        client = cell("client")
        project = cell("project")
        task = cell("task")
        if header.format.name == "harvest":
            user = " ".join(part for part in (cell("first_name"), cell("last_name")) if part)
        else:
            user = cell("user") or cell("email")
        notes = cell("notes")
        currency = self._currency(header, cell, client, rated=file_rate is not None)

        basis = [
            spent.isoformat(),
            start,
            end_date.isoformat() if end_date else "",
            end,
            client,
            project,
            task,
            user,
            notes,
            str(hours),
        ]
        digest = hashlib.sha256(
            json.dumps(basis, ensure_ascii=False, separators=(",", ":")).encode()
        ).hexdigest()[:DIGEST_CHARS]
        occurrence = seen[digest]
        seen[digest] += 1
        return SourceEntry(
            source=self.name,
            source_id=f"{digest}-{occurrence}",
            kind=EntryKind.TIME,
            spent_date=spent,
            quantity=hours,
            unit_price=file_rate if file_rate is not None else self._config.default_rate,
            currency=currency,
            client=Ref(client, client),
            project=Ref(project, project),
            task=Ref(task, task),
            user=Ref(user, user),
            notes=notes,
            billable=billable,
            approved=approved,
            billed_in_source=invoiced,
            running=False,
            updated_at=updated,
        )

    def _currency(
        self, header: Header, cell: Callable[[str], str], client: str, *, rated: bool
    ) -> str:
        """client_currencies, else what the export names, else the configured currency.

        What the export names: Harvest's Currency column, else the currency suffix of the rate
        (or amount) header. A rate read from the file must be in the client's currency.
        """
        stated_role = "currency" if cell("currency") else None
        stated = None
        if stated_role is not None:
            try:
                stated = parse_currency(cell("currency"))
            except ValueError as exc:
                raise _CellError("currency", str(exc)) from None
        else:
            for role in ("rate", "amount"):
                if role in header.currencies:
                    stated, stated_role = header.currencies[role], role
                    break
        configured = self._config.client_currencies.get(client)
        if configured and stated and configured != stated and rated:
            raise _CellError(
                stated_role or "rate",
                f"the rate is in {stated} but client_currencies gives {client!r} {configured}",
            )
        return configured or stated or self._config.currency


class _Cells:
    """One row's cells by role; parse errors become _CellError naming the role."""

    def __init__(self, header: Header, row: _Row) -> None:
        self._header = header
        self._row = row

    def cell(self, role: str) -> str:
        i = self._header.index.get(role)
        return "" if i is None else self._row.cells[i].strip()

    def parsed(self, role: str, parse: Callable[[str], T]) -> T:
        try:
            return parse(self.cell(role))
        except ValueError as exc:
            raise _CellError(role, str(exc)) from None

    def optional(self, role: str, parse: Callable[[str], T]) -> T | None:
        return self.parsed(role, parse) if self.cell(role) else None


def _required_date(text: str, order: DateOrder | None) -> date:
    if not text:
        raise ValueError("empty")
    return parse_date(text, order)


def _required_bool(text: str) -> bool:
    if not text:
        raise ValueError("empty")
    return parse_bool(text)


def _is_total(header: Header, row: _Row) -> bool:
    """A trailing totals line ("Total,...", no date), as some report exports append."""
    return row.cells[0].strip().lower() == "total" and not row.cells[header.index["date"]].strip()


def _decode(raw: bytes, label: str) -> str:
    """UTF-8 with or without BOM; UTF-16 when a BOM says so."""
    utf16 = raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    encoding = "utf-16" if utf16 else "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].decode(encoding, errors="replace").count("\n") + 1
        name = "UTF-16" if utf16 else "UTF-8"
        raise SourceDataError(
            f"{label}: line {line}: not {name} text (byte {exc.start}); "
            "export the report again as CSV, or save it as CSV UTF-8"
        ) from None


def _records(text: str, delimiter: str, label: str, skipped: int) -> list[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[_Row] = []
    last = 0
    try:
        for cells in reader:
            rows.append(_Row(skipped + last + 1, cells))
            last = reader.line_num
    except csv.Error as exc:
        raise SourceDataError(f"{label}: line {skipped + reader.line_num}: {exc}") from None
    return rows
