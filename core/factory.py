"""Builds a profile's sources and target from the config, through the connector registry."""

from __future__ import annotations

from connectors.base import AccountingTarget, TrackerSource
from connectors.registry import BuildContext, Role, installed
from core.config import LoadedConfig
from core.errors import ConfigError
from core.http import CallCounter, RetryPolicy
from core.sync import Profile


def _build(role: Role, ctx: BuildContext, name: str, config: object) -> object:
    kind = getattr(config, "type", None)
    spec = installed().get(str(kind))
    if spec is None or spec.role != role:
        raise ConfigError(f"no {role} connector of type {kind!r} is installed")
    return spec.factory(ctx, name, config)


def build_profile(
    loaded: LoadedConfig,
    profile_name: str | None,
    calls: CallCounter,
    policy: RetryPolicy | None = None,
) -> Profile:
    cfg = loaded.config
    name, profile = cfg.profile(profile_name)
    ctx = BuildContext(calls=calls, policy=policy, base_dir=loaded.path.parent)
    sources: list[TrackerSource] = []
    for source in profile.source_names:
        built = _build("source", ctx, source, cfg.sources[source])
        if not isinstance(built, TrackerSource):
            raise ConfigError(f"sources.{source}: its connector did not build a tracker source")
        sources.append(built)
    target = _build("target", ctx, profile.target, cfg.targets[profile.target])
    if not isinstance(target, AccountingTarget):
        raise ConfigError(f"targets.{profile.target}: its connector did not build a target")
    return Profile(
        name=name,
        sources=tuple(sources),
        target=target,
        rules=profile.mapping,
        reference_prefix=profile.reference_prefix,
        due_days=profile.due_days,
        periods=profile.billing_period.scheme(),
        timezone=cfg.organisation.tz,
    )
