"""Configuration of a Harvest API v2 source."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr


class HarvestConfig(BaseModel):
    """A Harvest account, read through API v2 with a personal access token."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["harvest"]
    account_id: str = Field(pattern=r"^\d+$", description="Harvest-Account-Id")
    access_token: SecretStr = Field(description="personal access token (Bearer)")
    base_url: HttpUrl = Field(default=HttpUrl("https://api.harvestapp.com"), description="API host")
    user_agent: str = Field(
        default="hourbridge (https://github.com/hourbridge/hourbridge)",
        min_length=3,
        description="Harvest requires one naming the app and a contact",
    )
    per_page: int = Field(default=2000, ge=1, le=2000, description="page size (max 2000)")
    requests_per_15s: int = Field(
        default=100, ge=1, le=100, description="call budget; Harvest allows 100 per 15 s"
    )
    expenses: bool = Field(default=True, description="pull expenses as well as time entries")
    timeout_seconds: float = Field(default=30, gt=0, description="per HTTP request")
    max_attempts: int = Field(
        default=5, ge=1, le=20, description="tries per request on 429/5xx/timeouts"
    )
