"""Clockify: time from the detailed report (and expenses) of one workspace; marks invoiced."""

from __future__ import annotations

from connectors.clockify.client import ClockifySource
from connectors.clockify.config import ClockifyConfig
from connectors.registry import BuildContext, ConnectorSpec


def _build(ctx: BuildContext, name: str, config: ClockifyConfig) -> ClockifySource:
    return ClockifySource(name, config, calls=ctx.calls, policy=ctx.policy, budgets=ctx.budgets)


CONNECTOR = ConnectorSpec(
    "clockify", "source", ClockifyConfig, _build, "Clockify (detailed report)"
)

__all__ = ["CONNECTOR", "ClockifyConfig", "ClockifySource"]
