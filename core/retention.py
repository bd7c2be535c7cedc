"""Retention: run events (and alert records) older than ``retention_days`` are pruned, daily
by ``hourbridge serve`` and on demand by ``hourbridge runs prune``, with call-budget windows
that ended before then (core.budgets). Runs themselves, the ledger, invoices and entries are
never touched: they are the record of what was billed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, func
from sqlmodel import Session, col, select

from core.budgets import prune_windows
from core.tables import AlertRow, RunEventRow, SyncRunRow


@dataclass(frozen=True)
class Pruned:
    events: int
    alerts: int
    windows: int = 0  # call-budget windows (core.budgets)


def prune(engine: Engine, cutoff: datetime, *, dry_run: bool = False) -> Pruned:
    """Delete run events recorded before ``cutoff``, or belonging to a run started before it,
    alert records created before it, and call-budget windows that ended before it.
    ``dry_run`` only counts."""
    old_runs = select(SyncRunRow.id).where(col(SyncRunRow.started_at) < cutoff)
    events_where = (col(RunEventRow.created_at) < cutoff) | col(RunEventRow.run_id).in_(old_runs)
    alerts_where = col(AlertRow.created_at) < cutoff
    with Session(engine) as session:
        events = session.exec(select(func.count()).select_from(RunEventRow).where(events_where))
        alerts = session.exec(select(func.count()).select_from(AlertRow).where(alerts_where))
        result = Pruned(int(events.one()), int(alerts.one()))
        if not dry_run:
            session.execute(delete(RunEventRow).where(events_where))
            session.execute(delete(AlertRow).where(alerts_where))
            session.commit()
    windows = prune_windows(engine, cutoff, dry_run=dry_run)
    return Pruned(result.events, result.alerts, windows)
