"""Serving the console with uvicorn: its address checked (loopback unless behind TLS)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import uvicorn
from pydantic import ValidationError
from sqlalchemy import Engine

from console.app import create_app
from core.config import LoadedConfig
from core.consoleconfig import ConsoleConfig
from core.errors import ConfigError


def settings(loaded: LoadedConfig, host: str | None, port: int | None) -> ConsoleConfig:
    """The config's ``console`` section with --host/--port applied, checked again (a
    non-loopback host needs ``behind_tls``). ConfigError naming the key when it is missing."""
    base = loaded.config.console
    if base is None:
        raise ConfigError(
            f"{loaded.path}: console: missing; add a console section with session_secret: "
            "${HOURBRIDGE_CONSOLE_SECRET} (README: Web console)"
        )
    data = base.model_dump()
    data["session_secret"] = base.session_secret.get_secret_value()
    if host is not None:
        data["host"] = host
    if port is not None:
        data["port"] = port
    try:
        return ConsoleConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "--host" if host is not None and first["loc"] in ((), ("host",)) else "--port"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{where}: {message} (console.behind_tls in {loaded.path})") from None


def server(
    loaded: LoadedConfig,
    engine: Engine,
    chosen: ConsoleConfig,
    *,
    clock: Callable[[], datetime] | None = None,
) -> uvicorn.Server:
    app = (
        create_app(loaded, engine, chosen)
        if clock is None
        else create_app(loaded, engine, chosen, clock=clock)
    )
    config = uvicorn.Config(
        app,
        host=chosen.host,
        port=chosen.port,
        log_level="warning",
        access_log=False,  # /connections/callback's query carries an OAuth code and state
        proxy_headers=chosen.behind_tls,
        server_header=False,
    )
    return uvicorn.Server(config)


def in_thread(instance: uvicorn.Server) -> threading.Thread:
    """Run the server in a daemon thread (``serve`` with ``console.with_serve``)."""
    thread = threading.Thread(target=instance.run, name="console", daemon=True)
    thread.start()
    return thread
