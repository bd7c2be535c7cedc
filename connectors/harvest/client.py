"""The Harvest API v2 source: paged, incremental, retried."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from connectors.base import PullRequest, Receipt
from connectors.harvest.config import HarvestConfig
from connectors.harvest.parse import parse_expense, parse_time_entry
from core.errors import SourceDataError, TransientError
from core.http import BudgetFactory, CallCounter, Limit, LocalBudgets, RetryPolicy, raise_for
from core.model import SourceEntry

SERVICE = "harvest"


class HarvestSource:
    """Time entries from one Harvest account.

    Pages with ``per_page`` and follows ``links.next`` exactly as given (it may be an opaque
    cursor). Pulls incrementally with ``updated_since``.
    """

    def __init__(
        self,
        name: str,
        config: HarvestConfig,
        *,
        calls: CallCounter,
        policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        budgets: BudgetFactory | None = None,
    ) -> None:
        self.name = name
        self._config = config
        self._calls = calls
        self._policy = calls.counted(
            policy or RetryPolicy(max_attempts=config.max_attempts), SERVICE
        )
        # Harvest allows 100 requests per 15 s per account: waited for before each call.
        self._budget = (budgets or LocalBudgets())(
            SERVICE, config.account_id, [Limit(config.requests_per_15s, 15.0, "15s")]
        )
        self._session = session or requests.Session()
        self._session.headers.update(
            {
                "Authorization": f"Bearer {config.access_token.get_secret_value()}",
                "Harvest-Account-Id": config.account_id,
                "User-Agent": config.user_agent,
                "Accept": "application/json",
            }
        )

    reports_deletions = False  # Harvest's updated_since never mentions deleted entries

    def pull(self, request: PullRequest) -> Iterator[SourceEntry]:
        first: dict[str, str] = {
            "from": request.spent_from.isoformat(),
            "per_page": str(self._config.per_page),
        }
        if request.updated_since is not None:
            first["updated_since"] = request.updated_since.isoformat().replace("+00:00", "Z")
        listings: list[tuple[str, Callable[[str, object], SourceEntry]]] = [
            ("time_entries", parse_time_entry)
        ]
        if self._config.expenses:
            listings.append(("expenses", parse_expense))
        for resource, parse in listings:
            yield from self._list(resource, parse, first)
            if request.window is not None and request.updated_since is not None:
                # The window's full listing, so the engine can see what was deleted.
                start, end = request.window
                window = {"from": start.isoformat(), "to": end.isoformat()}
                yield from self._list(
                    resource, parse, window | {"per_page": str(self._config.per_page)}
                )

    def _list(
        self, resource: str, parse: Callable[[str, object], SourceEntry], first: dict[str, str]
    ) -> Iterator[SourceEntry]:
        params: dict[str, str] | None = first
        url: str | None = f"{str(self._config.base_url).rstrip('/')}/v2/{resource}"
        while url is not None:
            page = self._get(url, params)
            entries = page.get(resource)
            if not isinstance(entries, list):
                raise SourceDataError(f"{self.name}: page without a {resource} list: {url}")
            for raw in entries:
                yield parse(self.name, raw)
            links = page.get("links") or {}
            url = links.get("next") if isinstance(links, dict) else None
            params = None  # links.next carries every parameter: follow it exactly as given

    def fetch_receipt(self, url: str) -> Receipt:
        """Download an expense's receipt. Our credentials go only to Harvest's own hosts
        (the API's host and *.harvestapp.com); any other URL is fetched without them."""
        host = (urlsplit(url).hostname or "").lower()
        ours = host == (urlsplit(str(self._config.base_url)).hostname or "").lower()
        trusted = ours or host == "harvestapp.com" or host.endswith(".harvestapp.com")
        for attempt in self._policy.retrying():
            with attempt:
                self._budget.acquire()
                self._calls.add(SERVICE)
                try:
                    if trusted:
                        response = self._session.get(url, timeout=self._config.timeout_seconds)
                    else:
                        response = requests.get(
                            url,
                            headers={"User-Agent": self._config.user_agent},
                            timeout=self._config.timeout_seconds,
                        )
                except (requests.ConnectionError, requests.Timeout) as exc:
                    raise TransientError(f"{self.name}: {type(exc).__name__} on {url}") from exc
                if response.status_code >= 400:
                    raise_for(
                        self.name,
                        response.status_code,
                        response.headers.get("Retry-After"),
                        f"receipt {url}: {_detail(response)}",
                    )
                name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "receipt"
                kind = response.headers.get("Content-Type") or "application/octet-stream"
                return Receipt(file_name=name, content_type=kind, content=response.content)
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _get(self, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        for attempt in self._policy.retrying():
            with attempt:
                self._budget.acquire()
                self._calls.add(SERVICE)
                try:
                    response = self._session.get(
                        url, params=params, timeout=self._config.timeout_seconds
                    )
                except (requests.ConnectionError, requests.Timeout) as exc:
                    raise TransientError(f"{self.name}: {type(exc).__name__} on {url}") from exc
                if response.status_code >= 400:
                    raise_for(
                        self.name,
                        response.status_code,
                        response.headers.get("Retry-After"),
                        _detail(response),
                    )
                try:
                    body = response.json()
                except ValueError as exc:
                    raise SourceDataError(f"{self.name}: response is not JSON: {url}") from exc
                if not isinstance(body, dict):
                    raise SourceDataError(f"{self.name}: response is not a JSON object: {url}")
                return body
        raise AssertionError("unreachable: tenacity reraises the last error")


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        for key in ("error_description", "message", "error"):
            if body.get(key):
                return str(body[key])[:200]
    return str(body)[:200]
