"""A second (and third) process for tests/test_budgets.py: wait for the go file, then try to
take calls from a budget shared through the test's database, all at the same instant (a
frozen clock) and without waiting (max_wait 0), printing "taken" or "refused" for each."""

from __future__ import annotations

import sys

from core.budgets import SharedBudgets
from core.db import create_db_engine
from core.http import BudgetExhaustedError, Limit
from tests.together import ready_then_wait

LIMIT = Limit(5, 60.0, "minute")


def main(db_url: str, go_file: str, start: str, attempts: str) -> None:
    engine = create_db_engine(db_url)
    frozen = float(start)
    budgets = SharedBudgets(
        engine, clock=lambda: frozen, monotonic=lambda: frozen, sleep=_never, max_wait=0.0
    )
    budget = budgets("harvest", "1234567", [LIMIT])
    ready_then_wait(go_file)
    for _ in range(int(attempts)):
        try:
            budget.acquire()
        except BudgetExhaustedError:
            sys.stdout.write("refused\n")
        else:
            sys.stdout.write("taken\n")
    sys.stdout.flush()
    engine.dispose()


def _never(seconds: float) -> None:
    raise AssertionError(f"the budget slept {seconds} s with max_wait 0")


if __name__ == "__main__":
    main(*sys.argv[1:5])
