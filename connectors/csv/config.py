"""Configuration of a CSV-export source: report files a tracker wrote, read from disk."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class CsvConfig(BaseModel):
    """Detailed-report CSV exports of Toggl Track, Harvest or Clockify.

    ``approved``: Harvest's export has an "Approved?" column, and ``"column"`` reads it (a file
    without that column is an error rather than silently never approved). Toggl Track and
    Clockify exports carry no approval, so they need ``"all"``: every billable row counts as
    approved (a non-billable row never is).

    ``currency`` is used when neither ``client_currencies`` nor the export names one (Harvest's
    "Currency" column, or a header suffix such as "Billable Rate (USD)" or "Amount (USD)").
    A rate read from the file must be in the client's currency: a client_currencies entry that
    contradicts the file's stated currency on a rated row is an error, not a silent choice.
    A blank or zero rate in the file counts as no rate: ``default_rate`` applies.

    ``date_order`` only matters for slash/dash/dot dates such as 03/04/2026, which Clockify and
    Toggl write in the exporting user's date format: ``"auto"`` decides per file from a date
    that can only be read one way (13/04/2026), reads DD.MM.YYYY day-first, and refuses a file
    where every such date is ambiguous. ISO dates (2026-04-03) are always read as such.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["csv"]
    paths: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1,
        description="files or glob patterns (** recurses); relative to the config file's folder",
    )
    format: Literal["auto", "toggl", "harvest", "clockify"] = Field(
        default="auto", description="which tool wrote the files; auto reads the header row"
    )
    currency: CurrencyCode = Field(description="the currency when the export does not name one")
    client_currencies: dict[str, CurrencyCode] = Field(
        default_factory=dict, description="client name (as in the export) → its currency"
    )
    timezone: str = Field(description="IANA name of the zone the export's local times are in")
    approved: Literal["all", "column"] = Field(
        default="column",
        description='column: Harvest\'s "Approved?" column; all: every billable row counts',
    )
    default_rate: Decimal | None = Field(
        default=None, ge=0, decimal_places=4, description="rate for rows whose file has none"
    )
    date_order: Literal["auto", "ymd", "mdy", "dmy"] = Field(
        default="auto", description="how to read slash dates; auto decides per file"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("client_currencies")
    @classmethod
    def _stripped_names(cls, value: dict[str, str]) -> dict[str, str]:
        stripped = {name.strip(): code for name, code in value.items()}
        if len(stripped) != len(value):
            raise ValueError("a client is named twice (names are compared stripped)")
        return stripped
