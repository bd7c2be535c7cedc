"""Past runs, as ``hourbridge runs list|show|retry`` and the web console's Runs page read them:
the filtered list, one run's events grouped by class with the next step, and what a retry
of a run would push again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.errors import HourbridgeError
from core.report import ErrorClass, EventKind, InvoiceAction, RunReport, next_step
from core.tables import RunEventRow, RunStatus, SyncRunRow

RUN_STATUSES = tuple(s.value for s in RunStatus)


class RetryRefusedError(HourbridgeError):
    """A run that cannot (or need not) be retried; the message says why."""


def listed(
    engine: Engine,
    *,
    profile: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 20,
) -> list[SyncRunRow]:
    """Runs newest first, filtered."""
    query = select(SyncRunRow)
    if profile is not None:
        query = query.where(SyncRunRow.profile == profile)
    if status is not None:
        query = query.where(SyncRunRow.status == status)
    if since is not None:
        query = query.where(col(SyncRunRow.started_at) >= since)
    with Session(engine) as session:
        return list(session.exec(query.order_by(col(SyncRunRow.started_at).desc()).limit(limit)))


def known_profiles(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.exec(select(SyncRunRow.profile).distinct()).all())


def load(engine: Engine, run_id: str) -> tuple[SyncRunRow | None, list[RunEventRow]]:
    """The run's row and its events in order."""
    with Session(engine) as session:
        row = session.get(SyncRunRow, run_id)
        events = list(
            session.exec(
                select(RunEventRow)
                .where(RunEventRow.run_id == run_id)
                .order_by(col(RunEventRow.id))
            )
        )
    return row, events


@dataclass
class FailureGroup:
    error_class: str
    next_step: str | None  # what to do about this class, for the run's period
    events: list[RunEventRow]


def grouped(period: str, events: list[RunEventRow]) -> tuple[list[FailureGroup], list[RunEventRow]]:
    """Failures and noteworthy outcomes by class (in ErrorClass order), each with its next
    step; and, apart, the retries the run absorbed."""
    retried = [e for e in events if e.kind == EventKind.RETRY.value]
    buckets: dict[str, list[RunEventRow]] = {c.value: [] for c in ErrorClass}
    for event in events:
        if event.kind != EventKind.RETRY.value:
            buckets.setdefault(event.error_class, []).append(event)
    known = {c.value: c for c in ErrorClass}
    groups = [
        FailureGroup(name, next_step(known[name], period) if name in known else None, members)
        for name, members in buckets.items()
        if members
    ]
    return groups, retried


def interrupted_note(invoices_left: int) -> str:
    """What an interrupted run means, for `runs show` and `status`."""
    left = f" ({invoices_left} invoice(s) left unsent)" if invoices_left else ""
    return (
        f"interrupted before it finished{left}: the next run resumes from the ledger; "
        "nothing is billed twice"
    )


def failed_invoices(report: RunReport) -> frozenset[str]:
    return frozenset(inv.key for inv in report.invoices if inv.action == InvoiceAction.FAILED.value)


def retry_checked(row: SyncRunRow | None, run_id: str, profiles: set[str]) -> SyncRunRow:
    """The run, if a retry of it makes sense; RetryRefusedError saying why not."""
    if row is None:
        raise RetryRefusedError(f"no run {run_id!r}; see `hourbridge runs list`")
    if row.dry_run:
        raise RetryRefusedError(f"run {run_id} was a preview (dry run): there is nothing to retry")
    if row.status == RunStatus.RUNNING.value:
        raise RetryRefusedError(
            f"run {run_id} is still running (or was interrupted); sync the period instead"
        )
    if row.profile not in profiles:
        raise RetryRefusedError(
            f"run {run_id} synced profile {row.profile!r}, which the config no longer has"
        )
    return row
