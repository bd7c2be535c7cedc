"""Xero Accounting API, through the official xero-python SDK."""

from __future__ import annotations

from connectors.registry import BuildContext, ConnectorSpec
from connectors.xero.config import XeroConfig
from connectors.xero.target import XeroTarget
from core.http import BearerTokens, StaticBearer


def _build(ctx: BuildContext, name: str, config: XeroConfig) -> XeroTarget:
    tokens: BearerTokens
    if config.connection is not None:
        tokens = ctx.connections(config.connection, "xero")
    else:
        assert config.access_token is not None  # the config model requires one of the two
        tokens = StaticBearer(config.access_token.get_secret_value())
    return XeroTarget(
        name, config, calls=ctx.calls, policy=ctx.policy, tokens=tokens, budgets=ctx.budgets
    )


CONNECTOR = ConnectorSpec("xero", "target", XeroConfig, _build, "Xero (DRAFT ACCREC invoices)")
