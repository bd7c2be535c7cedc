"""Call budgets shared by every process on one database.

A connector waits on its ``core.http.Budget`` before each call: first a sliding window per
limit kept in its own process, then a cap per fixed window kept here, in the database, so two
``hourbridge serve`` processes, or two profiles on one Xero tenant, QuickBooks realm, Harvest
account, Toggl or Clockify workspace, keep within the provider's limit together.

Taking a call is one atomic statement, on PostgreSQL and on SQLite 3.35 or later (RETURNING):

    INSERT INTO call_budgets (provider, account, period_ms, window_start_ms, calls)
    VALUES (:provider, :account, :period_ms, :window_start_ms, 1)
    ON CONFLICT (provider, account, period_ms, window_start_ms)
    DO UPDATE SET calls = call_budgets.calls + 1 WHERE call_budgets.calls < :limit
    RETURNING calls

No row back means the window is full: the caller waits (injected sleep) until it rolls over,
or, when that is further off than ``max_wait`` (a day quota), stops with
``BudgetExhaustedError``. The first call of a window deletes that budget's windows before the
previous one (the previous is kept for a process whose clock is a little behind, which would
otherwise open it afresh); ``core.retention`` sweeps windows of accounts no longer synced.

Windows are fixed: whole multiples of the period since the epoch, on the wall clock the
processes share. Across a window's edge, processes together may make up to twice the limit
within one period's span; the sliding window in front keeps each process smooth, and a
provider's 429 that still comes is retried after its Retry-After.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Engine,
    FromClause,
    Table,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel

from core.errors import ConfigError
from core.http import Budget, BudgetExhaustedError, Limit, LocalBudgets
from core.tables import CallBudgetRow, CallSlotRow

MAX_ACCOUNT = 128  # the column's width; longer keys are stored as a digest
SQLITE_RETURNING = (3, 35, 0)


def _table() -> Table:
    return SQLModel.metadata.tables[CallBudgetRow.__tablename__]


def _slots() -> Table:
    return SQLModel.metadata.tables[CallSlotRow.__tablename__]


def account_key(account: str) -> str:
    """The account as stored: itself, or a digest when it is wider than the column."""
    if len(account) <= MAX_ACCOUNT:
        return account
    return "sha256:" + hashlib.sha256(account.encode()).hexdigest()


def check_database(engine: Engine) -> None:
    """Raise ConfigError when this database can't take a call atomically."""
    name = engine.dialect.name
    if name == "sqlite" and sqlite3.sqlite_version_info < SQLITE_RETURNING:
        raise ConfigError(
            f"shared call budgets need SQLite 3.35 or later (INSERT ... RETURNING); this "
            f"Python's SQLite is {sqlite3.sqlite_version}"
        )
    if name not in ("sqlite", "postgresql"):
        raise ConfigError(f"shared call budgets need PostgreSQL or SQLite, not {name}")


@dataclass
class SharedWindow:
    """At most ``limit.calls`` per fixed window of ``limit.seconds`` for one provider account,
    counted in the database by every process that uses it."""

    engine: Engine
    provider: str
    account: str
    limit: Limit
    clock: Callable[[], float] = time.time  # the wall clock: the one processes share
    sleep: Callable[[float], None] = time.sleep
    max_wait: float | None = None
    _offset: float = field(default=0.0, repr=False)

    @property
    def period_ms(self) -> int:
        return max(1, round(self.limit.seconds * 1000))

    def _now(self) -> float:
        return self.clock() + self._offset

    def acquire(self) -> float:
        """Take one call in the current window, waiting for the next while it is full;
        returns how long we waited."""
        waited = 0.0
        while True:
            now = self._now()
            start = int(now * 1000) // self.period_ms * self.period_ms
            taken = self._take(start)
            if taken is not None:
                if taken == 1:  # this call opened the window: the ones before the last are done
                    self._prune(start - self.period_ms)
                return waited
            pause = max(0.001, (start + self.period_ms) / 1000 - now)
            if self.max_wait is not None and pause > self.max_wait:
                raise BudgetExhaustedError(
                    f"{self.provider} ({self.account}): the shared call quota of "
                    f"{self.limit.calls} per {self.limit.window} is used up; the window rolls "
                    f"over in {pause:.0f} s: run again then",
                    retry_after=pause,
                )
            self.sleep(pause)
            # An injected sleep that doesn't move the clock still counts as time passed.
            self._offset += max(0.0, pause - (self._now() - now))
            waited += pause

    def _take(self, start: int) -> int | None:
        """The window's call count after ours, or None when it was already full."""
        table = _table()
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        statement = (
            insert(table)
            .values(
                provider=self.provider,
                account=account_key(self.account),
                period_ms=self.period_ms,
                window_start_ms=start,
                calls=1,
            )
            .on_conflict_do_update(
                index_elements=[
                    table.c.provider,
                    table.c.account,
                    table.c.period_ms,
                    table.c.window_start_ms,
                ],
                set_={"calls": table.c.calls + 1},
                where=table.c.calls < self.limit.calls,
            )
            .returning(table.c.calls)
        )
        with self.engine.begin() as connection:
            row = connection.execute(statement).first()
        return None if row is None else int(row[0])

    def _prune(self, before: int) -> None:
        table = _table()
        with self.engine.begin() as connection:
            connection.execute(
                delete(table).where(
                    table.c.provider == self.provider,
                    table.c.account == account_key(self.account),
                    table.c.period_ms == self.period_ms,
                    table.c.window_start_ms < before,
                )
            )

    def used(self) -> int:
        """Calls taken so far in the current window (for status and tests)."""
        table = _table()
        start = int(self._now() * 1000) // self.period_ms * self.period_ms
        with self.engine.connect() as connection:
            found = connection.execute(
                select(table.c.calls).where(
                    table.c.provider == self.provider,
                    table.c.account == account_key(self.account),
                    table.c.period_ms == self.period_ms,
                    table.c.window_start_ms == start,
                )
            ).scalar()
        return int(found or 0)


@dataclass
class SharedGate:
    """At most ``size`` calls at once for one provider account, across every process on the
    database: a call holds one of ``size`` places (rows of ``call_slots``) while in flight.

    A place is claimed with one conditional UPDATE ... RETURNING on a free place (no holder, or
    a hold that expired: its process died mid-call), so two processes never hold the same one;
    when none is free the caller polls, on its injected sleep, until one is, or stops with
    ``BudgetExhaustedError`` after ``max_wait``. A hold lasts at most ``hold_seconds``.
    """

    engine: Engine
    provider: str
    account: str
    size: int
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    max_wait: float | None = None
    hold_seconds: float = 180.0  # longer than any one HTTP request may take
    poll_seconds: float = 0.05
    holder: str = field(default_factory=lambda: f"{os.getpid()}:{uuid.uuid4().hex[:12]}")
    _seeded: bool = field(default=False, repr=False)

    def _where(self, table: FromClause) -> ColumnElement[bool]:
        return and_(
            table.c.provider == self.provider,
            table.c.account == account_key(self.account),
            table.c.slot < self.size,
        )

    def _seed(self) -> None:
        """Create the account's places once (a no-op where another process already did)."""
        table = _slots()
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        rows = [
            {
                "provider": self.provider,
                "account": account_key(self.account),
                "slot": slot,
                "holder": None,
                "expires_at_ms": 0,
            }
            for slot in range(self.size)
        ]
        with self.engine.begin() as connection:
            connection.execute(insert(table).values(rows).on_conflict_do_nothing())
        self._seeded = True

    def _claim(self) -> int | None:
        table = _slots()
        now_ms = int(self.clock() * 1000)

        def free(t: FromClause) -> ColumnElement[bool]:
            return or_(t.c.holder.is_(None), t.c.expires_at_ms < now_ms)

        other = table.alias("other")  # the lowest free place, read apart from the row updated
        first_free = (
            select(func.min(other.c.slot)).where(self._where(other), free(other)).scalar_subquery()
        )
        claim = (
            update(table)
            .where(self._where(table), table.c.slot == first_free, free(table))
            .values(holder=self.holder, expires_at_ms=now_ms + int(self.hold_seconds * 1000))
            .returning(table.c.slot)
        )
        with self.engine.begin() as connection:
            row = connection.execute(claim).first()
        return None if row is None else int(row[0])

    def _release(self, slot: int) -> None:
        table = _slots()
        with self.engine.begin() as connection:
            connection.execute(
                update(table)
                .where(self._where(table), table.c.slot == slot, table.c.holder == self.holder)
                .values(holder=None, expires_at_ms=0)
            )

    @contextmanager
    def hold(self) -> Iterator[None]:
        if not self._seeded:
            self._seed()
        waited = 0.0
        slot = self._claim()
        while slot is None:
            if self.max_wait is not None and waited >= self.max_wait:
                raise BudgetExhaustedError(
                    f"{self.provider} ({self.account}): {self.size} calls at once are in "
                    f"flight elsewhere and none ended in {waited:.0f} s",
                    retry_after=self.poll_seconds,
                )
            self.sleep(self.poll_seconds)
            waited += self.poll_seconds
            slot = self._claim()
        try:
            yield
        finally:
            self._release(slot)

    def held(self) -> int:
        """Places held now (for tests and status)."""
        table = _slots()
        now_ms = int(self.clock() * 1000)
        with self.engine.connect() as connection:
            found = connection.execute(
                select(func.count()).where(
                    self._where(table),
                    table.c.holder.is_not(None),
                    table.c.expires_at_ms >= now_ms,
                )
            ).scalar()
        return int(found or 0)


@dataclass(frozen=True)
class SharedBudgets:
    """A ``core.http.BudgetFactory``: each budget is this process's sliding windows (on
    ``monotonic``) in front of a ``SharedWindow`` per limit (on the wall ``clock``)."""

    engine: Engine
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    max_wait: float | None = 120.0

    def __call__(
        self, service: str, account: str, limits: Sequence[Limit], *, concurrent: int | None = None
    ) -> Budget:
        check_database(self.engine)
        local = LocalBudgets(self.monotonic, self.sleep, self.max_wait)(service, account, limits)
        gates = (
            ()
            if concurrent is None
            else (
                SharedGate(
                    self.engine,
                    service,
                    account,
                    concurrent,
                    clock=self.clock,
                    sleep=self.sleep,
                    max_wait=self.max_wait,
                ),
            )
        )
        shared = tuple(
            SharedWindow(
                self.engine,
                service,
                account,
                limit,
                clock=self.clock,
                sleep=self.sleep,
                max_wait=self.max_wait,
            )
            for limit in limits
        )
        return Budget(local.local, shared, gates)


def prune_windows(engine: Engine, before: datetime, *, dry_run: bool = False) -> int:
    """Delete (or with ``dry_run`` count) the windows that ended before ``before``."""
    table = _table()
    ended = (table.c.window_start_ms + table.c.period_ms) < int(before.timestamp() * 1000)
    with engine.begin() as connection:
        if dry_run:
            counted = select(func.count()).select_from(table).where(ended)
            return int(connection.execute(counted).scalar() or 0)
        return connection.execute(delete(table).where(ended)).rowcount
