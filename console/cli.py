"""``hourbridge console``: serve the web console."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from console import server
from core.cliutil import ConfigOpt, database, err, fail, load
from core.config import LoadedConfig
from core.errors import ConfigError


def console_command(
    config: ConfigOpt,
    host: Annotated[
        str | None,
        typer.Option(
            "--host", help="Address to listen on (default: console.host, else 127.0.0.1)."
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Port (default: console.port, else 8080).", min=0, max=65535),
    ] = None,
) -> None:
    """Serve the web console for finance staff (sign in with a user from `hourbridge users
    add`). Loopback only unless the config says it sits behind TLS (console.behind_tls)."""
    loaded = load(config)
    try:
        chosen = server.settings(loaded, host, port)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    engine = database(loaded)
    instance = server.server(loaded, engine, chosen)
    err.print(f"console on http://{chosen.host}:{chosen.port}/ (Ctrl-C stops it)", highlight=False)
    instance.run()


def console_alongside(loaded: LoadedConfig) -> uvicorn.Server | None:
    """Under ``hourbridge serve``: the console too, in a daemon thread, when the config says
    ``console.with_serve: true``. The running server (``should_exit`` stops it), or None."""
    if loaded.config.console is None or not loaded.config.console.with_serve:
        return None
    try:
        chosen = server.settings(loaded, None, None)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    instance = server.server(loaded, database(loaded), chosen)
    server.in_thread(instance)
    err.print(f"console on http://{chosen.host}:{chosen.port}/", highlight=False)
    return instance
