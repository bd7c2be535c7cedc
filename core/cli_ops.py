"""Operator commands: ``hourbridge status``, ``runs retry``, ``runs prune``, and the options of
``serve``'s health endpoint. Wired into the app by core/cli.py."""

from __future__ import annotations

from pydantic import ValidationError

from core.cliutil import fail
from core.config import LoadedConfig
from core.opsconfig import ServeConfig


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
