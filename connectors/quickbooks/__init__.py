"""QuickBooks Online, through python-quickbooks."""

from __future__ import annotations

from connectors.quickbooks.config import QuickBooksConfig
from connectors.quickbooks.target import QuickBooksTarget
from connectors.registry import BuildContext, ConnectorSpec
from core.http import BearerTokens, StaticBearer


def _build(ctx: BuildContext, name: str, config: QuickBooksConfig) -> QuickBooksTarget:
    tokens: BearerTokens
    if config.connection is not None:
        tokens = ctx.connections(config.connection, "quickbooks")
    else:
        assert config.access_token is not None  # the config model requires one of the two
        tokens = StaticBearer(config.access_token.get_secret_value())
    return QuickBooksTarget(
        name, config, calls=ctx.calls, policy=ctx.policy, tokens=tokens, budgets=ctx.budgets
    )


CONNECTOR = ConnectorSpec(
    "quickbooks", "target", QuickBooksConfig, _build, "QuickBooks Online (unsent invoices)"
)
