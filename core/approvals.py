"""Approval of a planned push: a finance user looked at a profile's preview for a period and
approved exactly those invoices. Profiles with ``require_approval: true`` push on a schedule
only what was approved (the console's Approve pushes at once as well)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.report import InvoiceAction, RunReport
from core.tables import ApprovalRow, ConsoleAuditRow

PUSHED = frozenset(
    {InvoiceAction.CREATE.value, InvoiceAction.UPDATE.value, InvoiceAction.DELETE.value}
)


def fingerprint(report: RunReport) -> str:
    """What a preview would push: each invoice to create or update, its contact, currency,
    entries and subtotal. Unchanged invoices push nothing and are left out."""
    items = sorted(
        (inv.key, inv.action, inv.contact, inv.currency, inv.entries, str(inv.subtotal))
        for inv in report.invoices
        if inv.action in PUSHED
    )
    text = json.dumps([report.profile, report.period, items], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def batch(report: RunReport) -> frozenset[str]:
    """The keys of the invoices a preview would push: an approved push writes only these."""
    return frozenset(inv.key for inv in report.invoices if inv.action in PUSHED)


def record(
    engine: Engine,
    *,
    profile: str,
    period: str,
    fingerprint: str,
    user: str,
    now: datetime,
    run_id: str | None = None,
) -> int:
    with Session(engine) as session:
        row = ApprovalRow(
            profile=profile,
            period=period,
            fingerprint=fingerprint,
            approved_by=user,
            approved_at=now,
            run_id=run_id,
        )
        session.add(row)
        session.add(
            ConsoleAuditRow(
                user=user,
                action="approve",
                subject=f"{profile} {period} {fingerprint[:12]}",
                created_at=now,
            )
        )
        session.commit()
        assert row.id is not None
        return row.id


def set_run(engine: Engine, approval_id: int, run_id: str) -> None:
    with Session(engine) as session:
        row = session.get(ApprovalRow, approval_id)
        if row is not None:
            row.run_id = run_id
            session.add(row)
            session.commit()


def approved(engine: Engine, profile: str, period: str, fingerprint: str) -> ApprovalRow | None:
    """The latest approval of exactly this batch, if any."""
    with Session(engine) as session:
        return session.exec(
            select(ApprovalRow)
            .where(
                ApprovalRow.profile == profile,
                ApprovalRow.period == period,
                ApprovalRow.fingerprint == fingerprint,
            )
            .order_by(col(ApprovalRow.id).desc())
            .limit(1)
        ).first()


def latest(engine: Engine, profile: str, limit: int = 10) -> list[ApprovalRow]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(ApprovalRow)
                .where(ApprovalRow.profile == profile)
                .order_by(col(ApprovalRow.id).desc())
                .limit(limit)
            )
        )


def audit(engine: Engine, user: str, action: str, subject: str, now: datetime) -> None:
    with Session(engine) as session:
        session.add(ConsoleAuditRow(user=user, action=action, subject=subject, created_at=now))
        session.commit()
