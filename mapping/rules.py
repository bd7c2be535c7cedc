"""The rules finance staff configure: which source entity becomes which accounting entity.

Every rule is keyed by the tracker's stable id (a string), never by a name: names change.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

CurrencyCode = str


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClientRule(_Rule):
    """A source client → an accounting contact, plus its tax type, currency and rate."""

    contact_id: UUID | None = Field(default=None, description="Xero ContactID")
    contact_number: str | None = Field(default=None, max_length=50)
    contact_name: str | None = Field(default=None, min_length=1, max_length=255)
    tax_type: str | None = None
    currency: CurrencyCode | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    rate: Decimal | None = Field(default=None, ge=0, decimal_places=4)

    @model_validator(mode="after")
    def _one_contact(self) -> ClientRule:
        given = [v for v in (self.contact_id, self.contact_number, self.contact_name) if v]
        if len(given) != 1:
            raise ValueError("give exactly one of contact_id, contact_number or contact_name")
        return self


class TaskRule(_Rule):
    """A source task → an item code and/or a revenue account code."""

    item_code: str | None = Field(default=None, min_length=1, max_length=30)
    account_code: str | None = Field(default=None, min_length=1, max_length=10)
    description: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _something(self) -> TaskRule:
        if not (self.item_code or self.account_code):
            raise ValueError("give item_code, account_code or both")
        return self


class ProjectRule(_Rule):
    rate: Decimal | None = Field(default=None, ge=0, decimal_places=4)


class MappingRules(_Rule):
    clients: dict[str, ClientRule] = Field(default_factory=dict)
    projects: dict[str, ProjectRule] = Field(default_factory=dict)
    tasks: dict[str, TaskRule] = Field(default_factory=dict)
    default_task: TaskRule | None = None
    expense_categories: dict[str, TaskRule] = Field(default_factory=dict)
    default_expense: TaskRule | None = None
    default_tax_type: str | None = None
