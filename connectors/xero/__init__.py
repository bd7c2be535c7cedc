"""Xero Accounting API, through the official xero-python SDK."""

from __future__ import annotations

from connectors.registry import BuildContext, ConnectorSpec
from connectors.xero.config import XeroConfig
from connectors.xero.target import XeroTarget


def _build(ctx: BuildContext, name: str, config: XeroConfig) -> XeroTarget:
    return XeroTarget(name, config, calls=ctx.calls, policy=ctx.policy)


CONNECTOR = ConnectorSpec("xero", "target", XeroConfig, _build, "Xero (DRAFT ACCREC invoices)")
