"""Running profiles: once (``run_profile``, the same path as ``hourbridge sync``) or on their
cron schedules (``serve``, APScheduler 3 in the organisation's timezone).

Scheduled runs go through the per-profile lease in the database like any sync, so two
``serve`` processes (or a ``serve`` and a manual sync) never sync the same profile at once:
the loser's run is recorded as failed with the lease holder's name, and nothing is pushed.

SIGTERM or SIGINT stops ``serve`` gracefully: the run in progress stops after the target's
batch in flight (core/shutdown.py), is recorded ``interrupted`` with its lease released, runs
still queued are skipped, and ``serve`` returns (exit code 0). The next run resumes.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.executors.pool import (
    ThreadPoolExecutor,
)
from apscheduler.schedulers.background import (
    BackgroundScheduler,
)
from sqlalchemy import Engine

from core import approvals
from core.alerts import alert_after_run
from core.config import LoadedConfig, ScheduleConfig, crontab_trigger
from core.db import open_database
from core.errors import HourbridgeError
from core.factory import build_profile
from core.http import CallCounter
from core.logging import Redactor
from core.opsconfig import ServeConfig
from core.periods import Period
from core.progress import LogProgress
from core.report import RunReport
from core.retention import prune
from core.shutdown import StopCheck, never, stop_on_signals
from core.sync import SyncEngine
from core.tables import RunStatus
from scheduler.health import HealthServer, Metrics, health
from scheduler.schedule import period_for, scheduled_profiles, trigger_for

log = structlog.get_logger("hourbridge.scheduler")

Clock = Callable[[], datetime]
Echo = Callable[[str], None]
PRUNE_JOB = "__prune__"  # not a valid profile name, so never a profile's job id
PRUNE_CRON = "17 3 * * *"  # daily, 03:17 in the organisation's timezone


class DatabaseUnavailableError(HourbridgeError):
    """The configured database cannot be opened or migrated."""


class EndpointError(HourbridgeError):
    """The health and metrics endpoint cannot listen where asked (e.g. the port is taken)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def connect(loaded: LoadedConfig) -> Engine:
    """Open (and migrate) the config's database, or raise DatabaseUnavailableError."""
    try:
        return open_database(loaded.database_url)
    except Exception as exc:  # the driver's own error types vary by back end
        raise DatabaseUnavailableError(
            f"{loaded.path}: database.url: cannot open the database: {exc}"
        ) from exc


def run_profile(
    loaded: LoadedConfig,
    profile_name: str,
    period: Period,
    *,
    dry_run: bool = False,
    engine: Engine | None = None,
    trigger: str = "manual",
    retry_of: str | None = None,
    only_invoices: frozenset[str] | None = None,
    stop: StopCheck = never,
) -> RunReport:
    """Sync one profile for one period, exactly as ``hourbridge sync`` does (lease included).

    Raises ConfigError if the profile can't be built, DatabaseUnavailableError if the database
    can't be opened; every failure during the run itself is recorded in the returned report.
    ``engine`` lets a long-lived caller reuse one opened database. Once ``stop()`` is true the
    run stops after the target's batch in flight and is recorded ``interrupted``.
    """
    calls = CallCounter()
    db = engine if engine is not None else connect(loaded)
    built = build_profile(loaded, profile_name, calls, engine=db)
    progress = LogProgress(log.bind(profile=profile_name, period=str(period)))
    report = SyncEngine(
        db,
        built,
        api_calls=calls.as_dict,
        counter=calls,
        progress=progress,
        scrub=Redactor(loaded.secrets).scrub,
        stop=stop,
    ).run(period, dry_run=dry_run, trigger=trigger, retry_of=retry_of, only_invoices=only_invoices)
    if not dry_run:
        alert_after_run(loaded, db, report)  # never raises for a delivery failure
    return report


class Service:
    """The scheduler of one config: a job per profile with a schedule, run one at a time."""

    def __init__(
        self,
        loaded: LoadedConfig,
        engine: Engine,
        *,
        clock: Clock = _utcnow,
        echo: Echo = _stdout,
        stop: threading.Event | None = None,
    ) -> None:
        self._loaded = loaded
        self._engine = engine
        self._clock = clock
        self._echo = echo
        # Set on SIGTERM/SIGINT: the run in progress stops after its batch, none starts after.
        self._stop = stop if stop is not None else threading.Event()
        self._tz = loaded.config.organisation.tz
        self.schedules: dict[str, ScheduleConfig] = scheduled_profiles(loaded.config)
        # One worker: runs of different profiles in this process never overlap, and a run due
        # while another is going waits in the queue instead of being counted as missed.
        self._scheduler: Any = BackgroundScheduler(
            timezone=self._tz,
            executors={"default": ThreadPoolExecutor(max_workers=1)},
        )
        self.metrics = Metrics(engine, sorted(self.schedules), clock)
        self._scrub = Redactor(loaded.secrets).scrub

    @property
    def alive(self) -> bool:
        return bool(self._scheduler.running)

    def next_runs(self) -> dict[str, datetime | None]:
        """Each scheduled profile's next run, as APScheduler has it now."""
        result: dict[str, datetime | None] = {}
        for name in self.schedules:
            job = self._scheduler.get_job(name) if self.alive else None
            result[name] = job.next_run_time if job is not None else None
        return result

    def health(self) -> tuple[int, dict[str, Any]]:
        return health(self._engine, self.alive, self.next_runs(), self._scrub)

    def start(self, *, run_at_start: bool = False) -> dict[str, datetime | None]:
        """Add the jobs, start the scheduler, and print and log each profile's next run."""
        now = self._clock().astimezone(self._tz)
        log.info(
            "schedule.start",
            profiles=sorted(self.schedules),
            timezone=self._loaded.config.organisation.timezone,
            run_at_start=run_at_start,
        )
        upcoming: dict[str, datetime | None] = {}
        for name, schedule in self.schedules.items():
            trigger = trigger_for(schedule, self._tz)
            first: dict[str, datetime] = {"next_run_time": now} if run_at_start else {}
            self._scheduler.add_job(
                self._run_scheduled,
                trigger=trigger,
                args=[name],
                id=name,
                name=f"sync {name}",
                coalesce=True,
                max_instances=1,
                misfire_grace_time=schedule.misfire_grace_seconds,
                **first,
            )
            upcoming[name] = trigger.get_next_fire_time(None, now)
        # Retention: run events older than retention_days go, daily (never runs or the ledger).
        self._scheduler.add_job(
            self._prune,
            trigger=crontab_trigger(PRUNE_CRON, self._tz),
            id=PRUNE_JOB,
            name="prune old run events",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=24 * 3600,
        )
        self._scheduler.start()
        for name, when in upcoming.items():
            at = when.isoformat() if when is not None else "never (the cron cannot fire again)"
            now_too = " (and once now: --run-at-start)" if run_at_start else ""
            self._echo(f"{name}: next run at {at}{now_too}")
            log.info("schedule.next_run", profile=name, time=when.isoformat() if when else None)
        return upcoming

    def _prune(self) -> None:
        days = self._loaded.config.retention_days
        try:
            pruned = prune(self._engine, self._clock() - timedelta(days=days))
        except Exception as exc:  # keep serving; the next day tries again
            log.error("retention.failed", error=f"{type(exc).__name__}: {exc}")
            return
        log.info(
            "retention.pruned",
            events=pruned.events,
            alerts=pruned.alerts,
            windows=pruned.windows,
            retention_days=days,
        )

    def shutdown(self) -> None:
        """Stop scheduling and wait for the run in progress: once the stop event is set, it
        stops after its batch in flight (recorded ``interrupted``), and queued runs skip."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def _scheduled_run(self, name: str, period: Period) -> RunReport:
        """A scheduled sync; for a profile with ``require_approval``, a preview first, and
        the push only if a finance user approved exactly that batch (web console)."""
        stop = self._stop.is_set
        if not self._loaded.config.profiles[name].require_approval:
            return run_profile(
                self._loaded, name, period, engine=self._engine, trigger="schedule", stop=stop
            )
        preview = run_profile(
            self._loaded,
            name,
            period,
            engine=self._engine,
            dry_run=True,
            trigger="schedule",
            stop=stop,
        )
        if preview.errors or preview.status == RunStatus.INTERRUPTED.value:
            return preview
        batch = approvals.fingerprint(preview)
        pending = any(inv.action in approvals.PUSHED for inv in preview.invoices)
        if pending and approvals.approved(self._engine, name, str(period), batch) is None:
            log.info(
                "schedule.awaiting_approval",
                profile=name,
                period=str(period),
                run_id=preview.run_id,
            )
            return preview
        return run_profile(
            self._loaded,
            name,
            period,
            engine=self._engine,
            trigger="schedule",
            only_invoices=approvals.batch(preview),  # what was approved, nothing newer
            stop=stop,
        )

    def _run_scheduled(self, name: str) -> None:
        schedule = self.schedules[name]
        now = self._clock()
        scheme = self._loaded.config.profiles[name].billing_period.scheme()
        period = period_for(schedule, now, self._tz, scheme)
        bound = log.bind(profile=name, period=str(period))
        if self._stop.is_set():
            # queued behind the run that was stopped: serve is shutting down, start nothing
            bound.info("schedule.run_skipped", reason="serve is stopping")
            return
        bound.info("schedule.run_start")
        try:
            report = self._scheduled_run(name, period)
        except HourbridgeError as exc:
            bound.error("schedule.run_done", status=RunStatus.FAILED.value, error=str(exc))
        except Exception as exc:  # keep serving: one broken run must not stop the schedule
            bound.exception(
                "schedule.run_done",
                status=RunStatus.FAILED.value,
                error=f"internal error: {type(exc).__name__}: {exc}",
            )
        else:
            self.metrics.observe(report)
            bound.info(
                "schedule.run_done",
                status=report.status,
                run_id=report.run_id,
                invoices_created=report.invoices_created,
                invoices_failed=report.invoices_failed,
                error="; ".join(report.errors) or None,
            )
        nxt = trigger_for(schedule, self._tz).get_next_fire_time(
            None, self._clock().astimezone(self._tz)
        )
        bound.info("schedule.next_run", time=nxt.isoformat() if nxt is not None else None)


def serve(
    loaded: LoadedConfig,
    *,
    run_at_start: bool = False,
    stop: threading.Event | None = None,
    clock: Clock = _utcnow,
    echo: Echo = _stdout,
    endpoint: ServeConfig | None = None,
) -> None:
    """Run every scheduled profile on its cron until ``stop`` is set or SIGTERM/SIGINT
    arrives; then stop the current run after its batch in flight (it is recorded
    ``interrupted``, its lease released) and return. Meanwhile ``/healthz`` and ``/metrics``
    answer on ``endpoint`` (default: the config's ``serve``, 127.0.0.1)."""
    engine = connect(loaded)
    stop = stop if stop is not None else threading.Event()
    service = Service(loaded, engine, clock=clock, echo=echo, stop=stop)
    where = endpoint if endpoint is not None else loaded.config.serve
    try:
        server = HealthServer(where.host, where.port, service.health, service.metrics.registry)
    except OSError as exc:
        engine.dispose()
        raise EndpointError(
            f"cannot serve /healthz and /metrics on {where.host}:{where.port}: {exc.strerror}"
        ) from None
    with stop_on_signals(stop):
        try:
            service.start(run_at_start=run_at_start)
            server.start()
            echo(f"health: {server.url}/healthz  metrics: {server.url}/metrics")
            log.info("serve.endpoint", url=server.url)
            while not stop.wait(0.5):
                pass
            log.info("schedule.stopping", note="a run in progress stops after its current batch")
        finally:
            service.shutdown()
            server.stop()
            engine.dispose()
    log.info("schedule.stopped")
