"""Configuration of a Toggl Track source (Reports API v3 for entries, API v9 for the rest)."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    field_validator,
    model_validator,
)

Approval = Literal["toggl", "tag", "all"]
MAX_CALLS_PER_SECOND = 1.0  # "a safe window is 1 request per second" (a leaky bucket)
MAX_CALLS_PER_HOUR = 600  # the quota per user per organisation: Premium (Starter 240, Free 30)


class TogglConfig(BaseModel):
    """One Toggl Track workspace, read with an API token (HTTP Basic ``<token>:api_token``).

    ``approval`` decides which entries count as approved:

    * ``tag``: an entry is approved when it carries ``approved_tag``;
    * ``all``: every entry is approved (non-billable ones are still never billed);
    * ``toggl``: Toggl's own timesheet approvals. The source checks the workspace's
      ``timesheet_setups`` on the first pull and stops with a configuration error telling the
      user to choose ``tag`` or ``all`` (see ``connectors.toggl`` for why).
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["toggl"]
    api_token: SecretStr = Field(description="Profile → API Token; write ${TOGGL_API_TOKEN}")
    workspace_id: int = Field(ge=1, description="the numeric id in track.toggl.com URLs")
    base_url: HttpUrl = Field(
        default=HttpUrl("https://api.track.toggl.com"), description="API host"
    )
    page_size: int = Field(
        default=200, ge=1, le=1000, description="rows per Reports API page (fewer calls)"
    )
    approval: Approval = Field(description="toggl, tag or all: what counts as approved")
    approved_tag: str = Field(
        description="with approval: tag, entries carrying this tag are approved",
        default="approved",
        min_length=1,
        max_length=100,
    )
    invoiced_tag: str = Field(
        description="added to entries once invoiced; entries carrying it count as already billed",
        default="invoiced",
        min_length=1,
        max_length=100,
    )
    timezone: str | None = Field(
        default=None,
        description="IANA name: spent dates are start dates in this zone (default: the "
        "zone Toggl renders times in, i.e. the token owner's profile timezone)",
    )
    timeout_seconds: float = Field(description="per HTTP request", default=30, gt=0)
    max_attempts: int = Field(
        description="tries per request on 429/5xx/quota resets", default=5, ge=1, le=20
    )
    calls_per_second: float = Field(
        default=MAX_CALLS_PER_SECOND,
        description="call budget; Toggl asks for about 1 per second (0.5: one every 2 s)",
    )
    calls_per_hour: int = Field(
        default=MAX_CALLS_PER_HOUR,
        description="call budget; Toggl's hourly quota is 600 on Premium, 240 on Starter, 30 "
        "on Free (what Toggl says is left is followed too)",
    )

    @field_validator("calls_per_second")
    @classmethod
    def _per_second(cls, value: float) -> float:
        if not 0 < value <= MAX_CALLS_PER_SECOND:
            raise ValueError(
                f"must be above 0 and at most {MAX_CALLS_PER_SECOND:g}: Toggl asks for about "
                f"one call per second; lower it (e.g. 0.5 for one call every 2 s), not {value:g}"
            )
        return value

    @field_validator("calls_per_hour")
    @classmethod
    def _per_hour(cls, value: int) -> int:
        if not 1 <= value <= MAX_CALLS_PER_HOUR:
            raise ValueError(
                f"must be 1 to {MAX_CALLS_PER_HOUR}: Toggl's hourly quota is at most "
                f"{MAX_CALLS_PER_HOUR} calls (Premium); lower it to your plan's, not {value}"
            )
        return value

    @field_validator("approved_tag", "invoiced_tag")
    @classmethod
    def _tag_name(cls, value: str) -> str:
        if value != value.strip() or not value.strip():
            raise ValueError("a tag name must not be blank or start or end with spaces")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _distinct_tags(self) -> TogglConfig:
        if self.approved_tag == self.invoiced_tag:
            raise ValueError("approved_tag and invoiced_tag must be different tags")
        return self

    @property
    def zone(self) -> ZoneInfo | None:
        return None if self.timezone is None else ZoneInfo(self.timezone)
