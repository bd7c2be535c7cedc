"""Configuration of an import-file target: invoices written as CSV for a person to import."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ImportFileConfig(BaseModel):
    """Xero's or QuickBooks Online's invoice import CSV, one file per profile and period."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["xero_csv", "quickbooks_csv"] = Field(description="which importer's format")
    directory: str = Field(
        default="exports", min_length=1, description="where files go; relative to the config"
    )
    billed_when: Literal["confirmed", "written"] = Field(
        default="confirmed",
        description="confirmed: entries are billed once `hourbridge invoices confirm` says the "
        "file was imported; written: writing the file counts as billing",
    )
    date_order: Literal["dmy", "mdy"] | None = Field(
        default=None,
        description="dates as DD/MM/YYYY or MM/DD/YYYY; default: dmy for Xero, mdy for "
        "QuickBooks (match the organisation's region)",
    )
