"""Configuration of a Clockify source (API v1 plus the Reports API v1)."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, field_validator


class ClockifyConfig(BaseModel):
    """One Clockify workspace, read with a personal API key (``X-Api-Key``).

    ``base_url`` is the API (regional hosts such as ``https://euc1.clockify.me/api/v1`` are
    allowed); ``reports_url`` is the Reports API, set it as well for a regional workspace.
    ``time_zone`` is the IANA zone in which days are counted (report ranges and each entry's
    spent date); unset, the API key owner's profile time zone is used, as in Clockify's own
    reports.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["clockify"]
    api_key: SecretStr = Field(description="API key (Profile settings); write ${CLOCKIFY_API_KEY}")
    workspace_id: str = Field(pattern=r"^[0-9a-fA-F]{24}$", description="Clockify workspace id")
    base_url: HttpUrl = Field(
        default=HttpUrl("https://api.clockify.me/api/v1"),
        description="API root; regional hosts such as https://euc1.clockify.me/api/v1 work",
    )
    reports_url: HttpUrl = Field(
        default=HttpUrl("https://reports.api.clockify.me/v1"),
        description="reports API root; set it too for a regional workspace",
    )
    time_zone: str | None = Field(
        default=None, description="IANA zone for days; default: the key owner's profile zone"
    )
    page_size: int = Field(description="rows per report page", default=200, ge=1, le=1000)
    approval: Literal["clockify", "all"] = Field(
        default="clockify",
        description="clockify: its approvals decide; all: every entry counts as approved "
        "(workspaces without approvals, which need a paid plan)",
    )
    approved_only: bool = Field(
        default=True, description="list approved time only; otherwise all, with the flag"
    )
    expenses: bool = Field(default=True, description="pull expenses as well as time entries")
    calls_per_second: int = Field(
        default=50,
        ge=1,
        le=50,
        description="call budget; Clockify allows 50 requests per second per workspace",
    )
    timeout_seconds: float = Field(description="per HTTP request", default=30, gt=0)
    max_attempts: int = Field(
        description="tries per request on 429/5xx/timeouts", default=5, ge=1, le=20
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value
