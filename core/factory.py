"""Builds a profile's sources and target from the config, through the connector registry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine

from connectors.base import AccountingTarget, CreditNoteTarget, TrackerSource
from connectors.registry import BuildContext, Role, installed
from core import mapping_store
from core.budgets import SharedBudgets
from core.config import LoadedConfig
from core.db import open_database
from core.errors import ConfigError
from core.http import BearerTokens, BudgetFactory, CallCounter, LocalBudgets, RetryPolicy
from core.sync import Profile
from core.tokens import TokenStore
from core.vault import Vault, load_key


def _build(role: Role, ctx: BuildContext, name: str, config: object) -> object:
    kind = getattr(config, "type", None)
    spec = installed().get(str(kind))
    if spec is None or spec.role != role:
        raise ConfigError(f"no {role} connector of type {kind!r} is installed")
    return spec.factory(ctx, name, config)


def open_token_store(
    loaded: LoadedConfig,
    engine: Engine | None = None,
    clock: Callable[[], datetime] | None = None,
) -> TokenStore:
    """The config's token store. Raises ConfigError (SecretKeyError) without a usable key."""
    key_file = loaded.config.secrets.key_file
    fernet = load_key(loaded.resolve_path(key_file) if key_file else None)
    db = engine if engine is not None else open_database(loaded.database_url)
    return TokenStore(Vault(db, fernet), clock=clock or (lambda: datetime.now(UTC)))


def connection_resolver(
    loaded: LoadedConfig,
    engine: Engine | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Callable[[str, str], BearerTokens]:
    """Resolves a target's ``connection: NAME``; opens the store on first use only."""
    opened: list[TokenStore] = []

    def resolve(name: str, provider: str) -> BearerTokens:
        config = loaded.config.connections.get(name)
        if config is None or config.provider != provider:
            raise ConfigError(f"no {provider} connection named {name!r} under connections")
        if not opened:
            opened.append(open_token_store(loaded, engine, clock))
        return opened[0].tokens(name, config, loaded.path)

    return resolve


def default_budgets(engine: Engine | None) -> BudgetFactory:
    """Call budgets shared through the database when one is open (every process on it keeps
    within the providers' limits together), else this process's own; both in real time."""
    return LocalBudgets() if engine is None else SharedBudgets(engine)


def build_profile(
    loaded: LoadedConfig,
    profile_name: str | None,
    calls: CallCounter,
    policy: RetryPolicy | None = None,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] | None = None,
    budgets: BudgetFactory | None = None,
) -> Profile:
    """The profile's sources and target. ``budgets`` makes their call budgets (default:
    ``default_budgets(engine)``); it has its own clock and sleep, apart from ``policy``'s."""
    cfg = loaded.config
    name, profile = cfg.profile(profile_name)
    ctx = BuildContext(
        calls=calls,
        policy=policy,
        base_dir=loaded.path.parent,
        connections=connection_resolver(loaded, engine, clock),
        budgets=budgets if budgets is not None else default_budgets(engine),
    )
    sources: list[TrackerSource] = []
    for source in profile.source_names:
        built = _build("source", ctx, source, cfg.sources[source])
        if not isinstance(built, TrackerSource):
            raise ConfigError(f"sources.{source}: its connector did not build a tracker source")
        sources.append(built)
    target = _build("target", ctx, profile.target, cfg.targets[profile.target])
    if not isinstance(target, AccountingTarget):
        raise ConfigError(f"targets.{profile.target}: its connector did not build a target")
    if profile.drift == "credit_note" and not isinstance(target, CreditNoteTarget):
        raise ConfigError(
            f"profiles.{name}.drift: credit_note needs a target that takes credit notes "
            f"(Xero or QuickBooks); targets.{profile.target} does not"
        )
    return Profile(
        name=name,
        sources=tuple(sources),
        target=target,
        rules=profile.mapping,
        reference_prefix=profile.reference_prefix,
        due_days=profile.due_days,
        mapping_stored=not mapping_store.in_config(profile),
        drift=profile.drift,
        periods=profile.billing_period.scheme(),
        timezone=cfg.organisation.tz,
    )
