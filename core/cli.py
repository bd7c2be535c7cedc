"""The ``hourbridge`` command line (typer + rich).

Exit codes: 0 success, 1 some invoices (or the run) failed, 2 bad config or bad usage,
3 interrupted: SIGTERM or Ctrl-C stopped the run after its batch in flight (sync, run-now,
runs retry; the next run resumes). ``serve`` exits 0 when stopped that way.
The report goes to stdout (a table, or one JSON object with --json); logs go to stderr.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated

import structlog
import typer
from rich.table import Table
from sqlmodel import Session

from connectors.base import InvoicedWriter
from connectors.importfiles import ImportFileTarget
from connectors.registry import installed
from console.cli import console_alongside, console_command
from core import cli_mappings, ledger, runs
from core.alerts import alert_after_run
from core.cli_connect import config_show, connect_command, connections_app, secrets_app
from core.cli_drift import drift_lines
from core.cli_explain import explain_lines
from core.cli_ops import endpoint_options, runs_prune, runs_retry, status
from core.cli_users import users_app
from core.cliutil import (
    EXIT_FAILED,
    EXIT_OK,
    STOP_NOTICE,
    ConfigOpt,
    JsonOpt,
    PeriodOpt,
    ProfileOpt,
    database,
    err,
    out,
    run_exit_code,
)
from core.cliutil import fail as _fail
from core.cliutil import load as _load
from core.cliutil import period as _period
from core.cliutil import profile as _profile
from core.config import LoadedConfig
from core.config_reference import render as render_reference
from core.errors import ConfigError, HourbridgeError
from core.factory import build_profile
from core.http import CallCounter
from core.invoices import reference_prefix
from core.lease import Lease
from core.logging import Redactor
from core.progress import terminal_or_log
from core.report import RunReport
from core.shutdown import stop_on_signals
from core.sync import SyncEngine
from core.tables import RunEventRow, RunStatus

app = typer.Typer(
    name="hourbridge",
    help="Sync approved, billable tracker hours into DRAFT invoices, idempotently.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="Inspect past sync runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
runs_app.command("retry")(runs_retry)
runs_app.command("prune")(runs_prune)
config_app = typer.Typer(help="Check and document the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
config_app.command("show")(config_show)
invoices_app = typer.Typer(
    help="Our invoices, and confirming imported files.", no_args_is_help=True
)
app.add_typer(invoices_app, name="invoices")
mappings_app = typer.Typer(
    help="Tools for the mappings finance staff maintain.", no_args_is_help=True
)
app.add_typer(mappings_app, name="mappings")
app.command("connect")(connect_command)
app.add_typer(connections_app, name="connections")
app.add_typer(secrets_app, name="secrets")
mappings_app.command("export")(cli_mappings.mappings_export)
mappings_app.command("import")(cli_mappings.mappings_import)
mappings_app.command("history")(cli_mappings.mappings_history)
mappings_app.command("suggest")(cli_mappings.mappings_suggest)
app.command("status")(status)
app.add_typer(users_app, name="users")
app.command("console")(console_command)


def _run(
    config: Path,
    profile: str | None,
    period: str | None,
    *,
    dry_run: bool,
    explain: bool = False,
    stoppable: bool = False,
) -> RunReport:
    """One run. ``stoppable``: the first SIGTERM/SIGINT stops it after the batch in flight
    (recorded ``interrupted``); a second one forces the exit."""
    loaded = _load(config)
    billing = _period(loaded, period, profile)
    calls = CallCounter()
    engine = database(loaded)
    try:
        built = build_profile(loaded, profile, calls, engine=engine)
    except ConfigError as exc:
        raise _fail(f"{config}: {exc}") from None
    stop = threading.Event()
    with (
        terminal_or_log(err, structlog.get_logger("hourbridge.sync")) as progress,
        stop_on_signals(stop, STOP_NOTICE) if stoppable else nullcontext(),
    ):
        sync = SyncEngine(
            engine,
            built,
            api_calls=calls.as_dict,
            counter=calls,
            progress=progress,
            scrub=Redactor(loaded.secrets).scrub,
            stop=stop.is_set,
        )
        report = sync.run(billing, dry_run=dry_run, explain=explain)
    if not dry_run:
        alert_after_run(loaded, engine, report)  # never raises for a delivery failure
    return report


@app.command()
def sync(
    config: ConfigOpt,
    profile: ProfileOpt = None,
    period: PeriodOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan and report, but write nothing to the target.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Pull, map and push DRAFT invoices for one billing period. Safe to re-run. SIGTERM or
    Ctrl-C stops it after the target's batch in flight: the run is recorded `interrupted`, the
    invoices not sent are left for the next run, and it exits 3 (a second signal forces the
    exit). Exit codes: 0 succeeded, 1 failed, 2 bad usage, 3 interrupted."""
    report = _run(config, profile, period, dry_run=dry_run, stoppable=True)
    _emit(report, as_json)
    raise typer.Exit(run_exit_code(report.status))


@app.command()
def preview(
    config: ConfigOpt,
    profile: ProfileOpt = None,
    period: PeriodOpt = None,
    as_json: JsonOpt = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="List every line with the rate rule that priced it and how its hours were "
            "rounded (with --json: each invoice's `explain`).",
        ),
    ] = False,
) -> None:
    """Show the invoices a sync would push, with totals, and what is still pending and why."""
    report = _run(config, profile, period, dry_run=True, explain=explain)
    _emit(report, as_json)
    raise typer.Exit(EXIT_OK if report.status == RunStatus.SUCCEEDED.value else EXIT_FAILED)


@app.command()
def serve(
    config: ConfigOpt,
    run_at_start: Annotated[
        bool,
        typer.Option(
            "--run-at-start",
            help="Run every scheduled profile once at start, then keep the schedule.",
        ),
    ] = False,
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            help="Address of /healthz and /metrics [default: serve.host, 127.0.0.1]; "
            "non-loopback needs serve.allow_remote: true in the config.",
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Port of /healthz and /metrics [default: serve.port, 9464]."),
    ] = None,
) -> None:
    """Run each profile that has a `schedule` on its cron, in the organisation's timezone,
    until SIGTERM or Ctrl-C: a run in progress stops after the target's batch in flight, is
    recorded `interrupted` (the next run resumes), and serve exits 0; a second signal forces
    the exit. Logs go to stderr; /healthz and /metrics answer on 127.0.0.1 by default."""
    from scheduler import service  # noqa: PLC0415  (only these commands need the scheduler)

    loaded = _load(config)
    if not any(p.schedule for p in loaded.config.profiles.values()):
        raise _fail(f"{config}: no profile has a schedule (profiles.NAME.schedule.cron)")
    endpoint = endpoint_options(loaded, host, port)
    console_alongside(loaded)  # console.with_serve: the web console in a thread
    try:
        service.serve(loaded, run_at_start=run_at_start, endpoint=endpoint)
    except (service.DatabaseUnavailableError, service.EndpointError) as exc:
        raise _fail(str(exc), EXIT_FAILED) from None
    raise typer.Exit(EXIT_OK)


@app.command("run-now")
def run_now(
    profile: Annotated[str, typer.Argument(metavar="PROFILE", help="The profile to sync once.")],
    config: ConfigOpt,
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            help="Billing period in the profile's notation (default: the one its schedule "
            "would sync now; without a schedule, the previous period).",
        ),
    ] = None,
) -> None:
    """Sync one profile once, now, exactly as a scheduled run would (lease included); print
    its report as one JSON object, like `sync --json`. SIGTERM or Ctrl-C stops it after the
    target's batch in flight: the run is recorded `interrupted` and it exits 3 (a second
    signal forces the exit). Exit codes: 0 succeeded, 1 failed, 2 bad usage, 3 interrupted."""
    from scheduler import schedule, service  # noqa: PLC0415

    loaded = _load(config)
    name, cfg = _profile(loaded, profile)
    tz = loaded.config.organisation.tz
    billing = (
        _period(loaded, period, name)
        if period is not None
        else schedule.period_for(cfg.schedule, datetime.now(UTC), tz, cfg.billing_period.scheme())
    )
    stop = threading.Event()
    try:
        with stop_on_signals(stop, STOP_NOTICE):
            report = service.run_profile(loaded, name, billing, stop=stop.is_set)
    except ConfigError as exc:
        raise _fail(f"{config}: {exc}") from None
    except service.DatabaseUnavailableError as exc:
        raise _fail(str(exc), EXIT_FAILED) from None
    _emit(report, as_json=True)
    raise typer.Exit(run_exit_code(report.status))


def _emit(report: RunReport, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(report.to_json() + "\n")
        return
    title = "would push" if report.dry_run else "pushed"
    table = Table(title=f"Invoices {title}: {report.profile} {report.period}")
    for column in ("action", "contact", "currency", "number", "lines", "entries"):
        table.add_column(column)
    table.add_column("subtotal", justify="right")
    table.add_column("total", justify="right")
    for inv in report.invoices:
        table.add_row(
            inv.action,
            inv.contact,
            inv.currency,
            inv.number or "",
            str(inv.lines),
            str(inv.entries),
            f"{inv.subtotal:,.2f}",
            "" if inv.total is None else f"{inv.total:,.2f}",
        )
    out.print(table)
    explain_lines(report)
    drift_lines(report)
    pending = Table(title="Entries not invoiced, by reason")
    pending.add_column("reason")
    pending.add_column("entries", justify="right")
    for reason, count in report.entries_pending.items():
        pending.add_row(reason, str(count))
    out.print(pending)
    if report.unmapped:
        missing = Table(title="Missing mappings (entries wait for these)")
        missing.add_column("missing")
        missing.add_column("entries", justify="right")
        missing.add_column("hours", justify="right")
        for item in report.unmapped:
            missing.add_row(item.what, str(item.entries), str(item.hours))
        out.print(missing)
    out.print(
        f"run {report.run_id}: {report.status}; created {report.invoices_created}, "
        f"updated {report.invoices_updated}, unchanged {report.invoices_unchanged}, "
        f"failed {report.invoices_failed}"
        + (f", left for the next run {report.invoices_left}" if report.invoices_left else "")
        + f"; entries billed {report.entries_billed}; "
        f"API calls {json.dumps(report.api_calls)}",
        highlight=False,
    )
    for error in report.errors:
        err.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


RUN_STATUSES = runs.RUN_STATUSES


def _since(loaded: LoadedConfig, text: str | None) -> datetime | None:
    """Midnight of ``--since`` in the organisation's timezone."""
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise _fail(f"--since: expected a date YYYY-MM-DD, got {text!r}") from None
    return datetime.combine(day, time(), tzinfo=loaded.config.organisation.tz)


@runs_app.command("list")
def runs_list(
    *,
    config: ConfigOpt,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many runs, newest first.")] = 20,
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="Only this profile's runs.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", help=f"Only runs with this status: {'|'.join(RUN_STATUSES)}."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Only runs started on or after YYYY-MM-DD (organisation timezone)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List recent sync runs, newest first."""
    loaded = _load(config)
    if status is not None and status not in RUN_STATUSES:
        raise _fail(f"--status: expected one of {', '.join(RUN_STATUSES)}, got {status!r}")
    start = _since(loaded, since)
    engine = database(loaded)
    if profile is not None and profile not in set(loaded.config.profiles) | runs.known_profiles(
        engine
    ):
        raise _fail(f"--profile: no profile {profile!r} in the config or in past runs")
    rows = runs.listed(engine, profile=profile, status=status, since=start, limit=limit)
    if as_json:
        data = [
            {
                "run_id": r.id,
                "profile": r.profile,
                "period": r.period,
                "dry_run": r.dry_run,
                "status": r.status,
                "trigger": r.trigger,
                "retry_of": r.retry_of,
                "started_at": r.started_at.isoformat(),
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            }
            for r in rows
        ]
        sys.stdout.write(json.dumps(data) + "\n")
        return
    table = Table(title="Sync runs")
    columns = ("run id", "profile", "period", "status", "trigger", "dry run", "started", "finished")
    for column in columns:
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.id,
            r.profile,
            r.period,
            r.status,
            r.trigger + (f" of {r.retry_of}" if r.retry_of else ""),
            "yes" if r.dry_run else "",
            f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            f"{r.finished_at:%H:%M:%S}" if r.finished_at else "",
        )
    out.print(table)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="A run id from `hourbridge runs list`.")],
    config: ConfigOpt,
    as_json: JsonOpt = False,
) -> None:
    """Show one run's report."""
    loaded = _load(config)
    engine = database(loaded)
    row, events = runs.load(engine, run_id)
    if row is None:
        raise _fail(f"no run {run_id!r}; see `hourbridge runs list`")
    report = RunReport.from_json(row.report)
    # the row is the truth: a run whose process died was marked interrupted after its report
    report.status = row.status
    if as_json:
        data = report.to_dict()
        data["events"] = [
            {
                "kind": e.kind,
                "error_class": e.error_class,
                "subject": e.subject,
                "message": e.message,
                "entries": e.entries,
                "hours": None if e.hours is None else str(e.hours),
                "amount": None if e.amount is None else str(e.amount),
                "created_at": e.created_at.isoformat(),
            }
            for e in events
        ]
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    _emit(report, as_json=False)
    if row.status == RunStatus.INTERRUPTED.value:
        out.print(
            f"{runs.interrupted_note(report.invoices_left)} "
            f"(`hourbridge sync --period {report.period}` runs it now)",
            highlight=False,
            soft_wrap=True,
        )
    _print_events(report.period, events)


def _print_events(period: str, events: Sequence[RunEventRow]) -> None:
    """The run's failures and noteworthy outcomes, grouped by class, each with what to do."""
    groups, retried = runs.grouped(period, list(events))
    for event in retried:
        out.print(f"retries absorbed: {event.subject}: {event.message}", highlight=False)
    if not groups:
        out.print("no failures recorded for this run", highlight=False)
        return
    out.print("\n[bold]Failures and changes, by class[/]", highlight=False)
    for group in groups:
        out.print(f"\n[bold]{group.error_class}[/] ({len(group.events)})", highlight=False)
        if group.next_step is not None:
            out.print(f"  next: {group.next_step}", highlight=False, soft_wrap=True)
        for event in group.events:
            out.print(
                f"  - {event.subject}: {event.message}",
                highlight=False,
                soft_wrap=True,
                markup=False,
            )


@mappings_app.command("unmapped")
def mappings_unmapped(
    config: ConfigOpt,
    profile: ProfileOpt = None,
    period: PeriodOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every client, task, contact or item that entries wait on, with the hours and the value
    at stake (at the trackers' rates), largest first. Pulls, but writes nothing to the target."""
    report = _run(config, profile, period, dry_run=True)
    if report.errors:
        for error in report.errors:
            err.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if as_json:
        data = [
            {
                "missing": u.what,
                "entries": u.entries,
                "hours": str(u.hours),
                "value": {k: str(v) for k, v in sorted(u.value.items())},
            }
            for u in report.unmapped
        ]
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"Unmapped for {report.profile} {report.period}, largest value first")
    table.add_column("missing")
    table.add_column("entries", justify="right")
    table.add_column("hours", justify="right")
    table.add_column("value at stake", justify="right")
    for u in report.unmapped:
        value = ", ".join(f"{c} {v:,.2f}" for c, v in sorted(u.value.items())) or "(no rate)"
        table.add_row(u.what, str(u.entries), str(u.hours), value)
    out.print(table)
    if not report.unmapped:
        out.print("Everything billable is mapped.")


@invoices_app.command("list")
def invoices_list(
    config: ConfigOpt,
    profile: ProfileOpt = None,
    period: Annotated[str | None, typer.Option("--period", help="Only this period.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the invoices hourbridge planned or pushed, with their status."""
    loaded = _load(config)
    name, _cfg = _profile(loaded, profile)
    wanted = str(_period(loaded, period, name)) if period else None
    engine = database(loaded)
    with Session(engine) as session:
        rows = sorted(
            (
                r
                for r in ledger.invoice_rows(session, name).values()
                if wanted is None or r.period == wanted
            ),
            key=lambda r: (r.period, r.contact_name, r.seq),
        )
    if as_json:
        data = [
            {
                "key": r.key,
                "period": r.period,
                "contact": r.contact_name,
                "currency": r.currency,
                "status": r.status,
                "number": r.number,
                "subtotal": str(r.subtotal),
                "error": r.error,
            }
            for r in rows
        ]
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"Invoices of {name}")
    for column in ("period", "contact", "currency", "status", "number", "key"):
        table.add_column(column)
    table.add_column("subtotal", justify="right")
    for r in rows:
        table.add_row(
            r.period,
            r.contact_name,
            r.currency,
            r.status,
            r.number or "",
            r.key,
            f"{r.subtotal:,.2f}",
        )
    out.print(table)


@invoices_app.command("confirm")
def invoices_confirm(
    config: ConfigOpt,
    period: Annotated[str, typer.Option("--period", help="The period whose file was imported.")],
    profile: ProfileOpt = None,
    key: Annotated[
        list[str] | None,
        typer.Option("--key", help="Only these invoice keys (repeatable); default: all."),
    ] = None,
) -> None:
    """Confirm that an import file was imported: bill its entries and take the imported
    invoices out of the file, so they are never imported twice."""
    loaded = _load(config)
    billing = _period(loaded, period, profile)
    calls = CallCounter()
    try:
        built = build_profile(loaded, profile, calls)
    except ConfigError as exc:
        raise _fail(f"{config}: {exc}") from None
    target = built.target
    if not isinstance(target, ImportFileTarget):
        raise _fail(f"profile {built.name!r} does not write import files; nothing to confirm")
    engine = database(loaded)
    lease = Lease(engine, built.name, lambda: datetime.now(UTC))
    try:
        lease.acquire()
    except HourbridgeError as exc:
        raise _fail(str(exc), EXIT_FAILED) from None
    try:
        writers = {s.name for s in built.sources if isinstance(s, InvoicedWriter)}
        with Session(engine) as session:
            confirmed, billed = ledger.confirm_exported(
                session,
                built.name,
                str(billing),
                keys=set(key) if key else None,
                writers=writers,
                now=datetime.now(UTC),
            )
            session.commit()  # the ledger first: the file can always be tidied again
            done = ledger.locked_keys(session, built.name, str(billing))
        prefix = reference_prefix(built.reference_prefix, built.name, billing)
        removed = target.remove(prefix, done)
    finally:
        lease.release()
    if key and len(confirmed) != len(set(key)):
        missing = set(key) - {c.key for c in confirmed}
        err.print(f"[yellow]warning:[/] not awaiting confirmation: {', '.join(sorted(missing))}")
    out.print(
        f"confirmed {len(confirmed)} invoice(s), {billed} entries billed; "
        f"{removed} invoice(s) taken out of {target.file_for(prefix)}",
        highlight=False,
    )


@config_app.command("check")
def config_check(config: ConfigOpt) -> None:
    """Validate a config file (env references included) without calling any service."""
    loaded = _load(config)
    cfg = loaded.config
    out.print(
        f"{config}: valid — {len(cfg.sources)} source(s), {len(cfg.targets)} target(s), "
        f"profiles: {', '.join(sorted(cfg.profiles))}",
        highlight=False,
    )


@config_app.command("reference")
def config_reference() -> None:
    """Print the reference of every config key (Markdown), generated from the code."""
    sys.stdout.write(render_reference())


@app.command()
def connectors() -> None:
    """List the installed connectors (entry-point group hourbridge.connectors)."""
    table = Table(title="Installed connectors")
    for column in ("type", "role", "description", "config keys"):
        table.add_column(column)
    for kind, spec in sorted(installed().items()):
        keys = ", ".join(k for k in spec.config_model.model_fields if k != "type")
        table.add_row(kind, spec.role, spec.description, keys)
    out.print(table)


@app.command()
def sandbox(
    *,
    harvest_port: Annotated[int, typer.Option(help="Port of the fake Harvest.")] = 8765,
    xero_port: Annotated[int, typer.Option(help="Port of the fake Xero.")] = 8766,
    quickbooks_port: Annotated[int, typer.Option(help="Port of the fake QuickBooks.")] = 8767,
    toggl_port: Annotated[int, typer.Option(help="Port of the fake Toggl.")] = 8768,
    clockify_port: Annotated[int, typer.Option(help="Port of the fake Clockify.")] = 8769,
    xero_per_minute: Annotated[
        int, typer.Option(help="Fake Xero calls per minute per tenant (Xero: 60).")
    ] = 60,
) -> None:
    """Serve every fake (Harvest, Toggl, Clockify, Xero, QuickBooks) on 127.0.0.1 in the
    foreground; Ctrl-C or SIGTERM stops them."""
    from sandbox.server import serve_forever  # noqa: PLC0415  (dev tool; keeps startup light)

    serve_forever(
        harvest_port=harvest_port,
        xero_port=xero_port,
        quickbooks_port=quickbooks_port,
        toggl_port=toggl_port,
        clockify_port=clockify_port,
        xero_per_minute=xero_per_minute,
    )


def main() -> None:
    try:
        app()
    except HourbridgeError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
