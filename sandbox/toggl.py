"""A strict fake of Toggl Track (API v9 and Reports API v3), as a WSGI app.

It serves a ``TogglData`` the way https://api.track.toggl.com would:

* HTTP Basic auth with ``<api_token>:api_token`` only; anything else is 403
  (Toggl answers 403, not 401, when authentication fails);
* a leaky bucket per token (``per_second`` with a small ``burst``): 429;
* the hourly quota per user per organisation (``hourly_quota``; requests
  under ``/api/v9/me`` have their own ``me_hourly_quota``, 30 on every plan):
  402, with ``X-Toggl-Quota-Remaining`` / ``X-Toggl-Quota-Resets-In`` on every
  answer. The window starts with the first request and lasts 60 minutes;
* ``POST /reports/api/v3/workspace/{wid}/search/time_entries``: the detailed
  report. Rows carry ``row_number``; when more rows follow, the answer has
  ``X-Next-ID``, ``X-Next-Row-Number`` (and ``X-Next-Timestamp``), which go
  back in the next body as ``first_id`` / ``first_row_number``. Unknown body
  fields, bad dates and bad types are 400;
* ``GET /api/v9/me/time_entries`` (the token owner's entries only; ``since``
  also returns deleted ones, with ``server_deleted_at`` set);
* workspace lists: clients, projects, project_users, tasks, users, tags;
* ``GET /api/v9/workspaces/{wid}/timesheet_setups``: 402 unless premium;
* ``PATCH /api/v9/workspaces/{wid}/time_entries/{ids}`` with a JSON Patch
  array (e.g. add ``/tags``); unknown tag names are created. The answer is
  ``{"success": [ids], "failure": [{"id", "message"}]}``.

Error bodies are plain text, as Toggl's are [U: observed on v8; the v9 and
Reports v3 wording is the sandbox's own].

Knobs for tests: ``fail_next``, ``edit_entry``, ``delete_entry``,
``tags_of``, ``entry``, ``server_time`` and ``calls`` (a Counter of
``"METHOD /path"`` for every request that reached the app).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from sandbox.tracker_fake import Injected, TrackerFake, json_response
from sandbox.tracker_seed import TogglData

if TYPE_CHECKING:
    pass

__all__ = [
    "SANDBOX_TOGGL_CREDENTIAL",
    "SANDBOX_TOGGL_TOKEN",
    "FakeToggl",
    "LeakyBucket",
    "TogglSettings",
]

#: The API token the fake accepts unless settings say otherwise.
SANDBOX_TOGGL_CREDENTIAL = "sandbox-toggl-token"
SANDBOX_TOGGL_TOKEN = SANDBOX_TOGGL_CREDENTIAL
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"

DEFAULT_PAGE_SIZE = 50  # toggl-python's DEFAULT_PAGE_SIZE for the detailed report
MAX_PAGE_SIZE = 1000  # [U] no source gives the maximum
MAX_RANGE_DAYS = 366  # [U] Reports v2 documented one year; assumed for v3
MAX_PATCH_IDS = 100  # third-party docs: bulk edits take 1 to 100 time entries
QUOTA_WINDOW_SECONDS = 3600.0

AUTH_FAILED_TEXT = "Incorrect username and/or password"  # [U] wording
NO_ACCESS_TEXT = "User does not have access to this resource."  # documented (approvals)
PREMIUM_APPROVALS_TEXT = "Approvals are a premium feature"  # documented (timesheet_setups)
QUOTA_TEXT = (  # [U] wording; the status (402) and the headers are documented
    "You have hit your hourly limit for API calls. Please wait before making more requests "
    "or upgrade your plan."
)
RATE_LIMITED_TEXT = "Too Many Requests"  # [U] wording; the status (429) is documented

_STATUS_TEXT = {
    400: "Bad Request",
    402: "Payment Required",
    403: "Forbidden",
    404: "404 page not found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT_RE = re.compile(r"^\d{1,18}$")
_UPDATE_TICK = timedelta(seconds=1)

_REPORT = re.compile(r"^/reports/api/v3/workspace/(\d{1,18})/search/time_entries$")
_WS_LIST = re.compile(
    r"^/api/v9/workspaces/(\d{1,18})/(clients|projects|project_users|tasks|users|tags)$"
)
_PROJECT_TASKS = re.compile(r"^/api/v9/workspaces/(\d{1,18})/projects/(\d{1,18})/tasks$")
_SETUPS = re.compile(r"^/api/v9/workspaces/(\d{1,18})/timesheet_setups$")
_PATCH_ENTRIES = re.compile(r"^/api/v9/workspaces/(\d{1,18})/time_entries/([^/]+)$")


# --------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------


@dataclass
class LeakyBucket:
    """A leaky bucket per key: holds ``capacity`` requests and drains ``rate`` per second."""

    rate: float
    capacity: int
    clock: Callable[[], float] = time.monotonic
    _levels: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def acquire(self, key: str) -> float | None:
        """Pour one request in. None if it fits, else the seconds until it would."""
        now = self.clock()
        with self._lock:
            level, then = self._levels.get(key, (0.0, now))
            level = max(0.0, level - (now - then) * self.rate)
            if level + 1 > self.capacity:
                self._levels[key] = (level, now)
                return (level + 1 - self.capacity) / self.rate
            self._levels[key] = (level + 1, now)
            return None


@dataclass
class _HourlyQuota:
    """A fixed window per key that opens with the first request and lasts an hour."""

    limit: int
    clock: Callable[[], float]
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, key: str) -> tuple[bool, int, int]:
        """(allowed, remaining, seconds until the window resets)."""
        now = self.clock()
        with self._lock:
            opened, used = self._windows.get(key, (now, 0))
            if now - opened >= QUOTA_WINDOW_SECONDS:
                opened, used = now, 0
            resets_in = max(0, math.ceil(opened + QUOTA_WINDOW_SECONDS - now))
            if used >= self.limit:
                self._windows[key] = (opened, used)
                return False, 0, resets_in
            used += 1
            self._windows[key] = (opened, used)
            return True, self.limit - used, resets_in


@dataclass
class TogglSettings:
    api_token: str = SANDBOX_TOGGL_CREDENTIAL
    premium: bool = False  # approvals (timesheet_setups) need Premium
    hourly_quota: int = 600  # per user per organisation per hour (Premium: 600)
    me_hourly_quota: int = 30  # /api/v9/me...: 30 per hour on every plan
    per_second: float = 1.0  # leaky bucket drain rate ("a safe window is 1 request per second")
    burst: int = 3  # [U] bucket size
    clock: Callable[[], float] = time.monotonic


# --------------------------------------------------------------------------
# Responses and parsing helpers
# --------------------------------------------------------------------------


class _BadRequestError(Exception):
    """A request Toggl would answer with 400 (the message is the body)."""


def _text(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(message.encode("utf-8"), status=status, content_type=TEXT_CONTENT_TYPE)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _format_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _date_only(name: str, raw: object) -> date:
    if not isinstance(raw, str) or not _DATE_RE.match(raw):
        raise _BadRequestError(f"Invalid {name}: expected a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _BadRequestError(f"Invalid {name}: {raw!r} is not a date") from None


def _date_or_rfc3339(name: str, raw: str) -> datetime:
    """``YYYY-MM-DD`` (UTC midnight) or an RFC 3339 time, as /me/time_entries takes."""
    if _DATE_RE.match(raw):
        day = _date_only(name, raw)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _BadRequestError(f"Invalid {name}") from None
    if moment.tzinfo is None:
        raise _BadRequestError(f"Invalid {name}: RFC 3339 times need an offset")
    return moment.astimezone(UTC)


def _int_field(name: str, raw: object, minimum: int = 0) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
        raise _BadRequestError(f"Invalid {name}: expected an integer >= {minimum}")
    return raw


def _bool_field(name: str, raw: object) -> bool:
    if not isinstance(raw, bool):
        raise _BadRequestError(f"Invalid {name}: expected a boolean")
    return raw


def _id_list(name: str, raw: object, *, nullable: bool) -> list[int | None]:
    """A list of ids; ``[null]`` selects entries without one (clients, projects, ...)."""
    if not isinstance(raw, list):
        raise _BadRequestError(f"Invalid {name}: expected an array of integers")
    out: list[int | None] = []
    for item in raw:
        if item is None and nullable:
            out.append(None)
        elif isinstance(item, int) and not isinstance(item, bool) and item > 0:
            out.append(item)
        else:
            raise _BadRequestError(f"Invalid {name}: expected an array of integers")
    return out


def _among(wanted: list[int | None] | None, value: Any) -> bool:
    return wanted is None or value in wanted


def _cents(seconds: int, rate_cents: int) -> int:
    """seconds × rate per hour, in cents, rounded half up (exact for the seeded data)."""
    amount = Decimal(seconds) * Decimal(rate_cents) / Decimal(3600)
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------
# The detailed report query
# --------------------------------------------------------------------------

_REPORT_FIELDS = frozenset(
    {
        "billable",
        "client_ids",
        "description",
        "end_date",
        "enrich_response",
        "first_id",
        "first_row_number",
        "first_timestamp",
        "group_ids",
        "grouped",
        "hide_amounts",
        "max_duration_seconds",
        "min_duration_seconds",
        "order_by",
        "order_dir",
        "page_size",
        "postedFields",
        "project_ids",
        "rounding",
        "rounding_minutes",
        "startTime",
        "start_date",
        "tag_ids",
        "task_ids",
        "time_entry_ids",
        "user_ids",
    }
)
_ORDER_BY = ("date", "user", "duration", "description", "last_update")  # [U] value list


@dataclass
class _ReportQuery:
    start: date
    end: date
    page_size: int = DEFAULT_PAGE_SIZE
    first_id: int | None = None
    first_row_number: int | None = None
    billable: bool | None = None
    client_ids: list[int | None] | None = None
    project_ids: list[int | None] | None = None
    task_ids: list[int | None] | None = None
    tag_ids: list[int | None] | None = None
    user_ids: list[int | None] | None = None
    time_entry_ids: list[int | None] | None = None
    group_ids: list[int | None] | None = None  # the seed has no groups: any id matches nothing
    description: str | None = None
    min_seconds: int | None = None
    max_seconds: int | None = None
    grouped: bool = False
    hide_amounts: bool = False
    order_by: str = "date"
    descending: bool = True  # [U] default order


def _parse_report_query(body: object) -> _ReportQuery:
    if not isinstance(body, dict):
        raise _BadRequestError("Invalid request body: expected a JSON object")
    unknown = sorted(set(body) - _REPORT_FIELDS)
    if unknown:
        raise _BadRequestError(f"Unknown field: {unknown[0]}")
    for required in ("start_date", "end_date"):
        if body.get(required) is None:
            raise _BadRequestError(f"{required} is required")
    query = _ReportQuery(
        start=_date_only("start_date", body["start_date"]),
        end=_date_only("end_date", body["end_date"]),
    )
    if query.end < query.start:
        raise _BadRequestError("end_date must not be earlier than start_date")
    if (query.end - query.start).days >= MAX_RANGE_DAYS:
        raise _BadRequestError(f"The date range cannot exceed {MAX_RANGE_DAYS} days")
    _parse_report_options(body, query)
    return query


def _parse_report_options(body: dict[str, Any], query: _ReportQuery) -> None:
    present = {k: v for k, v in body.items() if v is not None}
    _parse_report_paging(present, query)
    _parse_report_filters(present, query)
    _parse_report_order(present, query)


def _parse_report_paging(present: dict[str, Any], query: _ReportQuery) -> None:
    if "page_size" in present:
        query.page_size = _int_field("page_size", present["page_size"], minimum=1)
        if query.page_size > MAX_PAGE_SIZE:
            raise _BadRequestError(f"Invalid page_size: at most {MAX_PAGE_SIZE}")
    if "first_id" in present:
        query.first_id = _int_field("first_id", present["first_id"], minimum=1)
    if "first_row_number" in present:
        query.first_row_number = _int_field(
            "first_row_number", present["first_row_number"], minimum=1
        )
    for name in ("first_timestamp", "rounding", "rounding_minutes"):
        if name in present:  # [U] accepted; rounding is not applied
            _int_field(name, present[name])
    for name in ("grouped", "hide_amounts"):
        if name in present:
            setattr(query, name, _bool_field(name, present[name]))
    if "enrich_response" in present:  # [U] accepted; the rows are the same either way
        _bool_field("enrich_response", present["enrich_response"])


def _parse_report_filters(present: dict[str, Any], query: _ReportQuery) -> None:
    if "min_duration_seconds" in present:
        query.min_seconds = _int_field("min_duration_seconds", present["min_duration_seconds"])
    if "max_duration_seconds" in present:
        query.max_seconds = _int_field("max_duration_seconds", present["max_duration_seconds"])
    if "billable" in present:
        query.billable = _bool_field("billable", present["billable"])
    for name in ("client_ids", "project_ids", "task_ids", "tag_ids"):
        if name in present:
            setattr(query, name, _id_list(name, present[name], nullable=True))
    for name in ("user_ids", "time_entry_ids", "group_ids"):
        if name in present:
            setattr(query, name, _id_list(name, present[name], nullable=False))
    for name in ("description", "startTime"):
        if name in present and not isinstance(present[name], str):
            raise _BadRequestError(f"Invalid {name}: expected a string")
    query.description = present.get("description")
    posted = present.get("postedFields", [])
    if not (isinstance(posted, list) and all(isinstance(x, str) for x in posted)):
        raise _BadRequestError("Invalid postedFields: expected an array of strings")


def _parse_report_order(present: dict[str, Any], query: _ReportQuery) -> None:
    if "order_by" in present:
        if present["order_by"] not in _ORDER_BY:
            raise _BadRequestError(f"Invalid order_by: expected one of {', '.join(_ORDER_BY)}")
        query.order_by = str(present["order_by"])
    if "order_dir" in present:
        direction = present["order_dir"]
        if not isinstance(direction, str) or direction.upper() not in ("ASC", "DESC"):
            raise _BadRequestError("Invalid order_dir: expected ASC or DESC")
        query.descending = direction.upper() == "DESC"


# --------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------


class FakeToggl(TrackerFake):
    """The fake. Create one per test; it is a WSGI app (``serving(fake)``)."""

    def __init__(self, data: TogglData, settings: TogglSettings | None = None) -> None:
        self.data = data
        self.settings = settings or TogglSettings()
        super().__init__()  # calls, the lock and fail_next
        self._bucket = LeakyBucket(
            rate=self.settings.per_second, capacity=self.settings.burst, clock=self.settings.clock
        )
        self._org_quota = _HourlyQuota(self.settings.hourly_quota, self.settings.clock)
        self._me_quota = _HourlyQuota(self.settings.me_hourly_quota, self.settings.clock)
        self._entries: dict[int, dict[str, Any]] = {
            int(e["id"]): copy.deepcopy(e) for e in data.time_entries
        }
        self._tags: dict[int, dict[str, Any]] = {int(t["id"]): copy.deepcopy(t) for t in data.tags}
        self._users = {int(u["id"]): u for u in data.users}
        self._projects = {int(p["id"]): p for p in data.projects}
        self._tasks = {int(t["id"]): t for t in data.tasks}
        self._clients = {int(c["id"]): c for c in data.clients}
        self._member_rates = {
            (int(pu["project_id"]), int(pu["user_id"])): pu.get("rate") for pu in data.project_users
        }
        self.owner_id = int(data.users[0]["id"])
        latest = max(
            (_parse_ts(str(e["at"])) for e in data.time_entries),
            default=datetime(2000, 1, 1, tzinfo=UTC),
        )
        self._updated_clock = latest.replace(microsecond=0) + timedelta(hours=1)

    # ------------------------------------------------------------------ knobs

    def server_time(self) -> datetime:
        """The fake's "now" for ``at`` stamps: every change moves it one second on."""
        with self._lock:
            return self._updated_clock

    def edit_entry(self, entry_id: int, **changes: Any) -> None:
        """Change fields of an entry and move its ``at`` forward.

        ``tags`` (names) also sets ``tag_ids`` (creating unknown tags), a new
        ``start``/``stop`` recomputes ``duration``, and ``project_id`` /
        ``task_id`` / ``user_id`` keep the legacy ``pid`` / ``tid`` / ``uid``.
        """
        if "id" in changes:
            raise ValueError("an entry's id cannot change")
        with self._lock:
            entry = self._entries.get(entry_id)
            if entry is None:
                raise KeyError(f"no time entry {entry_id}")
            entry.update(copy.deepcopy(changes))
            if "tags" in changes and "tag_ids" not in changes:
                entry["tags"] = sorted(set(changes["tags"] or []))
                entry["tag_ids"] = sorted(self._tag_id(name) for name in entry["tags"])
            if ("start" in changes or "stop" in changes) and "duration" not in changes:
                if entry.get("stop"):
                    seconds = _parse_ts(str(entry["stop"])) - _parse_ts(str(entry["start"]))
                    entry["duration"] = int(seconds.total_seconds())
                else:
                    entry["duration"] = -int(_parse_ts(str(entry["start"])).timestamp())
            for new, legacy in (("project_id", "pid"), ("task_id", "tid"), ("user_id", "uid")):
                if new in changes:
                    entry[legacy] = changes[new]
            if "at" not in changes:
                entry["at"] = self._tick()

    def delete_entry(self, entry_id: int) -> None:
        """Delete an entry: it leaves reports and lists; ``since`` pulls still see it."""
        with self._lock:
            entry = self._entries.get(entry_id)
            if entry is None or entry.get("server_deleted_at"):
                raise KeyError(f"no time entry {entry_id}")
            stamp = self._tick()
            entry["server_deleted_at"] = stamp
            entry["at"] = stamp

    def tags_of(self, entry_id: int) -> list[str]:
        with self._lock:
            return list(self._entries[entry_id].get("tags") or [])

    def entry(self, entry_id: int) -> dict[str, Any]:
        """A copy of an entry as the fake currently holds it."""
        with self._lock:
            return copy.deepcopy(self._entries[entry_id])

    def tags(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._tags.values()))

    def _tick(self) -> str:
        self._updated_clock += _UPDATE_TICK
        return _format_ts(self._updated_clock)

    def _tag_id(self, name: str) -> int:
        """The id of a tag by name, creating it as Toggl does for unknown names."""
        for tag in self._tags.values():
            if tag["name"] == name and not tag.get("deleted_at"):
                return int(tag["id"])
        tag_id = max(self._tags, default=0) + 1
        self._tags[tag_id] = {
            "id": tag_id,
            "workspace_id": self.data.workspace_id,
            "name": name,
            "at": self._tick(),
            "creator_id": self.owner_id,
            "deleted_at": None,
        }
        return tag_id

    # ------------------------------------------------------------------ WSGI

    def _injected(self, failure: Injected) -> Response:
        text = failure.detail or _STATUS_TEXT.get(failure.status, "Error")
        return _text(failure.status, text, failure.retry_headers())

    def _handle(self, request: Request) -> Response:
        if not self._authenticated(request):
            return _text(403, AUTH_FAILED_TEXT)
        if self._bucket.acquire(self.settings.api_token) is not None:
            return _text(429, RATE_LIMITED_TEXT)  # [U] no Retry-After documented
        quota = self._me_quota if request.path.startswith("/api/v9/me") else self._org_quota
        allowed, remaining, resets_in = quota.acquire(str(self.owner_id))
        quota_headers = {
            "X-Toggl-Quota-Remaining": str(remaining),
            "X-Toggl-Quota-Resets-In": str(resets_in),
        }
        if not allowed:
            return _text(402, QUOTA_TEXT, quota_headers)
        try:
            response = self._route(request)
        except _BadRequestError as exc:
            response = _text(400, str(exc))
        for key, value in quota_headers.items():
            response.headers[key] = value
        return response

    def _authenticated(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, marker = decoded.partition(":")
        return (
            bool(sep)
            and marker == "api_token"
            and hmac.compare_digest(user.encode(), self.settings.api_token.encode())
        )

    # ---------------------------------------------------------------- routing

    def _route(self, request: Request) -> Response:
        path, method = request.path, request.method
        routes: list[tuple[re.Pattern[str] | str, str, Callable[..., Response]]] = [
            ("/api/v9/me", "GET", self._me),
            ("/api/v9/me/time_entries", "GET", self._me_time_entries),
            (_REPORT, "POST", self._report),
            (_WS_LIST, "GET", self._workspace_list),
            (_PROJECT_TASKS, "GET", self._project_tasks),
            (_SETUPS, "GET", self._timesheet_setups),
            (_PATCH_ENTRIES, "PATCH", self._patch_entries),
        ]
        for pattern, allowed, handler in routes:
            if isinstance(pattern, str):
                match_args: tuple[str, ...] | None = () if path == pattern else None
            else:
                found = pattern.match(path)
                match_args = found.groups() if found else None
            if match_args is None:
                continue
            if method != allowed:
                response = _text(405, "Method Not Allowed")
                response.headers["Allow"] = allowed
                return response
            if match_args and int(match_args[0]) != self.data.workspace_id:
                return _text(403, NO_ACCESS_TEXT)
            return handler(request, *match_args[1:])
        return _text(404, _STATUS_TEXT[404])

    # -------------------------------------------------------------- /me

    def _me(self, request: Request) -> Response:
        user = self._users[self.owner_id]
        return json_response(
            200,
            {
                **user,
                "api_token": self.settings.api_token,
                "default_workspace_id": self.data.workspace_id,
                "has_password": True,
                "openid_enabled": False,
            },
        )

    def _me_time_entries(self, request: Request) -> Response:
        args = request.args
        since: int | None = None
        if "since" in args:
            if not _INT_RE.match(args["since"]):
                raise _BadRequestError("Invalid since: expected a unix timestamp")
            since = int(args["since"])
        if ("start_date" in args) != ("end_date" in args):
            raise _BadRequestError("start_date and end_date must be used together")
        lo = _date_or_rfc3339("start_date", args["start_date"]) if "start_date" in args else None
        hi = _date_or_rfc3339("end_date", args["end_date"]) if "end_date" in args else None
        before = _date_or_rfc3339("before", args["before"]) if "before" in args else None
        if lo is not None and hi is not None and hi < lo:
            raise _BadRequestError("end_date must not be earlier than start_date")
        meta = args.get("meta") == "true"
        with self._lock:
            entries = [copy.deepcopy(e) for e in self._entries.values()]
        out = []
        for entry in entries:
            if int(entry["user_id"]) != self.owner_id:
                continue
            if since is not None:
                if _parse_ts(str(entry["at"])).timestamp() < since:
                    continue
            elif entry.get("server_deleted_at"):
                continue
            started = _parse_ts(str(entry["start"]))
            if (lo is not None and started < lo) or (hi is not None and started >= hi):
                continue
            if before is not None and started >= before:
                continue
            if meta:
                entry.update(self._meta(entry))
            out.append(entry)
        out.sort(key=lambda e: (str(e["start"]), int(e["id"])), reverse=True)
        return json_response(200, out)

    def _meta(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        project = self._projects.get(int(entry["project_id"] or 0))
        client = self._clients.get(int(project["client_id"] or 0)) if project else None
        task = self._tasks.get(int(entry["task_id"] or 0))
        user = self._users.get(int(entry["user_id"]))
        return {
            "project_name": project["name"] if project else None,
            "project_color": project["color"] if project else None,
            "project_active": project["active"] if project else None,
            "project_billable": project["billable"] if project else None,
            "client_name": client["name"] if client else None,
            "task_name": task["name"] if task else None,
            "user_name": user["fullname"] if user else None,
            "user_avatar_url": user["image_url"] if user else None,
        }

    # ------------------------------------------------------------ workspace

    def _workspace_list(self, request: Request, resource: str) -> Response:
        if resource == "tags":
            with self._lock:
                return json_response(
                    200, [t for t in self._tags.values() if not t.get("deleted_at")]
                )
        if resource == "users":
            return json_response(200, list(self._users.values()))
        if resource == "tasks":  # [U] the paged envelope of GET /workspaces/{wid}/tasks
            tasks = list(self._tasks.values())
            return json_response(
                200,
                {
                    "data": tasks,
                    "page": 1,
                    "per_page": len(tasks),
                    "sort_field": "name",
                    "sort_order": "ASC",
                    "total_count": len(tasks),
                },
            )
        items: dict[str, list[dict[str, Any]]] = {
            "clients": self.data.clients,
            "projects": self.data.projects,
            "project_users": self.data.project_users,
        }
        return json_response(200, items[resource])

    def _project_tasks(self, request: Request, project_id: str) -> Response:
        if int(project_id) not in self._projects:
            return _text(404, "Project not found")
        return json_response(
            200, [t for t in self._tasks.values() if t["project_id"] == int(project_id)]
        )

    def _timesheet_setups(self, request: Request) -> Response:
        if not self.settings.premium:
            return _text(402, PREMIUM_APPROVALS_TEXT)
        return json_response(200, self.data.timesheet_setups)  # [U] a bare array, not {"data": ...}

    # ---------------------------------------------------------------- PATCH

    def _patch_entries(self, request: Request, raw_ids: str) -> Response:
        parts = raw_ids.split(",")
        if not parts or not all(_INT_RE.match(p) for p in parts):
            raise _BadRequestError("Invalid value as time entry IDs")
        ids = list(dict.fromkeys(int(p) for p in parts))
        if len(ids) > MAX_PATCH_IDS:
            raise _BadRequestError(f"PATCH request is limited to {MAX_PATCH_IDS} entries at once")
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            raise _BadRequestError("Invalid JSON body") from None
        operations = _parse_patch(body)
        success: list[int] = []
        failure: list[dict[str, Any]] = []
        with self._lock:
            for entry_id in ids:
                entry = self._entries.get(entry_id)
                if entry is None or entry.get("server_deleted_at"):
                    failure.append({"id": entry_id, "message": "Time entry not found"})  # [U]
                    continue
                for op, target, value in operations:
                    self._apply(entry, op, target, value)
                entry["at"] = self._tick()
                success.append(entry_id)
        return json_response(200, {"success": success, "failure": failure})

    def _apply(self, entry: dict[str, Any], op: str, target: str, value: Any) -> None:
        if target == "/tags":
            current = set(entry.get("tags") or [])
            names = set(value or [])
            new = current | names if op == "add" else current - names if op == "remove" else names
            entry["tags"] = sorted(new)
            entry["tag_ids"] = sorted(self._tag_id(name) for name in entry["tags"])
        elif target == "/tag_ids":
            known = {int(t["id"]): t["name"] for t in self._tags.values()}
            current_ids = set(entry.get("tag_ids") or [])
            chosen = {int(v) for v in value or []}
            new_ids = (
                current_ids | chosen
                if op == "add"
                else current_ids - chosen
                if op == "remove"
                else chosen
            )
            entry["tag_ids"] = sorted(i for i in new_ids if i in known)
            entry["tags"] = sorted(known[i] for i in entry["tag_ids"])
        else:
            name = target.removeprefix("/")
            entry[name] = value
            legacy = {"project_id": "pid", "task_id": "tid"}.get(name)
            if legacy:
                entry[legacy] = value

    # --------------------------------------------------------------- report

    def _report(self, request: Request) -> Response:
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            raise _BadRequestError("Invalid JSON body") from None
        query = _parse_report_query(body)
        with self._lock:  # shallow copies: rendering reads, never writes, nested values
            entries = [dict(e) for e in self._entries.values()]
        selected = [e for e in entries if self._matches(e, query)]
        selected.sort(key=self._sort_key(query.order_by), reverse=query.descending)
        rows = self._group(selected) if query.grouped else [[e] for e in selected]

        start = query.first_row_number - 1 if query.first_row_number else 0
        if query.first_id is not None:
            start = next(
                (i for i, row in enumerate(rows) if int(row[0]["id"]) == query.first_id), start
            )
        first_number = query.first_row_number or start + 1
        page = rows[start : start + query.page_size]
        body_rows = [self._render_row(row, first_number + i, query) for i, row in enumerate(page)]
        headers: dict[str, str] = {}
        following = start + query.page_size
        if page and following < len(rows):
            nxt = rows[following][0]
            headers = {
                "X-Next-ID": str(nxt["id"]),
                "X-Next-Row-Number": str(first_number + len(page)),
                # [U] not in the docs; clients read it alongside the two above
                "X-Next-Timestamp": str(int(_parse_ts(str(nxt["start"])).timestamp())),
            }
        return json_response(200, body_rows, headers)

    def _matches(self, entry: Mapping[str, Any], query: _ReportQuery) -> bool:
        # Deleted entries and running timers are not reported [U: running timers].
        if entry.get("server_deleted_at") or int(entry["duration"]) < 0:
            return False
        project = self._projects.get(int(entry["project_id"] or 0))
        seconds = int(entry["duration"])
        tag_ids = set(entry.get("tag_ids") or [])
        wanted_tags = query.tag_ids
        checks = (
            query.start <= _parse_ts(str(entry["start"])).date() <= query.end,
            query.billable is None or bool(entry["billable"]) is query.billable,
            _among(query.project_ids, entry["project_id"]),
            _among(query.client_ids, project["client_id"] if project else None),
            _among(query.task_ids, entry["task_id"]),
            _among(query.user_ids, entry["user_id"]),
            _among(query.time_entry_ids, entry["id"]),
            not query.group_ids,
            wanted_tags is None
            or bool(tag_ids & set(wanted_tags))
            or (None in wanted_tags and not tag_ids),
            query.min_seconds is None or seconds >= query.min_seconds,
            query.max_seconds is None or seconds <= query.max_seconds,
            not query.description
            or query.description.lower() in str(entry.get("description") or "").lower(),
        )
        return all(checks)

    def _sort_key(self, order_by: str) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
        def key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
            eid = int(entry["id"])
            if order_by == "user":
                user = self._users.get(int(entry["user_id"]))
                return (str(user["fullname"] if user else "").lower(), str(entry["start"]), eid)
            if order_by == "duration":
                return (int(entry["duration"]), eid)
            if order_by == "description":
                return (str(entry.get("description") or "").lower(), eid)
            if order_by == "last_update":
                return (str(entry["at"]), eid)
            return (str(entry["start"]), eid)

        return key

    def _rate(self, entry: Mapping[str, Any]) -> tuple[int, str]:
        """Rate in cents and currency: member, then project, then workspace [U: order]."""
        workspace = self.data.workspace
        default = int(workspace["default_hourly_rate"]) * 100
        currency = str(workspace["default_currency"])
        project = self._projects.get(int(entry["project_id"] or 0))
        if project is None:
            return default, currency
        currency = str(project.get("currency") or currency)
        member = self._member_rates.get((int(project["id"]), int(entry["user_id"])))
        if member is not None:
            return int(member) * 100, currency
        if project.get("rate") is not None:
            return int(project["rate"]) * 100, currency
        return default, currency

    def _group(self, entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """``grouped``: one row per user, project, task, billable, description, tags and rate."""
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for entry in entries:
            key = (
                entry["user_id"],
                entry["project_id"],
                entry["task_id"],
                entry["billable"],
                entry.get("description"),
                tuple(entry.get("tag_ids") or []),
                self._rate(entry),
            )
            groups.setdefault(key, []).append(entry)
        return list(groups.values())

    def _render_row(
        self, row: list[dict[str, Any]], number: int, query: _ReportQuery
    ) -> dict[str, Any]:
        head = row[0]
        rate_cents, currency = self._rate(head)
        user = self._users.get(int(head["user_id"]))
        amount: int | None = None
        if head["billable"]:
            amount = sum(_cents(int(e["duration"]), rate_cents) for e in row)
        return {
            "user_id": head["user_id"],
            "username": user["fullname"] if user else "",
            "project_id": head["project_id"],
            "task_id": head["task_id"],
            "billable": head["billable"],
            "description": head.get("description"),
            "tag_ids": list(head.get("tag_ids") or []),
            "billable_amount_in_cents": None if query.hide_amounts else amount,
            "hourly_rate_in_cents": None if query.hide_amounts else rate_cents,
            "currency": currency,
            "time_entries": [
                {
                    "id": e["id"],
                    "seconds": e["duration"],
                    "start": e["start"],
                    "stop": e["stop"],
                    "at": e["at"],
                    "at_tz": e["at"],
                }
                for e in row
            ],
            "row_number": number,
        }


_PATCH_PATHS = {
    "/tags": ("add", "remove", "replace"),
    "/tag_ids": ("add", "remove", "replace"),
    "/billable": ("replace",),
    "/description": ("replace",),
    "/project_id": ("replace",),
    "/task_id": ("replace",),
}  # [U] the fields the bulk PATCH accepts; Toggl's full list is longer


def _parse_patch(body: object) -> list[tuple[str, str, Any]]:
    """Validate a JSON Patch array; messages follow Toggl's documented 400 list."""
    if not isinstance(body, list) or not body:
        raise _BadRequestError("No patchable fields defined")
    out: list[tuple[str, str, Any]] = []
    for item in body:
        if not isinstance(item, dict):
            raise _BadRequestError("Invalid path format: expected objects with op and path")
        op, target, value = item.get("op"), item.get("path"), item.get("value")
        if op not in ("add", "remove", "replace"):
            raise _BadRequestError(f"Invalid op: {op}")
        if not isinstance(target, str) or not target.startswith("/"):
            raise _BadRequestError(f"Invalid path format: {target}")
        if target not in _PATCH_PATHS:
            raise _BadRequestError(f"Path not found: {target}")
        if op not in _PATCH_PATHS[target]:
            raise _BadRequestError(f"Operation not supported ({op} {target})")
        _check_patch_value(target, value)
        out.append((str(op), target, value))
    return out


def _check_patch_value(target: str, value: Any) -> None:
    if target == "/tags" and not (
        isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise _BadRequestError("/tags expects an array of strings")
    if target == "/tag_ids" and not (
        isinstance(value, list)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise _BadRequestError("/tag_ids expects an array of integers")
    if target == "/billable" and not isinstance(value, bool):
        raise _BadRequestError("/billable expects a boolean")
    if target == "/description" and not isinstance(value, str):
        raise _BadRequestError("/description expects a string")
    if target in ("/project_id", "/task_id") and not (
        value is None or (isinstance(value, int) and not isinstance(value, bool))
    ):
        raise _BadRequestError(f"{target} expects an integer or null")
