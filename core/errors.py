"""Error taxonomy: every failure is either terminal (a person must act) or transient (retry)."""

from __future__ import annotations


class HourbridgeError(Exception):
    """Base class. ``str(err)`` is a one-line message fit for an operator."""


class ConfigError(HourbridgeError):
    """The configuration is invalid. Nothing is pulled or pushed."""


class TerminalError(HourbridgeError):
    """Retrying will not help: bad credentials, forbidden, a rejected payload."""


class AuthError(TerminalError):
    """The provider refused our credentials (401/403)."""


class TransientError(HourbridgeError):
    """May succeed if retried: 429, 5xx, timeouts, connection resets."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SourceDataError(TerminalError):
    """A tracker sent a payload we cannot parse; names the source and the entry id."""
