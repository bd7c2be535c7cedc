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
    contact_number: str | None = Field(
        default=None, max_length=50, description="Xero ContactNumber"
    )
    contact_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="exact contact Name (Xero) or customer DisplayName (QuickBooks)",
    )
    tax_type: str | None = Field(
        default=None, description="Xero TaxType, or QuickBooks tax code name or Id"
    )
    currency: CurrencyCode | None = Field(
        default=None,
        pattern=r"^[A-Z]{3}$",
        description="invoice currency; must equal the tracker's client currency",
    )
    rate: Decimal | None = Field(
        default=None, ge=0, decimal_places=4, description="hourly rate overriding the tracker's"
    )
    qbo_class: str | None = Field(
        default=None, min_length=1, description="QuickBooks Class (name or Id) on its lines"
    )
    qbo_department: str | None = Field(
        default=None,
        min_length=1,
        description="QuickBooks Department / location (name or Id) on its invoices",
    )

    @model_validator(mode="after")
    def _one_contact(self) -> ClientRule:
        given = [v for v in (self.contact_id, self.contact_number, self.contact_name) if v]
        if len(given) != 1:
            raise ValueError("give exactly one of contact_id, contact_number or contact_name")
        return self


class TaskRule(_Rule):
    """A source task → an item code and/or a revenue account code."""

    item_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=30,
        description="Xero Item Code, or QuickBooks item Name (QuickBooks needs one)",
    )
    account_code: str | None = Field(
        default=None, min_length=1, max_length=10, description="Xero revenue AccountCode"
    )
    description: str | None = Field(
        default=None, max_length=200, description="line text; default: the task's name"
    )

    @model_validator(mode="after")
    def _something(self) -> TaskRule:
        if not (self.item_code or self.account_code):
            raise ValueError("give item_code, account_code or both")
        return self


class ProjectRule(_Rule):
    rate: Decimal | None = Field(
        default=None,
        ge=0,
        decimal_places=4,
        description="hourly rate overriding the client's and the tracker's",
    )
    qbo_class: str | None = Field(
        default=None,
        min_length=1,
        description="QuickBooks Class (name or Id) on its lines; wins over the client's",
    )


class MappingRules(_Rule):
    clients: dict[str, ClientRule] = Field(
        default_factory=dict, description='by client id (or "SOURCE:ID")'
    )
    projects: dict[str, ProjectRule] = Field(
        default_factory=dict, description='by project id (or "SOURCE:ID")'
    )
    tasks: dict[str, TaskRule] = Field(
        default_factory=dict, description='by task id (or "SOURCE:ID")'
    )
    default_task: TaskRule | None = Field(
        default=None, description="for tasks without a rule; absent: such entries stay pending"
    )
    expense_categories: dict[str, TaskRule] = Field(
        default_factory=dict, description='by expense category id (or "SOURCE:ID")'
    )
    default_expense: TaskRule | None = Field(
        default=None, description="for expense categories without a rule"
    )
    default_tax_type: str | None = Field(
        default=None, description="for clients whose rule names no tax_type"
    )
