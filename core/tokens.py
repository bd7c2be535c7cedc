"""The token store: OAuth2 token sets in the database, encrypted, refreshed under a lock.

Both providers rotate refresh tokens (Xero on every use, Intuit about daily), so a refreshed
set that is lost kills the connection. Hence:

* a refresh happens under a lock held in the database on the connection's row
  (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), and the row is read
  again once the lock is held: if another worker refreshed meanwhile, its tokens are used;
* the new set is committed before it is used, ``refresh_margin_seconds`` before expiry;
* when the answer to a refresh is lost, the same refresh token is tried again (Xero keeps it
  usable for 30 minutes after rotating); the refresh token the current set was obtained with
  is kept (``previous_refresh``) until the current one has been used once, and is tried if
  the current one is refused;
* ``invalid_grant`` marks the connection ``needs_reauth`` and stops the run with the exact
  ``hourbridge connect`` command that fixes it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
from oauthlib.oauth2 import InvalidGrantError, OAuth2Error
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session
from sqlmodel import Session, col, select

from core.config import ConnectionConfig
from core.errors import AuthError, ConfigError, TransientError
from core.tables import ConnectionStatus, OAuthConnectionRow
from core.vault import Vault

log = structlog.get_logger("hourbridge.tokens")
Clock = Callable[[], datetime]
LOST_ANSWER_RETRIES = 3
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Endpoints:
    authorize_url: str
    token_url: str
    revoke_url: str
    connections_url: str | None
    scopes: tuple[str, ...]


DEFAULTS: dict[str, Endpoints] = {
    # authorize, token, revoke, connections URLs (positional: they are URLs, not secrets)
    "xero": Endpoints(
        "https://login.xero.com/identity/connect/authorize",
        "https://identity.xero.com/connect/token",
        "https://identity.xero.com/connect/revocation",
        "https://api.xero.com/connections",
        (
            "openid",
            "profile",
            "email",
            "offline_access",
            "accounting.transactions",
            "accounting.contacts.read",
            "accounting.settings.read",
            "accounting.attachments",
        ),
    ),
    "quickbooks": Endpoints(
        "https://appcenter.intuit.com/connect/oauth2",
        "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        "https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
        None,
        ("com.intuit.quickbooks.accounting",),
    ),
}


def endpoints(config: ConnectionConfig) -> Endpoints:
    base = DEFAULTS[config.provider]

    def pick(override: object, default: str) -> str:
        return str(override) if override is not None else default

    return Endpoints(
        authorize_url=pick(config.authorize_url, base.authorize_url),
        token_url=pick(config.token_url, base.token_url),
        revoke_url=pick(config.revoke_url, base.revoke_url),
        connections_url=(
            pick(config.connections_url, base.connections_url)
            if base.connections_url is not None
            else None
        ),
        scopes=tuple(config.scopes) if config.scopes else base.scopes,
    )


def allow_loopback_http(*urls: str) -> None:
    """oauthlib refuses plain http; the sandbox and the callback listen on loopback http.

    Every configured URL is https or loopback (ConnectionConfig checks), so this only ever
    opens loopback http.
    """
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme == "http" and parts.hostname not in LOOPBACK:
            raise ConfigError(f"{url}: plain http is only allowed on loopback; use https")
    if any(urlsplit(u).scheme == "http" for u in urls):
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


class ReauthRequiredError(AuthError):
    """The provider refused the refresh token: a person must connect again."""


def reconnect_command(name: str, provider: str, config_path: object) -> str:
    return f"hourbridge connect {provider} --name {name} --config {config_path}"


def reauth_message(name: str, provider: str, config_path: object) -> str:
    return (
        f"connection {name!r} needs re-authorisation ({provider} refused its refresh token: "
        f"invalid_grant); run: {reconnect_command(name, provider, config_path)}"
    )


@dataclass
class TokenSet:
    access_token: str
    refresh_token: str
    kind: str = "Bearer"  # token_type
    scope: str | None = None

    @classmethod
    def from_response(cls, data: dict[str, Any]) -> TokenSet:
        access, refresh = data.get("access_token"), data.get("refresh_token")
        if not isinstance(access, str) or not isinstance(refresh, str) or not access or not refresh:
            raise AuthError("the token answer holds no access and refresh token")
        scope = data.get("scope")
        if isinstance(scope, list):
            scope = " ".join(str(s) for s in scope)
        return cls(access, refresh, str(data.get("token_type") or "Bearer"), scope)

    def to_json(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "token_type": self.kind,
                "scope": self.scope,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> TokenSet:
        data = json.loads(text)
        return cls(data["access_token"], data["refresh_token"], data["token_type"], data["scope"])


def expires_in(data: dict[str, Any]) -> int:
    value = data.get("expires_in")
    try:
        return max(0, int(value)) if value is not None else 1800
    except (TypeError, ValueError):
        return 1800


class TokenStore:
    """The ``oauth_connections`` rows, through a Vault."""

    def __init__(
        self,
        vault: Vault,
        *,
        clock: Clock = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 30.0,
    ) -> None:
        self.vault = vault
        self.engine = vault.engine
        self.clock = clock
        self.sleep = sleep
        self.timeout = timeout

    # -- rows -----------------------------------------------------------------------------

    def save_new(
        self,
        name: str,
        provider: str,
        tenant_id: str,
        tenant_name: str,
        response: dict[str, Any],
    ) -> None:
        """Store the token set a consent gave (replacing an older connection of that name)."""
        tokens = TokenSet.from_response(response)
        now = self.clock()
        with Session(self.engine) as session:
            self.vault.check_key(session)
            row = session.get(OAuthConnectionRow, name)
            if row is None:
                row = OAuthConnectionRow(
                    name=name,
                    provider=provider,
                    tenant_id=tenant_id,
                    token_set="",
                    expires_at=now,
                    created_at=now,
                    updated_at=now,
                )
            row.provider = provider
            row.tenant_id = tenant_id
            row.tenant_name = tenant_name[:255]
            row.token_set = self.vault.encrypt(tokens.to_json())
            row.expires_at = now + timedelta(seconds=expires_in(response))
            row.previous_refresh = None
            row.status = ConnectionStatus.OK.value
            row.refreshed_at = None
            row.updated_at = now
            session.add(row)
            session.commit()

    def get(self, name: str) -> OAuthConnectionRow | None:
        with Session(self.engine) as session:
            return session.get(OAuthConnectionRow, name)

    def rows(self) -> list[OAuthConnectionRow]:
        with Session(self.engine) as session:
            return list(
                session.exec(select(OAuthConnectionRow).order_by(col(OAuthConnectionRow.name)))
            )

    def token_set(self, row: OAuthConnectionRow) -> TokenSet:
        return TokenSet.from_json(
            self.vault.decrypt(row.token_set, f"the stored tokens of connection {row.name!r}")
        )

    def delete(self, name: str) -> bool:
        with Session(self.engine) as session:
            row = session.get(OAuthConnectionRow, name)
            if row is None:
                return False
            session.delete(row)
            session.commit()
        return True

    @contextmanager
    def locked(self, name: str) -> Iterator[tuple[Session, OAuthConnectionRow | None]]:
        """The connection's row, read under a lock held until the session commits or ends."""
        with Session(self.engine) as session:
            connection = session.connection()
            if connection.dialect.name == "sqlite":
                # the write lock at once: a second refresher waits here (busy_timeout)
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            row = session.exec(
                select(OAuthConnectionRow).where(OAuthConnectionRow.name == name).with_for_update()
            ).first()
            try:
                yield session, row
            finally:
                session.rollback()  # whatever was not committed

    def tokens(self, name: str, config: ConnectionConfig, config_path: object) -> ConnectionTokens:
        """The BearerTokens of a stored connection; ConfigError if it was never connected."""
        row = self.get(name)
        if row is None:
            raise ConfigError(
                f"connection {name!r} is not connected yet; run: "
                f"{reconnect_command(name, config.provider, config_path)}"
            )
        if row.provider != config.provider:
            raise ConfigError(
                f"connection {name!r} was connected to {row.provider}, the config says "
                f"{config.provider}; run: {reconnect_command(name, config.provider, config_path)}"
            )
        self.token_set(row)  # the key must be the right one before anything runs
        return ConnectionTokens(self, name, config, row.tenant_id, config_path)


class ConnectionTokens:
    """BearerTokens of one stored connection (see the module doc)."""

    def __init__(
        self,
        store: TokenStore,
        name: str,
        config: ConnectionConfig,
        tenant: str,
        config_path: object,
    ) -> None:
        self._store = store
        self.name = name
        self._config = config
        self._endpoints = endpoints(config)
        self._tenant = tenant
        self._config_path = config_path
        self._margin = timedelta(seconds=config.refresh_margin_seconds)
        self._cached: tuple[str, datetime] | None = None

    @property
    def tenant(self) -> str | None:
        return self._tenant

    def access_token(self) -> str:
        now = self._store.clock()
        if self._cached is not None and self._cached[1] - self._margin > now:
            return self._cached[0]
        row = self._store.get(self.name)
        if row is None:
            raise AuthError(
                f"connection {self.name!r} was removed; run: "
                f"{reconnect_command(self.name, self._config.provider, self._config_path)}"
            )
        self._check_status(row)
        current = self._store.token_set(row)
        if row.expires_at - self._margin > now:
            self._cached = (current.access_token, row.expires_at)
            return current.access_token
        return self._refresh(current.access_token, force=False)

    def after_unauthorized(self, rejected: str) -> bool:
        self._cached = None
        self._refresh(rejected, force=True)
        return True

    # -- refreshing -----------------------------------------------------------------------

    def _check_status(self, row: OAuthConnectionRow) -> None:
        if row.status == ConnectionStatus.NEEDS_REAUTH.value:
            raise ReauthRequiredError(
                reauth_message(self.name, self._config.provider, self._config_path)
            )

    def _refresh(self, stale: str, *, force: bool) -> str:
        store = self._store
        with store.locked(self.name) as (session, row):
            if row is None:
                raise AuthError(f"connection {self.name!r} was removed")
            self._check_status(row)
            current = store.token_set(row)
            now = store.clock()
            fresh = row.expires_at - self._margin > now
            if fresh and (not force or current.access_token != stale):
                # another worker refreshed while we waited for the lock
                self._cached = (current.access_token, row.expires_at)
                return current.access_token
            candidates = [current.refresh_token]
            if row.previous_refresh is not None:
                previous = store.vault.decrypt(
                    row.previous_refresh, f"the previous refresh token of {self.name!r}"
                )
                if previous != current.refresh_token:
                    candidates.append(previous)
            for used in candidates:
                answer = self._call_token_endpoint(used)
                if answer is None:
                    continue  # refused: try the previous refresh token, if any
                new = TokenSet.from_response(answer)
                now = store.clock()
                row.token_set = store.vault.encrypt(new.to_json())
                row.expires_at = now + timedelta(seconds=expires_in(answer))
                if new.refresh_token != used:
                    row.previous_refresh = store.vault.encrypt(used)
                row.status = ConnectionStatus.OK.value
                row.refreshed_at = now
                row.updated_at = now
                session.add(row)
                session.commit()  # committed before anyone uses it
                log.info("tokens.refreshed", connection=self.name, expires_at=str(row.expires_at))
                self._cached = (new.access_token, row.expires_at)
                return new.access_token
            row.status = ConnectionStatus.NEEDS_REAUTH.value
            row.updated_at = store.clock()
            session.add(row)
            session.commit()
        log.error("tokens.needs_reauth", connection=self.name)
        raise ReauthRequiredError(
            reauth_message(self.name, self._config.provider, self._config_path)
        )

    def _server_trouble(self, response: requests.Response) -> requests.Response:
        """A 429 or 5xx from the token endpoint is worth retrying later, not a verdict."""
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(
                f"connection {self.name!r}: the token endpoint answered HTTP "
                f"{response.status_code}; the run is safe to repeat"
            )
        return response

    def _call_token_endpoint(self, refresh_token: str) -> dict[str, Any] | None:
        """The refresh answer; None on invalid_grant. A lost answer is asked again with the
        same refresh token (the provider's grace window); TransientError when it stays lost."""
        url = self._endpoints.token_url
        allow_loopback_http(url)
        auth = HTTPBasicAuth(self._config.client_id, self._config.client_secret.get_secret_value())
        last: Exception | None = None
        for attempt in range(LOST_ANSWER_RETRIES):
            if attempt:
                self._store.sleep(min(2.0**attempt, 10.0))
            oauth = OAuth2Session(self._config.client_id)
            oauth.register_compliance_hook("refresh_token_response", self._server_trouble)
            try:
                token = oauth.refresh_token(
                    url, refresh_token=refresh_token, auth=auth, timeout=self._store.timeout
                )
            except InvalidGrantError:
                log.warning("tokens.refresh_refused", connection=self.name)
                return None
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = exc
                log.warning("tokens.refresh_answer_lost", connection=self.name, attempt=attempt + 1)
                continue
            except OAuth2Error as exc:
                raise AuthError(
                    f"connection {self.name!r}: the token endpoint answered {exc.error}"
                ) from None
            return dict(token)
        raise TransientError(
            f"connection {self.name!r}: no answer from the token endpoint "
            f"({type(last).__name__}); the run is safe to repeat"
        )
