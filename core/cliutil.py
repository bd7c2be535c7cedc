"""What every ``hourbridge`` command shares: consoles, common options, exit codes and loading.

Command groups live in their own modules and import from here, so ``core.cli`` only wires them.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import Engine

from core import logging as hblog
from core.config import LoadedConfig, load_config
from core.db import open_database
from core.errors import ConfigError
from core.periods import Period
from core.tables import RunStatus

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# SIGTERM or Ctrl-C stopped the run after its batch in flight; it is recorded `interrupted`
# and the next run resumes (sync, run-now, runs retry; serve exits 0 when stopped).
EXIT_INTERRUPTED = 3
STOP_NOTICE = (
    "hourbridge: stopping after the batch in flight (the run will be recorded interrupted); "
    "send the signal again to force an exit"
)

# Off a terminal (pipes, CI, `make demo`), tables get room instead of the 80-column default.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="YAML config file.", envvar="HOURBRIDGE_CONFIG")
]
ProfileOpt = Annotated[
    str | None, typer.Option("--profile", "-p", help="Profile name (needed if several).")
]
PeriodOpt = Annotated[
    str | None,
    typer.Option(
        "--period",
        help="Billing period in the organisation's timezone, in the profile's notation: "
        "2026-10 (monthly), 2026-W43 (weekly), 2026-10-H1 or -H2 (semi-monthly), a date in "
        "it (custom) [default: the previous period].",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


def run_exit_code(status: str) -> int:
    """A run's exit code: 0 succeeded, 3 interrupted (stopped on request), else 1."""
    if status == RunStatus.SUCCEEDED.value:
        return EXIT_OK
    if status == RunStatus.INTERRUPTED.value:
        return EXIT_INTERRUPTED
    return EXIT_FAILED


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def load(config: Path) -> LoadedConfig:
    try:
        loaded = load_config(config)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    hblog.configure(loaded.secrets)
    return loaded


def period(loaded: LoadedConfig, text: str | None, profile_name: str | None = None) -> Period:
    """``--period`` in the profile's notation; absent: the period before the current one."""
    try:
        _name, chosen = loaded.config.profile(profile_name)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    scheme = chosen.billing_period.scheme()
    try:
        if text is None:
            tz = loaded.config.organisation.tz
            return scheme.containing(datetime.now(tz), tz).previous()
        return scheme.parse(text)
    except ValueError as exc:
        raise fail(f"--period: {exc}") from None


def profile(loaded: LoadedConfig, name: str | None) -> tuple[str, Any]:
    try:
        return loaded.config.profile(name)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def database(loaded: LoadedConfig) -> Engine:
    """The configured database, migrated; a clear exit 1 when it cannot be opened."""
    try:
        return open_database(loaded.database_url)
    except Exception as exc:  # the driver's own error types vary by back end
        raise fail(
            f"{loaded.path}: database.url: cannot open the database: {exc}", EXIT_FAILED
        ) from None
