"""Builds a profile's source and target from the config: the one place that knows them all."""

from __future__ import annotations

from connectors.base import AccountingTarget, TrackerSource
from connectors.harvest.client import HarvestSource
from connectors.harvest.config import HarvestConfig
from connectors.xero.config import XeroConfig
from connectors.xero.target import XeroTarget
from core.config import LoadedConfig
from core.http import CallCounter, RetryPolicy
from core.sync import Profile


def build_source(
    name: str, config: HarvestConfig, calls: CallCounter, policy: RetryPolicy | None
) -> TrackerSource:
    return HarvestSource(name, config, calls=calls, policy=policy)


def build_target(
    name: str, config: XeroConfig, calls: CallCounter, policy: RetryPolicy | None
) -> AccountingTarget:
    return XeroTarget(name, config, calls=calls, policy=policy)


def build_profile(
    loaded: LoadedConfig,
    profile_name: str | None,
    calls: CallCounter,
    policy: RetryPolicy | None = None,
) -> Profile:
    cfg = loaded.config
    name, profile = cfg.profile(profile_name)
    target_cfg = cfg.targets[profile.target]
    return Profile(
        name=name,
        source=build_source(profile.source, cfg.sources[profile.source], calls, policy),
        target=build_target(profile.target, target_cfg, calls, policy),
        rules=profile.mapping,
        reference_prefix=profile.reference_prefix,
        due_days=target_cfg.due_days,
    )
