"""The per-profile lease: held, expired, and left behind by a crashed process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from core.db import open_database
from core.lease import Lease, LeaseHeldError


def now() -> datetime:
    return datetime.now(UTC)


def test_a_held_lease_blocks_until_released_or_expired(db_url: str) -> None:
    engine = open_database(db_url)
    first = Lease(engine, "p", now, owner="elsewhere:1:a")
    first.acquire()
    second = Lease(engine, "p", now, owner="elsewhere:2:b")
    with pytest.raises(LeaseHeldError, match="being synced by elsewhere:1:a"):
        second.acquire()
    first.release()
    second.acquire()  # free again
    later = Lease(engine, "p", lambda: now() + timedelta(hours=1), owner="elsewhere:3:c")
    later.acquire()  # second's lease has expired by then
    engine.dispose()


def test_a_crashed_process_on_this_host_is_taken_over_at_once(db_url: str) -> None:
    engine = open_database(db_url)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = Lease(engine, "p", now, owner=f"{socket.gethostname()}:{gone.stdout.strip()}:x")
    dead.acquire()
    Lease(engine, "p", now).acquire()  # the holder's process no longer exists
    engine.dispose()


def test_a_live_process_on_this_host_keeps_its_lease(db_url: str) -> None:
    engine = open_database(db_url)
    alive = Lease(engine, "p", now, owner=f"{socket.gethostname()}:{os.getppid()}:y")
    alive.acquire()
    with pytest.raises(LeaseHeldError):
        Lease(engine, "p", now).acquire()
    engine.dispose()
