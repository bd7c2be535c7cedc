"""Harvest API v2: time entries (and expenses) from one Harvest account."""

from __future__ import annotations

from connectors.harvest.client import HarvestSource
from connectors.harvest.config import HarvestConfig
from connectors.registry import BuildContext, ConnectorSpec


def _build(ctx: BuildContext, name: str, config: HarvestConfig) -> HarvestSource:
    return HarvestSource(name, config, calls=ctx.calls, policy=ctx.policy, budgets=ctx.budgets)


CONNECTOR = ConnectorSpec("harvest", "source", HarvestConfig, _build, "Harvest API v2")
