"""What the console's pages do, by calling the functions the CLI calls: the sync engine's preview
and run (``SyncEngine.run``, ``scheduler.service.run_profile``), the mapping tools
(``core.mapping_tools``) and store (``core.mapping_store``), ``scheduler.status``, the run
records and the connection store. No rule is implemented here a second time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from connectors.base import Directory
from core import approvals, ledger, mapping_store, mapping_tools, runs
from core.cli_connect import check_connection
from core.config import LoadedConfig
from core.connect import (
    Consent,
    Granted,
    Tenant,
    begin,
    check_key,
    connection_config,
    finish,
    revoke,
    save,
)
from core.errors import ConfigError, HourbridgeError
from core.factory import build_profile, open_token_store
from core.http import CallCounter
from core.logging import Redactor
from core.periods import MONTHLY, Period, PeriodScheme
from core.report import RunReport
from core.sync import SyncEngine
from core.tables import OAuthConnectionRow, RunEventRow, RunStatus, SyncRunRow
from mapping import documents
from mapping.rules import MappingRules
from mapping.suggest import Candidate, Match, Matcher
from scheduler import service

Clock = Callable[[], datetime]
MIN_SCORE = 60.0


class ConsoleError(HourbridgeError):
    """Something a person asked for can't be done; the message says why (shown on the page)."""


@dataclass
class Preview:
    """One dry run of a profile and period, and what the mapping tools make of it."""

    profile: str
    period: Period
    report: RunReport
    directory: Directory | None
    rules: MappingRules
    origin: str  # where the mapping lives: "config" or "stored vN by AUTHOR" or "none"
    editable: bool  # the mapping is in the database (the console may store versions)
    suggestions: list[mapping_tools.Suggestion] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return approvals.fingerprint(self.report)

    @property
    def pushable(self) -> bool:
        return any(inv.action in approvals.PUSHED for inv in self.report.invoices)


def token_expiry(loaded: LoadedConfig, engine: Engine) -> Callable[[str, Any], datetime | None]:
    """For ``scheduler.status.build_status``: a target's access-token expiry from its stored
    OAuth connection (None where the token comes from the environment)."""
    try:
        rows = {r.name: r.expires_at for r in open_token_store(loaded, engine).rows()}
    except ConfigError:
        rows = {}

    def expiry(name: str, config: Any) -> datetime | None:
        connection = getattr(config, "connection", None)
        return rows.get(connection) if connection else None

    return expiry


def _scheme(loaded: LoadedConfig, profile: str) -> PeriodScheme:
    settings = loaded.config.profiles.get(profile)
    return settings.billing_period.scheme() if settings is not None else MONTHLY


def default_period(loaded: LoadedConfig, profile: str, now: datetime) -> Period:
    """The CLI's default: the period before the current one, in the organisation's timezone
    and the profile's kind of period."""
    tz = loaded.config.organisation.tz
    return _scheme(loaded, profile).containing(now, tz).previous()


def parse_period(loaded: LoadedConfig, profile: str, text: str | None, now: datetime) -> Period:
    if not text:
        return default_period(loaded, profile, now)
    try:
        return _scheme(loaded, profile).parse(text)
    except ValueError as exc:
        raise ConsoleError(f"period: {exc}") from None


def profile_name(loaded: LoadedConfig, name: str | None) -> str:
    try:
        return loaded.config.profile(name or None)[0]
    except ConfigError as exc:
        raise ConsoleError(str(exc)) from None


def current_rules(
    loaded: LoadedConfig, engine: Engine, name: str
) -> tuple[MappingRules, str, bool]:
    """The mapping in effect, where it comes from, and whether the console may change it."""
    cfg = loaded.config.profiles[name]
    if mapping_store.in_config(cfg):
        return cfg.mapping, f"the config file {loaded.path.name}", False
    with Session(engine) as session:
        stored = mapping_store.current(session, name)
    if stored is None:
        return MappingRules(), "nothing stored yet", True
    return stored.rules, f"version {stored.version} by {stored.author}", True


def preview(
    loaded: LoadedConfig, engine: Engine, name: str, period: Period, *, suggest: bool = False
) -> Preview:
    """A dry run with explanations (``hourbridge preview --explain``), plus what waits on a
    mapping with suggestions (``hourbridge mappings suggest``) when asked for."""
    calls = CallCounter()
    try:
        built = build_profile(loaded, name, calls, engine=engine)
    except ConfigError as exc:
        raise ConsoleError(str(exc)) from None
    sync = SyncEngine(
        engine,
        built,
        api_calls=calls.as_dict,
        counter=calls,
        scrub=Redactor(loaded.secrets).scrub,
    )
    report = sync.run(period, dry_run=True, explain=True, trigger="console")
    rules, origin, editable = current_rules(loaded, engine, name)
    result = Preview(name, period, report, sync.directory, rules, origin, editable)
    if suggest and sync.directory is not None and not report.errors:
        with Session(engine) as session:
            entries = [e for s in built.sources for e in ledger.load_entries(session, s.name)]
        needed = mapping_tools.wanted(
            rules, entries, sync.directory, period, qualify=len(built.sources) > 1
        )
        needed.sort(key=lambda w: (-max(w.value.values(), default=Decimal(0)), -w.hours, w.key))
        result.suggestions = mapping_tools.suggest(needed, sync.directory, min_score=MIN_SCORE)
    return result


def candidates(directory: Directory, section: str) -> list[Candidate]:
    """The target's own list for a section: its contacts (clients) or its items."""
    if section == mapping_tools.CLIENTS:
        return sorted(mapping_tools.contact_candidates(directory), key=lambda c: c.label.lower())
    return mapping_tools.item_candidates(directory)


def search(directory: Directory, section: str, query: str, limit: int = 20) -> list[Candidate]:
    """The target's contacts or items whose names match ``query`` (fuzzy), best first."""
    pool = candidates(directory, section)
    if not query.strip():
        return pool[:limit]
    matched = Matcher(pool).best(query, min_score=40.0, limit=limit)
    return [m.candidate for m in matched]


def _store(
    engine: Engine, name: str, old: MappingRules, new: MappingRules, *, author: str, note: str,
    now: datetime,
) -> str:  # fmt: skip
    try:
        with Session(engine) as session:
            saved = mapping_store.save(session, name, new, author=author, note=note, now=now)
            session.commit()
    except IntegrityError:
        raise ConsoleError(
            "another change to this mapping was stored at the same moment; nothing stored: "
            "reload and try again"
        ) from None
    if saved is None:
        return "no change: nothing stored"
    return f"stored version {saved.version}: {documents.diff(old, new).summary()}"


def _editable(loaded: LoadedConfig, engine: Engine, name: str) -> MappingRules:
    rules, _origin, editable = current_rules(loaded, engine, name)
    if not editable:
        raise ConsoleError(str(mapping_store.config_owned_error(loaded, name)))
    return rules


def _validated(data: dict[str, Any]) -> MappingRules:
    try:
        return MappingRules.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "mapping"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConsoleError(f"not saved: {where}: {message}") from None


def map_entity(
    loaded: LoadedConfig,
    engine: Engine,
    name: str,
    wanted: mapping_tools.Wanted,
    target: Candidate,
    *,
    author: str,
    now: datetime,
) -> str:
    """Store a new mapping version with ``wanted`` mapped to ``target`` (``mapping_tools.apply``
    writes it by the target's stable id, as ``mappings suggest --apply`` does)."""
    rules = _editable(loaded, engine, name)
    try:
        updated = mapping_tools.apply(rules, [(wanted, Match(target, 100.0))])
    except ValueError as exc:
        raise ConsoleError(f"not saved: {exc}") from None
    note = f"console: {wanted.section} {wanted.key} ({wanted.name}) → {target.label}"
    return _store(engine, name, rules, updated, author=author, note=note, now=now)


LEVELS = ("client", "project")


def _key(kind: str) -> str:
    return "clients" if kind == "client" else "projects"


def set_rate(
    loaded: LoadedConfig,
    engine: Engine,
    name: str,
    *,
    level: str,
    entity: str,
    rate: str,
    starts: date | None,
    ends: date | None,
    author: str,
    now: datetime,
) -> str:
    """Add a rate rule (``rates:`` in the mapping document) for a client or project, with
    optional effective dates; MappingRules refuses overlaps."""
    if level not in LEVELS:
        raise ConsoleError(f"level: choose one of {', '.join(LEVELS)}")
    rules = _editable(loaded, engine, name)
    data = documents.dump(rules)
    rule: dict[str, Any] = {"rate": rate.strip(), level: entity.strip()}
    if starts is not None:
        rule["from"] = starts.isoformat()
    if ends is not None:
        rule["until"] = ends.isoformat()
    data.setdefault("rates", []).append(rule)
    updated = _validated(data)
    note = f"console: rate {rate} for {level} {entity}"
    return _store(engine, name, rules, updated, author=author, note=note, now=now)


def set_rounding(
    loaded: LoadedConfig,
    engine: Engine,
    name: str,
    *,
    level: str,
    entity: str,
    increment_minutes: str,
    mode: str,
    author: str,
    now: datetime,
) -> str:
    """Set (or, with mode "inherit", remove) a client's or project's rounding."""
    if level not in LEVELS:
        raise ConsoleError(f"level: choose one of {', '.join(LEVELS)}")
    rules = _editable(loaded, engine, name)
    data = documents.dump(rules)
    section = data.setdefault(_key(level), {})
    entity = entity.strip()
    if level == "client" and entity not in section:
        raise ConsoleError(f"client {entity}: map it to a contact first")
    rule = dict(section.get(entity) or {})
    if mode == "inherit":
        rule.pop("rounding", None)
    else:
        rule["rounding"] = {"increment_minutes": increment_minutes, "mode": mode}
    section[entity] = rule
    updated = _validated(data)
    note = f"console: rounding of {level} {entity}: {mode}"
    return _store(engine, name, rules, updated, author=author, note=note, now=now)


def approve(
    loaded: LoadedConfig, engine: Engine, name: str, period: Period, seen: str, *, user: str,
    clock: Clock,
) -> RunReport:  # fmt: skip
    """Push the batch the user saw, if it is still exactly that batch: preview again, compare
    fingerprints, record the approval, then run (the same run as ``hourbridge sync``)."""
    now = preview(loaded, engine, name, period)
    if now.report.errors:
        raise ConsoleError("the preview failed: " + "; ".join(now.report.errors))
    if now.fingerprint != seen:
        raise ConsoleError(
            "the invoices changed since you looked (new hours or a mapping change): nothing "
            "pushed; review the preview again"
        )
    if not now.pushable:
        raise ConsoleError("nothing to push: every invoice is already in the target")
    approval = approvals.record(
        engine, profile=name, period=str(period), fingerprint=seen, user=user, now=clock()
    )
    try:
        report = service.run_profile(
            loaded,
            name,
            period,
            engine=engine,
            trigger="console",
            only_invoices=approvals.batch(now.report),  # nothing that arrived since
        )
    except ConfigError as exc:
        raise ConsoleError(str(exc)) from None
    approvals.set_run(engine, approval, report.run_id)
    return report


# -- runs ----------------------------------------------------------------------------------

RUN_STATUSES = runs.RUN_STATUSES


def run_list(
    engine: Engine, *, profile: str | None, status: str | None, limit: int = 50
) -> list[SyncRunRow]:
    return runs.listed(engine, profile=profile, status=status, limit=limit)


@dataclass
class RunDetail:
    row: SyncRunRow
    report: RunReport
    groups: list[runs.FailureGroup]
    retries: list[RunEventRow]


def run_detail(engine: Engine, run_id: str) -> RunDetail | None:
    """A run's report and its events grouped by class with the next step (``runs show``)."""
    row, events = runs.load(engine, run_id)
    if row is None:
        return None
    groups, retried = runs.grouped(row.period, events)
    return RunDetail(row, RunReport.from_json(row.report), groups, retried)


def retry(loaded: LoadedConfig, engine: Engine, run_id: str) -> RunReport:
    """``hourbridge runs retry --failed-only``: a partial run pushes only its failed invoices
    again; a failed or interrupted one runs its profile and period in full."""
    try:
        row = runs.retry_checked(runs.load(engine, run_id)[0], run_id, set(loaded.config.profiles))
    except runs.RetryRefusedError as exc:
        raise ConsoleError(str(exc)) from None
    if row.status == RunStatus.SUCCEEDED.value:
        raise ConsoleError(f"run {run_id} succeeded: nothing failed, nothing to retry")
    only = (
        runs.failed_invoices(RunReport.from_json(row.report))
        if row.status == RunStatus.PARTIAL.value
        else None
    )
    try:
        return service.run_profile(
            loaded,
            row.profile,
            _scheme(loaded, row.profile).parse(row.period),
            engine=engine,
            trigger="retry",
            retry_of=run_id,
            only_invoices=only,
        )
    except ConfigError as exc:
        raise ConsoleError(str(exc)) from None


# -- connections ------------------------------------------------------------------------


@dataclass
class ConnectionView:
    name: str
    provider: str
    stored: OAuthConnectionRow | None
    used_by: list[str]


def connections(loaded: LoadedConfig, engine: Engine) -> list[ConnectionView]:
    """Every connection in the config, with its stored tokens' state (no secrets), and any
    stored connection the config no longer names."""
    try:
        rows = {r.name: r for r in open_token_store(loaded, engine).rows()}
    except ConfigError:
        rows = {}  # no encryption key configured: nothing can be stored yet
    used: dict[str, list[str]] = {}
    for target_name, target in loaded.config.targets.items():
        wanted = getattr(target, "connection", None)
        if wanted:
            used.setdefault(wanted, []).append(target_name)
    found = [
        ConnectionView(name, cfg.provider, rows.get(name), used.get(name, []))
        for name, cfg in sorted(loaded.config.connections.items())
    ]
    found += [
        ConnectionView(name, row.provider, row, [])
        for name, row in sorted(rows.items())
        if name not in loaded.config.connections
    ]
    return found


def test_connection(loaded: LoadedConfig, engine: Engine, name: str) -> str:
    try:
        return check_connection(loaded, open_token_store(loaded, engine), name)
    except HourbridgeError as exc:
        raise ConsoleError(str(exc)) from None


def remove_connection(loaded: LoadedConfig, engine: Engine, name: str) -> str:
    """Revoke at the provider, then forget (``hourbridge connections remove``)."""
    try:
        store = open_token_store(loaded, engine)
    except ConfigError as exc:
        raise ConsoleError(str(exc)) from None
    row = store.get(name)
    if row is None:
        raise ConsoleError(f"no stored connection named {name!r}")
    cfg = loaded.config.connections.get(name)
    if cfg is None:
        raise ConsoleError(
            f"connections.{name} is not in the config, so it cannot be revoked; use "
            f"`hourbridge connections remove {name} --no-revoke`"
        )
    try:
        revoke(cfg, store.token_set(row).refresh_token)
    except HourbridgeError as exc:
        raise ConsoleError(f"{exc}; nothing removed") from None
    store.delete(name)
    return f"removed {name} (revoked at the provider)"


def connect_begin(loaded: LoadedConfig, engine: Engine, name: str, redirect_uri: str) -> Consent:
    """The consent for ``connections.NAME`` (``hourbridge connect``'s ``begin``), once the
    key is known to be right."""
    try:
        config = connection_config(loaded, name)
        check_key(open_token_store(loaded, engine))
        return begin(name, config, redirect_uri)
    except HourbridgeError as exc:
        raise ConsoleError(f"{exc}; nothing stored") from None


def connect_finish(loaded: LoadedConfig, consent: Consent, response: str) -> Granted:
    """Check and exchange the provider's answer (``hourbridge connect``'s ``finish``)."""
    try:
        config = connection_config(loaded, consent.name, consent.provider)
        return finish(config, consent, response)
    except HourbridgeError as exc:
        raise ConsoleError(f"{exc}; nothing stored: connect again") from None


def connect_save(loaded: LoadedConfig, engine: Engine, granted: Granted, tenant: Tenant) -> str:
    """Store the granted tokens for ``tenant``, encrypted (``hourbridge connect``'s ``save``)."""
    try:
        done = save(open_token_store(loaded, engine), granted, tenant)
    except HourbridgeError as exc:
        raise ConsoleError(f"{exc}; nothing stored: connect again") from None
    return (
        f"connected {done.name}: {done.provider} {done.tenant.name} ({done.tenant.id}); "
        f"targets use it with connection: {done.name}"
    )
