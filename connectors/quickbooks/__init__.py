"""QuickBooks Online, through python-quickbooks."""

from __future__ import annotations

from connectors.quickbooks.config import QuickBooksConfig
from connectors.quickbooks.target import QuickBooksTarget
from connectors.registry import BuildContext, ConnectorSpec


def _build(ctx: BuildContext, name: str, config: QuickBooksConfig) -> QuickBooksTarget:
    return QuickBooksTarget(name, config, calls=ctx.calls, policy=ctx.policy)


CONNECTOR = ConnectorSpec(
    "quickbooks", "target", QuickBooksConfig, _build, "QuickBooks Online (unsent invoices)"
)
