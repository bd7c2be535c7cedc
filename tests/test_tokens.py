"""The token store: one refresh per expiry however many workers ask, lost answers recovered,
dead connections named with the command that fixes them, and no key means no start."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlmodel import Session, select

from core import logging as hblog
from core.config import LoadedConfig, load_config
from core.db import open_database
from core.errors import ConfigError, TransientError
from core.factory import open_token_store
from core.tables import ConnectionStatus, LedgerRow, OAuthConnectionRow
from core.tokens import ConnectionTokens, ReauthRequiredError, TokenStore
from core.vault import SecretKeyError, load_key
from sandbox.server import Sandbox
from tests.helpers import run_cli
from tests.oauth_helpers import (
    CONNECTION,
    SharedClock,
    connect_cli,
    consent,
    oauth_config,
    set_env,
    start_oauth_sandbox,
)
from tests.together import run_together

PERIOD = "2026-10"


@dataclass
class Rig:
    sandbox: Sandbox
    clock: SharedClock
    loaded: LoadedConfig
    config: Path
    db_url: str

    def store(self) -> TokenStore:
        return open_token_store(self.loaded, open_database(self.db_url), self.clock.now)

    def tokens(self, store: TokenStore | None = None) -> ConnectionTokens:
        chosen = store or self.store()
        return chosen.tokens(CONNECTION, self.loaded.config.connections[CONNECTION], self.config)

    def row(self) -> OAuthConnectionRow:
        with Session(open_database(self.db_url)) as session:
            row = session.get(OAuthConnectionRow, CONNECTION)
        assert row is not None
        return row


def _rig(grace: int, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    clock = SharedClock()
    sandbox = start_oauth_sandbox(clock, grace=grace)
    try:
        set_env(monkeypatch, sandbox)
        config = oauth_config(sandbox, db_url, tmp_path)
        loaded = load_config(config)
        hblog.configure(loaded.secrets, json=True)  # not a stream an earlier CLI test closed
        rig = Rig(sandbox, clock, loaded, config, db_url)
        rig.store().save_new(
            CONNECTION, "xero", sandbox.xero.settings.tenant_id, "Sandbox", consent(sandbox)
        )
        yield rig
    finally:
        sandbox.stop()


@pytest.fixture
def strict(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """A fake that invalidates a refresh token on reuse (no grace at all)."""
    yield from _rig(0, db_url, tmp_path, monkeypatch)


@pytest.fixture
def xero_like(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """Xero's rules: the previous refresh token stays usable for 30 minutes."""
    yield from _rig(1800, db_url, tmp_path, monkeypatch)


def test_eight_threads_at_once_refresh_once_per_expiry_and_the_set_survives(strict: Rig) -> None:
    auth = strict.sandbox.xero.auth
    for expiry in range(1, 4):
        strict.clock.advance(1800)  # the access token has expired
        workers = [strict.tokens() for _ in range(8)]  # each its own store and cache
        barrier = threading.Barrier(len(workers))
        got: list[str] = []
        failures: list[BaseException] = []

        threads = [
            threading.Thread(target=_work, args=(w, barrier, got, failures)) for w in workers
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert failures == []
        assert len(got) == 8 and len(set(got)) == 1, "every worker uses the one new token"
        assert auth.refresh_requests == expiry, "exactly one refresh per expiry"
        assert auth.access_token_valid(got[0])
        assert strict.row().status == ConnectionStatus.OK.value


def _work(
    tokens: ConnectionTokens,
    barrier: threading.Barrier,
    got: list[str],
    failures: list[BaseException],
) -> None:
    barrier.wait()
    try:
        got.append(tokens.access_token())
    except BaseException as exc:
        failures.append(exc)


@pytest.mark.slow
def test_two_processes_at_once_refresh_once(strict: Rig, tmp_path: Path) -> None:
    with Session(open_database(strict.db_url)) as session:
        row = session.get(OAuthConnectionRow, CONNECTION)
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(hours=1)  # due, on the real clock
        session.add(row)
        session.commit()
    go = tmp_path / "go"
    command = [sys.executable, "-m", "tests.token_worker", str(strict.config), CONNECTION, str(go)]
    outputs = run_together(command, go)
    tokens = {o[0].strip() for o in outputs}
    assert len(tokens) == 1
    auth = strict.sandbox.xero.auth
    assert auth.refresh_requests == 1
    assert auth.access_token_valid(tokens.pop())
    assert strict.row().status == ConnectionStatus.OK.value


def test_a_lost_refresh_answer_is_recovered_through_the_grace_window(xero_like: Rig) -> None:
    auth = xero_like.sandbox.xero.auth
    store = xero_like.store()
    waits: list[float] = []
    store.sleep = waits.append
    tokens = xero_like.tokens(store)
    xero_like.clock.advance(1800)
    auth.drop_next_refresh()  # the fake rotates, then the answer never arrives

    token = tokens.access_token()

    assert auth.refresh_requests == 2 and auth.refreshes == 2
    assert len(waits) == 1  # one backoff before asking again, injected
    assert auth.access_token_valid(token)
    assert xero_like.row().status == ConnectionStatus.OK.value
    assert xero_like.row().previous_refresh is not None  # kept until the new one is used
    xero_like.clock.advance(1800)  # and the connection lives on
    assert auth.access_token_valid(tokens.access_token())
    assert auth.refresh_requests == 3


def test_without_a_grace_window_the_same_loss_kills_the_connection(strict: Rig) -> None:
    """Why the grace matters (and why the rotating token must be saved before use)."""
    store = strict.store()
    store.sleep = lambda _s: None
    tokens = strict.tokens(store)
    strict.clock.advance(1800)
    strict.sandbox.xero.auth.drop_next_refresh()
    with pytest.raises(ReauthRequiredError):
        tokens.access_token()
    assert strict.row().status == ConnectionStatus.NEEDS_REAUTH.value


def test_invalid_grant_ends_the_run_naming_the_connection_and_command_with_nothing_pushed(
    xero_like: Rig,
) -> None:
    with Session(open_database(xero_like.db_url)) as session:
        row = session.get(OAuthConnectionRow, CONNECTION)
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(minutes=1)
        session.add(row)
        session.commit()
    xero_like.sandbox.xero.auth.refuse_refreshes()  # the user disconnected the app

    result = run_cli("sync", "--config", xero_like.config, "--period", PERIOD, "--json")

    assert result.code == 1
    command = f"hourbridge connect xero --name {CONNECTION} --config {xero_like.config}"
    [error] = result.json()["errors"]
    assert f"connection {CONNECTION!r} needs re-authorisation" in error
    assert command in error
    assert xero_like.sandbox.xero.invoices == {}
    with Session(open_database(xero_like.db_url)) as session:
        assert session.exec(select(LedgerRow)).all() == []
    assert xero_like.row().status == ConnectionStatus.NEEDS_REAUTH.value

    again = run_cli("sync", "--config", xero_like.config, "--period", PERIOD, "--json")
    assert again.code == 1 and command in again.json()["errors"][0]
    assert xero_like.sandbox.xero.auth.refresh_requests == 1  # not asked again: it's dead
    listed = run_cli("connections", "list", "--config", xero_like.config, "--json")
    assert listed.json_list()[0]["status"] == "needs_reauth"


def test_no_key_means_no_start_and_nothing_written(
    xero_like: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = xero_like.row()
    monkeypatch.delenv("HOURBRIDGE_SECRET_KEY")
    result, browser = connect_cli(monkeypatch, xero_like.config)
    assert result.code == 2
    assert "no encryption key" in result.stderr and "HOURBRIDGE_SECRET_KEY" in result.stderr
    assert browser.visited == []  # refused before the consent
    synced = run_cli("sync", "--config", xero_like.config, "--period", PERIOD)
    assert synced.code == 2 and "no encryption key" in synced.stderr
    assert xero_like.row().token_set == before.token_set
    assert xero_like.sandbox.xero.invoices == {}


def test_a_wrong_key_is_refused_before_anything_is_written(
    xero_like: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = xero_like.row()
    monkeypatch.setenv("HOURBRIDGE_SECRET_KEY", Fernet.generate_key().decode())
    result, browser = connect_cli(monkeypatch, xero_like.config)
    assert result.code == 2
    assert "not the one it was stored with" in result.stderr
    assert browser.visited == []
    synced = run_cli("sync", "--config", xero_like.config, "--period", PERIOD)
    assert synced.code == 2 and "not the one it was stored with" in synced.stderr
    secret = run_cli("secrets", "set", "harvest", "--config", xero_like.config)
    assert secret.code == 2 and "not the one it was stored with" in secret.stderr
    after = xero_like.row()
    assert (after.token_set, after.updated_at) == (before.token_set, before.updated_at)
    assert xero_like.sandbox.xero.invoices == {}


def test_a_key_file_must_be_private(tmp_path: Path) -> None:
    key = tmp_path / "hb.key"
    key.write_text(Fernet.generate_key().decode() + "\n", encoding="utf-8")
    key.chmod(0o644)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        load_key(key, {})
    key.chmod(0o600)
    assert load_key(key, {}).decrypt(load_key(key, {}).encrypt(b"x")) == b"x"
    with pytest.raises(SecretKeyError, match="not a valid encryption key"):
        load_key(None, {"HOURBRIDGE_SECRET_KEY": "too-short"})
    with pytest.raises(ConfigError, match="no encryption key"):
        load_key(None, {})


def test_an_outage_of_the_token_endpoint_is_transient_and_changes_nothing(
    xero_like: Rig,
) -> None:
    auth = xero_like.sandbox.xero.auth
    tokens = xero_like.tokens()
    before = xero_like.row()
    xero_like.clock.advance(1800)
    auth.fail_next_token(503)
    with pytest.raises(TransientError, match="HTTP 503"):
        tokens.access_token()
    after = xero_like.row()
    assert after.status == ConnectionStatus.OK.value and after.token_set == before.token_set
    assert auth.access_token_valid(tokens.access_token())  # the next attempt refreshes
    assert auth.refreshes == 1
