"""Toggl Track: the workspace's time entries (Reports API v3), tagged when invoiced (API v9)."""

from __future__ import annotations

from connectors.registry import BuildContext, ConnectorSpec
from connectors.toggl.client import TogglSource
from connectors.toggl.config import TogglConfig


def _build(ctx: BuildContext, name: str, config: TogglConfig) -> TogglSource:
    return TogglSource(name, config, calls=ctx.calls, policy=ctx.policy, budgets=ctx.budgets)


CONNECTOR = ConnectorSpec("toggl", "source", TogglConfig, _build, "Toggl Track (Reports API v3)")

__all__ = ["CONNECTOR", "TogglConfig", "TogglSource"]
