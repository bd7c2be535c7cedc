"""A strict fake of Clockify (API v1 and Reports API v1), as one WSGI app.

The real hosts are ``https://api.clockify.me/api/v1`` and
``https://reports.api.clockify.me/v1``; here both live on one server, under
``/api/v1/...`` and ``/reports/v1/...``. It serves a ``ClockifyData``:

* every request needs ``X-Api-Key`` (else 401 with Clockify's
  ``{"message": "Full authentication is required to access this resource",
  "code": 1000}``);
* 50 requests per second per workspace (``per_second``): 429. Workspaces on
  the Free plan may also get ``free_hourly_limit`` (30 per hour for newly
  created Free workspaces);
* ``POST /reports/v1/workspaces/{ws}/reports/detailed``: the detailed report,
  ``{"totals": [...], "timeentries": [...]}``, paged with
  ``detailedFilter{page (1-based), pageSize}``; durations in seconds, money in
  cents. Unknown fields, bad enums, bad dates: 400 naming the field. On the
  Free plan the range is at most 31 days (documented). A ``dateRangeStart`` /
  ``dateRangeEnd`` without an offset is read in ``timeZone``, else in the key
  owner's profile time zone (documented); one ending in ``Z`` or an offset is
  taken as given [U];
* ``GET /api/v1/workspaces/{ws}/clients|projects|users|tags`` and
  ``.../projects/{pid}/tasks`` (``page``, ``page-size``);
* ``GET /api/v1/workspaces/{ws}/expenses`` (``{"expenses": {"expenses": [...],
  "count": N}, "dailyTotals": [...], "weeklyTotals": [...]}``), ``.../expenses/
  categories`` (``{"categories": [...], "count": N}``) and receipt downloads;
* ``PATCH /api/v1/workspaces/{ws}/time-entries/invoiced`` with
  ``{"timeEntryIds": [...], "invoiced": true}``: 200, or 403 on the Free plan.

Knobs for tests: ``fail_next``, ``edit_entry``, ``delete_entry``, ``entry``,
``invoiced_ids`` and ``calls`` (a Counter of ``"METHOD /path"``).
"""

from __future__ import annotations

import copy
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from werkzeug.wrappers import Request, Response

from sandbox.ratelimit import SlidingWindow
from sandbox.tracker_fake import Injected, TrackerFake, json_response
from sandbox.tracker_seed import CLOCKIFY_API_KEY_OWNER_INDEX, ClockifyData

if TYPE_CHECKING:
    pass

__all__ = ["SANDBOX_CLOCKIFY_KEY", "ClockifySettings", "FakeClockify"]

SANDBOX_CLOCKIFY_KEY = "sandbox-clockify-key"

DEFAULT_PAGE_SIZE = 50  # list endpoints (documented default); [U] for the detailed report
MAX_LIST_PAGE_SIZE = 5000  # [U]
MAX_REPORT_PAGE_SIZE = 1000  # [U] third-party docs say 200 to 1000
FREE_PLAN_MAX_DAYS = 31  # documented: detailed report on FREE is limited to 31 days
MAX_RANGE_DAYS = 366  # [U] paid plans
VALIDATION_CODE = 501  # [U] the code in Clockify's 400 bodies

AUTH_BODY: dict[str, Any] = {  # documented in clockify/clockify_api_docs#7
    "message": "Full authentication is required to access this resource",
    "code": 1000,
}
RATE_LIMITED_BODY: dict[str, Any] = {"message": "Too many requests", "code": 429}  # [U] code
FREE_PLAN_BODY: dict[str, Any] = {  # [U] wording and code; the 403 is documented
    "message": "Marking time entries as invoiced is not available on your current plan",
    "code": 403,
}
NO_ACCESS_BODY: dict[str, Any] = {"message": "Access Denied", "code": 403}  # [U]

_WS = r"([0-9a-f]{24})"
_LIST = re.compile(rf"^/api/v1/workspaces/{_WS}/(clients|projects|users|tags)$")
_TASKS = re.compile(rf"^/api/v1/workspaces/{_WS}/projects/([0-9a-f]{{24}})/tasks$")
_EXPENSES = re.compile(rf"^/api/v1/workspaces/{_WS}/expenses$")
_CATEGORIES = re.compile(rf"^/api/v1/workspaces/{_WS}/expenses/categories$")
_RECEIPT = re.compile(
    rf"^/api/v1/workspaces/{_WS}/expenses/([0-9a-f]{{24}})/files/([0-9a-f]{{24}})$"
)
_INVOICED = re.compile(rf"^/api/v1/workspaces/{_WS}/time-entries/invoiced$")
_DETAILED = re.compile(rf"^/reports/v1/workspaces/{_WS}/reports/detailed$")
_ANY_WS = re.compile(rf"^/(?:api|reports)/v1/workspaces/{_WS}(?:/|$)")
_DATETIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?$"
)
_INT_RE = re.compile(r"^\d{1,9}$")


@dataclass
class ClockifySettings:
    api_key: str = SANDBOX_CLOCKIFY_KEY
    paid_plan: bool = True  # marking entries invoiced needs a paid plan; Free reports span 31 days
    per_second: int = 50  # requests per second per workspace
    free_hourly_limit: int | None = None  # e.g. 30: newly created Free workspaces
    clock: Callable[[], float] = time.monotonic


class _BadRequestError(Exception):
    """A request Clockify answers with 400; the message names the field."""


def _error(status: int, message: str, code: int | None = None) -> Response:
    return json_response(status, {"message": message, "code": code if code is not None else status})


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _report_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cents(seconds: int, rate_cents: int) -> int:
    amount = Decimal(seconds) * Decimal(rate_cents) / Decimal(3600)
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _page_args(request: Request, maximum: int = MAX_LIST_PAGE_SIZE) -> tuple[int, int]:
    page_raw = request.args.get("page", "1")
    size_raw = request.args.get("page-size", str(DEFAULT_PAGE_SIZE))
    if not _INT_RE.match(page_raw) or int(page_raw) < 1:
        raise _BadRequestError("page: must be a positive integer")
    if not _INT_RE.match(size_raw) or not 1 <= int(size_raw) <= maximum:
        raise _BadRequestError(f"page-size: must be an integer between 1 and {maximum}")
    return int(page_raw), int(size_raw)


def _bool_arg(request: Request, name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise _BadRequestError(f"{name}: must be true or false")
    return raw == "true"


# --------------------------------------------------------------------------
# Detailed report filter
# --------------------------------------------------------------------------

_REPORT_FIELDS = frozenset(
    {
        "amountShown",
        "amounts",
        "approvalState",
        "archived",
        "attendanceFilter",
        "billable",
        "clients",
        "currency",
        "customFields",
        "dateFormat",
        "dateRangeEnd",
        "dateRangeStart",
        "dateRangeType",
        "description",
        "detailedFilter",
        "exportType",
        "invoicingState",
        "projects",
        "rounding",
        "sortOrder",
        "summaryFilter",
        "tags",
        "tasks",
        "timeFormat",
        "timeZone",
        "userCustomFields",
        "userGroups",
        "userLocale",
        "users",
        "weekStart",
        "weeklyFilter",
        "withoutDescription",
        "zoomLevel",
    }
)  # DetailedReportFilterV1 in Clockify's OpenAPI
_ENUMS: dict[str, tuple[str, ...]] = {
    "amountShown": ("EARNED", "COST", "PROFIT", "HIDE_AMOUNT", "EXPORT"),
    "approvalState": ("APPROVED", "UNAPPROVED", "ALL"),
    "invoicingState": ("INVOICED", "UNINVOICED", "ALL"),
    "exportType": ("JSON", "JSON_V1", "PDF", "CSV", "XLSX", "ZIP"),
    "sortOrder": ("ASCENDING", "DESCENDING"),
    "dateRangeType": (
        "ABSOLUTE",
        "TODAY",
        "YESTERDAY",
        "THIS_WEEK",
        "LAST_WEEK",
        "PAST_TWO_WEEKS",
        "THIS_MONTH",
        "LAST_MONTH",
        "THIS_YEAR",
        "LAST_YEAR",
    ),
    "weekStart": (
        "MONDAY",
        "TUESDAY",
        "WEDNESDAY",
        "THURSDAY",
        "FRIDAY",
        "SATURDAY",
        "SUNDAY",
    ),
    "zoomLevel": ("WEEK", "MONTH", "YEAR"),
}
_DETAILED_FIELDS = frozenset({"auditFilter", "options", "page", "pageSize", "sortColumn"})
_SORT_COLUMNS = (
    "ID", "DESCRIPTION", "USER", "DURATION", "DATE", "ZONED_DATE", "NATURAL", "USER_DATE",
)  # fmt: skip
_CONTAINS = ("CONTAINS", "DOES_NOT_CONTAIN", "CONTAINS_ONLY")
_ENTITY_FILTERS = ("users", "clients", "projects", "tasks", "tags", "userGroups", "currency")


@dataclass
class _EntityFilter:
    ids: frozenset[str]
    contains: str = "CONTAINS"


@dataclass
class _ReportQuery:
    start: datetime
    end: datetime
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    sort_column: str = "DATE"
    descending: bool = True  # [U] default sort order
    totals: bool = True
    amount_shown: str = "EARNED"
    approval: str = "ALL"
    invoicing: str = "ALL"
    billable: bool | None = None
    description: str | None = None
    without_description: bool = False
    entities: dict[str, _EntityFilter] = field(default_factory=dict)


def _require_type(name: str, value: object, kind: type | tuple[type, ...]) -> None:
    if isinstance(value, bool) and kind is int:
        raise _BadRequestError(f"{name}: must be an integer")
    if not isinstance(value, kind):
        label = getattr(kind, "__name__", "value")
        raise _BadRequestError(f"{name}: must be of type {label}")


def _report_datetime(name: str, raw: object, zone: ZoneInfo) -> datetime:
    if not isinstance(raw, str):
        raise _BadRequestError(f"{name}: must be a string like 2026-10-01T00:00:00.000Z")
    found = _DATETIME_RE.match(raw)
    if not found:
        raise _BadRequestError(f"{name}: must be a date-time like 2026-10-01T00:00:00.000Z")
    base, fraction, offset = found.groups()
    micros = (fraction or ".0")[1:7].ljust(6, "0")
    try:
        naive = datetime.fromisoformat(f"{base}.{micros}")
    except ValueError:
        raise _BadRequestError(f"{name}: {raw!r} is not a valid date-time") from None
    if offset is None:  # documented: read in the timeZone parameter or the user's profile
        return naive.replace(tzinfo=zone).astimezone(UTC)
    moment = datetime.fromisoformat(f"{base}.{micros}{'+00:00' if offset == 'Z' else offset}")
    return moment.astimezone(UTC)


def _entity_filter(name: str, raw: object) -> _EntityFilter | None:
    if not isinstance(raw, dict):
        raise _BadRequestError(f"{name}: must be an object with ids, contains and status")
    allowed = {"ids", "contains", "status"} | (
        {"containedInTimeentry"} if name == "tags" else set()
    )
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _BadRequestError(f"{name}.{unknown[0]}: unknown field")
    ids = raw.get("ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise _BadRequestError(f"{name}.ids: must be an array of strings")
    contains = raw.get("contains", "CONTAINS")
    if contains not in _CONTAINS:
        raise _BadRequestError(f"{name}.contains: must be one of {', '.join(_CONTAINS)}")
    status = raw.get("status", "ALL")
    if status not in ("ALL", "ACTIVE", "ARCHIVED", "ACTIVE_WITH_PENDING", "PENDING", "INACTIVE"):
        raise _BadRequestError(f"{name}.status: unknown status {status!r}")
    if not ids:
        return None
    return _EntityFilter(frozenset(ids), str(contains))


def _parse_detailed_filter(raw: object, query: _ReportQuery) -> None:
    if not isinstance(raw, dict):
        raise _BadRequestError("detailedFilter: must be an object")
    unknown = sorted(set(raw) - _DETAILED_FIELDS)
    if unknown:
        raise _BadRequestError(f"detailedFilter.{unknown[0]}: unknown field")
    page = raw.get("page", 1)
    _require_type("detailedFilter.page", page, int)
    if page < 1:
        raise _BadRequestError("detailedFilter.page: must be at least 1")
    size = raw.get("pageSize", DEFAULT_PAGE_SIZE)
    _require_type("detailedFilter.pageSize", size, int)
    if not 1 <= size <= MAX_REPORT_PAGE_SIZE:
        raise _BadRequestError(
            f"detailedFilter.pageSize: must be between 1 and {MAX_REPORT_PAGE_SIZE}"
        )
    column = raw.get("sortColumn", "DATE")
    if column not in _SORT_COLUMNS:
        raise _BadRequestError(f"detailedFilter.sortColumn: unknown value {column!r}")
    options = raw.get("options", {})
    if not isinstance(options, dict) or set(options) - {"totals"}:
        raise _BadRequestError("detailedFilter.options: only totals is allowed")
    if options.get("totals", "CALCULATE") not in ("CALCULATE", "EXCLUDE"):
        raise _BadRequestError("detailedFilter.options.totals: must be CALCULATE or EXCLUDE")
    query.page, query.page_size, query.sort_column = page, size, str(column)
    query.totals = options.get("totals", "CALCULATE") == "CALCULATE"


def _parse_report(body: object, default_zone: str, *, paid_plan: bool) -> _ReportQuery:
    if not isinstance(body, dict):
        raise _BadRequestError("body: must be a JSON object")
    unknown = sorted(set(body) - _REPORT_FIELDS)
    if unknown:
        raise _BadRequestError(f"{unknown[0]}: unknown field")
    for required in ("dateRangeStart", "dateRangeEnd", "detailedFilter"):
        if body.get(required) is None:
            raise _BadRequestError(f"{required}: must not be null")
    for name, allowed in _ENUMS.items():
        if name in body and body[name] not in allowed:
            raise _BadRequestError(f"{name}: must be one of {', '.join(allowed)}")
    if body.get("dateRangeType", "ABSOLUTE") != "ABSOLUTE":
        raise _BadRequestError("dateRangeType: the sandbox only supports ABSOLUTE")  # deviation
    if body.get("exportType", "JSON") not in ("JSON", "JSON_V1"):
        raise _BadRequestError("exportType: the sandbox only exports JSON")  # deviation
    zone_name = body.get("timeZone", default_zone)
    try:
        zone = ZoneInfo(str(zone_name))
    except (ZoneInfoNotFoundError, ValueError):
        raise _BadRequestError(f"timeZone: unknown time zone {zone_name!r}") from None
    start = _report_datetime("dateRangeStart", body["dateRangeStart"], zone)
    end = _report_datetime("dateRangeEnd", body["dateRangeEnd"], zone)
    if end < start:
        raise _BadRequestError("dateRangeEnd: must not be before dateRangeStart")
    limit = MAX_RANGE_DAYS if paid_plan else FREE_PLAN_MAX_DAYS
    if end - start > timedelta(days=limit):
        raise _BadRequestError(
            f"dateRangeEnd: the report interval is limited to {limit} days on this plan"
        )
    query = _ReportQuery(start=start, end=end)
    _parse_detailed_filter(body["detailedFilter"], query)
    _parse_report_options(body, query)
    return query


def _parse_report_options(body: dict[str, Any], query: _ReportQuery) -> None:
    for name in ("billable", "withoutDescription", "rounding", "archived"):
        if body.get(name) is not None:
            _require_type(name, body[name], bool)
    for name in ("description", "userLocale", "dateFormat", "timeFormat", "timeZone"):
        if body.get(name) is not None:
            _require_type(name, body[name], str)
    amounts = body.get("amounts", [])
    if not isinstance(amounts, list) or any(a not in _ENUMS["amountShown"] for a in amounts):
        raise _BadRequestError(f"amounts: items must be in {', '.join(_ENUMS['amountShown'])}")
    for name in _ENTITY_FILTERS:
        if body.get(name) is not None:
            parsed = _entity_filter(name, body[name])
            if parsed is not None:
                query.entities[name] = parsed
    query.billable = body.get("billable")
    query.description = body.get("description") or None
    query.without_description = bool(body.get("withoutDescription", False))
    query.amount_shown = str(body.get("amountShown", "EARNED"))
    query.approval = str(body.get("approvalState", "ALL"))
    query.invoicing = str(body.get("invoicingState", "ALL"))
    query.descending = body.get("sortOrder", "DESCENDING") == "DESCENDING"


def _entity_matches(wanted: _EntityFilter | None, values: set[str]) -> bool:
    if wanted is None:
        return True
    if wanted.contains == "DOES_NOT_CONTAIN":
        return not values & wanted.ids
    if wanted.contains == "CONTAINS_ONLY":
        return bool(values) and values <= wanted.ids
    return bool(values & wanted.ids)


# --------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------


class FakeClockify(TrackerFake):
    """The fake. Create one per test; it is a WSGI app (``serving(fake)``)."""

    def __init__(self, data: ClockifyData, settings: ClockifySettings | None = None) -> None:
        self.data = data
        self.settings = settings or ClockifySettings()
        super().__init__()  # calls, the lock and fail_next
        self._limiter = SlidingWindow(
            limit=self.settings.per_second, period=1.0, clock=self.settings.clock
        )
        self._hourly = (
            SlidingWindow(
                limit=self.settings.free_hourly_limit, period=3600.0, clock=self.settings.clock
            )
            if self.settings.free_hourly_limit is not None and not self.settings.paid_plan
            else None
        )
        self._entries: dict[str, dict[str, Any]] = {
            str(e["id"]): copy.deepcopy(e) for e in data.time_entries
        }
        self._users = {str(u["id"]): u for u in data.users}
        self._projects = {str(p["id"]): p for p in data.projects}
        self._clients = {str(c["id"]): c for c in data.clients}
        self._tasks = {str(t["id"]): t for t in data.tasks}
        self._tags = {str(t["id"]): t for t in data.tags}
        self._categories = {str(c["id"]): c for c in data.expense_categories}
        self.owner = data.users[CLOCKIFY_API_KEY_OWNER_INDEX]

    # ------------------------------------------------------------------ knobs

    def edit_entry(self, entry_id: str, **changes: Any) -> None:
        """Change fields of a time entry (``timeInterval`` is replaced whole)."""
        if "id" in changes:
            raise ValueError("an entry's id cannot change")
        with self._lock:
            if entry_id not in self._entries:
                raise KeyError(f"no time entry {entry_id}")
            self._entries[entry_id].update(copy.deepcopy(changes))

    def delete_entry(self, entry_id: str) -> None:
        with self._lock:
            if self._entries.pop(entry_id, None) is None:
                raise KeyError(f"no time entry {entry_id}")

    def entry(self, entry_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._entries[entry_id])

    def invoiced_ids(self) -> set[str]:
        with self._lock:
            return {eid for eid, e in self._entries.items() if e.get("invoiced")}

    # ------------------------------------------------------------------ WSGI

    def _injected(self, failure: Injected) -> Response:
        status = failure.status
        body = (
            RATE_LIMITED_BODY
            if status == 429 and failure.detail is None
            else {"message": failure.detail or "Error", "code": status}
        )
        return json_response(status, body, failure.retry_headers())

    def _handle(self, request: Request) -> Response:
        key = request.headers.get("X-Api-Key", "")
        if not key or not hmac.compare_digest(key.encode(), self.settings.api_key.encode()):
            return json_response(401, AUTH_BODY)
        found = _ANY_WS.match(request.path)
        bucket = found.group(1) if found else f"key:{key}"
        if self._limiter.acquire(bucket) is not None:
            return json_response(429, RATE_LIMITED_BODY)
        if self._hourly is not None and self._hourly.acquire(bucket) is not None:
            return json_response(429, RATE_LIMITED_BODY)
        try:
            return self._route(request)
        except _BadRequestError as exc:
            return _error(400, str(exc), VALIDATION_CODE)

    def _route(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == "/api/v1/user":
            return self._only(method, "GET") or json_response(200, self.owner)
        if path == "/api/v1/workspaces":
            return self._only(method, "GET") or json_response(200, [self.data.workspace])
        routes: list[tuple[re.Pattern[str], str, Callable[..., Response]]] = [
            (_DETAILED, "POST", self._detailed),
            (_LIST, "GET", self._list),
            (_TASKS, "GET", self._project_tasks),
            (_CATEGORIES, "GET", self._expense_categories),
            (_EXPENSES, "GET", self._expenses),
            (_RECEIPT, "GET", self._receipt),
            (_INVOICED, "PATCH", self._mark_invoiced),
        ]
        for pattern, allowed, handler in routes:
            found = pattern.match(path)
            if not found:
                continue
            rejected = self._only(method, allowed)
            if rejected is not None:
                return rejected
            workspace, *rest = found.groups()
            if workspace != self.data.workspace_id:
                return json_response(403, NO_ACCESS_BODY)
            return handler(request, *rest)
        return _error(404, "No static resource " + path.lstrip("/"))  # [U] wording

    @staticmethod
    def _only(method: str, allowed: str) -> Response | None:
        if method == allowed:
            return None
        response = _error(405, f"Request method '{method}' is not supported")
        response.headers["Allow"] = allowed
        return response

    # ------------------------------------------------------------- lists

    def _list(self, request: Request, resource: str) -> Response:
        page, size = _page_args(request)
        items: list[dict[str, Any]] = {
            "clients": self.data.clients,
            "projects": self.data.projects,
            "users": self.data.users,
            "tags": self.data.tags,
        }[resource]
        name = request.args.get("name")
        archived = _bool_arg(request, "archived")
        selected = [
            item
            for item in items
            if (name is None or name.lower() in str(item["name"]).lower())
            and (archived is None or bool(item.get("archived", False)) is archived)
        ]
        return json_response(200, selected[(page - 1) * size : page * size])

    def _project_tasks(self, request: Request, project_id: str) -> Response:
        page, size = _page_args(request)
        if project_id not in self._projects:
            return _error(404, "Project not found", VALIDATION_CODE)  # [U]
        tasks = [t for t in self.data.tasks if t["projectId"] == project_id]
        return json_response(200, tasks[(page - 1) * size : page * size])

    def _expense_categories(self, request: Request) -> Response:
        page, size = _page_args(request)
        archived = _bool_arg(request, "archived")
        name = request.args.get("name")
        if request.args.get("sort-column", "NAME") != "NAME":
            raise _BadRequestError("sort-column: must be NAME")
        order = request.args.get("sort-order", "ASCENDING")
        if order not in ("ASCENDING", "DESCENDING"):
            raise _BadRequestError("sort-order: must be ASCENDING or DESCENDING")
        categories = sorted(
            (
                c
                for c in self.data.expense_categories
                if (archived is None or c["archived"] is archived)
                and (name is None or name.lower() in str(c["name"]).lower())
            ),
            key=lambda c: str(c["name"]).lower(),
            reverse=order == "DESCENDING",
        )
        chunk = categories[(page - 1) * size : page * size]
        return json_response(
            200, {"categories": chunk, "count": len(categories)}
        )  # [U] count: total

    def _expenses(self, request: Request) -> Response:
        page, size = _page_args(request)
        user_id = request.args.get("user-id")
        selected = [e for e in self.data.expenses if user_id is None or e["userId"] == user_id]
        selected.sort(key=lambda e: (str(e["date"]), str(e["id"])), reverse=True)
        daily: dict[str, int] = {}
        weekly: dict[str, int] = {}
        for expense in selected:
            day = date.fromisoformat(str(expense["date"]))
            monday = day - timedelta(days=day.weekday())
            daily[day.isoformat()] = daily.get(day.isoformat(), 0) + int(expense["total"])
            weekly[monday.isoformat()] = weekly.get(monday.isoformat(), 0) + int(expense["total"])
        body = {
            "expenses": {
                "expenses": [self._hydrate(e) for e in selected[(page - 1) * size : page * size]],
                "count": len(selected),  # [U] the total, not the page's length
            },
            "dailyTotals": [
                {"date": d, "dateAsInstant": f"{d}T00:00:00Z", "total": t}
                for d, t in sorted(daily.items())
            ],
            "weeklyTotals": [{"date": d, "total": t} for d, t in sorted(weekly.items())],
        }
        return json_response(200, body)

    def _hydrate(self, expense: Mapping[str, Any]) -> dict[str, Any]:
        project = self._projects.get(str(expense["projectId"]))
        task = self._tasks.get(str(expense.get("taskId") or ""))
        category = self._categories[str(expense["categoryId"])]
        return {
            "id": expense["id"],
            "workspaceId": expense["workspaceId"],
            "userId": expense["userId"],
            "date": expense["date"],
            "billable": expense["billable"],
            "category": category,
            "project": (
                {
                    "id": project["id"],
                    "name": project["name"],
                    "clientId": project["clientId"],
                    "clientName": project["clientName"],
                    "color": project["color"],
                }
                if project
                else None
            ),
            "task": {"id": task["id"], "name": task["name"]} if task else None,
            "quantity": expense["quantity"],
            "total": expense["total"],
            "notes": expense["notes"],
            "fileId": expense["fileId"],
            "fileName": expense["fileName"],
            "locked": expense["locked"],
        }

    def _receipt(self, request: Request, expense_id: str, file_id: str) -> Response:
        expense = next((e for e in self.data.expenses if e["id"] == expense_id), None)
        if expense is None or expense.get("fileId") != file_id:
            return _error(404, "File not found", VALIDATION_CODE)  # [U]
        payload = f"%PDF-1.4\n% sandbox receipt {expense_id}\n%%EOF\n".encode()
        return Response(payload, status=200, content_type="application/pdf")

    # ----------------------------------------------------------- invoiced

    def _mark_invoiced(self, request: Request) -> Response:
        if not self.settings.paid_plan:
            return json_response(403, FREE_PLAN_BODY)
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            raise _BadRequestError("body: must be valid JSON") from None
        if not isinstance(body, dict):
            raise _BadRequestError("body: must be a JSON object")
        unknown = sorted(set(body) - {"timeEntryIds", "invoiced"})
        if unknown:
            raise _BadRequestError(f"{unknown[0]}: unknown field")
        ids = body.get("timeEntryIds")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise _BadRequestError("timeEntryIds: must be a non-empty array of strings")
        if not isinstance(body.get("invoiced"), bool):
            raise _BadRequestError("invoiced: must be a boolean")
        with self._lock:
            missing = [i for i in ids if i not in self._entries]
            if missing:
                raise _BadRequestError(f"timeEntryIds: time entry {missing[0]} does not exist")
            for entry_id in ids:
                self._entries[entry_id]["invoiced"] = body["invoiced"]
        return Response(b"", status=200)  # documented: 200 OK, no body

    # ------------------------------------------------------------- report

    def _detailed(self, request: Request) -> Response:
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            raise _BadRequestError("body: must be valid JSON") from None
        zone = str(self.owner.get("settings", {}).get("timeZone") or "UTC")
        query = _parse_report(body, zone, paid_plan=self.settings.paid_plan)
        with self._lock:
            entries = [dict(e) for e in self._entries.values()]
        selected = [e for e in entries if self._matches(e, query)]
        selected.sort(key=self._sort_key(query.sort_column), reverse=query.descending)
        chunk = selected[(query.page - 1) * query.page_size : query.page * query.page_size]
        totals: list[dict[str, Any] | None] = []
        if query.totals:
            totals = [self._totals(selected, query)] if selected else [None]
        return json_response(
            200, {"totals": totals, "timeentries": [self._render(e, query) for e in chunk]}
        )

    def _seconds(self, entry: Mapping[str, Any]) -> int:
        interval = entry["timeInterval"]
        return int((_parse_ts(interval["end"]) - _parse_ts(interval["start"])).total_seconds())

    def _matches(self, entry: Mapping[str, Any], query: _ReportQuery) -> bool:
        interval = entry["timeInterval"]
        if interval.get("end") is None:
            return False  # running timers are not reported [U]
        project = self._projects.get(str(entry.get("projectId") or ""))
        description = str(entry.get("description") or "")
        invoiced = bool(entry.get("invoiced"))
        approved = entry.get("approvalStatus") == "APPROVED"
        values = {
            "users": {str(entry["userId"])},
            "projects": {str(entry["projectId"])} if entry.get("projectId") else set(),
            "clients": {str(project["clientId"])} if project else set(),
            "tasks": {str(entry["taskId"])} if entry.get("taskId") else set(),
            "tags": {str(t) for t in entry.get("tagIds") or []},
            "userGroups": set(),
            "currency": {str((entry.get("hourlyRate") or {}).get("currency", ""))},
        }
        checks = (
            query.start <= _parse_ts(interval["start"]) <= query.end,
            query.billable is None or bool(entry["billable"]) is query.billable,
            query.approval == "ALL" or approved is (query.approval == "APPROVED"),
            query.invoicing == "ALL" or invoiced is (query.invoicing == "INVOICED"),
            query.description is None or query.description.lower() in description.lower(),
            not query.without_description or not description,
            all(_entity_matches(query.entities.get(k), v) for k, v in values.items()),
        )
        return all(checks)

    def _sort_key(self, column: str) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
        def key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
            eid = str(entry["id"])
            start = str(entry["timeInterval"]["start"])
            if column == "ID":
                return (eid,)
            if column == "DESCRIPTION":
                return (str(entry.get("description") or "").lower(), start, eid)
            if column in ("USER", "USER_DATE"):
                user = self._users.get(str(entry["userId"]))
                return (str(user["name"] if user else "").lower(), start, eid)
            if column == "DURATION":
                return (self._seconds(entry), start, eid)
            return (start, eid)

        return key

    def _money(self, entry: Mapping[str, Any]) -> tuple[int, int, str]:
        """(rate in cents, earned in cents, currency) from the entry's rate snapshot."""
        rate = entry.get("hourlyRate") or {"amount": 0, "currency": ""}
        rate_cents, currency = int(rate["amount"]), str(rate["currency"])
        earned = _cents(self._seconds(entry), rate_cents) if entry["billable"] else 0
        return rate_cents, earned, currency

    def _shown(self, earned: int, query: _ReportQuery) -> int | None:
        if query.amount_shown == "HIDE_AMOUNT":
            return None
        if query.amount_shown == "COST":
            return 0  # the seed has no cost rates
        return earned  # EARNED, PROFIT (cost is 0) and EXPORT

    def _render(self, entry: Mapping[str, Any], query: _ReportQuery) -> dict[str, Any]:
        interval = entry["timeInterval"]
        seconds = self._seconds(entry)
        rate_cents, earned, currency = self._money(entry)
        user = self._users.get(str(entry["userId"]))
        project = self._projects.get(str(entry.get("projectId") or ""))
        task = self._tasks.get(str(entry.get("taskId") or ""))
        return {
            "_id": entry["id"],
            "description": entry.get("description") or "",
            "userId": entry["userId"],
            "timeInterval": {
                "start": _report_ts(_parse_ts(interval["start"])),
                "end": _report_ts(_parse_ts(interval["end"])),
                "duration": seconds,  # seconds here, ISO 8601 in the time entry API
            },
            "billable": entry["billable"],
            "projectId": entry.get("projectId"),
            "taskId": entry.get("taskId"),
            "tagIds": list(entry.get("tagIds") or []) or None,
            "approvalRequestId": entry.get("approvalRequestId"),
            "type": entry.get("type", "REGULAR"),
            "isLocked": entry.get("isLocked", False),
            "currency": currency,
            "amount": self._shown(earned, query),
            "rate": rate_cents,
            "earnedAmount": earned,
            "earnedRate": rate_cents,
            "costAmount": 0,
            "costRate": 0,
            "hourlyRate": {"amount": rate_cents, "currency": currency},
            "invoicingState": "INVOICED" if entry.get("invoiced") else "UNINVOICED",  # [U]
            "userName": user["name"] if user else "",
            "userEmail": user["email"] if user else "",
            "projectName": project["name"] if project else "",
            "projectColor": project["color"] if project else "",
            "clientName": project["clientName"] if project else "",
            "clientId": project["clientId"] if project else "",
            "taskName": task["name"] if task else "",
            "tags": [
                {"id": t, "name": self._tags[t]["name"]}
                for t in entry.get("tagIds") or []
                if t in self._tags
            ],
            "customFields": [],
        }

    def _totals(self, selected: list[dict[str, Any]], query: _ReportQuery) -> dict[str, Any]:
        total_time = billable_time = 0
        by_currency: dict[str, int] = {}
        for entry in selected:
            seconds = self._seconds(entry)
            total_time += seconds
            if entry["billable"]:
                billable_time += seconds
            _rate, earned, currency = self._money(entry)
            by_currency[currency] = by_currency.get(currency, 0) + earned
        earned_total = sum(by_currency.values())
        shown = self._shown(earned_total, query)
        currencies = [{"currency": c, "amount": a} for c, a in sorted(by_currency.items())]
        return {
            "_id": "",
            "totalTime": total_time,
            "totalBillableTime": billable_time,
            "entriesCount": len(selected),
            "totalAmount": shown,
            "totalAmountByCurrencies": currencies,  # [U] name
            "amounts": (
                []
                if shown is None
                else [
                    {
                        "type": query.amount_shown,
                        "value": shown,
                        "amountByCurrencies": currencies,
                    }
                ]
            ),
        }
