"""`hourbridge connect` end to end against the fakes, then syncs on the stored connection."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import typer
from sqlmodel import Session
from typer.testing import CliRunner

from connectors.testing import BudgetTime
from core import cli_connect, cliutil
from core import logging as hblog
from core.cli import app
from core.config import load_config
from core.db import open_database
from core.factory import build_profile
from core.http import CallCounter
from core.periods import Period
from core.sync import SyncEngine
from core.tables import ConnectionStatus, OAuthConnectionRow
from sandbox.server import Sandbox
from tests.helpers import live_invoices, run_cli
from tests.oauth_helpers import (
    CONNECTION,
    QBO_CONNECTION,
    Browser,
    SharedClock,
    connect_cli,
    oauth_config,
    qbo_oauth_config,
    raw_database_bytes,
    set_env,
    start_oauth_sandbox,
)

PERIOD = "2026-10"


@pytest.fixture
def clock() -> SharedClock:
    return SharedClock()


@pytest.fixture
def oauth_sandbox(clock: SharedClock, budget_time: BudgetTime) -> Iterator[Sandbox]:
    """Call budgets of the syncs wait on ``budget_time``: never really."""
    running = start_oauth_sandbox(clock)
    try:
        yield running
    finally:
        running.stop()


def test_connect_then_sync_across_several_expiries_with_no_plaintext_token_in_the_db(
    oauth_sandbox: Sandbox,
    clock: SharedClock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    db_url = f"sqlite:///{tmp_path / 'hb.db'}"
    set_env(monkeypatch, oauth_sandbox)
    config = oauth_config(oauth_sandbox, db_url, tmp_path)

    result, browser = connect_cli(monkeypatch, config)
    assert result.code == 0, result.stderr
    consent = parse_qs(urlsplit(browser.visited[0]).query)
    assert consent["code_challenge_method"] == ["S256"] and consent["code_challenge"][0]
    assert "offline_access" in consent["scope"][0].split()
    assert consent["state"][0]
    assert browser.landed[0].startswith("http://127.0.0.1:")  # our callback server
    assert oauth_sandbox.xero.settings.tenant_id in result.stdout

    # 20 minutes pass at every call the fake answers: access tokens (30 min) keep expiring
    clock._tick = timedelta(minutes=20)
    loaded = load_config(config)
    hblog.configure(loaded.secrets, json=True)  # the CLI's stderr is gone
    engine = open_database(loaded.database_url)
    calls = CallCounter()
    built = build_profile(loaded, None, calls, engine=engine, clock=clock.now)
    report = SyncEngine(engine, built, api_calls=calls.as_dict).run(Period.parse(PERIOD))

    assert report.errors == [] and report.status == "succeeded"
    assert report.invoices_created > 0 and report.invoices_failed == 0
    assert len(live_invoices(oauth_sandbox.xero.invoices)) == report.invoices_created
    auth = oauth_sandbox.xero.auth
    assert auth.refreshes >= 3, "the run crossed several access-token expiries"
    assert auth.refresh_requests == auth.refreshes  # never a refused or repeated refresh

    again = run_cli("connections", "test", CONNECTION, "--config", config)
    assert again.code == 0, again.stderr

    raw = raw_database_bytes(db_url)
    assert b"oauth_connections" in raw  # it is the right file
    leaked = [t for t in auth.issued if t.encode() in raw]
    assert leaked == [], "a token is stored in plaintext"
    secret = oauth_sandbox.xero.settings.oauth.client_secret.encode()
    assert secret not in raw


def test_connect_headless_by_pasting_the_redirect_then_list_and_remove_revokes(
    oauth_sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    db_url: str,
) -> None:
    set_env(monkeypatch, oauth_sandbox)
    config = oauth_config(oauth_sandbox, db_url, tmp_path)
    pasted: list[str] = []

    def paste(prompt: str, **_: object) -> str:
        # the user opened the printed URL elsewhere; its redirect page did not load, so they
        # copy the address bar: the Location the consent page sent
        url = next(line for line in printed if line.startswith("http"))
        answer = requests.get(url, allow_redirects=False, timeout=10)
        pasted.append(answer.headers["Location"])
        return pasted[-1]

    printed: list[str] = []

    real_print = cliutil.out.print

    def capture(*args: Any, **kwargs: Any) -> None:
        printed.extend(str(args[0]).splitlines() if args else [])
        real_print(*args, **kwargs)

    monkeypatch.setattr(cliutil.out, "print", capture)
    monkeypatch.setattr(typer, "prompt", paste)
    result, browser = connect_cli(monkeypatch, config, "--no-browser")
    assert result.code == 0, result.stderr
    assert browser.visited == []  # no browser in headless mode
    assert "code=" in pasted[0] and "state=" in pasted[0]

    listed = run_cli("connections", "list", "--config", config, "--json")
    assert listed.code == 0, listed.stderr
    [row] = listed.json_list()
    assert row["name"] == CONNECTION and row["status"] == "ok"
    assert row["tenant_id"] == oauth_sandbox.xero.settings.tenant_id
    assert "token" not in " ".join(str(v) for v in row.values() if v)

    assert oauth_sandbox.xero.auth.live_grants() == 1
    removed = run_cli("connections", "remove", CONNECTION, "--config", config)
    assert removed.code == 0, removed.stderr
    assert oauth_sandbox.xero.auth.live_grants() == 0  # revoked at the provider
    assert oauth_sandbox.xero.auth.revocations == 1
    assert run_cli("connections", "list", "--config", config, "--json").json_list() == []


def test_a_forged_state_is_refused_and_nothing_is_stored(
    oauth_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'hb.db'}"
    set_env(monkeypatch, oauth_sandbox)
    config = oauth_config(oauth_sandbox, db_url, tmp_path)

    def forged(url: str) -> bool:
        query = parse_qs(urlsplit(url).query)
        callback = query["redirect_uri"][0]
        requests.get(f"{callback}?code=stolen&state=not-ours", timeout=10)
        return True

    monkeypatch.setattr(cli_connect, "open_browser", forged)
    result = run_cli("connect", "xero", "--name", CONNECTION, "--config", config)
    assert result.code == 1
    assert "state does not match" in result.stderr
    with Session(open_database(db_url)) as session:
        assert session.get(OAuthConnectionRow, CONNECTION) is None


def test_connect_quickbooks_takes_the_realm_from_the_redirect_and_syncs(
    oauth_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'hb.db'}"
    set_env(monkeypatch, oauth_sandbox)
    config = qbo_oauth_config(oauth_sandbox, db_url, tmp_path)
    result, browser = connect_cli(monkeypatch, config, provider="quickbooks")
    assert result.code == 0, result.stderr
    scope = parse_qs(urlsplit(browser.visited[0]).query)["scope"][0]
    assert "com.intuit.quickbooks.accounting" in scope.split()
    with Session(open_database(db_url)) as session:
        row = session.get(OAuthConnectionRow, QBO_CONNECTION)
        assert row is not None and row.tenant_id == oauth_sandbox.quickbooks.settings.realm_id
        assert row.status == ConnectionStatus.OK.value

    synced = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert synced.code == 0, synced.stderr
    assert synced.json()["invoices_created"] == len(oauth_sandbox.quickbooks.invoices) > 0
    assert oauth_sandbox.quickbooks.calls["POST token"] == 1  # the code exchange only
    tested = run_cli("connections", "test", QBO_CONNECTION, "--config", config)
    assert tested.code == 0, tested.stderr
    assert oauth_sandbox.quickbooks.calls["GET companyinfo"] == 1


@pytest.mark.parametrize("provider", ["xero", "quickbooks"])
def test_a_401_refreshes_once_and_retries_when_our_clock_did_not_see_the_expiry(
    oauth_sandbox: Sandbox,
    clock: SharedClock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    provider: str,
) -> None:
    db_url = f"sqlite:///{tmp_path / 'hb.db'}"
    set_env(monkeypatch, oauth_sandbox)
    if provider == "xero":
        config = oauth_config(oauth_sandbox, db_url, tmp_path)
        auth = oauth_sandbox.xero.auth
    else:
        config = qbo_oauth_config(oauth_sandbox, db_url, tmp_path)
        auth = oauth_sandbox.quickbooks.auth
    result, _browser = connect_cli(monkeypatch, config, provider=provider)
    assert result.code == 0, result.stderr

    clock._tick = timedelta(minutes=25)  # the provider's time races ahead...
    frozen = clock.now()  # ...while ours stands still: only 401s reveal the expiries
    loaded = load_config(config)
    hblog.configure(loaded.secrets, json=True)
    engine = open_database(loaded.database_url)
    calls = CallCounter()
    built = build_profile(loaded, None, calls, engine=engine, clock=lambda: frozen)
    report = SyncEngine(engine, built, api_calls=calls.as_dict).run(Period.parse(PERIOD))

    assert report.errors == [] and report.status == "succeeded"
    assert report.invoices_created > 0
    assert auth.refreshes >= 2 and auth.refresh_requests == auth.refreshes


def test_several_organisations_the_user_picks_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = ("7d4e2b1c-0f3a-4e5d-8c6b-9a0f1e2d3c4b", "Other Org Ltd")
    clock = SharedClock()
    running = start_oauth_sandbox(clock, other_tenants=(other,))
    try:
        db_url = f"sqlite:///{tmp_path / 'hb.db'}"
        set_env(monkeypatch, running)
        config = oauth_config(running, db_url, tmp_path)
        browser = Browser()
        monkeypatch.setattr(cli_connect, "open_browser", browser)
        asked = CliRunner().invoke(
            app, ["connect", "xero", "--name", CONNECTION, "--config", str(config)], input="2\n"
        )
        assert asked.exit_code == 0, asked.stderr
        assert "1. Hourbridge Sandbox Ltd" in asked.stdout and "2. Other Org Ltd" in asked.stdout
        with Session(open_database(db_url)) as session:
            row = session.get(OAuthConnectionRow, CONNECTION)
            assert row is not None and row.tenant_id == other[0]

        result, _ = connect_cli(monkeypatch, config, "--tenant", running.xero.settings.tenant_id)
        assert result.code == 0, result.stderr
        with Session(open_database(db_url)) as session:
            row = session.get(OAuthConnectionRow, CONNECTION)
            assert row is not None and row.tenant_id == running.xero.settings.tenant_id
        unknown, _ = connect_cli(monkeypatch, config, "--tenant", "nope")
        assert unknown.code == 2 and "is not among the connected ones" in unknown.stderr
    finally:
        running.stop()


def test_status_shows_the_stored_token_expiry_and_a_connection_to_reconnect(
    oauth_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'hb.db'}"
    set_env(monkeypatch, oauth_sandbox)
    config = oauth_config(oauth_sandbox, db_url, tmp_path)
    result, _ = connect_cli(monkeypatch, config)
    assert result.code == 0, result.stderr
    engine = open_database(load_config(config).database_url)
    with Session(engine) as session:
        row = session.get(OAuthConnectionRow, CONNECTION)
        assert row is not None
        expires = row.expires_at

    healthy = run_cli("status", "--config", config, "--json").json()
    profile = healthy["profiles"][0]
    assert profile["token_expires"]["xero"] == expires.isoformat()
    assert profile["connections_needing_reauth"] == []

    with Session(engine) as session:
        row = session.get(OAuthConnectionRow, CONNECTION)
        assert row is not None
        row.status = ConnectionStatus.NEEDS_REAUTH.value
        session.add(row)
        session.commit()
    dead = run_cli("status", "--config", config, "--json").json()
    assert dead["profiles"][0]["connections_needing_reauth"] == [CONNECTION]
    text = run_cli("status", "--config", config)
    assert f"hourbridge connect xero --name {CONNECTION}" in text.stdout
