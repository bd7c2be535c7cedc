"""Configuration of a Xero organisation as an accounting target."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, model_validator


class XeroConfig(BaseModel):
    """One Xero organisation (tenant), reached through the xero-python SDK."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["xero"]
    tenant_id: UUID | None = Field(
        default=None,
        description="the organisation (xero-tenant-id header); with `connection`, default: "
        "the one picked at `hourbridge connect`",
    )
    access_token: SecretStr | None = Field(
        default=None, description="a static OAuth2 bearer token (or use `connection`)"
    )
    connection: str | None = Field(
        default=None,
        description="name of an entry under `connections` (tokens stored and refreshed by "
        "hourbridge); instead of access_token",
    )
    base_url: HttpUrl = Field(
        default=HttpUrl("https://api.xero.com/api.xro/2.0"), description="Accounting API root"
    )
    batch_size: int = Field(default=50, ge=1, le=100, description="invoices per write")
    calls_per_minute: int = Field(
        default=60, ge=1, le=60, description="call budget; Xero allows 60 per minute per tenant"
    )
    calls_per_day: int = Field(
        default=5000, ge=1, le=5000, description="call budget; Xero allows 5,000 per day per tenant"
    )
    line_amount_types: Literal["Exclusive", "Inclusive", "NoTax"] = Field(
        default="Exclusive",
        description="whether unit prices include tax; a profile's "
        "mapping.line_amount_types overrides it",
    )
    attach_receipts: bool = Field(
        default=True,
        description="attach each expense's receipt (where the tracker gives one) to its "
        "invoice through Xero's Attachments API",
    )
    receipts_online: bool = Field(
        default=False,
        description="show attached receipts with the online invoice (IncludeOnline)",
    )
    timeout_seconds: float = Field(default=60, gt=0, description="per HTTP request")
    max_attempts: int = Field(
        default=5, ge=1, le=20, description="tries per request on 429/5xx/lost answers"
    )

    @model_validator(mode="after")
    def _one_credential(self) -> XeroConfig:
        if (self.access_token is None) == (self.connection is None):
            raise ValueError("give either access_token or connection (exactly one)")
        if self.access_token is not None and self.tenant_id is None:
            raise ValueError("tenant_id is required with access_token")
        return self
