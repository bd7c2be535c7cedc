"""Operator commands: ``hourbridge status``, ``runs retry``, ``runs prune``, and the options of
``serve``'s health endpoint. Wired into the app by core/cli.py."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlmodel import Session, select

from core import runs
from core.alerts import format_money
from core.cliutil import (
    EXIT_OK,
    STOP_NOTICE,
    ConfigOpt,
    JsonOpt,
    database,
    err,
    fail,
    load,
    out,
    run_exit_code,
)
from core.config import LoadedConfig
from core.errors import ConfigError
from core.opsconfig import ServeConfig
from core.periods import Period
from core.report import RunReport
from core.retention import prune
from core.shutdown import stop_on_signals
from core.tables import OAuthConnectionRow, RunStatus, SyncRunRow
from core.tokens import reconnect_command


def endpoint_options(loaded: LoadedConfig, host: str | None, port: int | None) -> ServeConfig:
    """The config's ``serve`` section with the command line's --host/--port applied; a
    non-loopback host is refused unless the config sets ``serve.allow_remote``."""
    base = loaded.config.serve
    if port is not None and not 0 <= port <= 65535:
        raise fail(f"--port: {port} is not a port number (0-65535)")
    try:
        return ServeConfig(
            host=host if host is not None else base.host,
            port=port if port is not None else base.port,
            allow_remote=base.allow_remote,
        )
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise fail(f"--host: {message} (serve.allow_remote in {loaded.path})") from None


def status(config: ConfigOpt, as_json: JsonOpt = False) -> None:
    """Per profile: the last and next run, the money still waiting by reason, API calls today
    against the day quota where one exists, and when each connection's token expires."""
    from scheduler.status import build_status  # noqa: PLC0415  (keeps the CLI's start light)

    loaded = load(config)
    engine = database(loaded)
    now = datetime.now(UTC)
    profiles = build_status(loaded, engine, now)
    with Session(engine) as session:
        store_rows = {r.name: r for r in session.exec(select(OAuthConnectionRow)).all()}
    if as_json:
        data = {"generated_at": now.isoformat(), "profiles": [p.as_dict() for p in profiles]}
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    tz = loaded.config.organisation.tz
    for p in profiles:
        out.print(f"[bold]{p.name}[/]", highlight=False)
        if p.last_run is None:
            out.print("  last run: never", highlight=False)
        else:
            r = p.last_run
            out.print(
                f"  last run: {r.status} ({r.trigger}) {r.started_at.astimezone(tz):%Y-%m-%d %H:%M}"
                f" for {r.period}, run {r.run_id}",
                highlight=False,
            )
            if r.status == RunStatus.INTERRUPTED.value:
                out.print(f"  {runs.interrupted_note(p.invoices_left)}", highlight=False)
        nxt = p.next_run.isoformat() if p.next_run else "no schedule"
        out.print(f"  next run: {nxt}", highlight=False)
        if not p.pending:
            out.print("  waiting: nothing", highlight=False)
        for reason, money in sorted(p.pending.items()):
            entries = p.pending_entries.get(reason)
            count = f"{entries} entries, " if entries is not None else ""
            out.print(f"  waiting ({reason}): {count}{format_money(money)}", highlight=False)
        for provider, calls in p.calls_today.items():
            left = p.quota_left.get(provider)
            quota = f", {left} left of the day quota" if left is not None else ""
            out.print(f"  api calls today (UTC): {provider} {calls}{quota}", highlight=False)
        for name, when in p.tokens.items():
            expiry = when.isoformat() if when else "unknown (token from the environment)"
            out.print(f"  token {name}: expires {expiry}", highlight=False)
        for name in p.reconnect:
            row = store_rows.get(name)
            provider = row.provider if row is not None else "xero|quickbooks"
            out.print(
                f"  [bold red]connection {name} needs re-authorising:[/] "
                f"{reconnect_command(name, provider, config)}",
                highlight=False,
            )


def _period_of(loaded: LoadedConfig, row: SyncRunRow) -> Period:
    """The period a stored run synced, read in its profile's period notation."""
    settings = loaded.config.profiles.get(row.profile)
    if settings is None:
        raise fail(f"{loaded.path}: run {row.id} is of profile {row.profile!r}, not configured")
    try:
        return settings.billing_period.scheme().parse(row.period)
    except ValueError as exc:
        raise fail(f"run {row.id}: period {row.period!r}: {exc}") from None


def runs_retry(
    run_id: Annotated[str, typer.Argument(help="The run to retry (`hourbridge runs list`).")],
    config: ConfigOpt,
    failed_only: Annotated[
        bool,
        typer.Option(
            "--failed-only",
            help="Push only the invoices that run failed to push; without it, the whole "
            "profile and period run again (safe: the ledger never bills twice).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-run a run's profile and period, recorded as a new run (trigger `retry`) linked to
    it. With --failed-only, only that run's failed invoices are pushed again. SIGTERM or
    Ctrl-C stops it after the batch in flight (recorded `interrupted`, exit code 3)."""
    from scheduler import service  # noqa: PLC0415

    loaded = load(config)
    engine = database(loaded)
    try:
        row = runs.retry_checked(runs.load(engine, run_id)[0], run_id, set(loaded.config.profiles))
    except runs.RetryRefusedError as exc:
        raise fail(str(exc)) from None
    original = RunReport.from_json(row.report)
    failed = runs.failed_invoices(original)
    only: frozenset[str] | None = None
    if failed_only:
        if row.status == RunStatus.SUCCEEDED.value:
            err.print(f"run {run_id} succeeded: nothing failed, nothing to retry", highlight=False)
            raise typer.Exit(EXIT_OK)
        if row.status in (RunStatus.FAILED.value, RunStatus.INTERRUPTED.value):
            stopped = "it stopped before finishing"
            why = "; ".join(original.errors) or (
                stopped if row.status == RunStatus.INTERRUPTED.value else "its process stopped"
            )
            err.print(
                f"run {run_id} {row.status} as a whole ({why}): "
                f"retrying all of profile {row.profile} for {row.period}",
                highlight=False,
                soft_wrap=True,
            )
        else:
            only = failed
            err.print(
                f"retrying only the {len(failed)} invoice(s) run {run_id} failed to push "
                f"({', '.join(sorted(failed))}); other invoices are left alone, and entries "
                "waiting for a mapping wait for a normal sync",
                highlight=False,
                soft_wrap=True,
            )
    billing = _period_of(loaded, row)
    stop = threading.Event()
    try:
        with stop_on_signals(stop, STOP_NOTICE):
            report = service.run_profile(
                loaded,
                row.profile,
                billing,
                engine=engine,
                trigger="retry",
                retry_of=run_id,
                only_invoices=only,
                stop=stop.is_set,
            )
    except ConfigError as exc:
        raise fail(f"{config}: {exc}") from None
    if as_json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        out.print(
            f"run {report.run_id} (retry of {run_id}): {report.status}; invoices "
            f"{report.invoices_created} created, {report.invoices_updated} updated, "
            f"{report.invoices_unchanged} unchanged, {report.invoices_failed} failed",
            highlight=False,
        )
        for line in report.errors:
            out.print(f"  error: {line}", highlight=False, markup=False, soft_wrap=True)
        for line in report.warnings:
            out.print(f"  warning: {line}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(run_exit_code(report.status))


def runs_prune(
    config: ConfigOpt,
    older_than_days: Annotated[
        int | None,
        typer.Option("--older-than-days", min=1, help="Override retention_days from the config."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, delete nothing.")] = False,
) -> None:
    """Delete run events and alert records older than retention_days (default 90), and
    call-budget windows that ended before then. Runs, the ledger and invoices are never
    touched."""
    loaded = load(config)
    engine = database(loaded)
    days = older_than_days if older_than_days is not None else loaded.config.retention_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    pruned = prune(engine, cutoff, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    out.print(
        f"{verb} {pruned.events} run events and {pruned.alerts} alert records older than "
        f"{days} days (before {cutoff:%Y-%m-%d %H:%M} UTC), and {pruned.windows} call-budget "
        "windows that ended before then",
        highlight=False,
    )
