"""Alerts: after a run, tell a person when it needs one, at most once per run.

A run alerts when it failed or partly failed, when a connection needs re-authorising (a
failure of class ``auth``), or when entries have waited for a mapping longer than the
configured number of days. A run stopped on request (SIGTERM/SIGINT: status ``interrupted``)
is no failure and does not alert by itself: the next run sends what it left; it alerts as
partly failed only if invoices were rejected before it stopped. One message states what
happened, the money waiting by currency, the run id and the command that shows more. It goes
to a Slack-compatible webhook (``requests``) and/or by email (``smtplib``). A delivery that
fails is logged (redacted) and recorded in ``alerts``; it never fails the run.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path

import requests
import structlog
from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.config import LoadedConfig
from core.logging import Redactor
from core.opsconfig import AlertsConfig, EmailAlertConfig
from core.report import ErrorClass, InvoiceAction, RunReport
from core.tables import AlertRow, RunEventRow, RunStatus, SyncRunRow

log = structlog.get_logger("hourbridge.alerts")

Clock = Callable[[], datetime]

# A run that lost the race for the profile's lease did nothing wrong: another run is working.
LEASE_HELD_MARK = "is being synced by"
# Statuses whose rejected invoices call for a "partial" alert.
PARTLY_FAILED = (RunStatus.PARTIAL.value, RunStatus.INTERRUPTED.value)


class AlertReason(StrEnum):
    FAILED = "failed"
    PARTIAL = "partial"
    REAUTHORISE = "reauthorise"
    UNMAPPED_WAITING = "unmapped_waiting"
    QUOTA = "quota"


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


@dataclass(frozen=True)
class Alert:
    run_id: str
    profile: str
    reasons: tuple[AlertReason, ...]
    subject: str
    text: str


@dataclass(frozen=True)
class Delivery:
    channel: Channel
    delivered: bool
    error: str | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def money_waiting(report: RunReport) -> dict[str, Decimal]:
    """What the run left unbilled, by currency: entries waiting for a mapping (at the tracker's
    rates) plus the subtotals of invoices the target rejected."""
    total: dict[str, Decimal] = {}
    for item in report.unmapped:
        for currency, amount in item.value.items():
            total[currency] = total.get(currency, Decimal("0")) + amount
    for inv in report.invoices:
        if inv.action == InvoiceAction.FAILED.value:
            total[inv.currency] = total.get(inv.currency, Decimal("0")) + inv.subtotal
    return dict(sorted(total.items()))


def format_money(amounts: dict[str, Decimal]) -> str:
    if not amounts:
        return "none"
    return ", ".join(f"{currency} {amount:,.2f}" for currency, amount in amounts.items())


def stale_mappings(
    engine: Engine, report: RunReport, older_than: timedelta, now: datetime
) -> list[str]:
    """Missing mappings this run still reports that a run of the same profile first reported
    more than ``older_than`` ago (from the run events, so within the retention window)."""
    current = [item.what for item in report.unmapped]
    if not current:
        return []
    with Session(engine) as session:
        rows = session.exec(
            select(RunEventRow.subject, func.min(RunEventRow.created_at))
            .join(SyncRunRow, col(SyncRunRow.id) == col(RunEventRow.run_id))
            .where(
                col(SyncRunRow.profile) == report.profile,
                col(RunEventRow.error_class) == ErrorClass.MAPPING_MISSING.value,
                col(RunEventRow.subject).in_(current),
            )
            .group_by(col(RunEventRow.subject))
        ).all()
    first_seen = {subject: _aware(when) for subject, when in rows if when is not None}
    return [what for what in current if what in first_seen and now - first_seen[what] > older_than]


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def build_alert(
    report: RunReport,
    settings: AlertsConfig,
    *,
    config_path: Path,
    stale: Iterable[str] = (),
) -> Alert | None:
    """The one message a finished run calls for, or None if it calls for none."""
    if report.dry_run or report.status == RunStatus.RUNNING.value:
        return None
    stale = list(stale)
    reasons: list[AlertReason] = []
    lines: list[str] = []
    lease_only = (
        report.status == RunStatus.FAILED.value
        and bool(report.errors)
        and all(LEASE_HELD_MARK in e for e in report.errors)
    )
    if report.status == RunStatus.FAILED.value and not lease_only:
        reasons.append(AlertReason.FAILED)
        lines.append(f"The run failed: {report.errors[-1] if report.errors else 'unknown error'}")
    elif report.invoices_failed and settings.on_partial and report.status in PARTLY_FAILED:
        reasons.append(AlertReason.PARTIAL)
        if report.status == RunStatus.INTERRUPTED.value:
            lines.append(
                f"The run was stopped on request after {report.invoices_failed} invoice(s) "
                f"were rejected; {report.invoices_left} invoice(s) not sent are left for "
                "the next run."
            )
        else:
            lines.append(f"The run partly failed: {report.invoices_failed} invoice(s) rejected.")
        failed = [i for i in report.invoices if i.action == InvoiceAction.FAILED.value]
        lines += [f"  - {i.contact} ({i.currency} {i.subtotal}): {i.error}" for i in failed[:10]]
    if report.error_classes.get(ErrorClass.AUTH.value, 0):
        reasons.append(AlertReason.REAUTHORISE)
        lines.append(
            "A connection needs to be re-authorised: the provider refused our credentials. "
            "Renew the access token (or reconnect the app), then re-run."
        )
    if stale:
        reasons.append(AlertReason.UNMAPPED_WAITING)
        lines.append(
            f"Entries have waited more than {settings.unmapped_after_days} days for a mapping: "
            + "; ".join(stale[:10])
            + (f" (and {len(stale) - 10} more)" if len(stale) > 10 else "")
        )
    if settings.day_quota_below is not None:
        low = {
            service: windows["day"]
            for service, windows in sorted(report.api_remaining.items())
            if "day" in windows and windows["day"] < settings.day_quota_below
        }
        if low:
            reasons.append(AlertReason.QUOTA)
            lines.append(
                "A day quota is nearly used up: "
                + ", ".join(
                    f"{service} has {left} calls left today" for service, left in low.items()
                )
                + ". Later runs today may be throttled."
            )
    if not reasons:
        return None
    waiting = money_waiting(report)
    command = f"hourbridge runs show {report.run_id} --config {config_path}"
    what = ", ".join(r.value for r in reasons)
    text = "\n".join(
        [
            f"hourbridge: profile {report.profile}, period {report.period}: "
            f"{report.status} ({what})",
            *lines,
            f"Invoices: {report.invoices_created} created, {report.invoices_updated} updated, "
            f"{report.invoices_failed} failed"
            + (f", {report.invoices_left} left for the next run" if report.invoices_left else "")
            + f"; entries billed: {report.entries_billed}.",
            f"Money waiting: {format_money(waiting)}",
            f"Run: {report.run_id}",
            f"See more: {command}",
        ]
    )
    subject = (
        f"[hourbridge] {report.profile} {report.period}: {report.status} "
        f"({what}) run {report.run_id}"
    )
    return Alert(report.run_id, report.profile, tuple(reasons), subject, text)


def send_webhook(url: str, text: str, timeout: float) -> None:
    """POST a Slack-compatible message; a non-2xx answer is an error."""
    response = requests.post(url, json={"text": text}, timeout=timeout)
    if response.status_code >= 300:
        raise OSError(f"webhook answered HTTP {response.status_code}")


def send_email(settings: EmailAlertConfig, subject: str, text: str) -> None:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.from_address
    message["To"] = ", ".join(settings.to)
    message.set_content(text)
    with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds) as smtp:
        if settings.starttls:
            smtp.starttls()
        if settings.username is not None and settings.password is not None:
            smtp.login(settings.username, settings.password)
        smtp.send_message(message)


def _claim(engine: Engine, alert: Alert, channel: Channel, now: datetime) -> int | None:
    """Record the attempt first; a second attempt for the same run and channel is refused by
    the unique constraint, so a run never alerts twice."""
    with Session(engine) as session:
        row = AlertRow(
            run_id=alert.run_id,
            profile=alert.profile,
            channel=channel.value,
            reasons=",".join(r.value for r in alert.reasons),
            delivered=False,
            created_at=now,
        )
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return None
        return row.id


def _settle(engine: Engine, row_id: int, error: str | None) -> None:
    with Session(engine) as session:
        row = session.get(AlertRow, row_id)
        if row is not None:
            row.delivered = error is None
            row.error = error
            session.add(row)
            session.commit()


def deliver(
    engine: Engine,
    alert: Alert,
    settings: AlertsConfig,
    redactor: Redactor,
    *,
    clock: Clock = _utcnow,
) -> list[Delivery]:
    """Send ``alert`` on every configured channel. Never raises for a delivery failure."""
    senders: list[tuple[Channel, Callable[[], None]]] = []
    if settings.webhook_url is not None:
        url = settings.webhook_url
        senders.append(
            (Channel.WEBHOOK, lambda: send_webhook(url, alert.text, settings.timeout_seconds))
        )
    if settings.email is not None:
        email = settings.email
        senders.append((Channel.EMAIL, lambda: send_email(email, alert.subject, alert.text)))
    results: list[Delivery] = []
    for channel, send in senders:
        row_id = _claim(engine, alert, channel, clock())
        if row_id is None:
            continue  # already sent for this run
        error: str | None = None
        try:
            send()
        except (OSError, smtplib.SMTPException, requests.RequestException) as exc:
            error = redactor.scrub(f"{type(exc).__name__}: {exc}")
            log.warning("alert.failed", run_id=alert.run_id, channel=channel.value, error=error)
        else:
            log.info("alert.sent", run_id=alert.run_id, channel=channel.value)
        _settle(engine, row_id, error)
        results.append(Delivery(channel, error is None, error))
    return results


def alert_after_run(
    loaded: LoadedConfig,
    engine: Engine,
    report: RunReport,
    *,
    clock: Clock = _utcnow,
) -> list[Delivery]:
    """The hook every run path calls once the run is saved: builds and sends its alert, if
    the profile has alerts and the run calls for one. Never raises for a delivery failure."""
    profile = loaded.config.profiles.get(report.profile)
    if profile is None or profile.alerts is None:
        return []
    settings = profile.alerts
    redactor = Redactor(loaded.secrets)
    stale: list[str] = []
    if settings.unmapped_after_days is not None and not report.dry_run:
        stale = stale_mappings(
            engine, report, timedelta(days=settings.unmapped_after_days), clock()
        )
    alert = build_alert(report, settings, config_path=loaded.path.resolve(), stale=stale)
    if alert is None:
        return []
    scrubbed = Alert(
        alert.run_id,
        alert.profile,
        alert.reasons,
        redactor.scrub(alert.subject),
        redactor.scrub(alert.text),
    )
    return deliver(engine, scrubbed, settings, redactor, clock=clock)
