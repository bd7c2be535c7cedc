"""``hourbridge status``: the picture /healthz gives, for a person. Per profile: the last run
and the next, the money still waiting by reason, API calls today against the day quota where
a provider has one, and when each connection's token expires (and whether it must be
connected again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.config import LoadedConfig
from core.report import InvoiceAction, RunReport
from core.tables import (
    ConnectionStatus,
    LedgerRow,
    OAuthConnectionRow,
    SourceEntryRow,
    SyncRunRow,
)
from scheduler.health import LastRun, last_runs
from scheduler.schedule import next_fire_times

# Documented day quotas per provider account (Xero: per tenant). Providers not listed have none
# we can count against; QuickBooks and Harvest limit per minute or per 15 s only.
DAY_QUOTAS: dict[str, int] = {"xero": 5000}

# When a source's or target's access token expires, if known: given its name and config.
TokenExpiry = Callable[[str, Any], datetime | None]


def no_token_expiry(name: str, config: Any) -> datetime | None:
    """A token from the environment or a file: its expiry is unknown."""
    return None


def stored_connection(engine: Engine, config: Any) -> OAuthConnectionRow | None:
    """The stored OAuth connection a target uses (``connection: NAME``), if any. Reads only
    plain columns (expiry, status): no decryption key is needed to look."""
    name = getattr(config, "connection", None)
    if not isinstance(name, str):
        return None
    with Session(engine) as session:
        return session.get(OAuthConnectionRow, name)


def stored_token_expiry(engine: Engine) -> TokenExpiry:
    def expiry(name: str, config: Any) -> datetime | None:
        row = stored_connection(engine, config)
        return row.expires_at if row is not None else None

    return expiry


@dataclass
class ProfileStatus:
    name: str
    last_run: LastRun | None
    next_run: datetime | None
    scheduled: bool
    pending: dict[str, dict[str, Decimal]] = field(default_factory=dict)  # reason → currency
    pending_entries: dict[str, int] = field(default_factory=dict)
    calls_today: dict[str, int] = field(default_factory=dict)
    quota_left: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, datetime | None] = field(default_factory=dict)
    reconnect: list[str] = field(default_factory=list)  # connections needing `connect` again
    invoices_left: int = 0  # what the last run, if interrupted, left for the next one

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.name,
            "last_run": self.last_run.as_dict() if self.last_run else None,
            "next_run": self.next_run.isoformat() if self.next_run else None,
            "scheduled": self.scheduled,
            "pending": {
                reason: {cur: str(amount) for cur, amount in money.items()}
                for reason, money in self.pending.items()
            },
            "pending_entries": self.pending_entries,
            "api_calls_today": self.calls_today,
            "quota_left_today": self.quota_left,
            "token_expires": {
                name: when.isoformat() if when else None for name, when in self.tokens.items()
            },
            "connections_needing_reauth": self.reconnect,
            "invoices_left": self.invoices_left,
        }


def _add(
    bucket: dict[str, dict[str, Decimal]], reason: str, currency: str, amount: Decimal
) -> None:
    money = bucket.setdefault(reason, {})
    money[currency] = money.get(currency, Decimal("0")) + amount


def _waiting_entries(
    engine: Engine, sources: list[str]
) -> tuple[dict[str, dict[str, Decimal]], dict[str, int]]:
    """Billable entries on no invoice, by why they wait: unapproved, running, or ready (approved
    and waiting for a mapping or the next run). Valued at the tracker's rate."""
    money: dict[str, dict[str, Decimal]] = {}
    counts: dict[str, int] = {}
    with Session(engine) as session:
        rows = session.exec(
            select(SourceEntryRow)
            .outerjoin(
                LedgerRow,
                (col(LedgerRow.source) == col(SourceEntryRow.source))
                & (col(LedgerRow.source_id) == col(SourceEntryRow.source_id)),
            )
            .where(
                col(SourceEntryRow.source).in_(sources),
                col(SourceEntryRow.billable).is_(True),
                col(SourceEntryRow.deleted).is_(False),
                col(SourceEntryRow.billed_in_source).is_(False),
                col(LedgerRow.source_id).is_(None),
            )
        ).all()
    for row in rows:
        reason = "running" if row.running else "unapproved" if not row.approved else "ready"
        counts[reason] = counts.get(reason, 0) + 1
        if row.unit_price is not None:
            _add(money, reason, row.currency, row.quantity * row.unit_price)
    return money, counts


def _calls_today(engine: Engine, profile: str, now: datetime) -> dict[str, int]:
    """API calls recorded by this profile's runs since 00:00 UTC (Xero's day quota resets at
    midnight UTC)."""
    midnight = datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)
    totals: dict[str, int] = {}
    with Session(engine) as session:
        reports = session.exec(
            select(SyncRunRow.report).where(
                SyncRunRow.profile == profile, col(SyncRunRow.started_at) >= midnight
            )
        ).all()
    for text in reports:
        try:
            calls = RunReport.from_json(text).api_calls
        except (ValueError, KeyError, TypeError):
            continue  # a run still starting has an empty report
        for provider, count in calls.items():
            totals[provider] = totals.get(provider, 0) + count
    return dict(sorted(totals.items()))


def build_status(
    loaded: LoadedConfig,
    engine: Engine,
    now: datetime,
    token_expiry: TokenExpiry | None = None,
) -> list[ProfileStatus]:
    """``token_expiry`` defaults to the expiry of each target's stored OAuth connection."""
    config = loaded.config
    expiry_of = token_expiry or stored_token_expiry(engine)
    upcoming = next_fire_times(config, now)
    names = sorted(config.profiles)
    runs = last_runs(engine, names)
    result: list[ProfileStatus] = []
    for name in names:
        profile = config.profiles[name]
        status = ProfileStatus(
            name=name,
            last_run=runs.get(name),
            next_run=upcoming.get(name),
            scheduled=profile.schedule is not None,
        )
        status.pending, status.pending_entries = _waiting_entries(engine, profile.source_names)
        last = runs.get(name)
        report: RunReport | None = None
        if last is not None:
            with Session(engine) as session:
                row = session.get(SyncRunRow, last.run_id)
            report = RunReport.from_json(row.report) if row is not None else None
            if report is not None:
                status.invoices_left = report.invoices_left
                for inv in report.invoices:
                    if inv.action == InvoiceAction.FAILED.value:
                        _add(status.pending, "rejected", inv.currency, inv.subtotal)
        status.calls_today = _calls_today(engine, name, now)
        for provider, quota in DAY_QUOTAS.items():
            if provider in status.calls_today:
                status.quota_left[provider] = max(0, quota - status.calls_today[provider])
        if report is not None and last is not None and last.started_at.date() == now.date():
            # what the provider itself said today beats our count (other apps spend it too)
            for provider, windows in report.api_remaining.items():
                if "day" in windows:
                    status.quota_left[provider] = windows["day"]
        for connection in [*profile.source_names, profile.target]:
            settings = config.sources.get(connection) or config.targets.get(connection)
            status.tokens[connection] = expiry_of(connection, settings)
            stored = stored_connection(engine, settings)
            if stored is not None and stored.status == ConnectionStatus.NEEDS_REAUTH.value:
                status.reconnect.append(stored.name)
        result.append(status)
    return result
