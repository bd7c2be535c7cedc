"""Connector discovery through the ``hourbridge.connectors`` entry-point group.

Every connector, built-in or from another package, is registered the same way:

    [project.entry-points."hourbridge.connectors"]
    harvest = "connectors.harvest:CONNECTOR"

and the object named there is a ``ConnectorSpec``: the ``type`` users write in the config,
its role (source or target), its pydantic config model and a factory.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from core.http import BearerTokens, BudgetFactory, CallCounter, LocalBudgets, RetryPolicy

ENTRY_POINT_GROUP = "hourbridge.connectors"
Role = Literal["source", "target"]


# (connection name, provider) -> the stored connection's tokens; raises ConfigError if unusable
ConnectionResolver = Callable[[str, str], BearerTokens]


def _no_connections(name: str, provider: str) -> BearerTokens:
    raise RegistryError(f"connection {name!r} needs the token store, which is not open here")


@dataclass(frozen=True)
class BuildContext:
    """What a factory gets besides its own config: shared counters, where the config is, the
    stored OAuth connections (``connection: NAME`` in a target), and what makes each call
    budget (this process's own by default; core.budgets' shared ones from core.factory), with
    its own clock and sleep, apart from the retry policy's."""

    calls: CallCounter
    policy: RetryPolicy | None
    base_dir: Path
    connections: ConnectionResolver = _no_connections
    budgets: BudgetFactory = field(default_factory=LocalBudgets)


@dataclass(frozen=True)
class ConnectorSpec:
    type: str
    role: Role
    config_model: builtins.type[BaseModel]
    factory: Callable[[BuildContext, str, Any], Any]
    description: str = ""


class RegistryError(Exception):
    pass


@functools.cache
def installed() -> dict[str, ConnectorSpec]:
    """Every registered connector by type. Raises RegistryError on a broken registration."""
    found: dict[str, ConnectorSpec] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = ep.load()
        except Exception as exc:  # an outside package may fail in any way on import
            raise RegistryError(
                f"connector {ep.name!r} ({ep.value}) failed to load: {exc}"
            ) from exc
        if not isinstance(spec, ConnectorSpec):
            raise RegistryError(f"connector {ep.name!r} ({ep.value}) is not a ConnectorSpec")
        if spec.type in found:
            raise RegistryError(f"two connectors register the type {spec.type!r}")
        found[spec.type] = spec
    return found


def for_role(role: Role) -> dict[str, ConnectorSpec]:
    return {t: s for t, s in installed().items() if s.role == role}
