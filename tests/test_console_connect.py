"""Connecting an organisation from the console's Connections page, through the fake Xero and
QuickBooks identity services: the consent (PKCE, state) started by a POST, the provider's
redirect back to /connections/callback (also as a browser sends it, without the SameSite=Strict
session cookie), the token exchange, the choice of organisation, and every refusal storing
nothing. The same core.connect pieces as `hourbridge connect` (tests/test_oauth_connect.py)."""

from __future__ import annotations

import html
import json
import re
from base64 import b64decode
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from pydantic import ValidationError
from sqlmodel import Session, select
from starlette.testclient import TestClient

from console.app import create_app
from console.server import settings
from core.consoleconfig import ConsoleConfig
from core.tables import ConsoleAuditRow, OAuthConnectionRow
from sandbox.server import Sandbox
from tests.console_helpers import (
    ConsoleSetup,
    cli,
    csrf_of,
    oauth_console_setup,
    sign_in,
)
from tests.oauth_helpers import (
    CONNECTION,
    QBO_CONNECTION,
    SharedClock,
    raw_database_bytes,
    start_oauth_sandbox,
)

CALLBACK = "http://127.0.0.1/connections/callback"
OTHER = ("7d4e2b1c-0f3a-4e5d-8c6b-9a0f1e2d3c4b", "Other Org Ltd")


class Clock:
    """The console's clock, moved by hand (consents expire after 10 minutes)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def xero() -> Iterator[Sandbox]:
    running = start_oauth_sandbox(SharedClock())
    # strict: only the console's callback is a registered redirect URI of the fake app
    running.xero.settings.oauth.redirect_uris = (CALLBACK,)
    try:
        yield running
    finally:
        running.stop()


def client_at(setup: ConsoleSetup, clock: Clock) -> TestClient:
    app = create_app(setup.loaded, setup.engine, settings(setup.loaded, None, None), clock=clock)
    return TestClient(app, base_url="http://127.0.0.1")


def session_of(client: TestClient) -> dict[str, object]:
    """What the signed (not encrypted) session cookie holds: anyone can read it."""
    cookie = client.cookies["hourbridge_console"]
    data: dict[str, object] = json.loads(b64decode(cookie.split(".")[0] + "=="))
    return data


def start(client: TestClient, token: str, name: str = CONNECTION) -> str:
    """Press Connect: the consent URL the console sends the browser to."""
    answer = client.post(
        "/connections/connect",
        data={"csrf_token": token, "name": name},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text[:300]
    assert answer.headers["cache-control"] == "no-store"
    return str(answer.headers["location"])


def consent(url: str) -> str:
    """The fake provider's consent page (it consents at once): where it sends the browser."""
    page = requests.get(url, allow_redirects=False, timeout=10)
    assert page.status_code == 302, page.text
    return page.headers["Location"]


def stored(setup: ConsoleSetup, name: str = CONNECTION) -> OAuthConnectionRow | None:
    with Session(setup.engine) as session:
        return session.get(OAuthConnectionRow, name)


def audit(setup: ConsoleSetup) -> list[tuple[str, str, str]]:
    with Session(setup.engine) as session:
        return [(a.user, a.action, a.subject) for a in session.exec(select(ConsoleAuditRow))]


def test_finance_user_connects_xero_from_the_connections_page(
    xero: Sandbox,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    setup = oauth_console_setup(xero, db_url, tmp_path, monkeypatch)
    clock = Clock()
    client = client_at(setup, clock)
    token = sign_in(client, "fiona")
    page = client.get("/connections")
    assert 'action="/connections/connect"' in page.text and "not connected" in page.text
    assert f"<code>{CALLBACK}</code>" in page.text  # the redirect URI to register
    assert f'<option value="{CONNECTION}">{CONNECTION} (xero)</option>' in page.text

    # 1. Connect: the consent URL has PKCE (S256), a state, and our callback
    url = start(client, token)
    authorize = xero.xero_url + "/identity/connect/authorize"
    assert url.startswith(authorize + "?")
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["redirect_uri"] == [CALLBACK] and query["client_id"] == ["sandbox-client-id"]
    assert "offline_access" in query["scope"][0].split()
    state = query["state"][0]
    # the session (readable by its holder) keeps only the state; the verifier stays server-side
    assert session_of(client)["consent"] == state
    assert set(session_of(client)) == {"user", "csrf", "consent"}

    # 2. the provider sends the browser back; coming from its site, the browser leaves the
    # SameSite=Strict cookie out: the console answers without touching any session...
    back = consent(url)
    assert back.startswith(CALLBACK + "?")
    code = parse_qs(urlsplit(back).query)["code"][0]
    cookieless = TestClient(client.app, base_url="http://127.0.0.1")
    bounce = cookieless.get(back)
    assert bounce.status_code == 200 and "set-cookie" not in bounce.headers
    assert 'content="0;url=/connections/callback/resume"' in bounce.text
    assert code not in bounce.text and state not in bounce.text
    assert stored(setup) is None  # nothing until the signed-in session resumes

    # 3. ...and its page continues to /resume, with the cookie: exchanged and stored
    done = client.get("/connections/callback/resume")
    assert done.status_code == 200 and str(done.url) == "http://127.0.0.1/connections"
    tenant = xero.xero.settings.tenant_id
    assert f"connected {CONNECTION}: xero Hourbridge Sandbox Ltd ({tenant})" in done.text
    assert tenant in done.text.split("<tbody>")[1] and ">ok<" in done.text
    row = stored(setup)
    assert row is not None and row.tenant_id == tenant and row.provider == "xero"
    assert audit(setup) == [
        ("fiona", "connection.connect", f"{CONNECTION}: xero Hourbridge Sandbox Ltd ({tenant})")
    ]
    assert "consent" not in session_of(client)
    # the same code cannot be used twice (the consent was forgotten)
    replay = client.get("/connections/callback/resume")
    assert replay.status_code == 400 and "no consent was started" in replay.text

    # 4. the CLI's `connections test` works on what the console stored
    tested = cli(setup, "connections", "test", CONNECTION, "--config", setup.config)
    assert tested.code == 0 and f"{CONNECTION}: ok" in tested.stdout, tested.stderr

    # 5. connecting again, with the cookie sent along (same site): replaced in place
    again = consent(start(client, token))
    assert client.get(again).status_code == 200
    assert xero.xero.auth.live_grants() == 2
    assert [a[1] for a in audit(setup)] == ["connection.connect"] * 2

    # no token, code or secret in clear: not in the database, the pages or the output
    issued = xero.xero.auth.issued
    row = stored(setup)
    assert row is not None and not any(t in row.token_set for t in issued)
    if db_url.startswith("sqlite"):
        raw = raw_database_bytes(db_url)
        assert b"oauth_connections" in raw
        assert [t for t in issued if t.encode() in raw] == []
        assert xero.xero.settings.oauth.client_secret.encode() not in raw
    shown = client.get("/connections").text + done.text
    assert [t for t in [*issued, code] if t in shown] == []
    assert xero.xero.settings.oauth.client_secret not in shown
    out, err = capfd.readouterr()
    assert [t for t in [*issued, code, state] if t in out + err] == []


def test_viewers_and_posts_without_csrf_cannot_start_a_consent(
    xero: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = oauth_console_setup(xero, db_url, tmp_path, monkeypatch)
    viewer = client_at(setup, Clock())
    viewer_token = sign_in(viewer, "victor")
    page = viewer.get("/connections")
    assert 'action="/connections/connect"' not in page.text
    assert "needs the finance role" in page.text
    refused = viewer.post(
        "/connections/connect",
        data={"csrf_token": viewer_token, "name": CONNECTION},
        follow_redirects=False,
    )
    assert refused.status_code == 403 and "viewer" in refused.text
    assert "consent" not in session_of(viewer)
    assert viewer.get("/connections/choose").status_code == 403

    client = client_at(setup, Clock())
    token = sign_in(client, "fiona")
    for data in ({"name": CONNECTION}, {"name": CONNECTION, "csrf_token": token + "x"}):
        answer = client.post("/connections/connect", data=data, follow_redirects=False)
        assert answer.status_code == 403 and "CSRF" in answer.text
    assert client.post("/connections/choose", data={"tenant": "x"}).status_code == 403
    unknown = client.post(
        "/connections/connect", data={"csrf_token": token, "name": "nope"}, headers={
            "referer": "http://127.0.0.1/connections"},
    )  # fmt: skip
    assert "no connection named &#39;nope&#39;" in unknown.text
    assert xero.xero.auth.live_grants() == 0 and stored(setup) is None


def test_a_wrong_state_a_refusal_an_expiry_or_a_failed_exchange_store_nothing(
    xero: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = oauth_console_setup(xero, db_url, tmp_path, monkeypatch)
    clock = Clock()
    client = client_at(setup, clock)
    token = sign_in(client, "fiona")

    # a callback nobody started
    nothing = client.get(CALLBACK + "?code=abc&state=xyz")
    assert nothing.status_code == 400 and "no consent was started" in nothing.text
    assert 'href="/connections"' in nothing.text

    # a forged state: refused, with the one-line reason
    back = consent(start(client, token))
    query = parse_qs(urlsplit(back).query)
    forged = client.get(CALLBACK + "?" + urlencode({"code": query["code"][0], "state": "forged"}))
    assert forged.status_code == 400
    assert "state does not match the one sent: not our consent" in forged.text

    # the person pressed Deny on the provider's consent page
    xero.xero.settings.oauth.consent_page = True
    asked = requests.get(start(client, token), timeout=10)
    assert asked.status_code == 200 and "Allow access?" in asked.text
    deny = re.search(r'href="([^"]+consent=deny)"', asked.text)
    assert deny is not None
    refusal = consent(xero.xero_url + html.unescape(deny.group(1)))
    assert "error=access_denied" in refusal and "code=" not in refusal
    xero.xero.settings.oauth.consent_page = False
    denied = client.get(refusal)
    assert denied.status_code == 400 and "xero refused the consent: access_denied" in denied.text
    assert '<p class="flash error" role="alert">' in denied.text  # one line, on the page

    # the consent took too long
    back = consent(start(client, token))
    clock.now += timedelta(minutes=11)
    late = client.get(back)
    assert late.status_code == 400 and "expired" in late.text

    # the token endpoint is down
    back = consent(start(client, token))
    xero.xero.auth.fail_next_token(503)
    failed = client.get(back)
    assert failed.status_code == 400
    assert "xero refused the code exchange: temporarily_unavailable" in failed.text
    assert "nothing stored: connect again" in failed.text

    assert stored(setup) is None and audit(setup) == []
    assert "connected " not in client.get("/connections").text


def test_several_organisations_the_user_picks_one_on_a_page(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = start_oauth_sandbox(SharedClock(), other_tenants=(OTHER,))
    try:
        setup = oauth_console_setup(running, db_url, tmp_path, monkeypatch)
        client = client_at(setup, Clock())
        token = sign_in(client, "fiona")
        chosen = client.get(consent(start(client, token)), follow_redirects=False)
        assert chosen.status_code == 303 and chosen.headers["location"] == "/connections/choose"
        assert stored(setup) is None  # not before the choice
        page = client.get("/connections/choose")
        tenant = running.xero.settings.tenant_id
        assert f"Hourbridge Sandbox Ltd ({tenant})" in page.text
        assert f"Other Org Ltd ({OTHER[0]})" in page.text
        assert 'action="/connections/choose"' in page.text and "access_token" not in page.text
        # the choice is a form like any other: its CSRF token, and one of the listed ones
        assert client.post("/connections/choose", data={"tenant": OTHER[0]}).status_code == 403
        bogus = client.post(
            "/connections/choose",
            data={"csrf_token": csrf_of(page.text), "tenant": "not-listed"},
            headers={"referer": "http://127.0.0.1/connections/choose"},
        )
        assert "choose one of the organisations listed" in bogus.text and stored(setup) is None
        picked = client.post(
            "/connections/choose", data={"csrf_token": csrf_of(page.text), "tenant": OTHER[0]}
        )
        assert f"connected {CONNECTION}: xero Other Org Ltd ({OTHER[0]})" in picked.text
        row = stored(setup)
        assert row is not None and row.tenant_id == OTHER[0] and row.tenant_name == OTHER[1]
        assert audit(setup) == [
            ("fiona", "connection.connect", f"{CONNECTION}: xero Other Org Ltd ({OTHER[0]})")
        ]
        # done: nothing waits any more
        assert client.get("/connections/choose").status_code == 400
    finally:
        running.stop()


def test_quickbooks_takes_the_realm_from_the_redirect(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = start_oauth_sandbox(SharedClock())
    try:
        setup = oauth_console_setup(running, db_url, tmp_path, monkeypatch, provider="quickbooks")
        client = client_at(setup, Clock())
        token = sign_in(client, "fiona")
        url = start(client, token, QBO_CONNECTION)
        assert url.startswith(running.quickbooks_url + "/connect/oauth2?")
        back = consent(url)
        assert "realmId=" in back
        done = client.get(back)
        realm = running.quickbooks.settings.realm_id
        assert f"connected {QBO_CONNECTION}: quickbooks" in done.text and realm in done.text
        row = stored(setup, QBO_CONNECTION)
        assert row is not None and row.tenant_id == realm
        tested = cli(setup, "connections", "test", QBO_CONNECTION, "--config", setup.config)
        assert tested.code == 0, tested.stderr
    finally:
        running.stop()


def test_the_callback_address_comes_from_public_url_and_is_required_behind_tls() -> None:
    secret = "s" * 40
    local = ConsoleConfig.model_validate({"session_secret": secret})
    assert local.callback_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080" + (
        "/connections/callback"
    )
    public = ConsoleConfig.model_validate(
        {"session_secret": secret, "public_url": "https://hb.example.com/", "behind_tls": True}
    )
    assert public.callback_url("http://10.0.0.5:8080") == (
        "https://hb.example.com/connections/callback"
    )
    proxied = ConsoleConfig.model_validate(
        {"session_secret": secret, "behind_tls": True, "host": "0.0.0.0"}
    )
    with pytest.raises(ValueError, match=r"console\.public_url: missing"):
        proxied.callback_url("https://hb.example.com")
    with pytest.raises(ValidationError, match="plain HTTP"):
        ConsoleConfig.model_validate(
            {"session_secret": secret, "public_url": "http://hb.example.com"}
        )
