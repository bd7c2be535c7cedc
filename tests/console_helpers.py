"""Shared by the console tests: a sandbox-wired config whose mapping lives in the database (the
example's, so the seed's two unmapped clients wait), console users, and signing in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine
from starlette.testclient import TestClient

from console.app import create_app
from console.server import settings
from core import logging as hblog
from core import users
from core.config import LoadedConfig, load_config
from core.db import open_database
from mapping import documents
from mapping.rules import MappingRules
from sandbox.seed import AgencyMonth
from sandbox.server import Sandbox
from tests.conftest import sandbox_config, write_config
from tests.helpers import CliResult, eligible, eligible_expense, run_cli
from tests.oauth_helpers import oauth_config, qbo_oauth_config, set_env

PERIOD = "2026-10"
PROFILE = "agency-monthly"
SECRET_ENV = "HOURBRIDGE_CONSOLE_SECRET"
PASSWORD = "correct horse battery"


@dataclass
class ConsoleSetup:
    config: Path
    loaded: LoadedConfig
    engine: Engine


def console_setup(
    sandbox: Sandbox,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    **profile_extra: Any,
) -> ConsoleSetup:
    monkeypatch.setenv(SECRET_ENV, "s" * 40)
    data = sandbox_config(sandbox, db_url)
    mapping = data["profiles"][PROFILE].pop("mapping")
    data["profiles"][PROFILE].update(profile_extra)
    data["console"] = {"session_secret": "${" + SECRET_ENV + "}", "port": 0}
    config = write_config(tmp_path / "console.yaml", data)
    document = tmp_path / "mapping.yaml"
    document.write_text(documents.to_yaml(MappingRules.model_validate(mapping)), encoding="utf-8")
    imported = run_cli("mappings", "import", document, "--config", config, "--author", "setup")
    assert imported.code == 0, imported.stderr
    loaded = load_config(config)
    hblog.configure(loaded.secrets)  # the CLI above logged to its own (now closed) stderr
    engine = open_database(loaded.database_url)
    now = datetime.now(UTC)
    users.add(engine, "fiona", users.Role.FINANCE, PASSWORD, now=now)
    users.add(engine, "victor", users.Role.VIEWER, PASSWORD, now=now)
    return ConsoleSetup(config, loaded, engine)


def oauth_console_setup(
    oauth_sandbox: Sandbox,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    provider: str = "xero",
    authorize_host: str | None = None,
) -> ConsoleSetup:
    """An OAuth config (its target on a stored connection, nothing stored yet) with a console
    section, and the users fiona (finance) and victor (viewer). ``authorize_host`` puts the
    consent page on another host name (another site, for a browser)."""
    set_env(monkeypatch, oauth_sandbox)
    monkeypatch.setenv(SECRET_ENV, "c" * 40)
    if provider == "xero":
        config = oauth_config(oauth_sandbox, db_url, tmp_path)
    else:
        config = qbo_oauth_config(oauth_sandbox, db_url, tmp_path)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["console"] = {"session_secret": "${" + SECRET_ENV + "}"}
    if authorize_host is not None:
        for connection in data["connections"].values():
            url = connection["authorize_url"]
            connection["authorize_url"] = url.replace("127.0.0.1", authorize_host, 1)
    write_config(config, data)
    loaded = load_config(config)
    hblog.configure(loaded.secrets)
    setup = ConsoleSetup(config, loaded, open_database(loaded.database_url))
    now = datetime.now(UTC)
    users.add(setup.engine, "fiona", users.Role.FINANCE, PASSWORD, now=now)
    users.add(setup.engine, "victor", users.Role.VIEWER, PASSWORD, now=now)
    return setup


def client_for(setup: ConsoleSetup) -> TestClient:
    app = create_app(setup.loaded, setup.engine, settings(setup.loaded, None, None))
    return TestClient(app, base_url="http://127.0.0.1")


def cli(setup: ConsoleSetup, *args: str | Path) -> CliResult:
    """run_cli, then logging back on this process's stderr (the CLI logged to its own)."""
    result = run_cli(*args)
    hblog.configure(setup.loaded.secrets)
    return result


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in; returns the session's CSRF token (from the first page after)."""
    page = client.get("/login")
    answer = client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": csrf_of(page.text)},
    )
    assert answer.status_code == 200 and "Sign out" in answer.text, answer.text[:500]
    return csrf_of(answer.text)


def client_total(
    month: AgencyMonth, client_id: int, rate: Decimal, period: str = PERIOD
) -> Decimal:
    """What the client's invoice comes to at ``rate`` per hour for every time entry (the
    example's default task rules cover each task), plus its expenses at cost, from the seed.
    Exact hours: the example mapping has no rounding."""
    total = Decimal(0)
    for e in month.time_entries:
        if eligible(e, period) and e["client"]["id"] == client_id:
            total += Decimal(str(e["hours"])) * rate
    for x in month.expenses:
        if eligible_expense(x, period) and x["client"]["id"] == client_id:
            total += Decimal(str(x["total_cost"]))
    return total.quantize(Decimal("0.01"))


class _Controls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.labelled: set[str] = set()
        self.unnamed = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "label" and found.get("for"):
            self.labelled.add(str(found["for"]))
        if tag in ("input", "select") and found.get("type") != "hidden":
            if found.get("id"):
                self.ids.append(str(found["id"]))
            else:
                self.unnamed += 1


def unlabelled(html: str) -> list[str]:
    """Visible inputs and selects without a <label for=...> (or without an id to label)."""
    parser = _Controls()
    parser.feed(html)
    missing = [i for i in parser.ids if i not in parser.labelled]
    return missing + ["(no id)"] * parser.unnamed
