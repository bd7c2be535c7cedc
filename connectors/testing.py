"""The contract every tracker connector passes (in the spirit of the Singer SDK's test suite).

A connector's test module subclasses ``ConnectorContract`` and provides a ``harness`` fixture
that returns a ``Harness`` bound to the connector's fake (or its files):

    class TestHarvestContract(ConnectorContract):
        @pytest.fixture
        def harness(self) -> Iterator[Harness]: ...

Checks that need HTTP (retries, credentials) are skipped for harnesses without it.

A harness gives its source call budgets on a ``BudgetTime`` (never the retry policy's
``Sleeps``), so ``test_429_and_5xx_are_retried_honouring_retry_after`` sees exactly the
retries' waits and no budget ever really sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import pytest

from connectors.base import PullRequest, TrackerSource
from core.errors import AuthError, SourceDataError
from core.http import LocalBudgets
from core.model import SourceEntry

LONG_UNICODE = "Kōwhai — naïve café 🚀 " * 60  # ~1,300 characters


@dataclass
class Sleeps:
    """An injectable sleep that records instead of sleeping."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass
class BudgetTime:
    """A clock and sleep for call budgets in tests: a sleep records its wait and moves the
    clock, so a budget waits exactly what its limit needs, in no time."""

    now: float = 1_000_000.0
    waits: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def budgets(self) -> LocalBudgets:
        """In-process budgets on this time (``core.budgets.SharedBudgets`` takes it too)."""
        return LocalBudgets(clock=self.clock, sleep=self.sleep)


class Harness(Protocol):
    """What the contract needs to know about one connector and its fake."""

    http: bool  # False for file sources: no retries or credentials to test
    first_day: date  # a date on or before every seeded entry of the period

    def source(
        self, *, page_size: int | None = None, sleeps: Sleeps | None = None
    ) -> TrackerSource:
        """A source bound to the fake, small pages if page_size is given."""
        ...

    def expected_ids(self, spent_from: date) -> set[str]:
        """Ids of every live entry spent on or after spent_from, from the seed itself."""
        ...

    def bad_credentials_source(self) -> TrackerSource: ...

    def fail_next(self, status: int, count: int = 1, retry_after: int | None = None) -> None: ...

    def edit_notes(self, source_id: str, notes: str) -> None:
        """Change an entry's notes (description) in the fake, as a user would."""
        ...

    def delete(self, source_id: str) -> None: ...

    def corrupt(self, source_id: str) -> str:
        """Make the fake send a malformed payload for this entry (e.g. hours "lots").

        Returns what the error must name to find it: the entry id, or "file: line N".
        """
        ...


def _pull(source: TrackerSource, request: PullRequest) -> list[SourceEntry]:
    return list(source.pull(request))


def _ids(entries: list[SourceEntry]) -> list[str]:
    return [e.source_id for e in entries]


def _pick(harness: Harness) -> str:
    return sorted(harness.expected_ids(harness.first_day))[
        len(harness.expected_ids(harness.first_day)) // 2
    ]


class ConnectorContract:
    """The shared checks. Subclass it and provide the ``harness`` fixture."""

    def test_pages_to_the_end_each_entry_once(self, harness: Harness) -> None:
        entries = _pull(harness.source(page_size=50), PullRequest(harness.first_day, None))
        ids = _ids(entries)
        assert len(ids) == len(set(ids)), "an entry came twice"
        assert set(ids) == harness.expected_ids(harness.first_day), "entries were lost"
        assert all(e.updated_at.tzinfo is not None for e in entries)

    def test_an_empty_period_is_not_an_error(self, harness: Harness) -> None:
        assert _pull(harness.source(), PullRequest(date(2099, 1, 1), None)) == []

    def test_429_and_5xx_are_retried_honouring_retry_after(self, harness: Harness) -> None:
        if not harness.http:
            pytest.skip("no HTTP: nothing to retry")
        sleeps = Sleeps()
        source = harness.source(sleeps=sleeps)
        harness.fail_next(429, retry_after=3)
        harness.fail_next(503)
        ids = set(_ids(_pull(source, PullRequest(harness.first_day, None))))
        assert ids == harness.expected_ids(harness.first_day)
        assert sleeps.calls and sleeps.calls[0] == 3.0
        assert len(sleeps.calls) == 2

    def test_refused_credentials_give_a_clear_error(self, harness: Harness) -> None:
        if not harness.http:
            pytest.skip("no HTTP: no credentials")
        source = harness.bad_credentials_source()
        with pytest.raises(AuthError) as info:
            _pull(source, PullRequest(harness.first_day, None))
        assert source.name in str(info.value)
        assert "credentials refused" in str(info.value)

    def test_edits_and_deletions_are_seen_on_the_next_pull(self, harness: Harness) -> None:
        source = harness.source()
        before = {e.source_id: e for e in _pull(source, PullRequest(harness.first_day, None))}
        mark = max(e.updated_at for e in before.values())
        ids = sorted(before)
        edited, deleted = ids[1], ids[-2]
        harness.edit_notes(edited, "edited after the pull")
        harness.delete(deleted)
        window = (harness.first_day, max(e.spent_date for e in before.values()))
        after = _pull(source, PullRequest(harness.first_day, mark, window=window))
        by_id = {e.source_id: e for e in after}
        assert by_id[edited].notes == "edited after the pull"
        assert by_id[edited].content_hash != before[edited].content_hash
        if source.reports_deletions:
            assert by_id[deleted].deleted
        else:  # the window's listing must be complete, so the engine sees what is missing
            assert deleted not in by_id
            listed = {i for i, e in by_id.items() if window[0] <= e.spent_date <= window[1]}
            assert listed == {
                i for i in ids if i != deleted and window[0] <= before[i].spent_date <= window[1]
            }

    def test_unicode_and_long_notes_survive(self, harness: Harness) -> None:
        target = _pick(harness)
        harness.edit_notes(target, LONG_UNICODE)
        entries = {
            e.source_id: e for e in _pull(harness.source(), PullRequest(harness.first_day, None))
        }
        assert entries[target].notes == LONG_UNICODE

    def test_a_malformed_payload_names_the_source_and_the_entry(self, harness: Harness) -> None:
        target = _pick(harness)
        where = harness.corrupt(target)
        source = harness.source()
        with pytest.raises(SourceDataError) as info:
            _pull(source, PullRequest(harness.first_day, None))
        message = str(info.value)
        assert source.name in message
        assert where in message
        assert "\n" not in message


def iter_entries(source: TrackerSource, spent_from: date) -> Iterator[SourceEntry]:
    """A convenience for harnesses and tests."""
    return source.pull(PullRequest(spent_from, None))
