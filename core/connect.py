"""Connecting an organisation once: the OAuth2 authorization-code flow with PKCE and state.

The pieces, shared by ``hourbridge connect`` and the web console: ``begin`` builds the consent
URL (PKCE S256 and a fresh ``state``, through requests-oauthlib) for a redirect URI;
``finish`` checks the redirect that comes back, exchanges its code (requests-oauthlib checks
``state`` and sends the PKCE verifier) and lists the organisations (Xero ``GET /connections``;
QuickBooks' ``realmId`` in the redirect); ``save`` stores the token set encrypted under the
connection's name for the organisation picked.

``connect`` is the CLI's flow: it prints the consent URL and opens a browser (or, headless,
reads the redirected URL pasted back), takes the code on a short-lived callback server on
127.0.0.1, lets the user pick an organisation and stores it. The console sends the browser
to the consent page and takes the redirect on its own ``/connections/callback``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from oauthlib.common import generate_token
from oauthlib.oauth2 import MismatchingStateError, OAuth2Error, WebApplicationClient
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session
from sqlmodel import Session

from core.config import ConnectionConfig, LoadedConfig
from core.errors import AuthError, ConfigError, TransientError
from core.tokens import TokenStore, allow_loopback_http, endpoints

CALLBACK_PATH = "/callback"


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str


@dataclass(frozen=True)
class Connected:
    name: str
    provider: str
    tenant: Tenant


class CallbackServer:
    """Listens on 127.0.0.1 for the one redirect that carries the code (or an error)."""

    def __init__(self, port: int) -> None:
        received: list[str] = []
        done = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if urlsplit(self.path).path != CALLBACK_PATH:
                    self.send_error(404)
                    return
                received.append(self.path)
                body = b"hourbridge: you can close this window and return to the terminal.\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                done.set()

            def log_message(self, format: str, *args: Any) -> None:
                return None  # the query string holds the code: never log it

        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on 127.0.0.1:{port} for the OAuth callback: "
                f"{exc.strerror or exc}; free the port or change redirect_port"
            ) from None
        self._received = received
        self._done = done
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{CALLBACK_PATH}"

    def wait(self, timeout: float) -> str | None:
        """The redirected URL, or None if none came within ``timeout`` seconds."""
        if not self._done.wait(timeout):
            return None
        return f"http://127.0.0.1:{self._server.server_address[1]}{self._received[0]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class Prompts:
    """How the flow talks to a person; the CLI passes typer's, tests their own."""

    echo: Callable[[str], None]
    open_browser: Callable[[str], bool]
    paste_url: Callable[[], str]
    choose: Callable[[Sequence[Tenant]], Tenant]


@dataclass(frozen=True)
class Consent:
    """A consent under way: the URL to send the person to, and what its answer is checked and
    exchanged with. ``state`` and ``verifier`` (and the URL, which carries the state) are
    secrets while it lasts: never log or show them."""

    name: str
    provider: str
    redirect_uri: str
    url: str = field(repr=False)
    state: str = field(repr=False)
    verifier: str = field(repr=False)


@dataclass(frozen=True)
class Granted:
    """A consent's answer, exchanged: the token set (a secret: store it, never show it) and
    the organisations it reaches."""

    name: str
    provider: str
    token: dict[str, Any] = field(repr=False)
    tenants: tuple[Tenant, ...]


def connection_config(
    loaded: LoadedConfig, name: str, provider: str | None = None
) -> ConnectionConfig:
    """``connections.NAME`` of the config (for ``provider``, when given), or ConfigError."""
    config = loaded.config.connections.get(name)
    if config is None:
        known = ", ".join(sorted(loaded.config.connections)) or "none"
        raise ConfigError(f"{loaded.path}: no connection named {name!r} (known: {known})")
    if provider is not None and config.provider != provider:
        raise ConfigError(
            f"{loaded.path}: connections.{name} is for {config.provider}, not {provider}"
        )
    return config


def check_key(store: TokenStore) -> None:
    """ConfigError when the encryption key is missing or wrong: before any consent."""
    with Session(store.engine) as session:
        store.vault.check_key(session)


def begin(name: str, config: ConnectionConfig, redirect_uri: str) -> Consent:
    """The consent URL (authorization code, PKCE S256, a fresh ``state``) for ``config``,
    sending the person back to ``redirect_uri`` (which the app must have registered)."""
    ep = endpoints(config)
    allow_loopback_http(
        ep.authorize_url, ep.token_url, *filter(None, [ep.connections_url]), redirect_uri
    )
    client = WebApplicationClient(config.client_id)
    verifier = client.create_code_verifier(43)
    state = generate_token()
    oauth = OAuth2Session(client=client, redirect_uri=redirect_uri, scope=list(ep.scopes))
    url, _state = oauth.authorization_url(
        ep.authorize_url,
        state=state,
        code_challenge=client.create_code_challenge(verifier, "S256"),
        code_challenge_method="S256",
    )
    return Consent(name, config.provider, redirect_uri, url, state, verifier)


def finish(config: ConnectionConfig, consent: Consent, response: str) -> Granted:
    """Check the redirect ``response`` (the URL the provider sent the person back to) against
    ``consent``, exchange its code (requests-oauthlib checks ``state`` and sends the PKCE
    verifier) and list the organisations the grant reaches. AuthError when the consent was
    refused, the state is not ours or the exchange fails; TransientError when no answer came.
    Nothing is stored."""
    provider = config.provider
    query = parse_qs(urlsplit(response).query)
    if "error" in query:
        raise AuthError(f"{provider} refused the consent: {query['error'][0]}")
    ep = endpoints(config)
    allow_loopback_http(ep.token_url, consent.redirect_uri)
    oauth = OAuth2Session(
        config.client_id,
        redirect_uri=consent.redirect_uri,
        scope=list(ep.scopes),
        state=consent.state,
    )
    try:
        token = oauth.fetch_token(
            ep.token_url,
            authorization_response=response,
            client_secret=config.client_secret.get_secret_value(),
            code_verifier=consent.verifier,
            timeout=30,
        )
    except MismatchingStateError:
        raise AuthError(
            "the redirect's state does not match the one sent: not our consent; try again"
        ) from None
    except OAuth2Error as exc:
        raise AuthError(f"{provider} refused the code exchange: {exc.error}") from None
    except requests.RequestException as exc:
        raise TransientError(f"no answer from {ep.token_url} ({type(exc).__name__})") from None
    tenants = _tenants(config, dict(token), query)
    if not tenants:
        raise AuthError("the consent connected no organisation; connect again and pick one")
    return Granted(consent.name, provider, dict(token), tuple(tenants))


def save(store: TokenStore, granted: Granted, tenant: Tenant) -> Connected:
    """Store the granted tokens (encrypted) under the connection's name, for ``tenant``."""
    if tenant not in granted.tenants:
        raise AuthError(f"{tenant.id} is not among the organisations this consent connected")
    store.save_new(granted.name, granted.provider, tenant.id, tenant.name, granted.token)
    return Connected(granted.name, granted.provider, tenant)


def connect(
    loaded: LoadedConfig,
    store: TokenStore,
    name: str,
    provider: str,
    prompts: Prompts,
    *,
    no_browser: bool = False,
    tenant: str | None = None,
    timeout: float = 300.0,
) -> Connected:
    """Run the consent flow for ``connections.NAME`` and store the tokens. Raises ConfigError
    (bad name or provider, key missing or wrong) before anything is written, AuthError when
    the consent or the exchange fails."""
    config = connection_config(loaded, name, provider)
    check_key(store)  # a wrong key stops us before the consent
    ep = endpoints(config)
    allow_loopback_http(ep.authorize_url, ep.token_url, *filter(None, [ep.connections_url]))
    server = None if no_browser else CallbackServer(config.redirect_port)
    try:
        redirect_uri = (
            server.redirect_uri
            if server is not None
            else f"http://127.0.0.1:{config.redirect_port}{CALLBACK_PATH}"
        )
        consent = begin(name, config, redirect_uri)
        prompts.echo(f"Open this URL to connect {provider} ({name}):\n{consent.url}")
        if server is None:
            response = prompts.paste_url().strip()
        else:
            if not prompts.open_browser(consent.url):
                prompts.echo("No browser could be opened: open the URL above yourself.")
            got = server.wait(timeout)
            if got is None:
                raise AuthError(f"no answer from the consent page within {int(timeout)} s")
            response = got
    finally:
        if server is not None:
            server.stop()
    granted = finish(config, consent, response)
    return save(store, granted, _pick(list(granted.tenants), tenant, prompts))


def _tenants(
    config: ConnectionConfig, token: dict[str, Any], query: dict[str, list[str]]
) -> list[Tenant]:
    if config.provider == "quickbooks":
        realm = (query.get("realmId") or [""])[0]
        if not realm.isdigit():
            raise AuthError("the redirect carries no realmId (the QuickBooks company)")
        return [Tenant(realm, f"QuickBooks company {realm}")]
    url = endpoints(config).connections_url
    assert url is not None  # Xero always has one
    try:
        answer = requests.get(
            url,
            headers={
                "Authorization": f"Bearer {token['access_token']}",
                "Accept": "application/json",
            },
            timeout=30,
        )
    except requests.RequestException as exc:
        raise TransientError(f"no answer from {url} ({type(exc).__name__})") from None
    if answer.status_code != 200:
        raise AuthError(f"{url}: HTTP {answer.status_code} listing the connected organisations")
    return [
        Tenant(str(t["tenantId"]), str(t.get("tenantName") or ""))
        for t in answer.json()
        if isinstance(t, dict) and t.get("tenantType") == "ORGANISATION" and t.get("tenantId")
    ]


def _pick(tenants: list[Tenant], wanted: str | None, prompts: Prompts) -> Tenant:
    if wanted is not None:
        for t in tenants:
            if wanted.lower() in (t.id.lower(), t.name.lower()):
                return t
        names = ", ".join(f"{t.name} ({t.id})" for t in tenants)
        raise ConfigError(f"--tenant {wanted!r} is not among the connected ones: {names}")
    if len(tenants) == 1:
        return tenants[0]
    return prompts.choose(tenants)


def revoke(config: ConnectionConfig, refresh_token: str, timeout: float = 30.0) -> None:
    """Revoke the grant at the provider (Xero: form body; Intuit: JSON body)."""
    ep = endpoints(config)
    auth = HTTPBasicAuth(config.client_id, config.client_secret.get_secret_value())
    try:
        if config.provider == "xero":
            answer = requests.post(
                ep.revoke_url, data={"token": refresh_token}, auth=auth, timeout=timeout
            )
        else:
            answer = requests.post(
                ep.revoke_url,
                json={"token": refresh_token},
                headers={"Accept": "application/json"},
                auth=auth,
                timeout=timeout,
            )
    except requests.RequestException as exc:
        raise TransientError(f"no answer from {ep.revoke_url} ({type(exc).__name__})") from None
    if answer.status_code != 200:
        raise AuthError(f"{ep.revoke_url}: HTTP {answer.status_code} revoking the token")
