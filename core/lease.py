"""A lease per profile in the database: two processes never sync the same profile at once.

Acquiring is one conditional statement (insert, or take over an expired lease), so it is
atomic on SQLite and PostgreSQL alike. A crashed holder's lease expires and is taken over;
on the same host a holder whose process is gone is taken over at once.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from core.errors import HourbridgeError
from core.tables import LeaseRow


class LeaseHeldError(HourbridgeError):
    """Another process is syncing this profile."""


def default_owner() -> str:
    """host:pid:nonce, so a lease left by a crashed process on this host can be recognised."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_here(owner: str) -> bool:
    """True if ``owner`` names a process on this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by another user
    return False


@dataclass
class Lease:
    engine: Engine
    profile: str
    clock: Callable[[], datetime]
    ttl: timedelta = timedelta(minutes=10)
    owner: str = field(default_factory=default_owner)
    _renewed_at: datetime | None = field(default=None, init=False, repr=False)

    def acquire(self) -> None:
        now = self.clock()
        with Session(self.engine) as session:
            taken = session.execute(
                update(LeaseRow)
                .where(
                    col(LeaseRow.profile) == self.profile,
                    (col(LeaseRow.expires_at) < now) | (col(LeaseRow.owner) == self.owner),
                )
                .values(owner=self.owner, expires_at=now + self.ttl, acquired_at=now)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                session.commit()
                self._renewed_at = now
                return
            try:
                session.add(
                    LeaseRow(
                        profile=self.profile,
                        owner=self.owner,
                        expires_at=now + self.ttl,
                        acquired_at=now,
                    )
                )
                session.commit()
                self._renewed_at = now
                return
            except IntegrityError:
                session.rollback()
            holder = session.get(LeaseRow, self.profile)
            if holder is not None and _dead_here(holder.owner):
                # the holder was a process on this machine that no longer exists: it crashed
                taken = session.execute(
                    update(LeaseRow)
                    .where(
                        col(LeaseRow.profile) == self.profile, col(LeaseRow.owner) == holder.owner
                    )
                    .values(owner=self.owner, expires_at=now + self.ttl, acquired_at=now)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    session.commit()
                    return
        until = f" until {holder.expires_at:%Y-%m-%d %H:%M:%S} UTC" if holder else ""
        who = holder.owner if holder else "another process"
        raise LeaseHeldError(
            f"profile {self.profile!r} is being synced by {who}{until}; "
            "nothing was pulled or pushed (a crashed run's lease expires by itself)"
        )

    def renew_if_due(self) -> None:
        """Renew once a third of the lease has passed: cheap enough to call per invoice."""
        if self._renewed_at is None or self.clock() - self._renewed_at >= self.ttl / 3:
            self.renew()

    def renew(self) -> None:
        self._renewed_at = self.clock()
        with Session(self.engine) as session:
            session.execute(
                update(LeaseRow)
                .where(col(LeaseRow.profile) == self.profile, col(LeaseRow.owner) == self.owner)
                .values(expires_at=self.clock() + self.ttl)
            )
            session.commit()

    def release(self) -> None:
        with Session(self.engine) as session:
            session.execute(
                delete(LeaseRow).where(
                    col(LeaseRow.profile) == self.profile, col(LeaseRow.owner) == self.owner
                )
            )
            session.commit()
