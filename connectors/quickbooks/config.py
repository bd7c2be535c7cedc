"""Configuration of a QuickBooks Online company (realm) as an accounting target."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, HttpUrl, SecretStr

from connectors.credentials import BearerTarget


class QuickBooksConfig(BearerTarget):
    """One QuickBooks Online company, reached through python-quickbooks."""

    account_field = "realm_id"

    type: Literal["quickbooks"]
    realm_id: str | None = Field(
        default=None,
        pattern=r"^\d{1,20}$",
        description="the company id (realmId); with `connection`, default: the one "
        "`hourbridge connect` was given",
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
    concurrent_calls: int = Field(
        default=10,
        ge=1,
        le=10,
        description="calls in flight at once, across processes; QuickBooks allows 10 per realm",
    )
    doc_numbers: Literal["quickbooks", "ours"] = Field(
        default="quickbooks",
        description="quickbooks: QBO numbers invoices; ours: DocNumber derived from our key",
    )
