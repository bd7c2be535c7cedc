"""The Clockify source: the detailed report (time), the expenses list, and invoiced write-back.

Listing
    Time comes from ``POST {reports_url}/workspaces/{ws}/reports/detailed``, in ranges of at
    most 30 days (Free plans allow 31 per request) from ``spent_from`` to ``LOOKAHEAD_DAYS``
    past today (or the window's end, if later), paged with ``detailedFilter{page, pageSize}``
    sorted by id, always with ``invoicingState: ALL``: the engine must see entries already
    invoiced (to count them as already billed) and the ones it marked itself after write-back,
    so the invoiced state is read from each row into ``billed_in_source`` instead of filtered.

    ``approved_only``: the report is asked for ``approvalState: APPROVED`` only. Otherwise it
    is listed with ``ALL`` and then with ``APPROVED``; an entry is approved when the second
    listing has it. Rows carry no approval state of their own, and listing ALL first means an
    entry approved (or un-approved) in between gets its later state, and none is missed.

    Page 1 asks for totals; if fewer distinct entries arrive than it counted (an entry deleted
    while the pages were read shifts the rest), the range is listed again, and a second short
    listing raises TransientError: the engine infers deletions from this listing, so it must
    be complete.

Incremental pulls
    The report has no change feed and no deleted entries, so ``reports_deletions`` is False and
    ``updated_since`` is ignored: every pull lists everything from ``spent_from``, which also
    lists the request's whole window. ``updated_at`` is the entry's end time (rows carry no
    last-modified time). Running timers are not in the detailed report, so they are not
    pulled; a row without an end would be kept with ``running=True``.

Days
    Days are counted in ``time_zone``, else the API key owner's profile time zone (one
    ``GET /user`` per source), which is what Clockify's own reports use: the ranges are sent
    as local times with ``timeZone``, and an entry's spent date is its local start date.

Limits
    Clockify allows 50 requests per second per workspace: every call goes through the shared
    RetryPolicy, which retries 429 and 5xx honouring Retry-After.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from connectors.base import PullRequest, Receipt
from connectors.clockify.config import ClockifyConfig
from connectors.clockify.parse import (
    EXPENSE_PREFIX,
    expense_key,
    parse_expense,
    parse_report_row,
    row_id,
)
from core.errors import AuthError, SourceDataError, TerminalError, TransientError
from core.http import BudgetFactory, CallCounter, Limit, LocalBudgets, RetryPolicy, raise_for
from core.model import SourceEntry, WritebackResult

SERVICE = "clockify"
USER_AGENT = "hourbridge (https://github.com/hourbridge/hourbridge)"
REPORT_RANGE_DAYS = 30  # per request: Free plans allow 31 days, and a DST day adds an hour
LOOKAHEAD_DAYS = 31  # entries dated up to this far past today are listed
WRITEBACK_CHUNK = 100  # time entry ids per PATCH
LISTING_ATTEMPTS = 2
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")

Row = dict[str, Any]


class ClockifySource:
    """Time entries (and expenses) from one Clockify workspace; marks entries invoiced."""

    reports_deletions = False  # the report has no change feed: the engine infers deletions

    def __init__(
        self,
        name: str,
        config: ClockifyConfig,
        *,
        calls: CallCounter,
        policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], datetime] | None = None,
        budgets: BudgetFactory | None = None,
    ) -> None:
        self.name = name
        self._config = config
        self._calls = calls
        self._policy = calls.counted(
            policy or RetryPolicy(max_attempts=config.max_attempts), SERVICE
        )
        self._budget = (budgets or LocalBudgets())(
            SERVICE, config.workspace_id, [Limit(config.calls_per_second, 1.0, "second")]
        )
        self._clock = clock or (lambda: datetime.now(UTC))
        self._key = config.api_key.get_secret_value()
        self._session = session or requests.Session()
        self._session.headers.update(
            {"X-Api-Key": self._key, "Accept": "application/json", "User-Agent": USER_AGENT}
        )
        self._zone: ZoneInfo | None = None

    def __repr__(self) -> str:
        return f"ClockifySource(name={self.name!r}, workspace_id={self._config.workspace_id!r})"

    # ----------------------------------------------------------------------- URLs

    @property
    def api_url(self) -> str:
        return str(self._config.base_url).rstrip("/")

    @property
    def workspace_url(self) -> str:
        return f"{self.api_url}/workspaces/{self._config.workspace_id}"

    @property
    def detailed_report_url(self) -> str:
        reports = str(self._config.reports_url).rstrip("/")
        return f"{reports}/workspaces/{self._config.workspace_id}/reports/detailed"

    @property
    def invoiced_url(self) -> str:
        return f"{self.workspace_url}/time-entries/invoiced"

    # ----------------------------------------------------------------------- pull

    def pull(self, request: PullRequest) -> Iterator[SourceEntry]:
        zone = self._time_zone()
        yield from self._time_entries(request, zone)
        if self._config.expenses:
            yield from self._expenses(request, zone)

    def _time_zone(self) -> ZoneInfo:
        if self._zone is None:
            name = self._config.time_zone or self._profile_zone()
            try:
                self._zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise SourceDataError(
                    f"{self.name}: unknown profile time zone {name[:60]!r}; set time_zone"
                ) from None
        return self._zone

    def _profile_zone(self) -> str:
        user = self._json("GET", f"{self.api_url}/user")
        settings = user.get("settings") if isinstance(user, dict) else None
        zone = settings.get("timeZone") if isinstance(settings, dict) else None
        if not isinstance(zone, str) or not zone:
            raise SourceDataError(f"{self.name}: the user profile has no time zone; set time_zone")
        return zone

    def _ranges(self, request: PullRequest, zone: ZoneInfo) -> list[tuple[date, date]]:
        last = self._clock().astimezone(zone).date() + timedelta(days=LOOKAHEAD_DAYS)
        if request.window is not None:
            last = max(last, request.window[1])
        ranges = []
        first = request.spent_from
        while first <= last:
            end = min(first + timedelta(days=REPORT_RANGE_DAYS - 1), last)
            ranges.append((first, end))
            first = end + timedelta(days=1)
        return ranges

    def _time_entries(self, request: PullRequest, zone: ZoneInfo) -> Iterator[SourceEntry]:
        ranges = self._ranges(request, zone)
        if self._config.approved_only:
            rows = self._listing(ranges, zone, "APPROVED")
            approved = set(rows)
        else:
            rows = self._listing(ranges, zone, "ALL")
            later = self._listing(ranges, zone, "APPROVED")  # after ALL: the later truth
            rows.update(later)
            approved = set(later)
        everything = self._config.approval == "all"
        for entry_id, raw in rows.items():
            yield parse_report_row(
                self.name, raw, zone=zone, approved=everything or entry_id in approved
            )

    def _listing(
        self, ranges: list[tuple[date, date]], zone: ZoneInfo, state: str
    ) -> dict[str, Row]:
        rows: dict[str, Row] = {}
        for first, last in ranges:
            rows.update(self._report(first, last, zone, state))
        return rows

    def _report(self, first: date, last: date, zone: ZoneInfo, state: str) -> dict[str, Row]:
        rows: dict[str, Row] = {}
        expected: int | None = None
        for _ in range(LISTING_ATTEMPTS):
            rows, expected = self._report_pages(first, last, zone, state)
            if expected is None or len(rows) >= expected:
                return rows
        raise TransientError(
            f"{self.name}: the detailed report for {first}..{last} changed while it was read "
            f"({len(rows)} of {expected} entries); the next run will list it again"
        )

    def _report_pages(
        self, first: date, last: date, zone: ZoneInfo, state: str
    ) -> tuple[dict[str, Row], int | None]:
        rows: dict[str, Row] = {}
        expected: int | None = None
        size = self._config.page_size
        received, page = 0, 1
        while True:
            body = _report_body(first, last, zone, state, page=page, size=size)
            data = self._json("POST", self.detailed_report_url, body=body)
            chunk = data.get("timeentries") if isinstance(data, dict) else None
            if not isinstance(chunk, list):
                raise SourceDataError(
                    f"{self.name}: detailed report page {page} has no timeentries list"
                )
            if page == 1:
                expected = _entries_count(data)
            for raw in chunk:
                rows[row_id(self.name, raw)] = raw
            received += len(chunk)
            if not chunk or (received >= expected if expected is not None else len(chunk) < size):
                return rows, expected
            page += 1

    def _expenses(self, request: PullRequest, zone: ZoneInfo) -> Iterator[SourceEntry]:
        lookups = _Lookups(self)
        seen: set[str] = set()
        for raw in self.pages(f"{self.workspace_url}/expenses", _expense_items):
            expense_id, day, locked = expense_key(self.name, raw)
            if expense_id in seen or day < request.spent_from:
                continue
            if self._config.approved_only and not locked:
                continue
            seen.add(expense_id)
            yield parse_expense(
                self.name, raw, zone=zone, lookups=lookups, workspace_url=self.workspace_url
            )

    def pages(
        self,
        url: str,
        items: Callable[[Any], list[Any]],
        params: Mapping[str, str] | None = None,
    ) -> Iterator[Any]:
        """Every item of a ``page`` / ``page-size`` listing, to the first short page."""
        size = self._config.page_size
        page = 1
        while True:
            query = {**(params or {}), "page": str(page), "page-size": str(size)}
            data = self._json("GET", url, params=query)
            try:
                found = items(data)
            except (KeyError, TypeError, ValueError):
                raise SourceDataError(
                    f"{self.name}: unexpected listing shape on page {page} of {_path(url)}"
                ) from None
            yield from found
            if len(found) < size:
                return
            page += 1

    # ----------------------------------------------------------------------- write-back

    def mark_invoiced(self, source_ids: Sequence[str]) -> WritebackResult:
        """PATCH ``time-entries/invoiced`` in chunks. Expenses cannot be marked through the API.

        A 403 (Free plan, or a key without admin rights) fails every id with Clockify's
        message and sends nothing more; a rejected chunk (400, e.g. a deleted entry) is split
        to find the id at fault. Only refused credentials (401) raise.
        """
        done: list[str] = []
        failed: dict[str, str] = {}
        skipped: dict[str, str] = {}
        entry_ids: list[str] = []
        for source_id in dict.fromkeys(source_ids):
            if source_id.startswith(EXPENSE_PREFIX):
                skipped[source_id] = (
                    f"{self.name}: Clockify's API cannot mark expenses invoiced; "
                    "mark it in Clockify if needed"
                )
            elif not _OBJECT_ID.fullmatch(source_id):
                failed[source_id] = f"{self.name}: {source_id[:40]!r} is not a time entry id"
            else:
                entry_ids.append(source_id)
        stop: str | None = None
        for start in range(0, len(entry_ids), WRITEBACK_CHUNK):
            chunk = entry_ids[start : start + WRITEBACK_CHUNK]
            if stop is None:
                try:
                    self._mark(chunk, done, failed)
                    continue
                except (_ForbiddenError, TransientError) as exc:
                    stop = str(exc)
            failed.update(dict.fromkeys(chunk, stop))
        return WritebackResult(done=tuple(done), failed=failed, skipped=skipped)

    def _mark(self, ids: list[str], done: list[str], failed: dict[str, str]) -> None:
        body = {"timeEntryIds": ids, "invoiced": True}
        try:
            response = self._request(
                "PATCH", self.invoiced_url, body=body, allow=frozenset({400, 403})
            )
        except AuthError:
            raise
        except TerminalError as exc:
            failed.update(dict.fromkeys(ids, str(exc)))
            return
        if response.status_code == 403:
            raise _ForbiddenError(
                f"{self.name}: HTTP 403: {self._detail(response)}: marking time entries invoiced "
                "needs a paid Clockify plan and an admin's API key"
            )
        if response.status_code == 400:
            if len(ids) > 1:  # find the entry at fault; the others can still be marked
                half = len(ids) // 2
                self._mark(ids[:half], done, failed)
                self._mark(ids[half:], done, failed)
            else:
                failed[ids[0]] = f"{self.name}: HTTP 400: {self._detail(response)}"
            return
        done.extend(ids)

    # ----------------------------------------------------------------------- HTTP

    def _json(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: object = None,
    ) -> Any:
        response = self._request(method, url, params=params, body=body)
        try:
            return response.json()
        except ValueError:
            raise SourceDataError(
                f"{self.name}: response is not JSON: {method} {_path(url)}"
            ) from None

    def fetch_receipt(self, url: str) -> Receipt:
        """An expense's receipt file. Our API key goes only to the API's own host."""
        if urlsplit(url).hostname != urlsplit(self.api_url).hostname:
            raise TerminalError(f"{self.name}: receipt {url} is not on the Clockify API's host")
        response = self._request("GET", url)
        return Receipt(
            file_name=url.rstrip("/").rsplit("/", 1)[-1],
            content_type=response.headers.get("Content-Type") or "application/octet-stream",
            content=response.content,
        )

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        body: object = None,
        allow: frozenset[int] = frozenset(),
    ) -> requests.Response:
        """One call, retried per the policy; a non-2xx status not in ``allow`` raises."""
        for attempt in self._policy.retrying():
            with attempt:
                self._budget.acquire()
                self._calls.add(SERVICE)
                try:
                    response = self._session.request(
                        method,
                        url,
                        params=params,
                        json=body,
                        timeout=self._config.timeout_seconds,
                    )
                except (requests.ConnectionError, requests.Timeout) as exc:
                    raise TransientError(
                        f"{self.name}: {type(exc).__name__} on {method} {_path(url)}"
                    ) from exc
                status = response.status_code
                if status >= 400 and status not in allow:
                    raise_for(
                        self.name,
                        status,
                        response.headers.get("Retry-After"),
                        self._detail(response),
                    )
                return response
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _detail(self, response: requests.Response) -> str:
        """Clockify's message, on one line, with the API key scrubbed should it be echoed."""
        try:
            body = response.json()
        except ValueError:
            text = response.text
        else:
            message = body.get("message") if isinstance(body, dict) else None
            text = str(message if message else body)
        text = " ".join(text.split())[:200]
        return text.replace(self._key, "***") if self._key else text


class _ForbiddenError(TerminalError):
    """403 on write-back: nothing more will be marked in this call."""


class _Lookups:
    """Names and currencies an expense refers to by id, each listing fetched once, lazily."""

    def __init__(self, source: ClockifySource) -> None:
        self._source = source
        self._categories: dict[str, Row] | None = None
        self._archived_loaded = False
        self._clients: dict[str, Row] | None = None
        self._users: dict[str, Row] | None = None
        self._workspace_currency: str | None = None

    def _index(self, resource: str, params: Mapping[str, str] | None = None) -> dict[str, Row]:
        source = self._source
        url = f"{source.workspace_url}/{resource}"
        items = _categories if resource == "expenses/categories" else _plain_list
        found: dict[str, Row] = {}
        for item in source.pages(url, items, params):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise SourceDataError(f"{source.name}: {resource} item without an id")
            found[item["id"]] = item
        return found

    def category(self, category_id: str) -> Mapping[str, Any] | None:
        if self._categories is None:
            self._categories = self._index("expenses/categories")
        if category_id not in self._categories and not self._archived_loaded:
            self._archived_loaded = True  # the listing may leave archived categories out
            self._categories.update(self._index("expenses/categories", {"archived": "true"}))
        return self._categories.get(category_id)

    def client_currency(self, client_id: str) -> str | None:
        if self._clients is None:
            self._clients = self._index("clients")
        code = self._clients.get(client_id, {}).get("currencyCode")
        return code if isinstance(code, str) and code else None

    def workspace_currency(self) -> str:
        if self._workspace_currency is None:
            source = self._source
            listing = source._json("GET", f"{source.api_url}/workspaces")
            mine = next(
                (
                    w
                    for w in (listing if isinstance(listing, list) else [])
                    if isinstance(w, dict) and w.get("id") == source._config.workspace_id
                ),
                {},
            )
            rate = mine.get("hourlyRate")
            currency = rate.get("currency") if isinstance(rate, dict) else None
            self._workspace_currency = currency if isinstance(currency, str) else ""
        return self._workspace_currency

    def user_name(self, user_id: str) -> str:
        if self._users is None:
            self._users = self._index("users")
        name = self._users.get(user_id, {}).get("name")
        return name if isinstance(name, str) else ""


def _report_body(
    first: date, last: date, zone: ZoneInfo, state: str, *, page: int, size: int
) -> dict[str, Any]:
    return {
        "dateRangeStart": f"{first.isoformat()}T00:00:00.000",  # local: read in timeZone
        "dateRangeEnd": f"{last.isoformat()}T23:59:59.999",
        "timeZone": zone.key,
        "approvalState": state,
        "invoicingState": "ALL",
        "sortOrder": "ASCENDING",
        "detailedFilter": {
            "page": page,
            "pageSize": size,
            "sortColumn": "ID",
            "options": {"totals": "CALCULATE" if page == 1 else "EXCLUDE"},
        },
    }


def _entries_count(data: Mapping[str, Any]) -> int | None:
    totals = data.get("totals")
    first = totals[0] if isinstance(totals, list) and totals else None
    count = first.get("entriesCount") if isinstance(first, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _plain_list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise TypeError("not a list")
    return data


def _expense_items(data: Any) -> list[Any]:
    return _plain_list(data["expenses"]["expenses"])


def _categories(data: Any) -> list[Any]:
    return _plain_list(data["categories"])


def _path(url: str) -> str:
    """The URL without its query, for messages."""
    return url.split("?", 1)[0]
