"""Detailed-report CSV exports (Toggl Track, Harvest, Clockify) read from disk as a source.

Register it with ``csv = "connectors.csv:CONNECTOR"`` under the ``hourbridge.connectors``
entry points. Relative ``paths`` are resolved against the config file's folder.
"""

from __future__ import annotations

from connectors.csv.config import CsvConfig
from connectors.csv.source import CsvSource
from connectors.registry import BuildContext, ConnectorSpec


def _build(ctx: BuildContext, name: str, config: CsvConfig) -> CsvSource:
    return CsvSource(name, config, base_dir=ctx.base_dir)


CONNECTOR = ConnectorSpec(
    "csv", "source", CsvConfig, _build, "Toggl Track, Harvest or Clockify detailed-report CSV"
)

__all__ = ["CONNECTOR", "CsvConfig", "CsvSource"]
