"""Sync logs with structlog: JSON lines off a terminal, readable on one; secrets scrubbed."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(authorization|token|secret|password|api_key)", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
MASK = "***"


class Redactor:
    """A structlog processor that removes known secret values and secret-looking fields."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return _BEARER.sub(r"\1" + MASK, text)

    def __call__(
        self, logger: object, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if _SECRET_KEYS.search(key) and value is not None:
                event[key] = MASK
            elif isinstance(value, str):
                event[key] = self.scrub(value)
            elif isinstance(value, BaseException):
                event[key] = self.scrub(f"{type(value).__name__}: {value}")
        return event


def _current_stderr(*_args: Any) -> structlog.PrintLogger:
    """A logger on whatever sys.stderr is now: a stream swapped in and closed again (a test's
    CliRunner) never becomes the place every later log line is written to."""
    return structlog.PrintLogger(file=sys.stderr)


def configure(
    secrets: Iterable[str] = (), *, level: str = "info", json: bool | None = None
) -> Redactor:
    redactor = Redactor(secrets)
    as_json = not sys.stderr.isatty() if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_current_stderr,
        cache_logger_on_first_use=False,
    )
    return redactor
