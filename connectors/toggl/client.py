"""The Toggl Track source: Reports API v3 for the workspace's entries, API v9 for the rest.

Entries come from the detailed report, ``POST /reports/api/v3/workspace/{wid}/search/time_entries``
(every member's entries, which ``/api/v9/me/time_entries`` does not give), paged with the
``X-Next-ID`` / ``X-Next-Row-Number`` answer headers sent back as ``first_id`` /
``first_row_number``. Names come from one listing each per pull: clients, projects, tasks and
tags (tags to find the approved and invoiced tags' ids); user names are the rows' own
``username``, so no users call is spent. See ``connectors.toggl.parse`` for the fields used.

Incremental pulls and deletions: the Reports API has no "changed since" filter and never lists
deleted entries, and ``/api/v9/me/time_entries?since=`` (which does list deletions) covers only
the token owner, under a separate 30-per-hour quota. So ``reports_deletions`` is False and
every pull lists the whole range in full, whatever ``updated_since`` says: every entry spent
on or after ``spent_from`` (and all of ``window``). The engine compares content hashes to find
edits and infers deletions from what the window's listing no longer holds. Listing everything
also catches changes that do not move an entry's ``at``, such as a new project rate.

Range: the report needs an end date and takes at most a year ([U] 366 days) per request, so
the pull asks from the day before ``spent_from`` to at least a day after today (a year ahead
when one request can cover it), in year-long chunks, and keeps entries by their own spent date.
The spare day on each side keeps that exact whichever timezone Toggl filters dates in.

Limits: before each call the source waits on its call budget (core.http.Budget): about one
call per second (``calls_per_second``, the leaky bucket's safe rate) and ``calls_per_hour``
(the hourly quota), shared through the database with other processes on the same workspace
when the builder gives shared budgets (core.budgets). Every answer's
``X-Toggl-Quota-Remaining`` / ``X-Toggl-Quota-Resets-In`` align the hourly budget with what
Toggl counts (other apps spend the same quota): when it is used up, the next call waits for the
reset, or, further off than the budget waits, stops with ``BudgetExhaustedError`` without
calling. A 429 (leaky bucket) and 5xx are retried by core.http's policy, honouring Retry-After.
A 402 with ``X-Toggl-Quota-Remaining: 0`` (or Toggl's "hourly limit" text) is the hourly quota:
a ``TransientError`` whose ``retry_after`` is ``X-Toggl-Quota-Resets-In``. It is retried after
that wait when the policy would wait that long (``max_wait``); otherwise it is raised at once,
so a run stops with "resets in N s" instead of hammering the API for minutes. A quota 402 that
does not say when it resets is a ``TerminalError``; so is any other 402 (a plan feature).

Approvals (``approval: toggl``): Toggl's timesheet approvals are a Premium feature; the first
pull reads ``timesheet_setups`` and a 402 there becomes a ``ConfigError`` telling the user to
choose ``tag`` or ``all``. Where approvals do exist, Toggl's public API (v9 and Reports v3)
gives the setups but no approval status for an entry or a timesheet, so billing on it cannot be
honoured either: that is a ``ConfigError`` too, never a guess.

Running timers: the detailed report does not list them ([U], as the sandbox does), so they are
not seen until stopped; a row that does carry a negative duration becomes ``running=True``.

Write-back: ``mark_invoiced`` adds ``invoiced_tag`` with
``PATCH /api/v9/workspaces/{wid}/time_entries/{ids}`` and a JSON Patch
``[{"op": "add", "path": "/tags", "value": [tag]}]``, at most 100 ids per call, and maps the
answer's ``success`` / ``failure`` lists to a ``WritebackResult``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import requests

from connectors.base import PullRequest
from connectors.toggl.config import TogglConfig
from connectors.toggl.parse import (
    Catalogue,
    Rules,
    listing_items,
    names_by_id,
    parse_row,
    projects_by_id,
    tags_by_name,
)
from core.errors import (
    AuthError,
    ConfigError,
    HourbridgeError,
    SourceDataError,
    TerminalError,
    TransientError,
)
from core.http import BudgetFactory, CallCounter, Limit, LocalBudgets, RetryPolicy, raise_for
from core.model import SourceEntry, WritebackResult

SERVICE = "toggl"
MAX_PATCH_IDS = 100  # "bulk edits take 1 to 100 time entries"
MAX_RANGE_DAYS = 366  # [U] per report request, first and last day included
LISTING_PAGE = 200  # per_page of the paged v9 listings (projects, tasks)
QUOTA_TEXT = "hourly limit"


class QuotaExhaustedError(TransientError):
    """The hourly quota is used up and resets later than the retry policy waits: not retried."""


class PaymentRequiredError(TerminalError):
    """A 402 that is not the hourly quota: the workspace's plan lacks the feature."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


def utc_today() -> date:
    return datetime.now(UTC).date()


class TogglSource:
    """Time entries of one Toggl Track workspace; can tag invoiced entries (InvoicedWriter)."""

    reports_deletions = False  # the Reports API never lists deleted entries: see the docstring

    def __init__(
        self,
        name: str,
        config: TogglConfig,
        *,
        calls: CallCounter,
        policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        today: Callable[[], date] = utc_today,
        budgets: BudgetFactory | None = None,
    ) -> None:
        self.name = name
        self._config = config
        self._calls = calls
        self._policy = calls.counted(
            policy or RetryPolicy(max_attempts=config.max_attempts), SERVICE
        )
        self._today = today
        self._budget = (budgets or LocalBudgets())(
            SERVICE,
            str(config.workspace_id),
            [
                Limit(1, 1.0 / config.calls_per_second, "second"),
                Limit(config.calls_per_hour, 3600.0, "hour"),
            ],
        )
        self._session = session or requests.Session()
        self._session.auth = (config.api_token.get_secret_value(), "api_token")
        self._session.headers.update(
            {"Accept": "application/json", "User-Agent": "hourbridge (toggl source)"}
        )
        base = str(config.base_url).rstrip("/")
        self._workspace = f"{base}/api/v9/workspaces/{config.workspace_id}"
        self._report_url = (
            f"{base}/reports/api/v3/workspace/{config.workspace_id}/search/time_entries"
        )

    def __repr__(self) -> str:
        return f"TogglSource(name={self.name!r}, workspace_id={self._config.workspace_id})"

    # ------------------------------------------------------------------ pull

    def pull(self, request: PullRequest) -> Iterator[SourceEntry]:
        self._check_approval()
        catalogue = self._catalogue()
        rules = Rules(
            approved_tag_ids=None
            if self._config.approval == "all"
            else catalogue.tag_ids(self._config.approved_tag),
            invoiced_tag_ids=catalogue.tag_ids(self._config.invoiced_tag),
            zone=self._config.zone,
        )
        seen: set[str] = set()
        for start, end in chunks(*report_range(request, self._today())):
            for row in self._rows(start, end):
                for entry in parse_row(self.name, row, catalogue, rules):
                    if entry.source_id in seen or not wanted(entry.spent_date, request):
                        continue
                    seen.add(entry.source_id)
                    yield entry

    def _check_approval(self) -> None:
        if self._config.approval != "toggl":
            return
        try:
            self._call("GET", f"{self._workspace}/timesheet_setups")
        except PaymentRequiredError as exc:
            raise ConfigError(
                f"{self.name}: approval 'toggl' needs Toggl's timesheet approvals, which this "
                f"workspace's plan does not include ({exc.detail}); set approval to 'tag' "
                f"(bill only entries tagged {self._config.approved_tag!r}) or 'all' (bill "
                "every billable entry)"
            ) from None
        raise ConfigError(
            f"{self.name}: approval 'toggl': this workspace has timesheet approvals, but "
            "Toggl's API does not say which entries or timesheets are approved; set approval "
            f"to 'tag' (approvers tag approved entries {self._config.approved_tag!r}) or 'all'"
        )

    def _catalogue(self) -> Catalogue:
        clients = self._get_json(f"{self._workspace}/clients", {"status": "both"})
        tags = self._get_json(f"{self._workspace}/tags")
        return Catalogue(
            clients=names_by_id(self.name, "clients", listing_items(self.name, "clients", clients)),
            projects=projects_by_id(self.name, self._paged("projects")),
            tasks=names_by_id(self.name, "tasks", self._paged("tasks")),
            tags=tags_by_name(self.name, listing_items(self.name, "tags", tags)),
        )

    def _paged(self, resource: str) -> list[dict[str, Any]]:
        """A v9 listing that may be paged: one call unless the workspace has more than a page."""
        items: list[dict[str, Any]] = []
        seen: set[int] = set()
        page = 1
        while True:
            params = {"page": str(page), "per_page": str(LISTING_PAGE)}
            body = self._get_json(f"{self._workspace}/{resource}", params)
            chunk = listing_items(self.name, resource, body)
            fresh = [item for item in chunk if int(item["id"]) not in seen]
            items.extend(fresh)
            seen.update(int(item["id"]) for item in fresh)
            total = body.get("total_count") if isinstance(body, dict) else None
            more = len(seen) < total if isinstance(total, int) else len(chunk) >= LISTING_PAGE
            if not fresh or not more:
                return items
            page += 1

    def _rows(self, start: date, end: date) -> Iterator[object]:
        body: dict[str, Any] = {
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "page_size": self._config.page_size,
            "enrich_response": True,
        }
        cursor: dict[str, int] = {}
        while True:
            response = self._call("POST", self._report_url, body=body | cursor)
            rows = self._json(response, "the detailed report")
            if not isinstance(rows, list):
                raise SourceDataError(f"{self.name}: the detailed report is not a JSON array")
            yield from rows
            following = self._cursor(response.headers)
            if following is None or not rows:
                return
            if following == cursor:
                raise SourceDataError(
                    f"{self.name}: the detailed report's paging did not advance: {following}"
                )
            cursor = following

    def _cursor(self, headers: Mapping[str, str]) -> dict[str, int] | None:
        cursor: dict[str, int] = {}
        for header, field in (("X-Next-ID", "first_id"), ("X-Next-Row-Number", "first_row_number")):
            value = headers.get(header)
            if value is None:
                continue
            if not (value.strip().isascii() and value.strip().isdigit()):
                raise SourceDataError(f"{self.name}: header {header} is not a number: {value!r}")
            cursor[field] = int(value)
        return cursor or None

    # ------------------------------------------------------------- write-back

    def mark_invoiced(self, source_ids: Sequence[str]) -> WritebackResult:
        """Add ``invoiced_tag`` to these entries; failures are reported, not raised.

        Raises only when the whole call is refused (credentials). A chunk Toggl rejects
        (e.g. 400) fails alone; a transient failure that outlasted the retries (the hourly
        quota, an outage) fails that chunk and every later one without calling again.
        """
        failed: dict[str, str] = {}
        wanted_ids: dict[int, str] = {}  # Toggl's id → the caller's own string
        for source_id in dict.fromkeys(source_ids):
            if source_id.isascii() and source_id.isdigit() and int(source_id) > 0:
                wanted_ids.setdefault(int(source_id), source_id)
            else:
                failed[source_id] = "not a Toggl time entry id"
        ids = list(wanted_ids)
        done: list[str] = []
        patch = [{"op": "add", "path": "/tags", "value": [self._config.invoiced_tag]}]
        for first in range(0, len(ids), MAX_PATCH_IDS):
            chunk = ids[first : first + MAX_PATCH_IDS]
            url = f"{self._workspace}/time_entries/{','.join(str(i) for i in chunk)}"
            try:
                answer = self._json(self._call("PATCH", url, body=patch), "the tag update")
                succeeded, refused = self._patch_result(answer)
            except (AuthError, ConfigError):
                raise
            except TransientError as exc:  # no point asking again in this run
                failed.update({wanted_ids[i]: str(exc) for i in ids[first:]})
                break
            except HourbridgeError as exc:  # this chunk only; the others may still succeed
                failed.update({wanted_ids[i]: str(exc) for i in chunk})
                continue
            for entry_id in chunk:
                if entry_id in succeeded:
                    done.append(wanted_ids[entry_id])
                else:
                    failed[wanted_ids[entry_id]] = refused.get(entry_id, "not in Toggl's answer")
        return WritebackResult(done=tuple(done), failed=failed)

    def _patch_result(self, answer: object) -> tuple[set[int], dict[int, str]]:
        if not isinstance(answer, dict):
            raise SourceDataError(f"{self.name}: the tag update's answer is not an object")
        success, failure = answer.get("success") or [], answer.get("failure") or []
        if not isinstance(success, list) or not isinstance(failure, list):
            raise SourceDataError(f"{self.name}: the tag update's answer has no success list")
        succeeded = {i for i in success if isinstance(i, int) and not isinstance(i, bool)}
        refused: dict[int, str] = {}
        for item in failure:
            if isinstance(item, dict) and isinstance(item.get("id"), int):
                refused[int(item["id"])] = str(item.get("message") or "refused by Toggl")
        return succeeded, refused

    # ------------------------------------------------------------------ HTTP

    def _get_json(self, url: str, params: dict[str, str] | None = None) -> object:
        return self._json(self._call("GET", url, params=params), url.rsplit("/", 1)[-1])

    def _json(self, response: requests.Response, what: str) -> object:
        try:
            return response.json()
        except ValueError:
            raise SourceDataError(f"{self.name}: {what}: the answer is not JSON") from None

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        body: object = None,
    ) -> requests.Response:
        """One request, retried by the policy; a long quota wait is raised, not slept through."""
        postponed: QuotaExhaustedError | None = None
        for attempt in self._policy.retrying():
            with attempt:
                try:
                    return self._once(method, url, params, body)
                except QuotaExhaustedError as exc:  # leaves the attempt as a success: no retry
                    postponed = exc
        if postponed is not None:
            raise postponed
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _once(
        self, method: str, url: str, params: dict[str, str] | None, body: object
    ) -> requests.Response:
        self._budget.acquire()
        self._calls.add(SERVICE)
        try:
            response = self._session.request(
                method, url, params=params, json=body, timeout=self._config.timeout_seconds
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(f"{self.name}: {type(exc).__name__} on {method} {url}") from exc
        if response.status_code >= 400:
            self._fail(response)
        self._note_quota(response.headers)
        return response

    def _note_quota(self, headers: Mapping[str, str]) -> None:
        """What Toggl says is left of the hourly quota, and when it resets, as the hourly
        budget's; a 402 is handled by ``_payment_required`` instead."""
        remaining = headers.get("X-Toggl-Quota-Remaining", "").strip()
        resets = headers.get("X-Toggl-Quota-Resets-In", "").strip()
        if remaining.isascii() and remaining.isdigit():
            seconds = float(resets) if resets.isascii() and resets.isdigit() else None
            self._budget.observe("hour", int(remaining), seconds)

    def _fail(self, response: requests.Response) -> None:
        detail = self._detail(response)
        status = response.status_code
        if status == 402:
            self._payment_required(response, detail)
        raise_for(self.name, status, response.headers.get("Retry-After"), detail)

    def _payment_required(self, response: requests.Response, detail: str) -> None:
        remaining = response.headers.get("X-Toggl-Quota-Remaining")
        quota = (remaining is not None and remaining.strip() == "0") or (
            QUOTA_TEXT in detail.lower()
        )
        if not quota:
            raise PaymentRequiredError(
                f"{self.name}: HTTP 402: {detail} (Toggl answers 402 when the plan lacks a "
                "feature or the hourly API quota is used up)",
                detail,
            )
        resets = response.headers.get("X-Toggl-Quota-Resets-In", "").strip()
        if not (resets.isascii() and resets.isdigit()):
            raise TerminalError(
                f"{self.name}: HTTP 402: the hourly API quota is used up and Toggl did not say "
                "when it resets; run again within the hour"
            )
        seconds = int(resets)
        message = (
            f"{self.name}: HTTP 402: the hourly API quota is used up; it resets in {seconds} s"
        )
        if seconds > self._policy.max_wait:
            raise QuotaExhaustedError(f"{message}: run again then", retry_after=float(seconds))
        raise TransientError(message, retry_after=float(seconds))

    def _detail(self, response: requests.Response) -> str:
        """The answer's message in one line, never echoing the token."""
        text = response.text
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            for key in ("message", "error", "error_message"):
                if body.get(key):
                    text = str(body[key])
                    break
        elif isinstance(body, str):
            text = body
        token = self._config.api_token.get_secret_value()
        text = " ".join(text.split()).replace(token, "***") if token else " ".join(text.split())
        return text[:200] or response.reason or "no detail"


def report_range(request: PullRequest, today: date) -> tuple[date, date]:
    """First and last day to ask the report for: a spare day each side of what is needed."""
    first = request.spent_from
    last = max(first + timedelta(days=MAX_RANGE_DAYS - 3), today + timedelta(days=1))
    if request.window is not None:
        first = min(first, request.window[0])
        last = max(last, request.window[1])
    return first - timedelta(days=1), last + timedelta(days=1)


def chunks(first: date, last: date) -> Iterator[tuple[date, date]]:
    """[first, last] in spans the report takes (at most MAX_RANGE_DAYS days, both included)."""
    start = first
    while start <= last:
        end = min(start + timedelta(days=MAX_RANGE_DAYS - 1), last)
        yield start, end
        start = end + timedelta(days=1)


def wanted(spent: date, request: PullRequest) -> bool:
    if spent >= request.spent_from:
        return True
    return request.window is not None and request.window[0] <= spent <= request.window[1]
