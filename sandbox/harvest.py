"""A strict fake of the Harvest API v2 (read side), as a WSGI app.

It serves an ``AgencyMonth`` the way https://api.harvestapp.com/v2 would:

* every request needs ``User-Agent`` (else 400), ``Authorization: Bearer``
  with the right token and ``Harvest-Account-Id`` (else 401
  ``invalid_token``); a wrong account id answers 403;
* 100 requests per 15 seconds per account (configurable, injectable clock),
  then 429 with ``Retry-After``;
* list endpoints answer Harvest's paging envelope. ``links.next`` and
  ``links.previous`` are opaque, signed cursor URLs that carry the filters and
  the keyset position, so a client that follows them gets every entry exactly
  once even while entries change; ``page=N`` works too. ``per_page`` is
  1..2000 (default 2000), anything else is 422;
* time entries are sorted by ``spent_date`` then ``id``, newest first; other
  lists by ``created_at`` then ``id``, newest first.

Knobs for tests: ``fail_next``, ``edit_entry``, ``delete_entry``,
``add_entry``, and ``calls`` (a Counter of ``"METHOD /path"`` for every
request that reached the app, rejected ones included).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from sandbox.ratelimit import SlidingWindow
from sandbox.seed import AgencyMonth
from sandbox.tracker_fake import Injected, TrackerFake, json_response

if TYPE_CHECKING:
    pass

__all__ = ["SANDBOX_BEARER", "FakeHarvest", "HarvestSettings"]

MAX_PER_PAGE = 2000
#: The bearer credential the fake accepts unless settings say otherwise.
SANDBOX_BEARER = "sandbox-harvest-token"

INVALID_TOKEN_BODY: dict[str, Any] = {
    "error": "invalid_token",
    "error_description": (
        "The access token provided is expired, revoked, malformed or invalid for other reasons."
    ),
}
FORBIDDEN_ACCOUNT_BODY: dict[str, Any] = {
    "error": "forbidden",
    "error_description": "The access token does not grant access to this Harvest account.",
}
RATE_LIMITED_BODY: dict[str, Any] = {"message": "Too many requests"}

_STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT_RE = re.compile(r"^\d{1,18}$")
_ID_PATH_RE = re.compile(
    r"^/v2/(time_entries|expenses|expense_categories|clients|projects|tasks|users)/(\d{1,18})$"
)
_RECEIPT_PATH_RE = re.compile(r"^/receipts/(\d{1,18})/([^/]+)$")
_UPDATE_TICK = timedelta(seconds=1)


@dataclass
class HarvestSettings:
    account_id: str = "1234567"
    access_token: str = SANDBOX_BEARER
    requests_per_window: int = 100  # Harvest: 100 requests per 15 seconds
    window_seconds: float = 15.0
    clock: Callable[[], float] = time.monotonic


class _InvalidParamError(Exception):
    """A query parameter Harvest would reject with 422."""


# --------------------------------------------------------------------------
# Parameter parsing (strict)
# --------------------------------------------------------------------------


def _parse_date(name: str, raw: str) -> date:
    if not _DATE_RE.match(raw):
        raise _InvalidParamError(
            f"Invalid {name} parameter: expected a date as YYYY-MM-DD, got {raw!r}"
        )
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _InvalidParamError(f"Invalid {name} parameter: {raw!r} is not a valid date") from None


def _parse_datetime(name: str, raw: str) -> datetime:
    if len(raw) < 10 or not _DATE_RE.match(raw[:10]):
        raise _InvalidParamError(
            f"Invalid {name} parameter: expected an ISO 8601 datetime, got {raw!r}"
        )
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise _InvalidParamError(
            f"Invalid {name} parameter: expected an ISO 8601 datetime, got {raw!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse_bool(name: str, raw: str) -> bool:
    if raw == "true":
        return True
    if raw == "false":
        return False
    raise _InvalidParamError(f"Invalid {name} parameter: expected true or false, got {raw!r}")


def _parse_id(name: str, raw: str) -> int:
    if not _INT_RE.match(raw) or int(raw) < 1:
        raise _InvalidParamError(
            f"Invalid {name} parameter: expected a positive integer, got {raw!r}"
        )
    return int(raw)


def _parse_per_page(raw: str | None) -> int:
    if raw is None:
        return MAX_PER_PAGE
    if not _INT_RE.match(raw) or not 1 <= int(raw) <= MAX_PER_PAGE:
        raise _InvalidParamError(
            f"per_page must be an integer between 1 and {MAX_PER_PAGE}, got {raw!r}"
        )
    return int(raw)


def _parse_page(raw: str | None) -> int:
    if raw is None:
        return 1
    if not _INT_RE.match(raw) or int(raw) < 1:
        raise _InvalidParamError(f"page must be a positive integer, got {raw!r}")
    return int(raw)


@lru_cache(maxsize=65536)
def _stamp(value: str) -> datetime:
    """Parse an object's ``updated_at`` ("2026-10-03T14:02:11Z")."""
    return datetime.fromisoformat(value).astimezone(UTC)


# --------------------------------------------------------------------------
# Filters per resource
# --------------------------------------------------------------------------

_Item = Mapping[str, Any]
_Predicate = Callable[[_Item], bool]


def _ref_id(field: str, wanted: int) -> _Predicate:
    def check(item: _Item) -> bool:
        ref = item.get(field)
        return isinstance(ref, Mapping) and ref.get("id") == wanted

    return check


def _flag(field: str, wanted: bool) -> _Predicate:
    return lambda item: item.get(field) is wanted


def _build_predicate(name: str, raw: str) -> _Predicate:
    """A predicate for one query filter; raises ``_InvalidParamError`` on bad input."""
    if name == "from":
        lo = _parse_date(name, raw).isoformat()
        return lambda item: str(item["spent_date"]) >= lo
    if name == "to":
        hi = _parse_date(name, raw).isoformat()
        return lambda item: str(item["spent_date"]) <= hi
    if name == "updated_since":
        since = _parse_datetime(name, raw)
        return lambda item: _stamp(str(item["updated_at"])) >= since
    if name in ("is_billed", "is_running", "is_active"):
        return _flag(name, _parse_bool(name, raw))
    if name in ("user_id", "client_id", "project_id", "task_id"):
        return _ref_id(name.removesuffix("_id"), _parse_id(name, raw))
    raise AssertionError(f"unknown filter {name}")  # pragma: no cover


@dataclass(frozen=True)
class _Listing:
    resource: str  # key of the list in the envelope, and the path segment
    sort_field: str  # then "id"; both descending
    filters: tuple[str, ...]


_LISTINGS: dict[str, _Listing] = {
    "time_entries": _Listing(
        "time_entries",
        "spent_date",
        (
            "user_id",
            "client_id",
            "project_id",
            "task_id",
            "is_billed",
            "is_running",
            "updated_since",
            "from",
            "to",
        ),
    ),
    "expenses": _Listing(
        "expenses",
        "spent_date",
        ("user_id", "client_id", "project_id", "is_billed", "updated_since", "from", "to"),
    ),
    "expense_categories": _Listing("expense_categories", "id", ("is_active", "updated_since")),
    "clients": _Listing("clients", "created_at", ("is_active", "updated_since")),
    "projects": _Listing("projects", "created_at", ("is_active", "client_id", "updated_since")),
    "tasks": _Listing("tasks", "created_at", ("is_active", "updated_since")),
    "users": _Listing("users", "created_at", ("is_active", "updated_since")),
}


def _sort_key(listing: _Listing, item: _Item) -> tuple[str, int]:
    return (str(item[listing.sort_field]), int(item["id"]))


# --------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------


def _error(status: int) -> Response:
    return json_response(status, {"status": status, "error": _STATUS_TEXT.get(status, "Error")})


def _unprocessable(message: str) -> Response:
    return json_response(422, {"message": message})


@dataclass(frozen=True)
class _Cursor:
    resource: str
    direction: str  # "after" or "before"
    key: tuple[str, int]
    filters: dict[str, str]


class FakeHarvest(TrackerFake):
    """The fake. Create one per test; it is a WSGI app (``serving(fake)``)."""

    def __init__(self, month: AgencyMonth, settings: HarvestSettings | None = None) -> None:
        self.month = month
        self.settings = settings or HarvestSettings()
        super().__init__()  # calls, the lock and fail_next
        self._secret = secrets.token_bytes(32)
        self._limiter = SlidingWindow(
            limit=self.settings.requests_per_window,
            period=self.settings.window_seconds,
            clock=self.settings.clock,
        )
        self._data: dict[str, dict[int, dict[str, Any]]] = {
            "time_entries": {int(e["id"]): copy.deepcopy(e) for e in month.time_entries},
            "expenses": {int(e["id"]): copy.deepcopy(e) for e in month.expenses},
            "expense_categories": {
                int(c["id"]): copy.deepcopy(c) for c in month.expense_categories
            },
            "clients": {int(c["id"]): copy.deepcopy(c) for c in month.clients},
            "projects": {int(p["id"]): copy.deepcopy(p) for p in month.projects},
            "tasks": {int(t["id"]): copy.deepcopy(t) for t in month.tasks},
            "users": {int(u["id"]): copy.deepcopy(u) for u in month.users},
        }
        # updated_at for edits: a fake clock that starts after every seeded
        # timestamp and moves one second per change, so it only ever grows.
        latest = max(
            (_stamp(str(e["updated_at"])) for e in month.time_entries),
            default=datetime(2000, 1, 1, tzinfo=UTC),
        )
        self._updated_clock = latest.replace(microsecond=0) + timedelta(hours=1)

    # ------------------------------------------------------------------ knobs

    def edit_entry(self, entry_id: int, **changes: Any) -> None:
        """Change fields of a time entry and move its ``updated_at`` forward."""
        self._edit("time_entries", entry_id, changes)

    def edit_expense(self, expense_id: int, **changes: Any) -> None:
        """Change fields of an expense and move its ``updated_at`` forward."""
        self._edit("expenses", expense_id, changes)

    def _edit(self, resource: str, entry_id: int, changes: dict[str, Any]) -> None:
        if "id" in changes:
            raise ValueError("an entry's id cannot change")
        with self._lock:
            entries = self._data[resource]
            if entry_id not in entries:
                raise KeyError(f"no {resource} item {entry_id}")
            updated = {**entries[entry_id], **copy.deepcopy(changes)}
            if "updated_at" not in changes:
                updated["updated_at"] = self._tick()
            entries[entry_id] = updated

    def delete_entry(self, entry_id: int) -> None:
        with self._lock:
            if self._data["time_entries"].pop(entry_id, None) is None:
                raise KeyError(f"no time entry {entry_id}")

    def delete_expense(self, expense_id: int) -> None:
        with self._lock:
            if self._data["expenses"].pop(expense_id, None) is None:
                raise KeyError(f"no expense {expense_id}")

    def add_entry(self, entry: dict[str, Any]) -> None:
        """Add a time entry: a full Harvest object; missing timestamps become "now"."""
        for required in ("id", "spent_date"):
            if required not in entry:
                raise ValueError(f"a time entry needs {required!r}")
        entry_id = int(entry["id"])
        with self._lock:
            entries = self._data["time_entries"]
            if entry_id in entries:
                raise ValueError(f"time entry {entry_id} already exists")
            added = copy.deepcopy(entry)
            if "updated_at" not in added:
                added["updated_at"] = self._tick()
            added.setdefault("created_at", added["updated_at"])
            entries[entry_id] = added

    def entry(self, entry_id: int) -> dict[str, Any]:
        """A copy of an entry as the fake currently holds it."""
        with self._lock:
            return copy.deepcopy(self._data["time_entries"][entry_id])

    def _tick(self) -> str:
        self._updated_clock += _UPDATE_TICK
        return self._updated_clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    # ------------------------------------------------------------------ WSGI

    def _handle(self, request: Request) -> Response:
        rejection = self._check_headers(request)
        if rejection is not None:
            return rejection
        wait = self._limiter.acquire(self.settings.account_id)
        if wait is not None:
            return json_response(429, RATE_LIMITED_BODY, {"Retry-After": str(wait)})
        return self._route(request)

    def _check_headers(self, request: Request) -> Response | None:
        """400 without User-Agent, 401 for a bad token or no account, 403 for another account."""
        if not request.headers.get("User-Agent", "").strip():
            return json_response(
                400,
                {
                    "status": 400,
                    "error": "Bad Request",
                    "message": "A User-Agent header naming your application is required.",
                },
            )
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        account = request.headers.get("Harvest-Account-Id", "").strip()
        token_ok = scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.settings.access_token.encode()
        )
        if not token_ok or not account:
            return json_response(401, INVALID_TOKEN_BODY)
        if account != self.settings.account_id:
            return json_response(403, FORBIDDEN_ACCOUNT_BODY)
        return None

    def _injected(self, failure: Injected) -> Response:
        """429: Harvest's throttle body and ``Retry-After`` (default 15); others
        ``{"status", "error"}``, with ``error_description`` when a detail is given."""
        status = failure.status
        if status == 429:
            wait = failure.retry_after or 15
            return json_response(429, RATE_LIMITED_BODY, {"Retry-After": str(wait)})
        body: dict[str, Any] = {"status": status, "error": _STATUS_TEXT.get(status, "Error")}
        if failure.detail is not None:
            body["error_description"] = failure.detail
        return json_response(status, body, failure.retry_headers())

    # ---------------------------------------------------------------- routing

    def _route(self, request: Request) -> Response:
        path = request.path
        receipt = _RECEIPT_PATH_RE.match(path)
        if receipt is not None and request.method in ("GET", "HEAD"):
            return self._receipt(int(receipt.group(1)), receipt.group(2))
        single = _ID_PATH_RE.match(path)
        resource = path.removeprefix("/v2/")
        known = path in ("/v2/company", "/v2/users/me") or single is not None
        if not known and resource not in _LISTINGS:
            return _error(404)
        if request.method not in ("GET", "HEAD"):
            response = _error(405)
            response.headers["Allow"] = "GET, HEAD"
            return response
        if resource in _LISTINGS:
            try:
                return self._list(request, _LISTINGS[resource])
            except _InvalidParamError as exc:
                return _unprocessable(str(exc))
        item = self._lookup(path, single)
        if item is not None and single is not None and single.group(1) == "expenses":
            item = _served_expense(item, request.host_url)
        return json_response(200, item) if item is not None else _error(404)

    def _receipt(self, expense_id: int, file_name: str) -> Response:
        """An expense's receipt file, where its ``receipt.url`` points (auth as for the API)."""
        with self._lock:
            expense = self._data["expenses"].get(expense_id)
        receipt = (expense or {}).get("receipt")
        if not isinstance(receipt, dict) or receipt.get("file_name") != file_name:
            return _error(404)
        content = receipt_bytes(expense_id, file_name)
        return Response(content, status=200, content_type=str(receipt["content_type"]))

    def _lookup(self, path: str, single: re.Match[str] | None) -> dict[str, Any] | None:
        if path == "/v2/company":
            return self._company()
        with self._lock:
            if path == "/v2/users/me":  # the token's owner: the account's first user
                users = self._data["users"]
                return users[min(users)] if users else None
            assert single is not None
            return self._data[single.group(1)].get(int(single.group(2)))

    def _company(self) -> dict[str, Any]:
        return {
            "base_uri": "https://hourbridge-sandbox.harvestapp.com",
            "full_domain": "hourbridge-sandbox.harvestapp.com",
            "name": "Hourbridge Sandbox Agency",
            "is_active": True,
            "week_start_day": "Monday",
            "wants_timestamp_timers": True,
            "time_format": "hours_minutes",
            "date_format": "%Y-%m-%d",
            "plan_type": "simple-v4",
            "clock": "12h",
            "currency_code_display": "iso_code_symbol",
            "currency_symbol_display": "symbol_before",
            "decimal_symbol": ".",
            "thousands_separator": ",",
            "color_scheme": "orange",
            "weekly_capacity": 144000,
            "expense_feature": True,
            "invoice_feature": True,
            "estimate_feature": True,
            "approval_feature": True,
        }

    # ---------------------------------------------------------------- cursors

    def _encode_cursor(self, cursor: _Cursor) -> str:
        payload = json.dumps(
            {
                "r": cursor.resource,
                "d": cursor.direction,
                "k": list(cursor.key),
                "f": cursor.filters,
            },
            separators=(",", ":"),
            sort_keys=True,
            ensure_ascii=False,
        ).encode("utf-8")
        signature = hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(signature + payload).decode("ascii").rstrip("=")

    def _decode_cursor(self, token: str, listing: _Listing) -> _Cursor:
        invalid = _InvalidParamError("The cursor parameter is invalid or expired")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise invalid from None
        signature, payload = raw[:16], raw[16:]
        expected = hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]
        if len(signature) != 16 or not hmac.compare_digest(signature, expected):
            raise invalid
        data = json.loads(payload)
        if data.get("r") != listing.resource:
            raise invalid
        key = data["k"]
        return _Cursor(
            resource=data["r"],
            direction=data["d"],
            key=(str(key[0]), int(key[1])),
            filters={str(k): str(v) for k, v in data["f"].items()},
        )

    # ---------------------------------------------------------------- listing

    def _list(self, request: Request, listing: _Listing) -> Response:
        args = request.args
        per_page = _parse_per_page(args.get("per_page"))
        token = args.get("cursor")
        cursor: _Cursor | None = None
        if token is not None:  # the cursor wins over page and over loose filters
            cursor = self._decode_cursor(token, listing)
            filters = cursor.filters
        else:
            filters = {name: args[name] for name in sorted(listing.filters) if name in args}
        predicates = [_build_predicate(name, raw) for name, raw in filters.items()]

        with self._lock:
            snapshot = list(self._data[listing.resource].values())
        items = sorted(
            (item for item in snapshot if all(check(item) for check in predicates)),
            key=lambda item: _sort_key(listing, item),
            reverse=True,
        )
        total = len(items)
        total_pages = math.ceil(total / per_page)

        # With a cursor the position is wherever its key sorts now (keyset
        # paging), so entries added or deleted meanwhile shift nothing.
        page: int | None = None
        if cursor is None:
            page = _parse_page(args.get("page"))
            start = (page - 1) * per_page
            end = start + per_page
        elif cursor.direction == "after":  # past the key (items are newest first)
            start = sum(1 for item in items if _sort_key(listing, item) >= cursor.key)
            end = start + per_page
        else:  # the page just before the key
            end = sum(1 for item in items if _sort_key(listing, item) > cursor.key)
            start = max(0, end - per_page)
        chunk = items[start:end]
        has_next = bool(chunk) and start + len(chunk) < total
        has_previous = start > 0 and bool(chunk)

        if page is not None:
            next_page = page + 1 if page < total_pages else None
            previous_page = page - 1 if page > 1 else None
        elif start == 0:  # cursor paging: numbers only on the first and last pages
            page, next_page, previous_page = 1, (2 if has_next else None), None
        elif not has_next:
            last = max(total_pages, 1)
            page, next_page, previous_page = last, None, (last - 1 if last > 1 else None)
        else:
            next_page = previous_page = None

        base = request.host_url.rstrip("/") + f"/v2/{listing.resource}"

        def page_link(number: int, ref: str) -> str:
            query = {**filters, "page": str(number), "per_page": str(per_page), "ref": ref}
            return f"{base}?{urlencode(query)}"

        def cursor_link(direction: str, item: _Item, ref: str) -> str:
            token = self._encode_cursor(
                _Cursor(listing.resource, direction, _sort_key(listing, item), dict(filters))
            )
            query = {"cursor": token, "per_page": str(per_page), "ref": ref}
            return f"{base}?{urlencode(query)}"

        links = {
            "first": page_link(1, "first"),
            "next": cursor_link("after", chunk[-1], "next_cursor") if has_next else None,
            "previous": (
                cursor_link("before", chunk[0], "previous_cursor") if has_previous else None
            ),
            "last": page_link(max(total_pages, 1), "last"),
        }
        if listing.resource == "expenses":
            chunk = [_served_expense(item, request.host_url) for item in chunk]
        body = {
            listing.resource: chunk,
            "per_page": per_page,
            "total_pages": total_pages,
            "total_entries": total,
            "next_page": next_page,
            "previous_page": previous_page,
            "page": page,
            "links": links,
        }
        return json_response(200, body)


def receipt_bytes(expense_id: int, file_name: str) -> bytes:
    """The fake's receipt file for an expense: a small, deterministic PDF."""
    return (
        f"%PDF-1.4\n% hourbridge sandbox receipt {file_name} for expense {expense_id}\n%%EOF\n"
    ).encode()


def _served_expense(item: dict[str, Any], host_url: str) -> dict[str, Any]:
    """An expense as served: its receipt URL points at this fake, which serves the file."""
    receipt = item.get("receipt")
    if not isinstance(receipt, dict) or not receipt.get("file_name"):
        return item
    url = f"{host_url.rstrip('/')}/receipts/{item['id']}/{receipt['file_name']}"
    return {**item, "receipt": {**receipt, "url": url}}
