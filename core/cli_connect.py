"""``hourbridge connect``, ``hourbridge connections ...`` and ``hourbridge secrets ...``."""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import requests
import typer
import yaml
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlmodel import Session

from core import logging as hblog
from core.cliutil import EXIT_FAILED, ConfigOpt, JsonOpt, database, err, fail, load, out
from core.config import LoadedConfig, load_config
from core.connect import Prompts, Tenant, connect, revoke
from core.errors import ConfigError, HourbridgeError
from core.factory import open_token_store
from core.logging import Redactor
from core.tokens import TokenStore, endpoints
from core.vault import new_key

connections_app = typer.Typer(
    help="Connected accounting organisations (OAuth2 tokens, stored encrypted).",
    no_args_is_help=True,
)
secrets_app = typer.Typer(
    help="Secrets stored encrypted in the database, used as ${secret:NAME}.",
    no_args_is_help=True,
)

PROVIDERS = ("xero", "quickbooks")
_SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")

# What opens the consent page; tests replace it with an HTTP client that follows the redirect.
open_browser = webbrowser.open


def _load_unresolved(config: Path) -> LoadedConfig:
    """The config with ${secret:NAME} left as written: managing the store must work before
    a secret the config names has been stored."""
    try:
        loaded = load_config(config, stored_secrets=False)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    hblog.configure(loaded.secrets)
    return loaded


def _store(loaded: LoadedConfig) -> TokenStore:
    engine = database(loaded)
    try:
        return open_token_store(loaded, engine)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def connect_command(
    provider: Annotated[str, typer.Argument(help="xero or quickbooks.")],
    *,
    name: Annotated[str, typer.Option("--name", help="The entry under `connections`.")],
    config: ConfigOpt,
    no_browser: Annotated[
        bool,
        typer.Option(
            "--no-browser",
            help="Headless: print the consent URL, then paste the URL the browser was "
            "redirected to (even if that page failed to load).",
        ),
    ] = False,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="The organisation to use (id or name), without asking."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the consent.", min=1)
    ] = 300.0,
) -> None:
    """Connect a Xero organisation or a QuickBooks company, once: the OAuth2 consent (PKCE),
    then its tokens are stored encrypted under NAME and refreshed by hourbridge from then on."""
    if provider not in PROVIDERS:
        raise fail(f"PROVIDER: expected xero or quickbooks, got {provider!r}")
    loaded = load(config)
    store = _store(loaded)

    def choose(tenants: Sequence[Tenant]) -> Tenant:
        for i, t in enumerate(tenants, start=1):
            out.print(f"  {i}. {t.name} ({t.id})", highlight=False, markup=False)
        picked = int(typer.prompt("Which organisation", type=int, default=1))
        if not 1 <= picked <= len(tenants):
            raise fail(f"choose a number from 1 to {len(tenants)}")
        return tenants[picked - 1]

    prompts = Prompts(
        echo=lambda text: out.print(text, highlight=False, markup=False, soft_wrap=True),
        open_browser=lambda url: bool(open_browser(url)),
        paste_url=lambda: typer.prompt("Paste the URL the browser was redirected to"),
        choose=choose,
    )
    try:
        done = connect(
            loaded,
            store,
            name,
            provider,
            prompts,
            no_browser=no_browser,
            tenant=tenant,
            timeout=timeout,
        )
    except ConfigError as exc:
        raise fail(str(exc)) from None
    except HourbridgeError as exc:
        raise fail(str(exc), EXIT_FAILED) from None
    out.print(
        f"connected {done.name}: {done.provider} {done.tenant.name} ({done.tenant.id}); "
        f"targets use it with `connection: {done.name}`",
        highlight=False,
        markup=False,
    )


@connections_app.command("list")
def connections_list(config: ConfigOpt, as_json: JsonOpt = False) -> None:
    """The stored connections: provider, organisation, status, token expiry (no secrets)."""
    loaded = _load_unresolved(config)
    rows = _store(loaded).rows()
    data = [
        {
            "name": r.name,
            "provider": r.provider,
            "tenant_id": r.tenant_id,
            "tenant_name": r.tenant_name,
            "status": r.status,
            "access_token_expires_at": r.expires_at.isoformat(),
            "refreshed_at": r.refreshed_at.isoformat() if r.refreshed_at else None,
            "in_config": r.name in loaded.config.connections,
        }
        for r in rows
    ]
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
        return
    table = Table(title="Connections")
    for column in ("name", "provider", "organisation", "status", "token expires", "refreshed"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.name,
            r.provider,
            f"{r.tenant_name} ({r.tenant_id})",
            r.status,
            f"{r.expires_at:%Y-%m-%d %H:%M:%S}",
            f"{r.refreshed_at:%Y-%m-%d %H:%M:%S}" if r.refreshed_at else "",
        )
    out.print(table)


@connections_app.command("test")
def connections_test(
    name: Annotated[str, typer.Argument(help="The connection to test.")], config: ConfigOpt
) -> None:
    """One cheap authenticated call through the connection (refreshing its token if due)."""
    loaded = load(config)
    if name not in loaded.config.connections:
        raise fail(f"{config}: no connection named {name!r} under connections")
    try:
        message = check_connection(loaded, _store(loaded), name)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    except HourbridgeError as exc:
        raise fail(str(exc), EXIT_FAILED) from None
    out.print(message, highlight=False)


def check_connection(loaded: LoadedConfig, store: TokenStore, name: str) -> str:
    """What ``connections test`` does (the web console too): one cheap authenticated call,
    refreshing the token if due. The "ok" line, or HourbridgeError (ConfigError: the config)
    saying what failed."""
    cfg = loaded.config.connections.get(name)
    if cfg is None:
        raise ConfigError(f"{loaded.path}: no connection named {name!r} under connections")
    tokens = store.tokens(name, cfg, loaded.path)
    for attempt in range(2):
        token = tokens.access_token()
        url, headers = _probe(loaded, name, cfg.provider, tokens.tenant or "")
        try:
            answer = requests.get(
                url, headers={**headers, "Authorization": f"Bearer {token}"}, timeout=30
            )
        except requests.RequestException as exc:
            raise HourbridgeError(f"{name}: no answer from {url} ({type(exc).__name__})") from None
        if answer.status_code == 401 and attempt == 0 and tokens.after_unauthorized(token):
            continue
        break
    if answer.status_code != 200:
        raise HourbridgeError(f"{name}: {url} answered HTTP {answer.status_code}")
    return f"{name}: ok ({cfg.provider} {tokens.tenant})"


def _probe(
    loaded: LoadedConfig, name: str, provider: str, tenant: str
) -> tuple[str, dict[str, str]]:
    """The URL of one cheap authenticated read, and its headers."""
    accept = {"Accept": "application/json"}
    if provider == "xero":
        url = endpoints(loaded.config.connections[name]).connections_url
        assert url is not None
        return url, accept
    base = "https://quickbooks.api.intuit.com/v3"
    for target in loaded.config.targets.values():
        if getattr(target, "connection", None) == name:
            if getattr(target, "base_url", None):
                base = str(target.base_url).rstrip("/")
            elif getattr(target, "environment", None) == "sandbox":
                base = "https://sandbox-quickbooks.api.intuit.com/v3"
            break
    return f"{base}/company/{tenant}/companyinfo/{tenant}?minorversion=75", accept


@connections_app.command("remove")
def connections_remove(
    name: Annotated[str, typer.Argument(help="The connection to remove.")],
    config: ConfigOpt,
    keep_grant: Annotated[
        bool, typer.Option("--no-revoke", help="Forget the tokens without revoking them.")
    ] = False,
) -> None:
    """Revoke the connection's tokens at the provider, then forget them."""
    loaded = load(config)
    store = _store(loaded)
    row = store.get(name)
    if row is None:
        raise fail(f"no stored connection named {name!r}; see `hourbridge connections list`")
    cfg = loaded.config.connections.get(name)
    if not keep_grant:
        if cfg is None:
            raise fail(
                f"{config}: connections.{name} is not in the config, so it cannot be revoked; "
                "use --no-revoke to forget it anyway"
            )
        try:
            revoke(cfg, store.token_set(row).refresh_token)
        except ConfigError as exc:
            raise fail(str(exc)) from None
        except HourbridgeError as exc:
            raise fail(f"{exc}; nothing removed (retry, or use --no-revoke)", EXIT_FAILED) from None
    store.delete(name)
    out.print(f"removed {name}" + ("" if keep_grant else " (revoked at the provider)"))


@secrets_app.command("set")
def secrets_set(
    name: Annotated[str, typer.Argument(help="The secret's name, used as ${secret:NAME}.")],
    config: ConfigOpt,
) -> None:
    """Store a secret, encrypted. The value is read from the terminal without echo, or from
    stdin when piped; never from the command line."""
    if not _SECRET_NAME.fullmatch(name):
        raise fail(f"NAME: {name!r} is not a valid secret name (letters, digits, _ . -)")
    loaded = _load_unresolved(config)
    store = _store(loaded)
    try:
        with Session(store.engine) as session:
            store.vault.check_key(session)  # before asking for the value
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if sys.stdin.isatty():
        value = getpass.getpass(f"value of {name}: ")
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise fail("empty value; nothing stored")
    try:
        store.vault.set_secret(name, value)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    out.print(f"stored secret {name}; use it as ${{secret:{name}}}", highlight=False, markup=False)


@secrets_app.command("list")
def secrets_list(config: ConfigOpt) -> None:
    """The names of the stored secrets (never their values)."""
    loaded = _load_unresolved(config)
    for secret in _store(loaded).vault.secret_names():
        out.print(secret, highlight=False, markup=False)


@secrets_app.command("delete")
def secrets_delete(
    name: Annotated[str, typer.Argument(help="The secret to forget.")], config: ConfigOpt
) -> None:
    """Forget a stored secret."""
    loaded = _load_unresolved(config)
    if not _store(loaded).vault.delete_secret(name):
        raise fail(f"no stored secret named {name!r}")
    out.print(f"deleted secret {name}", highlight=False, markup=False)


@secrets_app.command("keygen")
def secrets_keygen(
    file: Annotated[Path, typer.Option("--file", help="Write the new key here (mode 0600).")],
) -> None:
    """Make a new encryption key in a file readable by its owner only. Point
    `secrets.key_file` (or HOURBRIDGE_SECRET_KEY_FILE) at it."""
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new_key() + "\n")
    except FileExistsError:
        raise fail(f"{file}: exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise fail(f"{file}: cannot write: {exc.strerror or exc}") from None
    err.print(f"wrote a new key to {file} (mode 0600); keep a copy somewhere safe")


def config_show(config: ConfigOpt) -> None:
    """Print the resolved config (references substituted) with every secret masked."""
    loaded = load(config)
    data = loaded.config.model_dump(mode="json")
    try:
        url = make_url(loaded.config.database.url)
        data["database"]["url"] = url.render_as_string(hide_password=True)
    except ArgumentError:
        pass  # validated already; nothing to hide in what cannot be parsed
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    sys.stdout.write(Redactor(loaded.secrets).scrub(text))
