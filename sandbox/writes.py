"""What the fake accounting APIs share about a write: its stored answer, for a replay of the same
idempotency key (Xero's ``Idempotency-Key``, QuickBooks' ``requestid``), and the faults a test
can queue for after it commits: the answer lost (``drop``) or held while a client dies (``hold``).
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sandbox.serving import drop_connection

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

HOLD_TIMEOUT_S = 120.0  # a held write never blocks a server thread for longer


@dataclass
class StoredAnswer:
    """The answer to a write, kept under its idempotency key; ``pending`` until it is known."""

    fingerprint: str = ""
    pending: bool = True
    status: int = 0
    body: bytes = b""
    content_type: str = ""

    def settle(self, status: int, body: bytes, content_type: str) -> None:
        self.pending = False
        self.status = status
        self.body = body
        self.content_type = content_type


@dataclass
class AfterCommit:
    kind: str  # "drop" | "hold"
    release: threading.Event | None = None

    def apply(self, environ: WSGIEnvironment, who: str) -> None:
        """Cut the connection (drop) or wait for the test's release (hold)."""
        if self.kind == "drop":
            drop_connection(environ, who)
        if self.release is not None:
            self.release.wait(HOLD_TIMEOUT_S)


class CommitFaults:
    """The after-commit knobs of a fake. ``committed`` is set whenever a write commits."""

    _lock: threading.RLock

    def __init__(self) -> None:
        self.committed = threading.Event()
        self._after_commit: collections.deque[AfterCommit] = collections.deque()

    def drop_after_commit(self, count: int = 1) -> None:
        """The next ``count`` invoice writes commit, then the TCP connection is cut."""
        with self._lock:
            for _ in range(count):
                self._after_commit.append(AfterCommit("drop"))

    def hold_after_commit(self) -> threading.Event:
        """The next invoice write commits, sets ``committed`` and waits for the event."""
        release = threading.Event()
        with self._lock:
            self.committed.clear()
            self._after_commit.append(AfterCommit("hold", release))
        return release

    def _commit_fault(self) -> AfterCommit | None:
        """A write has committed (the caller holds the lock): its queued fault, if any."""
        self.committed.set()
        return self._after_commit.popleft() if self._after_commit else None
