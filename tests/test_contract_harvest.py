"""Harvest passes the connector contract; a connector that ignores the next page fails it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date

import pytest
from pydantic import SecretStr

from connectors.harvest.client import HarvestSource
from connectors.harvest.config import HarvestConfig
from connectors.testing import BudgetTime, ConnectorContract, Harness, Sleeps
from core.http import CallCounter, RetryPolicy
from core.model import SourceEntry
from sandbox.harvest import FakeHarvest, HarvestSettings
from sandbox.seed import AgencyMonth, SeedSpec, build_agency_month
from sandbox.serving import RunningServer, start_server

SMALL = SeedSpec(clients=6, entries=400)


@dataclass
class HarvestHarness:
    month: AgencyMonth
    fake: FakeHarvest
    server: RunningServer
    source_class: type[HarvestSource] = HarvestSource
    http: bool = True
    first_day: date = date(2026, 10, 1)
    _deleted_expenses: set[str] = field(default_factory=set)
    budget: BudgetTime = field(default_factory=BudgetTime)  # the call budgets' own time

    def _config(self, token: str, page_size: int | None) -> HarvestConfig:
        return HarvestConfig.model_validate(
            {
                "type": "harvest",
                "account_id": self.fake.settings.account_id,
                "access_token": SecretStr(token),
                "base_url": self.server.url,
                "per_page": page_size or 2000,
            }
        )

    def source(
        self, *, page_size: int | None = None, sleeps: Sleeps | None = None
    ) -> HarvestSource:
        policy = RetryPolicy(max_attempts=4, sleep=sleeps or Sleeps())
        config = self._config(self.fake.settings.access_token, page_size)
        return self.source_class(
            "harvest", config, calls=CallCounter(), policy=policy, budgets=self.budget.budgets()
        )

    def bad_credentials_source(self) -> HarvestSource:
        policy = RetryPolicy(max_attempts=4, sleep=Sleeps())
        return self.source_class(
            "harvest",
            self._config("wrong", None),
            calls=CallCounter(),
            policy=policy,
            budgets=self.budget.budgets(),
        )

    def expected_ids(self, spent_from: date) -> set[str]:
        first = spent_from.isoformat()
        live = {str(e["id"]) for e in self.month.time_entries if e["spent_date"] >= first}
        live |= {f"expense-{x['id']}" for x in self.month.expenses if x["spent_date"] >= first}
        return {i for i in live if self._exists(i)}

    def _exists(self, source_id: str) -> bool:
        try:
            self._item(source_id)
        except KeyError:
            return False
        return True

    def _item(self, source_id: str) -> tuple[Callable[..., None], int]:
        if source_id.startswith("expense-"):
            expense_id = int(source_id.removeprefix("expense-"))
            if source_id in self._deleted_expenses:
                raise KeyError(source_id)
            return self.fake.edit_expense, expense_id
        entry_id = int(source_id)
        self.fake.entry(entry_id)  # KeyError once deleted
        return self.fake.edit_entry, entry_id

    def fail_next(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        self.fake.fail_next(status, count, retry_after)

    def edit_notes(self, source_id: str, notes: str) -> None:
        edit, item_id = self._item(source_id)
        edit(item_id, notes=notes)

    def delete(self, source_id: str) -> None:
        if source_id.startswith("expense-"):
            self.fake.delete_expense(int(source_id.removeprefix("expense-")))
            self._deleted_expenses.add(source_id)
        else:
            self.fake.delete_entry(int(source_id))

    def corrupt(self, source_id: str) -> str:
        edit, item_id = self._item(source_id)
        edit(item_id, spent_date="the fifth of never")
        return f"{item_id}"


@pytest.fixture(scope="module")
def month() -> AgencyMonth:
    return build_agency_month(SMALL)


@pytest.fixture
def served(month: AgencyMonth) -> Iterator[tuple[FakeHarvest, RunningServer]]:
    fake = FakeHarvest(month, HarvestSettings(requests_per_window=100_000))
    server = start_server(fake)
    try:
        yield fake, server
    finally:
        server.stop()


class TestHarvestContract(ConnectorContract):
    @pytest.fixture
    def harness(
        self, month: AgencyMonth, served: tuple[FakeHarvest, RunningServer]
    ) -> HarvestHarness:
        fake, server = served
        return HarvestHarness(month, fake, server)


class _IgnoresNextPage(HarvestSource):
    """A broken connector: reads the first page and stops."""

    def _list(self, resource, parse, first):  # type: ignore[no-untyped-def]
        page = self._get(f"{str(self._config.base_url).rstrip('/')}/v2/{resource}", first)
        entries: list[SourceEntry] = [parse(self.name, raw) for raw in page[resource]]
        yield from entries


def test_the_contract_catches_a_connector_that_ignores_the_next_page(
    month: AgencyMonth, served: tuple[FakeHarvest, RunningServer]
) -> None:
    fake, server = served
    broken: Harness = HarvestHarness(month, fake, server, source_class=_IgnoresNextPage)
    with pytest.raises(AssertionError, match="entries were lost"):
        ConnectorContract().test_pages_to_the_end_each_entry_once(broken)
