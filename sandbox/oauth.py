"""A fake OAuth2 authorization server, shared by the fake Xero and the fake QuickBooks.

It is what the real identity services do for a confidential client, strictly:

* ``authorize`` auto-consents: it checks ``response_type=code``, the ``client_id``, the
  ``redirect_uri`` (loopback or registered), the required scope and, when sent, a PKCE
  ``code_challenge`` (``S256`` only), then redirects to ``redirect_uri`` with ``code`` and
  ``state`` (and, for Intuit, ``realmId``). An unknown client or redirect URI gets an error
  page, never a redirect (RFC 6749 4.1.2.1). With ``consent_page`` it shows a consent page
  instead, as the real ones do: its "Allow access" link (on the provider's own site, so the
  way back is a cross-site navigation for a browser) consents, "Deny" sends the redirect back
  with ``error=access_denied``.
* ``token`` takes a form-encoded body and HTTP Basic client authentication (``invalid_client``,
  401, otherwise). The ``authorization_code`` grant checks the code (single use, 10 minutes),
  its ``redirect_uri`` and the PKCE ``code_verifier``. The ``refresh_token`` grant rotates:
  Xero issues a new refresh token on every use and keeps the previous one usable for a
  ``refresh_grace_seconds`` window (30 minutes) so a client that lost the answer can retry;
  Intuit changes the value about once a day (``rotate_after_seconds``). A reused token past the
  grace window is ``400 {"error": "invalid_grant"}``.
* access tokens last ``access_token_seconds`` on the injectable clock ``now``; an expired one
  is refused (the fakes answer 401).
* ``revoke`` ends the whole grant: its refresh and access tokens.

Knobs for tests: ``drop_next_refresh`` (rotate, then cut the connection: the answer is lost),
``fail_next_token`` (an outage: the next token requests answer 503 or 429, changing nothing),
``refuse_refreshes`` (every refresh is ``invalid_grant``, as after a user disconnects the app),
and counters ``refresh_requests`` and ``refreshes``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from werkzeug.wrappers import Request

Json = Any
CODE_SECONDS = 600


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class OAuthSettings:
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"  # noqa: S105 - the fake's fixed test secret
    required_scopes: tuple[str, ...] = ()
    redirect_uris: tuple[str, ...] = ()  # empty: any loopback http URI (a desktop app)
    access_token_seconds: int = 1800
    refresh_grace_seconds: int = 1800  # Xero: the previous refresh token, for 30 minutes
    rotate_after_seconds: int = 0  # 0: rotate on every use (Xero); Intuit: about a day
    realm_in_redirect: str | None = None  # Intuit adds realmId to the redirect
    consent_page: bool = False  # True: a page with Allow / Deny links, not an instant consent
    now: Callable[[], datetime] = _utcnow


@dataclass
class _Grant:
    id: str
    scope: str
    revoked: bool = False


@dataclass
class _Refresh:
    grant: str
    issued_at: datetime
    rotated_at: datetime | None = None  # None: the current token of its grant


@dataclass
class _Code:
    grant: str
    client_id: str
    redirect_uri: str
    challenge: str | None
    expires_at: datetime
    used: bool = False


@dataclass
class Reply:
    status: int
    payload: Json
    headers: list[tuple[str, str]] = field(default_factory=list)
    drop: bool = False  # cut the connection after the commit instead of answering
    content_type: str | None = None  # None: ``payload`` is JSON; else the body, as text

    def body(self, dumps: Callable[[Json], str]) -> tuple[bytes, str | None]:
        """The body to send and its content type (None: the fake's JSON type): nothing, the
        text as given, or ``payload`` written as JSON by the fake's ``dumps``."""
        if self.content_type is not None:
            return str(self.payload).encode(), self.content_type
        if self.payload is None:
            return b"", None
        return dumps(self.payload).encode(), None


class FakeAuthServer:
    """Grants, codes and tokens of one fake provider; thread-safe."""

    def __init__(
        self, settings: OAuthSettings, *, dialect: Literal["xero", "intuit"] = "xero"
    ) -> None:
        self.settings = settings
        self.style = dialect
        self.refresh_requests = 0  # refresh_token grants received (any outcome)
        self.refreshes = 0  # refresh_token grants that issued tokens
        self.revocations = 0
        self.issued: list[str] = []  # every code and token handed out, for leak checks
        self._lock = threading.RLock()
        self._grants: dict[str, _Grant] = {}
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._access: dict[str, tuple[str, datetime]] = {}
        self._drop = 0
        self._refuse = False
        self._fail: list[int] = []

    # ------------------------------------------------------------------ knobs

    def drop_next_refresh(self, count: int = 1) -> None:
        """The next ``count`` refreshes rotate the tokens, then the answer is lost."""
        with self._lock:
            self._drop += count

    def refuse_refreshes(self, refuse: bool = True) -> None:
        """Every refresh answers ``invalid_grant`` (the user disconnected the app)."""
        with self._lock:
            self._refuse = refuse

    def fail_next_token(self, status: int, count: int = 1) -> None:
        """The next ``count`` token requests answer ``status`` (an outage), changing nothing."""
        with self._lock:
            self._fail.extend([status] * count)

    def access_token_valid(self, token: str) -> bool:
        with self._lock:
            found = self._access.get(token)
            if found is None:
                return False
            grant, expires_at = found
            return not self._grants[grant].revoked and self.settings.now() < expires_at

    def live_grants(self) -> int:
        with self._lock:
            return sum(1 for g in self._grants.values() if not g.revoked)

    # ------------------------------------------------------------------ endpoints

    def authorize(self, request: Request) -> Reply:
        """Auto-consent (or, with ``consent_page``, the page first): a 302 to the redirect URI
        with a code, or an error."""
        args = request.args
        client_id = args.get("client_id", "")
        redirect_uri = args.get("redirect_uri", "")
        if client_id != self.settings.client_id:
            return Reply(400, {"error": "invalid_client", "error_description": "unknown client"})
        if not self._redirect_allowed(redirect_uri):
            return Reply(400, {"error": "invalid_request", "error_description": "redirect_uri"})
        state = args.get("state")

        def back(params: dict[str, str]) -> Reply:
            if state is not None:
                params["state"] = state
            sep = "&" if "?" in redirect_uri else "?"
            return Reply(302, None, [("Location", redirect_uri + sep + urlencode(params))])

        refused = self._refusal(args)
        if refused is not None:
            return back(refused)
        if self.settings.consent_page and args.get("consent") is None:
            return _consent_page(request)
        scopes = set(args.get("scope", "").split())
        challenge = args.get("code_challenge")
        with self._lock:
            grant = _Grant(secrets.token_hex(8), " ".join(sorted(scopes)))
            self._grants[grant.id] = grant
            code = secrets.token_urlsafe(24)
            self._codes[code] = _Code(
                grant.id,
                client_id,
                redirect_uri,
                challenge,
                self.settings.now() + timedelta(seconds=CODE_SECONDS),
            )
        params = {"code": code}
        if self.settings.realm_in_redirect is not None:
            params["realmId"] = self.settings.realm_in_redirect
        return back(params)

    def _refusal(self, args: Any) -> dict[str, str] | None:
        """Why the request is refused (sent back to the redirect URI), or None."""
        if args.get("response_type") != "code":
            return {"error": "unsupported_response_type"}
        scopes = set(args.get("scope", "").split())
        missing = [s for s in self.settings.required_scopes if s not in scopes]
        if missing:
            return {"error": "invalid_scope", "error_description": "missing " + " ".join(missing)}
        challenge = args.get("code_challenge")
        if challenge is not None and args.get("code_challenge_method") != "S256":
            return {"error": "invalid_request", "error_description": "code_challenge_method S256"}
        if self.settings.consent_page and args.get("consent") not in (None, "allow"):
            return {"error": "access_denied"}  # the person pressed Deny
        return None

    def token(self, request: Request) -> Reply:
        if request.method != "POST":
            return Reply(405, {"error": "invalid_request"}, [("Allow", "POST")])
        with self._lock:
            failed = self._fail.pop(0) if self._fail else None
        if failed is not None:
            return Reply(failed, {"error": "temporarily_unavailable"})
        if request.mimetype != "application/x-www-form-urlencoded":
            return _error(400, "invalid_request", "form-encoded body expected")
        if not self._client_ok(request):
            return Reply(401, {"error": "invalid_client"})
        form = request.form
        grants: dict[str, Callable[[], Reply]] = {
            "authorization_code": lambda: self._exchange_code(form.get("code", ""), form),
            "refresh_token": lambda: self._refresh_grant(form.get("refresh_token", "")),
        }
        grant = grants.get(form.get("grant_type", ""))
        return grant() if grant is not None else _error(400, "unsupported_grant_type")

    def revoke(self, request: Request, token: str | None) -> Reply:
        """End the grant a refresh (or access) token belongs to."""
        if request.method != "POST":
            return Reply(405, {"error": "invalid_request"}, [("Allow", "POST")])
        if not self._client_ok(request):
            return Reply(401, {"error": "invalid_client"})
        if not token:
            return _error(400, "invalid_request", "token is required")
        with self._lock:
            record = self._refresh.get(token)
            grant = record.grant if record else (self._access.get(token) or (None,))[0]
            if grant is not None:
                self._grants[grant].revoked = True
                self.revocations += 1
        return Reply(200, None)

    # ------------------------------------------------------------------ grants

    def _exchange_code(self, code: str, form: Any) -> Reply:
        with self._lock:
            found = self._codes.get(code)
            if found is None or found.used or self.settings.now() >= found.expires_at:
                if found is not None and found.used:  # a replayed code ends its grant
                    self._grants[found.grant].revoked = True
                return _error(400, "invalid_grant")
            found.used = True
            if form.get("redirect_uri") != found.redirect_uri:
                return _error(400, "invalid_grant", "redirect_uri does not match")
            if found.challenge is not None:
                verifier = form.get("code_verifier", "")
                digest = hashlib.sha256(verifier.encode()).digest()
                if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != found.challenge:
                    return _error(400, "invalid_grant", "code_verifier does not match")
            grant = self._grants[found.grant]
            refresh = self._new_refresh(grant.id)
            return Reply(200, self._token_body(grant, refresh))

    def _refresh_grant(self, token: str) -> Reply:
        with self._lock:
            self.refresh_requests += 1
            now = self.settings.now()
            record = self._refresh.get(token)
            if record is None or self._refuse or self._grants[record.grant].revoked:
                return _error(400, "invalid_grant")
            grant = self._grants[record.grant]
            grace = timedelta(seconds=self.settings.refresh_grace_seconds)
            if record.rotated_at is not None:
                if now - record.rotated_at >= grace:
                    return _error(400, "invalid_grant")
                # within the grace window: the chain continues from here, later tokens die
                for other in self._refresh.values():
                    if other.grant == grant.id and other.rotated_at is None:
                        other.rotated_at = now - grace
                new = self._new_refresh(grant.id)
            elif self.settings.rotate_after_seconds and now - record.issued_at < timedelta(
                seconds=self.settings.rotate_after_seconds
            ):
                new = token  # Intuit: the same value until about a day has passed
            else:
                record.rotated_at = now
                new = self._new_refresh(grant.id)
            self.refreshes += 1
            drop = self._drop > 0
            self._drop -= 1 if drop else 0
            return Reply(200, self._token_body(grant, new), drop=drop)

    def _new_refresh(self, grant: str) -> str:
        token = secrets.token_urlsafe(32)
        self._refresh[token] = _Refresh(grant, self.settings.now())
        self.issued.append(token)
        return token

    def _token_body(self, grant: _Grant, refresh: str) -> dict[str, Json]:
        access = secrets.token_urlsafe(32)
        self.issued.append(access)
        lifetime = self.settings.access_token_seconds
        self._access[access] = (grant.id, self.settings.now() + timedelta(seconds=lifetime))
        if self.style == "intuit":
            return {
                "token_type": "bearer",
                "access_token": access,
                "expires_in": lifetime,
                "refresh_token": refresh,
                "x_refresh_token_expires_in": 8_726_400,
            }
        return {
            "access_token": access,
            "expires_in": lifetime,
            "token_type": "Bearer",
            "refresh_token": refresh,
            "scope": grant.scope,
        }

    # ------------------------------------------------------------------ checks

    def _client_ok(self, request: Request) -> bool:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        client_id, _, secret = decoded.partition(":")
        return client_id == self.settings.client_id and secret == self.settings.client_secret

    def _redirect_allowed(self, uri: str) -> bool:
        if self.settings.redirect_uris:
            return uri in self.settings.redirect_uris
        parts = urlsplit(uri)
        return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")


def _consent_page(request: Request) -> Reply:
    """The person's choice, as links back to this endpoint with ``consent`` added."""
    params = [(k, v) for k, v in request.args.items(multi=True) if k != "consent"]

    def link(answer: str) -> str:
        return html.escape(f"{request.path}?{urlencode([*params, ('consent', answer)])}")

    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Allow access?</title></head><body><h1>Allow access?</h1>"
        f'<p><a href="{link("allow")}">Allow access</a> <a href="{link("deny")}">Deny</a></p>'
        "</body></html>"
    )
    return Reply(200, body, content_type="text/html; charset=utf-8")


def _error(status: int, error: str, description: str | None = None) -> Reply:
    payload: dict[str, str] = {"error": error}
    if description:
        payload["error_description"] = description
    return Reply(status, payload)


def json_token(request: Request) -> str | None:
    """The ``token`` of Intuit's revoke body (JSON)."""
    try:
        data = json.loads(request.get_data(as_text=True) or "null")
    except ValueError:
        return None
    token = data.get("token") if isinstance(data, dict) else None
    return token if isinstance(token, str) else None
