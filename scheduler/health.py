"""``/healthz`` and ``/metrics`` for ``hourbridge serve``.

Metrics use a prometheus-client registry owned by the service instance (no global state):
counters this process updates after each run (runs, entries billed, invoices pushed, API
calls, retries and 429s per provider) plus gauges read from the database when scraped (the
last run per profile, the age of the oldest entry still waiting to be billed).
The endpoint binds to 127.0.0.1 unless the config explicitly allows another address.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select

from core.report import RunReport
from core.tables import LedgerRow, SourceEntryRow, SyncRunRow

Clock = Callable[[], datetime]
StartResponse = Callable[..., Any]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LastRun:
    run_id: str
    status: str
    trigger: str
    period: str
    started_at: datetime
    finished_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "trigger": self.trigger,
            "period": self.period,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


def last_runs(engine: Engine, profiles: Iterable[str]) -> dict[str, LastRun | None]:
    """The latest real (not dry) run of each profile, any process's."""
    result: dict[str, LastRun | None] = {}
    with Session(engine) as session:
        for name in profiles:
            row = session.exec(
                select(SyncRunRow)
                .where(SyncRunRow.profile == name, col(SyncRunRow.dry_run).is_(False))
                .order_by(col(SyncRunRow.started_at).desc())
                .limit(1)
            ).first()
            result[name] = (
                None
                if row is None
                else LastRun(
                    row.id,
                    row.status,
                    row.trigger,
                    row.period,
                    _aware(row.started_at),
                    _aware(row.finished_at) if row.finished_at else None,
                )
            )
    return result


def oldest_pending_seen(engine: Engine) -> datetime | None:
    """When the oldest entry that could be billed but is on no invoice was first seen:
    billable, not deleted, not running, not billed in its tracker, with no ledger row."""
    with Session(engine) as session:
        first = session.exec(
            select(func.min(SourceEntryRow.first_seen_at))
            .select_from(SourceEntryRow)
            .outerjoin(
                LedgerRow,
                (col(LedgerRow.source) == col(SourceEntryRow.source))
                & (col(LedgerRow.source_id) == col(SourceEntryRow.source_id)),
            )
            .where(
                col(SourceEntryRow.billable).is_(True),
                col(SourceEntryRow.deleted).is_(False),
                col(SourceEntryRow.running).is_(False),
                col(SourceEntryRow.billed_in_source).is_(False),
                col(LedgerRow.source_id).is_(None),
            )
        ).first()
    return _aware(first) if first is not None else None


class _DatabaseCollector(Collector):
    """Gauges read from the database on each scrape; a database error yields none of them."""

    def __init__(self, engine: Engine, profiles: list[str], clock: Clock) -> None:
        self._engine = engine
        self._profiles = profiles
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            runs = last_runs(self._engine, self._profiles)
            oldest = oldest_pending_seen(self._engine)
        except Exception:  # the database is down: /healthz says so; scrape the rest
            return
        last = GaugeMetricFamily(
            "hourbridge_last_run_timestamp_seconds",
            "Start of the latest run per profile (any process), by its status",
            labels=["profile", "status"],
        )
        for name, run in runs.items():
            if run is not None:
                last.add_metric([name, run.status], run.started_at.timestamp())
        yield last
        age = GaugeMetricFamily(
            "hourbridge_oldest_pending_entry_age_seconds",
            "How long the oldest billable entry on no invoice has waited since first seen",
        )
        age.add_metric([], 0.0 if oldest is None else (self._clock() - oldest).total_seconds())
        yield age


class Metrics:
    """The metrics of one service instance, in its own registry."""

    def __init__(self, engine: Engine, profiles: list[str], clock: Clock = _utcnow) -> None:
        self.registry = CollectorRegistry()
        self.runs = Counter(
            "hourbridge_runs",
            "Runs finished by this process, by profile and status",
            ["profile", "status"],
            registry=self.registry,
        )
        self.entries_billed = Counter(
            "hourbridge_entries_billed",
            "Entries newly confirmed on an invoice",
            ["profile"],
            registry=self.registry,
        )
        self.invoices_pushed = Counter(
            "hourbridge_invoices_pushed",
            "Invoices written to the target, by action (create, update, delete)",
            ["profile", "action"],
            registry=self.registry,
        )
        self.api_calls = Counter(
            "hourbridge_api_calls", "API calls, by provider", ["provider"], registry=self.registry
        )
        self.retries = Counter(
            "hourbridge_api_retries",
            "API calls retried, by provider",
            ["provider"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "hourbridge_api_rate_limited",
            "API calls throttled (429 and the like), by provider",
            ["provider"],
            registry=self.registry,
        )
        self.quota_remaining = Gauge(
            "hourbridge_api_quota_remaining",
            "What a provider's last answer said is left of a limit (e.g. Xero's day quota)",
            ["provider", "window"],
            registry=self.registry,
        )
        for name in profiles:  # every series exists from the start, at zero
            self.entries_billed.labels(name)
        self.registry.register(_DatabaseCollector(engine, profiles, clock))

    def observe(self, report: RunReport) -> None:
        if report.dry_run:
            return
        self.runs.labels(report.profile, report.status).inc()
        self.entries_billed.labels(report.profile).inc(report.entries_billed)
        for action, count in (
            ("create", report.invoices_created),
            ("update", report.invoices_updated),
            ("delete", report.invoices_deleted),
        ):
            self.invoices_pushed.labels(report.profile, action).inc(count)
        for provider, count in report.api_calls.items():
            self.api_calls.labels(provider).inc(count)
        for provider, count in report.api_retries.items():
            self.retries.labels(provider).inc(count)
        for provider, count in report.api_rate_limited.items():
            self.rate_limited.labels(provider).inc(count)
        for provider, windows in report.api_remaining.items():
            for window, left in windows.items():
                self.quota_remaining.labels(provider, window).set(left)


def database_reachable(engine: Engine) -> str | None:
    """None if a trivial query answers, else the error's first line."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means unreachable
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def health(
    engine: Engine,
    scheduler_alive: bool,
    next_runs: dict[str, datetime | None],
    scrub: Callable[[str], str] = str,
) -> tuple[int, dict[str, Any]]:
    """200 when the scheduler runs and the database answers, else 503; with the last run and
    the next run of each scheduled profile."""
    problem = database_reachable(engine)
    runs: dict[str, LastRun | None] = {}
    if problem is None:
        try:
            runs = last_runs(engine, next_runs)
        except Exception as exc:  # the database went away between the two queries
            problem = f"{type(exc).__name__}"
    ok = scheduler_alive and problem is None
    last = {name: run.as_dict() for name, run in runs.items() if run is not None}
    body: dict[str, Any] = {
        "status": "ok" if ok else "unhealthy",
        "scheduler": {"alive": scheduler_alive},
        "database": {"reachable": problem is None, "error": scrub(problem) if problem else None},
        "profiles": {
            name: {
                "last_run": last.get(name),
                "next_run": when.isoformat() if when is not None else None,
            }
            for name, when in next_runs.items()
        },
    }
    return (200 if ok else 503), body


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are not sync logs


class HealthServer:
    """Serves /healthz (from ``probe``) and /metrics (from ``registry``) in a thread."""

    def __init__(
        self,
        host: str,
        port: int,
        probe: Callable[[], tuple[int, dict[str, Any]]],
        registry: CollectorRegistry,
    ) -> None:
        metrics_app = make_wsgi_app(registry)

        def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/healthz":
                code, body = probe()
                data = json.dumps(body).encode()
                status = "200 OK" if code == 200 else "503 Service Unavailable"
                start_response(
                    status,
                    [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
                )
                return [data]
            if path == "/metrics":
                return list(metrics_app(environ, start_response))
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /healthz or /metrics\n"]

        self._server = make_server(
            host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="hourbridge-health", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
