"""Shared by the OAuth tests: a clock both sides read, fakes with short-lived tokens, a config
whose target uses a stored connection, and a consent driven through an HTTP client."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet

import core.cli_connect
from sandbox.oauth import OAuthSettings
from sandbox.quickbooks import QboSettings
from sandbox.seed import SeedSpec
from sandbox.server import Sandbox, start_sandbox
from sandbox.xero import XeroSettings
from tests.conftest import FAST_HARVEST, sandbox_config, write_config
from tests.helpers import CliResult, quickbooks_config, run_cli

CONNECTION = "xero-main"
QBO_CONNECTION = "qbo-main"


class SharedClock:
    """One timeline for the fake identity service and our token store. ``tick`` seconds pass
    each time the fake reads it, so a run's calls move time forward (no real sleeping)."""

    def __init__(self, tick: float = 0.0) -> None:
        self._now = datetime.now(UTC)
        self._tick = timedelta(seconds=tick)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def fake_now(self) -> datetime:
        with self._lock:
            self._now += self._tick
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


def start_oauth_sandbox(
    clock: SharedClock,
    *,
    grace: int = 1800,
    lifetime: int = 1800,
    other_tenants: tuple[tuple[str, str], ...] = (),
) -> Sandbox:
    xero_oauth = OAuthSettings(
        required_scopes=("offline_access",),
        access_token_seconds=lifetime,
        refresh_grace_seconds=grace,
        now=clock.fake_now,
    )
    qbo_oauth = OAuthSettings(
        required_scopes=("com.intuit.quickbooks.accounting",),
        access_token_seconds=lifetime,
        refresh_grace_seconds=0,
        rotate_after_seconds=86_400,
        now=clock.fake_now,
    )
    return start_sandbox(
        SeedSpec(),
        harvest_settings=FAST_HARVEST,
        xero_settings=XeroSettings(
            per_minute=100_000, per_day=1_000_000, oauth=xero_oauth, other_tenants=other_tenants
        ),
        quickbooks_settings=QboSettings(oauth=qbo_oauth),
    )


def set_env(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> str:
    """Tracker token, app secrets and a fresh encryption key; returns the key."""
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("HARVEST_ACCESS_TOKEN", sandbox.harvest.settings.access_token)
    monkeypatch.setenv("XERO_CLIENT_SECRET", sandbox.xero.settings.oauth.client_secret)
    monkeypatch.setenv("QBO_CLIENT_SECRET", sandbox.quickbooks.settings.oauth.client_secret)
    monkeypatch.setenv("HOURBRIDGE_SECRET_KEY", key)
    monkeypatch.delenv("HOURBRIDGE_SECRET_KEY_FILE", raising=False)
    return key


def xero_connection(sandbox: Sandbox) -> dict[str, Any]:
    url = sandbox.xero_url
    return {
        "provider": "xero",
        "client_id": sandbox.xero.settings.oauth.client_id,
        "client_secret": "${XERO_CLIENT_SECRET}",
        "redirect_port": 0,
        "authorize_url": f"{url}/identity/connect/authorize",
        "token_url": f"{url}/connect/token",
        "revoke_url": f"{url}/connect/revocation",
        "connections_url": f"{url}/connections",
    }


def qbo_connection(sandbox: Sandbox) -> dict[str, Any]:
    url = sandbox.quickbooks_url
    return {
        "provider": "quickbooks",
        "client_id": sandbox.quickbooks.settings.oauth.client_id,
        "client_secret": "${QBO_CLIENT_SECRET}",
        "redirect_port": 0,
        "authorize_url": f"{url}/connect/oauth2",
        "token_url": f"{url}/oauth2/v1/tokens/bearer",
        "revoke_url": f"{url}/v2/oauth2/tokens/revoke",
    }


def oauth_config(sandbox: Sandbox, db_url: str, tmp_path: Path) -> Path:
    """The example config with its Xero target on a stored connection instead of a token."""
    data = sandbox_config(sandbox, db_url)
    target = data["targets"]["xero"]
    del target["access_token"], target["tenant_id"]
    target["connection"] = CONNECTION
    target["max_attempts"] = 3
    data["connections"] = {CONNECTION: xero_connection(sandbox)}
    return write_config(tmp_path / "oauth.yaml", data)


def qbo_oauth_config(sandbox: Sandbox, db_url: str, tmp_path: Path) -> Path:
    data = quickbooks_config(sandbox, db_url)
    target = data["targets"]["qbo"]
    del target["access_token"], target["realm_id"]
    target["connection"] = QBO_CONNECTION
    data["connections"] = {QBO_CONNECTION: qbo_connection(sandbox)}
    return write_config(tmp_path / "qbo-oauth.yaml", data)


class Browser:
    """Stands in for the user's browser: follows the consent page's redirect to our callback
    server with an HTTP client, and remembers what it saw."""

    def __init__(self) -> None:
        self.visited: list[str] = []
        self.landed: list[str] = []

    def __call__(self, url: str) -> bool:
        self.visited.append(url)
        answer = requests.get(url, timeout=10)  # follows the 302 to 127.0.0.1/callback
        self.landed.append(answer.url)
        return answer.ok


def connect_cli(
    monkeypatch: pytest.MonkeyPatch, config: Path, *extra: str, provider: str = "xero"
) -> tuple[CliResult, Browser]:
    browser = Browser()
    monkeypatch.setattr(core.cli_connect, "open_browser", browser)
    name = CONNECTION if provider == "xero" else QBO_CONNECTION
    result = run_cli("connect", provider, "--name", name, "--config", config, *extra)
    return result, browser


def raw_database_bytes(db_url: str) -> bytes:
    """Every byte SQLite keeps for this database (main file, WAL and journal)."""
    path = Path(db_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())


def consent(sandbox: Sandbox) -> dict[str, Any]:
    """A token answer for the fake Xero, straight through its endpoints (no CLI)."""
    url, oauth = sandbox.xero_url, sandbox.xero.settings.oauth
    redirect = "http://127.0.0.1:9/callback"
    page = requests.get(
        f"{url}/identity/connect/authorize",
        params={
            "response_type": "code",
            "client_id": oauth.client_id,
            "redirect_uri": redirect,
            "scope": "openid offline_access accounting.transactions",
            "state": "s",
        },
        allow_redirects=False,
        timeout=10,
    )
    code = parse_qs(urlsplit(page.headers["Location"]).query)["code"][0]
    answer = requests.post(
        f"{url}/connect/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect},
        auth=(oauth.client_id, oauth.client_secret),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert isinstance(data, dict)
    return data
