"""Configuration of a QuickBooks Online company (realm) as an accounting target."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, model_validator


class QuickBooksConfig(BaseModel):
    """One QuickBooks Online company, reached through python-quickbooks."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["quickbooks"]
    realm_id: str | None = Field(
        default=None,
        pattern=r"^\d{1,20}$",
        description="the company id (realmId); with `connection`, default: the one "
        "`hourbridge connect` was given",
    )
    access_token: SecretStr | None = Field(
        default=None, description="a static OAuth2 bearer token (or use `connection`)"
    )
    connection: str | None = Field(
        default=None,
        description="name of an entry under `connections` (tokens stored and refreshed by "
        "hourbridge); instead of access_token",
    )
    refresh_token: SecretStr | None = Field(
        default=None, description="ignored: with `connection`, hourbridge refreshes the tokens"
    )
    client_id: str = Field(default="hourbridge", min_length=1, description="OAuth2 app id")
    environment: Literal["production", "sandbox"] = Field(
        default="production", description="picks Intuit's API URL when base_url is unset"
    )
    base_url: HttpUrl | None = Field(
        default=None,
        description="API root ending in /v3; default: Intuit's URL for the environment",
    )
    minorversion: int = Field(default=75, ge=75, description="QBO ignores anything below 75")
    calls_per_minute: int = Field(
        default=500, ge=1, le=500, description="call budget; QuickBooks allows 500 per realm"
    )
    doc_numbers: Literal["quickbooks", "ours"] = Field(
        default="quickbooks",
        description="quickbooks: QBO numbers invoices; ours: DocNumber derived from our key",
    )
    timeout_seconds: float = Field(default=60, gt=0, description="per HTTP request")
    max_attempts: int = Field(
        default=5, ge=1, le=20, description="tries per request on throttles and lost answers"
    )

    @model_validator(mode="after")
    def _one_credential(self) -> QuickBooksConfig:
        if (self.access_token is None) == (self.connection is None):
            raise ValueError("give either access_token or connection (exactly one)")
        if self.access_token is not None and self.realm_id is None:
            raise ValueError("realm_id is required with access_token")
        return self
