"""The Harvest connector against the fake Harvest: paging, incremental pulls, retries, auth."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pydantic import SecretStr

from connectors.base import PullRequest
from connectors.harvest.client import HarvestSource
from connectors.harvest.config import HarvestConfig
from core.errors import AuthError, TerminalError, TransientError
from core.http import CallCounter, RetryPolicy
from sandbox.harvest import FakeHarvest, HarvestSettings, receipt_bytes
from sandbox.seed import AgencyMonth, SeedSpec, build_agency_month
from sandbox.serving import RunningServer, start_server

FROM = date(2026, 10, 1)


@pytest.fixture(scope="module")
def month() -> AgencyMonth:
    return build_agency_month(SeedSpec())


@pytest.fixture
def fake(month: AgencyMonth) -> Iterator[tuple[FakeHarvest, RunningServer]]:
    harvest = FakeHarvest(month, HarvestSettings(requests_per_window=10_000))
    server = start_server(harvest)
    try:
        yield harvest, server
    finally:
        server.stop()


def source(
    server: RunningServer,
    *,
    per_page: int = 2000,
    token: str = "sandbox-harvest-token",
    slept: list[float] | None = None,
    attempts: int = 4,
    expenses: bool = False,
) -> tuple[HarvestSource, CallCounter]:
    config = HarvestConfig(
        type="harvest",
        account_id="1234567",
        access_token=SecretStr(token),
        base_url=server.url,
        per_page=per_page,
        expenses=expenses,
    )
    calls = CallCounter()
    sleeps = slept if slept is not None else []
    policy = RetryPolicy(max_attempts=attempts, sleep=sleeps.append)
    return HarvestSource("harvest", config, calls=calls, policy=policy), calls


def test_pages_to_the_end_following_links_next(
    fake: tuple[FakeHarvest, RunningServer], month: AgencyMonth
) -> None:
    _harvest, server = fake
    src, calls = source(server, per_page=100)
    pulled = list(src.pull(PullRequest(FROM, None)))
    expected = {str(e["id"]) for e in month.time_entries if e["spent_date"] >= "2026-10-01"}
    ids = [e.source_id for e in pulled]
    assert len(ids) == len(set(ids))  # nothing twice
    assert set(ids) == expected  # nothing lost
    assert calls.counts["harvest"] == -(-len(expected) // 100)


def test_incremental_pull_sees_only_changes(
    fake: tuple[FakeHarvest, RunningServer], month: AgencyMonth
) -> None:
    harvest, server = fake
    src, _ = source(server)
    newest = max(e.updated_at for e in src.pull(PullRequest(FROM, None)))
    target = next(e for e in month.time_entries if e["spent_date"] >= "2026-10-05")
    harvest.edit_entry(target["id"], notes="changed ✏️")
    changed = list(src.pull(PullRequest(FROM, newest.replace(microsecond=0))))
    assert [e.source_id for e in changed if e.updated_at > newest] == [str(target["id"])]
    assert next(e for e in changed if e.source_id == str(target["id"])).notes == "changed ✏️"


def test_429_and_5xx_are_retried_honouring_retry_after(
    fake: tuple[FakeHarvest, RunningServer],
) -> None:
    harvest, server = fake
    slept: list[float] = []
    src, calls = source(server, slept=slept)
    harvest.fail_next(429, retry_after=7)
    harvest.fail_next(503)
    pulled = list(src.pull(PullRequest(date(2026, 11, 1), None)))
    assert pulled
    assert slept[0] == 7.0  # Retry-After honoured
    assert len(slept) == 2
    assert calls.counts["harvest"] == 3


def test_persistent_5xx_gives_up_after_max_attempts(
    fake: tuple[FakeHarvest, RunningServer],
) -> None:
    harvest, server = fake
    src, calls = source(server, attempts=3)
    harvest.fail_next(503, count=10)
    with pytest.raises(TransientError, match="harvest: HTTP 503"):
        list(src.pull(PullRequest(FROM, None)))
    assert calls.counts["harvest"] == 3


def test_bad_token_stops_at_once_with_a_clear_message(
    fake: tuple[FakeHarvest, RunningServer],
) -> None:
    _harvest, server = fake
    src, calls = source(server, token="nope-not-valid")
    with pytest.raises(AuthError, match="harvest: HTTP 401: credentials refused") as info:
        list(src.pull(PullRequest(FROM, None)))
    assert "nope-not-valid" not in str(info.value)
    assert calls.counts["harvest"] == 1


def test_updated_since_is_sent_in_utc(fake: tuple[FakeHarvest, RunningServer]) -> None:
    _harvest, server = fake
    src, _ = source(server)
    future = datetime(2030, 1, 1, tzinfo=UTC)
    assert list(src.pull(PullRequest(FROM, future))) == []


def test_expenses_come_through_the_same_pull_with_receipts_and_exact_amounts(
    fake: tuple[FakeHarvest, RunningServer], month: AgencyMonth
) -> None:
    _harvest, server = fake
    src, _ = source(server, expenses=True)
    pulled = [e for e in src.pull(PullRequest(FROM, None)) if e.kind.value == "expense"]
    assert len(pulled) == len(month.expenses)
    by_id = {e.source_id: e for e in pulled}
    for raw in month.expenses:
        entry = by_id[f"expense-{raw['id']}"]
        assert entry.quantity * (entry.unit_price or 0) == Decimal(str(raw["total_cost"]))
        assert entry.approved is raw["is_closed"] and entry.billable is raw["billable"]
        if raw["units"] is not None:
            assert entry.quantity == Decimal(str(raw["units"]))
        receipt = raw["receipt"]  # served where the fake Harvest itself serves the file
        assert entry.receipt_url == (
            f"{server.url}/receipts/{raw['id']}/{receipt['file_name']}" if receipt else None
        )
        assert entry.task.name == raw["expense_category"]["name"]


def test_a_receipt_is_downloaded_with_harvest_credentials_only_from_harvest(
    fake: tuple[FakeHarvest, RunningServer], month: AgencyMonth
) -> None:
    _harvest, server = fake
    src, _ = source(server, expenses=True)
    raw = next(x for x in month.expenses if x["receipt"])
    file_name = raw["receipt"]["file_name"]
    receipt = src.fetch_receipt(f"{server.url}/receipts/{raw['id']}/{file_name}")
    assert receipt.content == receipt_bytes(raw["id"], file_name)
    assert receipt.content_type == "application/pdf"
    assert receipt.file_name == file_name
    with pytest.raises(TerminalError, match="HTTP 404"):  # not that expense's file
        src.fetch_receipt(f"{server.url}/receipts/{raw['id']}/other.pdf")
    # another host (here: the same server by another name) never gets our token
    elsewhere = server.url.replace("127.0.0.1", "localhost")
    assert elsewhere != server.url
    with pytest.raises(AuthError):
        src.fetch_receipt(f"{elsewhere}/receipts/{raw['id']}/{file_name}")
