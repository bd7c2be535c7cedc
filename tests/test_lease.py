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


def test_renewal_is_throttled_to_a_third_of_the_lease(db_url: str) -> None:
    engine = open_database(db_url)
    moments = [datetime(2026, 11, 1, tzinfo=UTC)]
    lease = Lease(engine, "p", lambda: moments[-1], ttl=timedelta(minutes=9), owner="me:1:a")
    lease.acquire()
    other = Lease(engine, "p", lambda: moments[-1], owner="other:2:b")
    moments.append(moments[-1] + timedelta(minutes=2))
    lease.renew_if_due()  # not due yet: the lease still ends 9 minutes after acquiring
    moments.append(moments[0] + timedelta(minutes=9, seconds=1))
    other.acquire()  # so it has expired by now and is taken over
    with pytest.raises(LeaseHeldError):
        lease.acquire()

    moments.append(moments[-1] + timedelta(minutes=3, seconds=21))
    other.renew_if_due()  # due: a third of its 10-minute lease has passed since acquiring
    moments.append(moments[-1] + timedelta(minutes=7))
    with pytest.raises(LeaseHeldError):  # renewed, so still held 7 minutes later
        Lease(engine, "p", lambda: moments[-1], owner="third:3:c").acquire()
    engine.dispose()
