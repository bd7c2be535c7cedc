"""The ``console`` section of the config: where the web console listens and how it signs
sessions. Its own module so core.config stays a list of sections."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, model_validator

from core.opsconfig import is_loopback

CALLBACK_PATH = "/connections/callback"


class ConsoleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        default="127.0.0.1",
        description="address to listen on; a non-loopback one only with behind_tls: true",
    )
    port: int = Field(default=8080, ge=0, le=65535, description="0 picks a free port")
    behind_tls: bool = Field(
        default=False,
        description="the console sits behind a TLS-terminating proxy: allows a non-loopback "
        "host and marks the session cookie Secure",
    )
    session_secret: SecretStr = Field(
        description="signs the session cookies, as ${ENV_VAR} (at least 32 characters; "
        "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
    )
    session_minutes: int = Field(
        default=480, ge=5, le=10080, description="a sign-in expires after this many minutes"
    )
    public_url: HttpUrl | None = Field(
        default=None,
        description="the console's address as the browser reaches it (e.g. "
        "https://hourbridge.example.com); connecting from the Connections page sends the "
        "provider back to PUBLIC_URL/connections/callback, which must be registered as a "
        "redirect URI of the app; default: the address the browser used (needed behind_tls)",
    )
    with_serve: bool = Field(
        default=False, description="`hourbridge serve` serves the console too, in a thread"
    )

    @model_validator(mode="after")
    def _safe(self) -> ConsoleConfig:
        if len(self.session_secret.get_secret_value()) < 32:
            raise ValueError("session_secret must be at least 32 characters")
        if not self.behind_tls and not is_loopback(self.host):
            raise ValueError(
                f"host {self.host!r} is not a loopback address and the console would speak "
                "plain HTTP; put it behind a TLS proxy and set behind_tls: true"
            )
        url = self.public_url
        if url is not None and url.scheme != "https" and not is_loopback(url.host or ""):
            raise ValueError(
                f"public_url {url} would send OAuth codes over plain HTTP; use https (plain "
                "http only on a loopback address)"
            )
        return self

    def callback_url(self, seen: str) -> str:
        """The OAuth redirect URI of the console: PUBLIC_URL/connections/callback, or, with
        no public_url, the same path on ``seen`` (the scheme and host the browser used).
        ValueError behind TLS without public_url: what the proxy forwards is not to be
        trusted for where OAuth codes are sent."""
        if self.public_url is not None:
            base = str(self.public_url)
        elif self.behind_tls:
            raise ValueError(
                "console.public_url: missing; behind a proxy, connecting from the console "
                "needs the address the browser uses (https://...), registered with the app "
                "as PUBLIC_URL/connections/callback"
            )
        else:
            base = seen
        return base.rstrip("/") + CALLBACK_PATH
