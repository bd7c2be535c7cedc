"""The fakes' OAuth2 endpoints are as strict as the real identity services."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.server import Sandbox
from tests.oauth_helpers import SharedClock, consent, start_oauth_sandbox

REDIRECT = "http://127.0.0.1:9/callback"


@pytest.fixture
def clock() -> SharedClock:
    return SharedClock()


@pytest.fixture
def fakes(clock: SharedClock) -> Iterator[Sandbox]:
    running = start_oauth_sandbox(clock)
    try:
        yield running
    finally:
        running.stop()


def _authorize(sandbox: Sandbox, **overrides: str) -> requests.Response:
    oauth = sandbox.xero.settings.oauth
    params = {
        "response_type": "code",
        "client_id": oauth.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid offline_access accounting.transactions",
        "state": "st-1",
    }
    params.update(overrides)
    return requests.get(
        f"{sandbox.xero_url}/identity/connect/authorize",
        params=params,
        allow_redirects=False,
        timeout=10,
    )


def _query(response: requests.Response) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def _token(sandbox: Sandbox, data: dict[str, str], auth: Any = None) -> requests.Response:
    oauth = sandbox.xero.settings.oauth
    return requests.post(
        f"{sandbox.xero_url}/connect/token",
        data=data,
        auth=auth if auth is not None else (oauth.client_id, oauth.client_secret),
        timeout=10,
    )


def test_authorize_redirects_with_code_and_state_and_refuses_bad_requests(fakes: Sandbox) -> None:
    ok = _authorize(fakes)
    assert ok.status_code == 302
    assert _query(ok)["state"] == "st-1" and _query(ok)["code"]
    assert _authorize(fakes, client_id="nope").status_code == 400  # never redirected
    assert _authorize(fakes, redirect_uri="https://evil.example/cb").status_code == 400
    assert _query(_authorize(fakes, scope="openid accounting.transactions"))["error"] == (
        "invalid_scope"
    )  # no offline_access, no refresh token
    assert _query(_authorize(fakes, response_type="token"))["error"] == (
        "unsupported_response_type"
    )
    plain = _authorize(fakes, code_challenge="abc", code_challenge_method="plain")
    assert _query(plain)["error"] == "invalid_request"


def test_code_exchange_checks_client_pkce_redirect_and_single_use(fakes: Sandbox) -> None:
    verifier = "v" * 50
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    code = _query(_authorize(fakes, code_challenge=challenge, code_challenge_method="S256"))["code"]
    grant = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    assert _token(fakes, grant, auth=("sandbox-client-id", "wrong")).status_code == 401
    assert _token(fakes, {**grant, "code_verifier": "w" * 50}).json()["error"] == "invalid_grant"

    code = _query(_authorize(fakes, code_challenge=challenge, code_challenge_method="S256"))["code"]
    grant = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    wrong_redirect = {
        **grant,
        "redirect_uri": "http://127.0.0.1:9/other",
        "code_verifier": verifier,
    }
    assert _token(fakes, wrong_redirect).json()["error"] == "invalid_grant"

    code = _query(_authorize(fakes, code_challenge=challenge, code_challenge_method="S256"))["code"]
    grant = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    answer = _token(fakes, {**grant, "code_verifier": verifier})
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1800
    assert "offline_access" in body["scope"].split()
    replay = _token(fakes, {**grant, "code_verifier": verifier})
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    as_json = requests.post(
        f"{fakes.xero_url}/connect/token",
        json=grant,
        auth=("sandbox-client-id", "sandbox-client-secret"),
        timeout=10,
    )
    assert as_json.status_code == 400  # the token endpoint takes form bodies only


def test_refresh_rotates_with_a_thirty_minute_grace_then_invalid_grant(
    fakes: Sandbox, clock: SharedClock
) -> None:
    first = consent(fakes)
    refreshed = _token(
        fakes, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]  # rotated on every use
    clock.advance(29 * 60)
    again = _token(fakes, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert again.status_code == 200  # the previous one, within the grace window
    clock.advance(31 * 60)
    late = _token(fakes, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert late.status_code == 400 and late.json() == {"error": "invalid_grant"}


def test_expired_access_tokens_get_401_and_connections_lists_the_tenant(
    fakes: Sandbox, clock: SharedClock
) -> None:
    token = consent(fakes)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    listed = requests.get(f"{fakes.xero_url}/connections", headers=headers, timeout=10)
    assert listed.status_code == 200
    [tenant] = listed.json()
    assert tenant["tenantId"] == fakes.xero.settings.tenant_id
    assert tenant["tenantType"] == "ORGANISATION" and tenant["tenantName"]
    api = {**headers, "xero-tenant-id": fakes.xero.settings.tenant_id}
    assert requests.get(f"{fakes.xero_url}/Organisation", headers=api, timeout=10).ok
    clock.advance(1801)
    assert (
        requests.get(f"{fakes.xero_url}/Organisation", headers=api, timeout=10).status_code == 401
    )
    assert (
        requests.get(f"{fakes.xero_url}/connections", headers=headers, timeout=10).status_code
        == 401
    )


def test_revocation_ends_the_grant(fakes: Sandbox) -> None:
    tokens = consent(fakes)
    oauth = fakes.xero.settings.oauth
    revoked = requests.post(
        f"{fakes.xero_url}/connect/revocation",
        data={"token": tokens["refresh_token"]},
        auth=(oauth.client_id, oauth.client_secret),
        timeout=10,
    )
    assert revoked.status_code == 200
    assert not fakes.xero.auth.access_token_valid(tokens["access_token"])
    refresh = _token(
        fakes, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refresh.json()["error"] == "invalid_grant"


def test_intuit_revoke_takes_json_and_the_refresh_value_changes_about_daily(
    fakes: Sandbox, clock: SharedClock
) -> None:
    oauth = fakes.quickbooks.settings.oauth
    url = fakes.quickbooks_url
    page = requests.get(
        f"{url}/connect/oauth2",
        params={
            "response_type": "code",
            "client_id": oauth.client_id,
            "redirect_uri": REDIRECT,
            "scope": "com.intuit.quickbooks.accounting",
            "state": "q",
        },
        allow_redirects=False,
        timeout=10,
    )
    query = _query(page)
    assert query["realmId"] == fakes.quickbooks.settings.realm_id
    auth = (oauth.client_id, oauth.client_secret)
    token_url = f"{url}/oauth2/v1/tokens/bearer"
    first = requests.post(
        token_url,
        data={"grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT},
        auth=auth,
        timeout=10,
    ).json()
    assert first["token_type"] == "bearer" and first["x_refresh_token_expires_in"] > 0
    same = requests.post(
        token_url,
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=auth,
        timeout=10,
    ).json()
    assert same["refresh_token"] == first["refresh_token"]  # within a day: the same value
    clock.advance(86_401)
    new = requests.post(
        token_url,
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=auth,
        timeout=10,
    ).json()
    assert new["refresh_token"] != first["refresh_token"]
    revoke = requests.post(
        f"{url}/v2/oauth2/tokens/revoke",
        json={"token": new["refresh_token"]},
        auth=auth,
        timeout=10,
    )
    assert revoke.status_code == 200
    assert fakes.quickbooks.auth.live_grants() == 0


def test_with_a_consent_page_the_person_allows_or_denies(fakes: Sandbox) -> None:
    fakes.xero.settings.oauth.consent_page = True
    page = _authorize(fakes, code_challenge="x" * 43, code_challenge_method="S256")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    links = dict(re.findall(r'href="([^"]+)">([^<]+)<', page.text))
    assert set(links.values()) == {"Allow access", "Deny"}
    answers = {
        name: requests.get(fakes.xero_url + html.unescape(href), allow_redirects=False, timeout=10)
        for href, name in links.items()
    }
    allowed, denied = _query(answers["Allow access"]), _query(answers["Deny"])
    assert allowed["code"] and allowed["state"] == "st-1"
    assert denied == {"error": "access_denied", "state": "st-1"}
    # the checks come first: a bad request is refused before any page is shown
    assert _authorize(fakes, client_id="nope").status_code == 400
    assert _query(_authorize(fakes, response_type="token"))["error"] == (
        "unsupported_response_type"
    )
