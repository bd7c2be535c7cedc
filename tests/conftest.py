"""Shared fixtures: a database per test (SQLite, and PostgreSQL when configured) and the fakes.

Set HOURBRIDGE_TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) to
run every database test on PostgreSQL as well; each test gets its own schema there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, create_engine, text

from connectors.testing import BudgetTime
from core import factory
from core.budgets import SharedBudgets
from core.http import BudgetFactory
from sandbox.harvest import HarvestSettings
from sandbox.seed import SeedSpec
from sandbox.server import Sandbox, start_sandbox
from sandbox.xero import XeroSettings

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("HOURBRIDGE_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hourbridge.db'}"
        return
    assert PG_URL is not None
    schema = f"hbtest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# The agency month the end-to-end tests sync: every client, a third of the default entries.
# Their configs page Harvest by 400 (see sandbox_config), so a pull still spans pages.
TEST_SPEC = SeedSpec(entries=1000)


@pytest.fixture
def budget_time(monkeypatch: pytest.MonkeyPatch) -> BudgetTime:
    """Call budgets of the profiles this test builds (the CLI's too) wait on this time, so a
    budget that must wait (Toggl's one call a second) never really sleeps; its waits are
    recorded apart from the retry policy's."""
    fake = BudgetTime()

    def budgets(engine: Engine | None) -> BudgetFactory:
        if engine is None:
            return fake.budgets()
        return SharedBudgets(engine, clock=fake.clock, monotonic=fake.clock, sleep=fake.sleep)

    monkeypatch.setattr(factory, "default_budgets", budgets)
    return fake


FAST_XERO = XeroSettings(per_minute=100_000, per_day=1_000_000)
FAST_HARVEST = HarvestSettings(requests_per_window=100_000)


@pytest.fixture
def sandbox(budget_time: BudgetTime) -> Iterator[Sandbox]:
    """The fakes, with limits no test reaches; our own call budgets (the real providers'
    limits, shared through the test's database across runs) wait on ``budget_time``."""
    running = start_sandbox(TEST_SPEC, harvest_settings=FAST_HARVEST, xero_settings=FAST_XERO)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> None:
    monkeypatch.setenv("HARVEST_ACCESS_TOKEN", sandbox.harvest.settings.access_token)
    monkeypatch.setenv("XERO_ACCESS_TOKEN", sandbox.xero.settings.access_token)


def example_config() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def sandbox_config(
    sandbox: Sandbox, db_url: str, *, drop_project_rates: bool = True
) -> dict[str, Any]:
    """The example config, pointed at this test's fakes and database."""
    data = example_config()
    data["database"]["url"] = db_url
    data["sources"]["harvest"]["base_url"] = sandbox.harvest_url
    data["targets"]["xero"]["base_url"] = sandbox.xero_url + "/api.xro/2.0"
    data["sources"]["harvest"]["max_attempts"] = 3
    data["sources"]["harvest"]["per_page"] = 400
    if drop_project_rates:
        data["profiles"]["agency-monthly"]["mapping"]["projects"] = {}
    return data


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
