"""Configuration of a Xero organisation as an accounting target."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field, HttpUrl

from connectors.credentials import BearerTarget


class XeroConfig(BearerTarget):
    """One Xero organisation (tenant), reached through the xero-python SDK."""

    account_field = "tenant_id"

    type: Literal["xero"]
    tenant_id: UUID | None = Field(
        default=None,
        description="the organisation (xero-tenant-id header); with `connection`, default: "
        "the one picked at `hourbridge connect`",
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
    concurrent_calls: int = Field(
        default=5,
        ge=1,
        le=5,
        description="calls in flight at once, across processes; Xero allows 5 per tenant",
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
