"""Call budgets shared through the database (core.budgets): a full window makes the caller
wait for the next, every process on the database shares the cap, old windows are pruned;
clocks and sleeps injected, so nothing really waits."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from connectors.registry import BuildContext, installed
from connectors.testing import BudgetTime
from core.budgets import SharedBudgets, SharedGate, SharedWindow, account_key, prune_windows
from core.db import create_db_engine, open_database
from core.errors import TransientError
from core.http import (
    Budget,
    BudgetExhaustedError,
    CallCounter,
    Limit,
    LocalBudgets,
    RetryPolicy,
)
from core.retention import prune
from core.tables import CallBudgetRow
from tests import budget_worker
from tests.together import run_together

ROOT = Path(__file__).resolve().parent.parent
START = 20_834 * 86_400.0  # midnight UTC: the first moment of a day, an hour and a minute


def _rows(engine: Engine) -> list[CallBudgetRow]:
    with Session(engine) as session:
        return list(session.exec(select(CallBudgetRow)).all())


def _window(engine: Engine, time: BudgetTime, limit: Limit) -> SharedWindow:
    return SharedWindow(engine, "xero", "tenant-1", limit, clock=time.clock, sleep=time.sleep)


def test_a_full_window_waits_until_it_rolls_over(db_url: str) -> None:
    engine = open_database(db_url)
    time = BudgetTime(now=START + 4.0)
    window = _window(engine, time, Limit(3, 10.0, "10s"))
    assert [window.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert time.waits == []
    assert window.acquire() == 6.0  # the window started at START, 4 s ago, lasts 10 s
    assert time.waits == [6.0] and time.now == START + 10.0
    assert window.used() == 1  # the fourth call is the new window's first


def test_two_budgets_on_one_database_share_the_cap(db_url: str) -> None:
    engine = open_database(db_url)
    first, second = BudgetTime(now=START), BudgetTime(now=START)
    limit = Limit(4, 60.0, "minute")
    a, b = _window(engine, first, limit), _window(engine, second, limit)
    for _ in range(2):
        assert a.acquire() == 0.0 and b.acquire() == 0.0
    assert b.acquire() == 60.0  # four calls between them: the fifth waits for the next minute
    assert first.waits == [] and second.waits == [60.0]
    other = SharedWindow(engine, "xero", "tenant-2", limit, clock=first.clock, sleep=first.sleep)
    assert other.acquire() == 0.0  # another tenant has a budget of its own
    quickbooks = SharedWindow(engine, "quickbooks", "tenant-1", limit, clock=first.clock)
    assert quickbooks.acquire() == 0.0  # and so does another provider


def test_a_frozen_clock_still_moves_on_after_a_wait(db_url: str) -> None:
    engine = open_database(db_url)
    slept: list[float] = []
    window = SharedWindow(
        engine, "harvest", "1", Limit(1, 15.0, "15s"), clock=lambda: START, sleep=slept.append
    )
    window.acquire()
    assert window.acquire() == 15.0 and window.acquire() == 15.0
    assert slept == [15.0, 15.0]


def test_a_new_window_prunes_the_old_ones_of_its_budget(db_url: str) -> None:
    engine = open_database(db_url)
    time = BudgetTime(now=START)
    minute = _window(engine, time, Limit(60, 60.0, "minute"))
    day = _window(engine, time, Limit(5000, 86400.0, "day"))
    elsewhere = SharedWindow(engine, "toggl", "42", Limit(1, 1.0, "second"), clock=time.clock)
    for _ in range(3):
        minute.acquire()
        day.acquire()
        elsewhere.acquire()
        time.now += 61.0
    rows = {(r.provider, r.period_ms, r.window_start_ms): r.calls for r in _rows(engine)}
    # each new window deleted those before the one before it (kept for a lagging clock)
    assert rows == {
        ("xero", 60_000, 1000 * int(START + 60.0)): 1,
        ("xero", 60_000, 1000 * int(START + 120.0)): 1,
        ("xero", 86_400_000, 1000 * int(START)): 3,  # the day's window is still open
        ("toggl", 1000, 1000 * int(START + 122.0)): 1,
    }


def test_retention_deletes_windows_that_ended(db_url: str) -> None:
    engine = open_database(db_url)
    time = BudgetTime(now=START)
    _window(engine, time, Limit(60, 60.0, "minute")).acquire()
    _window(engine, time, Limit(5000, 86400.0, "day")).acquire()
    after_the_minute = datetime.fromtimestamp(START + 61.0, UTC)
    assert prune_windows(engine, after_the_minute, dry_run=True) == 1
    assert len(_rows(engine)) == 2
    pruned = prune(engine, after_the_minute)
    assert pruned.windows == 1
    assert [r.period_ms for r in _rows(engine)] == [86_400_000]


def test_a_day_quota_used_up_stops_instead_of_sleeping(db_url: str) -> None:
    engine = open_database(db_url)
    time = BudgetTime(now=START + 3600.0)
    budget = SharedBudgets(engine, clock=time.clock, monotonic=time.clock, sleep=time.sleep)(
        "xero", "tenant-1", [Limit(60, 61.0, "minute"), Limit(2, 86400.0, "day")]
    )
    budget.acquire()
    budget.acquire()
    attempts: list[float] = []
    with pytest.raises(BudgetExhaustedError) as info:
        for attempt in RetryPolicy(max_attempts=5, sleep=attempts.append).retrying():
            with attempt:
                budget.acquire()
    assert attempts == []  # not retried: the run stops with when to come back
    assert time.waits == []  # and nothing was slept
    assert isinstance(info.value, TransientError)
    assert info.value.retry_after is not None and info.value.retry_after > 80_000
    assert str(info.value).startswith("xero (tenant-1): the ")
    assert "call quota of 2 per day is used up" in str(info.value)


def test_another_process_s_calls_count_against_the_local_budget_too(db_url: str) -> None:
    engine = open_database(db_url)
    time = BudgetTime(now=START)
    make = SharedBudgets(engine, clock=time.clock, monotonic=time.clock, sleep=time.sleep)
    ours, theirs = (make("clockify", "ws", [Limit(2, 1.0, "second")]) for _ in range(2))
    theirs.acquire()
    theirs.acquire()
    assert ours.acquire() == 1.0  # our own sliding window was empty: the shared one was not


def test_threads_never_exceed_the_cap_in_a_window(db_url: str) -> None:
    open_database(db_url).dispose()
    limit = Limit(10, 60.0, "minute")
    taken: list[int] = []
    refused: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        engine = create_db_engine(db_url)  # a connection of its own, as a process has
        window = SharedWindow(engine, "xero", "tenant-1", limit, clock=lambda: START, max_wait=0.0)
        for _ in range(8):
            try:
                window.acquire()
            except BudgetExhaustedError:
                with lock:
                    refused.append(1)
            else:
                with lock:
                    taken.append(1)
        engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert len(taken) == 10 and len(refused) == 22
    (row,) = _rows(open_database(db_url))
    assert row.calls == 10


def test_two_processes_never_exceed_the_cap_in_a_window(db_url: str, tmp_path: Path) -> None:
    open_database(db_url).dispose()  # migrated once, here
    go = tmp_path / "go"
    attempts = 8  # each process alone could take 5 (its own budget): together, 5 in all
    command = [sys.executable, "-m", "tests.budget_worker", db_url, str(go), str(START)]
    outputs = run_together([*command, str(attempts)], go)
    said = Counter(line for out, _err in outputs for line in out.split())
    assert said == {"taken": budget_worker.LIMIT.calls, "refused": 2 * attempts - 5}
    (row,) = _rows(open_database(db_url))
    assert (row.provider, row.account, row.calls) == ("harvest", "1234567", 5)


def test_long_accounts_are_stored_as_a_digest() -> None:
    assert account_key("8450001") == "8450001"
    long = "x" * 200
    assert account_key(long).startswith("sha256:") and len(account_key(long)) <= 128
    assert account_key(long) == account_key("x" * 200)


class _Recorded:
    """A BudgetFactory that records what each connector asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, tuple[Limit, ...]]] = []
        self.concurrent: list[int | None] = []

    def __call__(
        self, service: str, account: str, limits: Sequence[Limit], *, concurrent: int | None = None
    ) -> Budget:
        self.asked.append((service, account, tuple(limits)))
        self.concurrent.append(concurrent)
        return LocalBudgets()(service, account, limits)


TENANT = "1f0e2d3c-4b5a-4697-8a8b-9c0d1e2f3a4b"
CONFIGS: dict[str, dict[str, Any]] = {
    "harvest": {"account_id": "1234567", "access_token": "t"},
    "toggl": {"api_token": "t", "workspace_id": 8450001, "approval": "all"},
    "clockify": {"api_key": "k", "workspace_id": "aa780060ec90e7fbf378c62d"},
    "xero": {"access_token": "t", "tenant_id": TENANT},
    "quickbooks": {"access_token": "t", "realm_id": "9130357"},
}


@pytest.mark.parametrize(
    ("kind", "account", "limits"),
    [
        ("harvest", "1234567", [Limit(100, 15.0, "15s")]),
        ("toggl", "8450001", [Limit(1, 1.0, "second"), Limit(600, 3600.0, "hour")]),
        ("clockify", "aa780060ec90e7fbf378c62d", [Limit(50, 1.0, "second")]),
        ("xero", TENANT, [Limit(60, 61.0, "minute"), Limit(5000, 86400.0, "day")]),
        ("quickbooks", "9130357", [Limit(500, 60.0, "minute")]),
    ],
)
def test_every_connector_takes_its_budget_from_the_builder(
    kind: str, account: str, limits: list[Limit], tmp_path: Path
) -> None:
    spec = installed()[kind]
    recorded = _Recorded()
    ctx = BuildContext(CallCounter(), None, tmp_path, budgets=recorded)
    spec.factory(ctx, kind, spec.config_model.model_validate({"type": kind, **CONFIGS[kind]}))
    assert recorded.asked == [(kind, account, tuple(limits))]
    assert recorded.concurrent == [{"xero": 5, "quickbooks": 10}.get(kind)]
    lowered = {"harvest": "requests_per_15s", "toggl": "calls_per_hour"}.get(kind)
    lowered = lowered or ("calls_per_second" if kind == "clockify" else "calls_per_minute")
    config = {"type": kind, **CONFIGS[kind], lowered: 1}
    spec.factory(ctx, kind, spec.config_model.model_validate(config))
    assert 1 in [limit.calls for limit in recorded.asked[-1][2]]  # the config lowered one


def _gate(engine: Engine, size: int, time: BudgetTime, **kw: Any) -> SharedGate:
    return SharedGate(engine, "xero", TENANT, size, clock=time.clock, sleep=time.sleep, **kw)


def test_a_gate_holds_at_most_its_size_across_holders_and_frees_a_place_on_exit(
    db_url: str,
) -> None:
    engine = open_database(db_url)
    time = BudgetTime()
    one, two, three = (_gate(engine, 2, time, max_wait=1.0) for _ in range(3))
    with one.hold(), two.hold():
        assert one.held() == 2
        refused = pytest.raises(BudgetExhaustedError, match="2 calls at once are in flight")
        with refused, three.hold():
            pass  # pragma: no cover - never reached
        assert time.waits and sum(time.waits) >= 1.0  # it polled, on the injected sleep
    assert one.held() == 0
    with three.hold():
        assert three.held() == 1


def test_a_place_held_by_a_dead_process_frees_itself_when_its_hold_expires(db_url: str) -> None:
    engine = open_database(db_url)
    time = BudgetTime()
    dead = _gate(engine, 1, time, hold_seconds=30.0, poll_seconds=4.0)
    held = dead.hold()
    held.__enter__()  # the process dies inside the call: never released
    waiting = _gate(engine, 1, time, hold_seconds=30.0, poll_seconds=4.0)
    with waiting.hold():  # polls on the injected sleep until the hold expires
        assert waiting.held() == 1
    assert 30.0 <= sum(time.waits) <= 34.0  # not before the hold expired, and soon after


def test_threads_never_hold_more_places_than_the_gate_has(db_url: str) -> None:
    open_database(db_url).dispose()
    inside, most = 0, 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal inside, most
        engine = create_db_engine(db_url)
        gate = SharedGate(engine, "quickbooks", "9130357", 3, sleep=lambda _s: None)
        for _ in range(5):
            with gate.hold():
                with lock:
                    inside += 1
                    most = max(most, inside)
                with lock:
                    inside -= 1
        engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert 1 <= most <= 3
    check = SharedGate(open_database(db_url), "quickbooks", "9130357", 3)
    assert check.held() == 0  # every place was given back


def test_a_shared_budget_gates_its_calls(db_url: str) -> None:
    time = BudgetTime()
    budgets = SharedBudgets(
        open_database(db_url), clock=time.clock, monotonic=time.clock, sleep=time.sleep
    )
    budget = budgets("xero", TENANT, [Limit(60, 61.0, "minute")], concurrent=5)
    (gate,) = budget.gates
    assert isinstance(gate, SharedGate) and gate.size == 5
    with budget.call():
        assert gate.held() == 1
    assert gate.held() == 0
    assert LocalBudgets()("xero", TENANT, [Limit(60, 61.0, "minute")], concurrent=5).gates == ()
