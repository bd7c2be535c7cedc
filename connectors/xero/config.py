"""Configuration of a Xero organisation as an accounting target."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr


class XeroConfig(BaseModel):
    """One Xero organisation (tenant), reached through the xero-python SDK."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["xero"]
    tenant_id: UUID
    access_token: SecretStr
    base_url: HttpUrl = HttpUrl("https://api.xero.com/api.xro/2.0")
    batch_size: int = Field(default=50, ge=1, le=100)
    line_amount_types: Literal["Exclusive", "Inclusive", "NoTax"] = "Exclusive"
    timeout_seconds: float = Field(default=60, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
