"""What the accounting targets' configs share: a bearer credential, static or stored, and the
HTTP limits of each request."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class BearerTarget(BaseModel):
    """``access_token`` or ``connection``, exactly one; a static token also needs the
    organisation it is for (the subclass names that field in ``account_field``)."""

    model_config = ConfigDict(extra="forbid")
    account_field: ClassVar[str]

    access_token: SecretStr | None = Field(
        default=None, description="a static OAuth2 bearer token (or use `connection`)"
    )
    connection: str | None = Field(
        default=None,
        description="name of an entry under `connections` (tokens stored and refreshed by "
        "hourbridge); instead of access_token",
    )
    timeout_seconds: float = Field(default=60, gt=0, description="per HTTP request")
    max_attempts: int = Field(
        default=5, ge=1, le=20, description="tries per request on throttles, 5xx and lost answers"
    )

    @model_validator(mode="after")
    def _one_credential(self) -> BearerTarget:
        if (self.access_token is None) == (self.connection is None):
            raise ValueError("give either access_token or connection (exactly one)")
        if self.access_token is not None and getattr(self, self.account_field) is None:
            raise ValueError(f"{self.account_field} is required with access_token")
        return self
