"""Config sections for unattended operation: alerts per profile, the health/metrics endpoint
of ``hourbridge serve``, and how long run events are kept. Validated with pydantic."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmailAlertConfig(_Section):
    host: str = Field(min_length=1, description="SMTP server")
    port: int = Field(default=587, ge=1, le=65535, description="SMTP port")
    starttls: bool = Field(default=True, description="upgrade the connection with STARTTLS")
    username: str | None = Field(default=None, description="SMTP login, if the server needs one")
    password: str | None = Field(default=None, description="SMTP password: ${ENV_VAR} only")
    from_address: str = Field(alias="from", min_length=3, description="the sender address")
    to: list[str] = Field(min_length=1, description="recipient addresses")
    timeout_seconds: float = Field(default=30, gt=0, le=300, description="per SMTP session")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _login_pair(self) -> EmailAlertConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        return self


class AlertsConfig(_Section):
    webhook_url: str | None = Field(
        default=None,
        description='a Slack-compatible incoming webhook (POST {"text": ...}): ${ENV_VAR} '
        "only, since the URL is the credential",
    )
    email: EmailAlertConfig | None = Field(default=None, description="send alerts over SMTP")
    on_partial: bool = Field(
        default=True, description="alert when some invoices failed (a failed run always alerts)"
    )
    unmapped_after_days: int | None = Field(
        default=7,
        ge=1,
        description="alert when entries have waited for a mapping longer than this many days "
        "(null: never); measured from the first run that reported the missing mapping",
    )
    day_quota_below: int | None = Field(
        default=500,
        ge=1,
        description="alert when a provider's day quota left, as its last answer reported it "
        "(Xero's X-DayLimit-Remaining), is below this (null: never)",
    )
    timeout_seconds: float = Field(default=10, gt=0, le=120, description="per webhook request")

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _somewhere(self) -> AlertsConfig:
        if self.webhook_url is None and self.email is None:
            raise ValueError("give webhook_url, email, or both")
        return self


class ServeConfig(_Section):
    host: str = Field(
        default="127.0.0.1",
        description="address of the /healthz and /metrics endpoint; loopback unless "
        "allow_remote is true",
    )
    port: int = Field(default=9464, ge=0, le=65535, description="0 picks a free port")
    allow_remote: bool = Field(
        default=False, description="allow a non-loopback host (put it behind a firewall)"
    )

    @model_validator(mode="after")
    def _loopback(self) -> ServeConfig:
        if not self.allow_remote and not is_loopback(self.host):
            raise ValueError(
                f"host {self.host!r} is not a loopback address; set allow_remote: true to "
                "expose the endpoint"
            )
        return self


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
