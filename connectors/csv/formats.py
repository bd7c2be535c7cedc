"""The three detailed-report CSV layouts, header detection, and the cell parsers.

Column sets (header names as each tool writes them; matching ignores case, repeated spaces
and a currency suffix such as "(USD)" or an empty "()"):

Toggl Track, Reports → Detailed → Export → CSV::

    User,Email,Client,Project,Task,Description,Billable,Start date,Start time,End date,
    End time,Duration,Tags,Amount (USD)

  UTF-8 with a BOM; dates YYYY-MM-DD (other profile date formats are read too), times
  HH:MM:SS, Duration in the profile's duration format ("Improved" 01:30:00; "Decimal" 1.50,
  perhaps "1.50 h"; "Classic" shows 47:06 min under an hour; the last two are read on the
  strength of how Toggl displays them, not from an export seen). No rate column: the amount
  is not divided back into a rate (it is rounded to cents).

Harvest, Reports → Detailed time report → Export → CSV::

    Date,Client,Project,Project Code,Task,Notes,Hours,Hours Rounded,Billable?,Invoiced?,
    Approved?,First Name,Last Name,Roles,Employee?,Billable Rate,Billable Amount,Cost Rate,
    Cost Amount,Currency,External Reference URL

  Dates YYYY-MM-DD; Hours in decimal ("on reports, time always appears in decimal format");
  Yes/No flags; Currency as "Euro - EUR". "Approved?" only appears when approvals are on.

Clockify, Reports → Detailed → Export → Save as CSV::

    Project,Client,Description,Task,User,Group,Email,Tags,Billable,Start Date,Start Time,
    End Date,End Time,Duration (h),Duration (decimal),Billable Rate (USD),
    Billable Amount (USD)

  Dates and times in the exporting user's profile format (e.g. 01/07/2021 and 01:26:00 PM,
  or 2024-01-15 and 09:00:00); "Duration (h)" in the workspace duration format: Full
  (hh:mm:ss), Compact (h:mm) or Decimal (h.hh); "Duration (decimal)" rounded to 2 places.

All three write commas. A semicolon file (a spreadsheet re-saving in a locale whose decimal
mark is a comma) is accepted too, and then numbers use a decimal comma.

Sources (read 2026; the header lines above are the exports as quoted in public code, the
formats as the vendors document them):

- Toggl: support.toggl.com/import-and-export/csv-import/editing-and-uploading-a-csv-file
  (the import takes the Detailed report CSV export's columns; commas; UTF-8; "make sure your
  Profile has the Duration format set to Improved"); a Toggl header quoted with its BOM as
  "\ufeffUser,Email,...,Tags,Amount ()" by a validator's tests in public code.
- Harvest: support.getharvest.com/hc/en-us/articles/360048685111 (Importing and exporting
  data: the detailed time report export can be re-imported; commas only; dates YYYY-MM-DD or
  M/D/YYYY) and .../articles/4405577837709 (Members: Timesheet settings: reports always show
  decimal hours); the full header with the money columns and "Euro - EUR" as quoted by
  public code citing Harvest's "Detailed time and detailed expense reports" article (not
  itself in the searchable corpus).
- Clockify: clockify.me/help/track-time-and-expenses/duration-format (Full, Compact and
  Decimal are how you "see, enter, and export time"), clockify.me/help/troubleshooting/
  file-import-issues and the "Import timesheets" article (the detailed report export is the
  import template; date, time and duration follow the profile and workspace settings;
  commas, not semicolons); an export in gist.github.com/mdnurahmed/
  cd65d2d141f3b29d0fe1a47f130a5484 (12-hour times, MM/DD/YYYY, "Billable Rate (USD)").

No evidence was found that any of the three writes UTF-16 or semicolons; both are accepted
anyway (UTF-16 only with a BOM), for files re-saved by a spreadsheet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

FormatName = Literal["toggl", "harvest", "clockify"]
DateOrder = Literal["ymd", "mdy", "dmy"]

# clock durations → hours are rounded to 0.0001 h (0.36 s), the precision of a Xero quantity
HOURS_PLACES = Decimal("0.0001")
_SECONDS_PER_HOUR = 3600
_HOURS_PER_HALF_DAY = 12
_LAST_HOUR = 23
_MONTHS = 12


@dataclass(frozen=True, slots=True)
class Column:
    """One role in a layout: the header as the tool writes it and the normalized keys it takes."""

    label: str
    keys: tuple[str, ...]
    required: bool = False
    alternative: str = ""  # another header that can stand in, named in messages


@dataclass(frozen=True, slots=True)
class ExportFormat:
    name: FormatName
    title: str
    columns: Mapping[str, Column]  # role → column

    def required_labels(self) -> str:
        """The required columns for a message: "Date", "Hours", ... ("A" or "B" for a choice)."""
        return ", ".join(
            f'"{c.label}"' + (f' or "{c.alternative}"' if c.alternative else "")
            for c in self.columns.values()
            if c.required
        )


def _c(label: str, *keys: str, required: bool = False, alternative: str = "") -> Column:
    return Column(label, keys or (normalize(label)[0],), required, alternative)


def normalize(label: str) -> tuple[str, str | None]:
    """A header cell → (key, currency suffix): "Billable Rate (USD) " → ("billable rate", "USD")."""
    text = " ".join(label.replace("\ufeff", "").split()).lower()
    match = re.fullmatch(r"(.*?)\s*\(([a-z]{3})?\)", text)
    if match and match.group(1):
        suffix = match.group(2)
        return match.group(1), suffix.upper() if suffix else None
    return text, None


TOGGL = ExportFormat(
    "toggl",
    "Toggl Track detailed report",
    {
        "user": _c("User", "user", "member", required=True),
        "email": _c("Email"),
        "client": _c("Client", required=True),
        "project": _c("Project", required=True),
        "task": _c("Task"),
        "notes": _c("Description", required=True),
        "billable": _c("Billable", required=True),
        "date": _c("Start date", required=True),
        "start_time": _c("Start time", required=True),
        "end_date": _c("End date"),
        "end_time": _c("End time"),
        "duration": _c("Duration", required=True),
        "amount": _c("Amount"),
    },
)

HARVEST = ExportFormat(
    "harvest",
    "Harvest detailed time report",
    {
        "date": _c("Date", required=True),
        "client": _c("Client", required=True),
        "project": _c("Project", required=True),
        "task": _c("Task", required=True),
        "notes": _c("Notes", required=True),
        "duration": _c("Hours", required=True),
        "billable": _c("Billable?", "billable?", "billable", required=True),
        "invoiced": _c("Invoiced?", "invoiced?", "invoiced", required=True),
        "approved": _c("Approved?", "approved?", "approved"),
        "first_name": _c("First Name", required=True),
        "last_name": _c("Last Name", required=True),
        "rate": _c("Billable Rate"),
        "amount": _c("Billable Amount"),
        "currency": _c("Currency"),
    },
)

CLOCKIFY = ExportFormat(
    "clockify",
    "Clockify detailed report",
    {
        "project": _c("Project", required=True),
        "client": _c("Client", required=True),
        "notes": _c("Description", required=True),
        "task": _c("Task"),
        "user": _c("User", required=True),
        "email": _c("Email"),
        "billable": _c("Billable", required=True),
        "date": _c("Start Date", required=True),
        "start_time": _c("Start Time", required=True),
        "end_date": _c("End Date"),
        "end_time": _c("End Time"),
        # Duration (h) is exact to the second in the Full format; Duration (decimal) is rounded
        "duration": _c(
            "Duration (h)",
            "duration (h)",
            "duration (decimal)",
            required=True,
            alternative="Duration (decimal)",
        ),
        "rate": _c("Billable Rate"),
        "amount": _c("Billable Amount"),
    },
)

FORMATS: dict[FormatName, ExportFormat] = {f.name: f for f in (TOGGL, HARVEST, CLOCKIFY)}


@dataclass(frozen=True, slots=True)
class Header:
    """A header row resolved against a layout: where each role is and what it was called."""

    format: ExportFormat
    width: int
    index: dict[str, int]
    labels: dict[str, str]
    currencies: dict[str, str]  # role → currency named by its header suffix

    def label(self, role: str) -> str:
        return self.labels.get(role, self.format.columns[role].label)


def resolve(cells: Sequence[str], fmt: ExportFormat) -> Header | list[str]:
    """The header for ``fmt``, or the labels of its required columns that are missing."""
    keys: dict[str, int] = {}
    suffixes: dict[int, str] = {}
    for i, cell in enumerate(cells):
        key, currency = normalize(cell)
        keys.setdefault(key, i)
        if currency:
            suffixes[i] = currency
    index: dict[str, int] = {}
    missing: list[str] = []
    for role, column in fmt.columns.items():
        found = next((keys[k] for k in column.keys if k in keys), None)
        if found is not None:
            index[role] = found
        elif column.required:
            missing.append(column.label)
    if missing:
        return missing
    return Header(
        format=fmt,
        width=len(cells),
        index=index,
        labels={role: cells[i].replace("\ufeff", "").strip() for role, i in index.items()},
        currencies={role: suffixes[i] for role, i in index.items() if i in suffixes},
    )


def detect(cells: Sequence[str], wanted: FormatName | Literal["auto"]) -> Header:
    """Resolve a header row, or raise ValueError listing what was expected."""
    if not any(cell.strip() for cell in cells):
        raise ValueError("no header row (the file is empty)")
    if wanted != "auto":
        fmt = FORMATS[wanted]
        found = resolve(cells, fmt)
        if isinstance(found, Header):
            return found
        raise ValueError(
            f"not a {fmt.title}: missing {_quoted(found)}; "
            f"expected the columns {fmt.required_labels()}"
        )
    for fmt in FORMATS.values():
        found = resolve(cells, fmt)
        if isinstance(found, Header):
            return found
    expected = "; ".join(f"{f.title} ({f.required_labels()})" for f in FORMATS.values())
    raise ValueError(f"unknown header {_quoted(cells)}; expected the columns of one of: {expected}")


def _quoted(labels: Iterable[str]) -> str:
    return ", ".join(f'"{label.strip()}"' for label in labels)


def shown(text: str, limit: int = 60) -> str:
    """A cell value for an error message: quoted, on one line, cut to ``limit``."""
    flat = " ".join(text.split())
    return f'"{flat if len(flat) <= limit else flat[: limit - 1] + "…"}"'


# ---- cells ---------------------------------------------------------------------------------

_TRUE = {"yes", "y", "true", "1"}
_FALSE = {"no", "n", "false", "0"}


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"not yes or no: {shown(text)}")


def parse_number(text: str, *, decimal_comma: bool) -> Decimal:
    """A plain decimal as the export wrote it, exactly. Decimal comma only in semicolon files."""
    value = text.strip()
    if decimal_comma and "," in value:
        if "." in value:
            raise ValueError(f"not a number: {shown(text)}")
        value = value.replace(",", ".")
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", value):
        raise ValueError(f"not a number: {shown(text)}")
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise ValueError(f"not a number: {shown(text)}") from None


def parse_money(text: str, *, decimal_comma: bool) -> Decimal:
    amount = parse_number(text, decimal_comma=decimal_comma)
    if amount < 0:
        raise ValueError(f"must not be negative: {shown(text)}")
    return amount


_CLOCK = re.compile(r"(\d+):([0-5]\d)(?::([0-5]\d))?")
_MIN_SEC = re.compile(r"(\d+):([0-5]\d)\s*min", re.IGNORECASE)
_DECIMAL_HOURS = re.compile(r"(.+?)\s*h", re.IGNORECASE)


def parse_hours(text: str, *, decimal_comma: bool) -> Decimal:
    """A duration → hours. Decimal hours are kept exactly as written ("1.50" → 1.50).

    Clock durations ("1:30:00", "01:30", "47:06 min") are whole seconds, converted to hours
    and rounded half-up to 4 places (0.36 s) when not exact: 1:17:00 → 1.2833.
    """
    value = text.strip()
    if not value:
        raise ValueError("empty")
    seconds: int | None = None
    if clock := _CLOCK.fullmatch(value):
        hours, minutes, secs = clock.groups()
        seconds = int(hours) * _SECONDS_PER_HOUR + int(minutes) * 60 + int(secs or 0)
    elif min_sec := _MIN_SEC.fullmatch(value):
        seconds = int(min_sec.group(1)) * 60 + int(min_sec.group(2))
    if seconds is not None:
        return tidy(
            (Decimal(seconds) / _SECONDS_PER_HOUR).quantize(HOURS_PLACES, rounding=ROUND_HALF_UP)
        )
    if ":" in value:
        raise ValueError(f"not a duration: {shown(text)}")
    suffixed = _DECIMAL_HOURS.fullmatch(value)
    try:
        hours_value = parse_number(
            suffixed.group(1) if suffixed else value, decimal_comma=decimal_comma
        )
    except ValueError:
        raise ValueError(f"not a number: {shown(text)}") from None
    if hours_value < 0:
        raise ValueError(f"must not be negative: {shown(text)}")
    return hours_value


def tidy(value: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent notation: 1.5000 → 1.5, 2.0000 → 2."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


_TIME = re.compile(r"(\d{1,2}):([0-5]\d)(?::([0-5]\d))?\s*(?:([ap])\.?\s*m\.?)?", re.IGNORECASE)


def parse_time(text: str) -> str:
    """A wall-clock time in 24- or 12-hour form → "HH:MM:SS"."""
    match = _TIME.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not a time of day: {shown(text)}")
    hour, minute, second = int(match.group(1)), match.group(2), match.group(3) or "00"
    meridiem = (match.group(4) or "").lower()
    if meridiem:
        if not 1 <= hour <= _HOURS_PER_HALF_DAY:
            raise ValueError(f"not a time of day: {shown(text)}")
        hour = hour % _HOURS_PER_HALF_DAY + (_HOURS_PER_HALF_DAY if meridiem == "p" else 0)
    elif hour > _LAST_HOUR:
        raise ValueError(f"not a time of day: {shown(text)}")
    return f"{hour:02d}:{minute}:{second}"


_ISO_DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_OTHER_DATE = re.compile(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4})")


def parse_date(text: str, order: DateOrder | None) -> date:
    """A date in ISO form, or day/month/year in ``order`` (needed for the non-ISO forms)."""
    value = text.strip()
    try:
        if iso := _ISO_DATE.fullmatch(value):
            return date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        if (other := _OTHER_DATE.fullmatch(value)) and order in ("mdy", "dmy"):
            first, second, year = int(other.group(1)), int(other.group(3)), int(other.group(4))
            month, day = (first, second) if order == "mdy" else (second, first)
            return date(year, month, day)
    except ValueError:
        raise ValueError(f"not a date: {shown(text)}") from None
    if _OTHER_DATE.fullmatch(value) and order == "ymd":
        raise ValueError(f"not a YYYY-MM-DD date (date_order is ymd): {shown(text)}")
    raise ValueError(f"not a date: {shown(text)}")


@dataclass(frozen=True, slots=True)
class DateSample:
    line: int
    text: str


def infer_order(samples: Iterable[DateSample]) -> DateOrder | None:
    """Day-first or month-first, from the non-ISO dates of one file.

    None when there are no such dates. Raises ValueError when the dates contradict each other
    or when every one of them could be read both ways.
    """
    day_first: DateSample | None = None
    month_first: DateSample | None = None
    ambiguous: DateSample | None = None
    dotted = True
    seen = False
    for sample in samples:
        match = _OTHER_DATE.fullmatch(sample.text.strip())
        if not match:
            continue
        seen = True
        dotted = dotted and match.group(2) == "."
        first, second = int(match.group(1)), int(match.group(3))
        if first > _MONTHS >= second:
            day_first = day_first or sample
        elif second > _MONTHS >= first:
            month_first = month_first or sample
        elif first <= _MONTHS and second <= _MONTHS and first != second:
            ambiguous = ambiguous or sample
    if not seen:
        return None
    if day_first and month_first:
        raise ValueError(
            f"dates are day-first on line {day_first.line} ({shown(day_first.text)}) and "
            f"month-first on line {month_first.line} ({shown(month_first.text)})"
        )
    if day_first:
        return "dmy"
    if month_first:
        return "mdy"
    if dotted or ambiguous is None:
        return "dmy"  # DD.MM.YYYY is day-first wherever it is used; 01/01 reads the same
    raise ValueError(
        f"dates such as {shown(ambiguous.text)} (line {ambiguous.line}) can be read day-first "
        "or month-first; set date_order: dmy or mdy"
    )


def parse_currency(text: str) -> str:
    """Harvest's "Euro - EUR" (or a bare "EUR") → "EUR"."""
    match = re.fullmatch(r"(?:.*[\s(-])?([A-Z]{3})\)?", text.strip())
    if not match:
        raise ValueError(f"not a currency: {shown(text)}")
    return match.group(1)
