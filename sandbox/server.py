"""Start the fakes together, seeded with the same agency month."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sandbox.clockify import FakeClockify
from sandbox.harvest import FakeHarvest, HarvestSettings
from sandbox.quickbooks import FakeQuickBooks, QboSettings
from sandbox.seed import AgencyMonth, SeedSpec, build_agency_month
from sandbox.serving import RunningServer, start_server
from sandbox.toggl import FakeToggl
from sandbox.tracker_seed import build_clockify, build_toggl
from sandbox.xero import FakeXero, XeroSettings


@dataclass
class Sandbox:
    month: AgencyMonth
    harvest: FakeHarvest
    xero: FakeXero
    quickbooks: FakeQuickBooks
    servers: list[RunningServer] = field(default_factory=list)
    toggl: FakeToggl | None = None
    clockify: FakeClockify | None = None

    @property
    def quickbooks_url(self) -> str:
        return self.servers[2].url

    @property
    def harvest_url(self) -> str:
        return self.servers[0].url

    @property
    def xero_url(self) -> str:
        return self.servers[1].url

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def make_fakes(
    month: AgencyMonth,
    harvest_settings: HarvestSettings | None = None,
    xero_settings: XeroSettings | None = None,
) -> tuple[FakeHarvest, FakeXero]:
    harvest = FakeHarvest(month, harvest_settings or HarvestSettings())
    xero = FakeXero(
        contacts=month.xero_contacts,
        items=month.xero_items,
        accounts=month.xero_accounts,
        tax_rates=month.xero_tax_rates,
        currencies=month.xero_currencies,
        tracking_categories=month.xero_tracking_categories,
        base_currency=month.base_currency,
        settings=xero_settings or XeroSettings(),
    )
    return harvest, xero


def start_sandbox(
    spec: SeedSpec | None = None,
    *,
    harvest_port: int = 0,
    xero_port: int = 0,
    quickbooks_port: int = 0,
    harvest_settings: HarvestSettings | None = None,
    xero_settings: XeroSettings | None = None,
    quickbooks_settings: QboSettings | None = None,
    trackers: bool = False,
    toggl_port: int = 0,
    clockify_port: int = 0,
) -> Sandbox:
    """Harvest, Xero and QuickBooks always; Toggl and Clockify too with ``trackers``."""
    month = build_agency_month(spec or SeedSpec())
    harvest, xero = make_fakes(month, harvest_settings, xero_settings)
    qbo = FakeQuickBooks.from_month(month, quickbooks_settings)
    sandbox = Sandbox(month=month, harvest=harvest, xero=xero, quickbooks=qbo)
    apps: list[tuple[Any, int]] = [
        (harvest, harvest_port),
        (xero, xero_port),
        (qbo, quickbooks_port),
    ]
    if trackers:
        sandbox.toggl = FakeToggl(build_toggl(spec))
        sandbox.clockify = FakeClockify(build_clockify(spec))
        apps += [(sandbox.toggl, toggl_port), (sandbox.clockify, clockify_port)]
    try:
        for app, port in apps:
            sandbox.servers.append(start_server(app, port=port))
    except OSError:
        sandbox.stop()
        raise
    return sandbox


@contextmanager
def running_sandbox(spec: SeedSpec | None = None, **kwargs: object) -> Iterator[Sandbox]:
    sandbox = start_sandbox(spec, **kwargs)  # type: ignore[arg-type]
    try:
        yield sandbox
    finally:
        sandbox.stop()


def serve_forever(
    *,
    harvest_port: int,
    xero_port: int,
    quickbooks_port: int,
    toggl_port: int,
    clockify_port: int,
    xero_per_minute: int,
) -> None:
    """Serve until SIGINT/SIGTERM; print where the fakes listen and the credentials to use."""
    try:
        sandbox = start_sandbox(
            harvest_port=harvest_port,
            xero_port=xero_port,
            quickbooks_port=quickbooks_port,
            xero_settings=XeroSettings(per_minute=xero_per_minute),
            trackers=True,
            toggl_port=toggl_port,
            clockify_port=clockify_port,
        )
    except OSError as exc:
        sys.stderr.write(f"error: cannot listen on 127.0.0.1: {exc.strerror or exc}\n")
        raise SystemExit(1) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    month = sandbox.month
    lines = [
        f"fake Harvest: {sandbox.harvest_url}  (account {sandbox.harvest.settings.account_id})",
        f"fake Xero:    {sandbox.xero_url}  (tenant {sandbox.xero.settings.tenant_id})",
        f"fake QuickBooks: {sandbox.quickbooks_url}/v3  (realm "
        f"{sandbox.quickbooks.settings.realm_id})",
        f"seeded: {len(month.clients)} clients, {len(month.time_entries)} time entries, "
        f"period {month.spec.period}",
        f"export HARVEST_ACCESS_TOKEN={sandbox.harvest.settings.access_token}",
        f"export XERO_ACCESS_TOKEN={sandbox.xero.settings.access_token}",
        f"fake Toggl:    {sandbox.servers[3].url}  (workspace "
        f"{sandbox.toggl.data.workspace_id if sandbox.toggl else '?'})",
        f"fake Clockify: {sandbox.servers[4].url}/api/v1 and /reports/v1",
        f"export QUICKBOOKS_ACCESS_TOKEN={sandbox.quickbooks.settings.access_token}",
        f"OAuth2 apps (hourbridge connect): Xero client_id "
        f"{sandbox.xero.settings.oauth.client_id}, authorize {sandbox.xero_url}"
        "/identity/connect/authorize, token /connect/token, connections /connections; "
        f"QuickBooks client_id {sandbox.quickbooks.settings.oauth.client_id}, authorize "
        f"{sandbox.quickbooks_url}/connect/oauth2, token /oauth2/v1/tokens/bearer",
        f"export XERO_CLIENT_SECRET={sandbox.xero.settings.oauth.client_secret}",
        f"export QBO_CLIENT_SECRET={sandbox.quickbooks.settings.oauth.client_secret}",
        "ready",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    stop.wait()
    sandbox.stop()
