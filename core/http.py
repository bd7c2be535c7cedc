"""One HTTP policy for every connector.

A table maps each status to an action (retry, wait for the rate limit, stop on auth, fail);
tenacity does the retrying, honouring Retry-After, with sleep injectable so tests never wait.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Protocol

import tenacity

from core.errors import AuthError, TerminalError, TransientError


class Action(StrEnum):
    OK = "ok"
    RETRY = "retry"  # transient: 5xx, timeouts, resets
    RATE_LIMIT = "rate_limit"  # wait for Retry-After, then retry
    AUTH = "auth"  # credentials refused: stop, a person must act
    FAIL = "fail"  # the request itself is wrong: stop


STATUS_ACTIONS: Mapping[int, Action] = {
    401: Action.AUTH,
    403: Action.AUTH,
    408: Action.RETRY,
    429: Action.RATE_LIMIT,
    500: Action.RETRY,
    502: Action.RETRY,
    503: Action.RETRY,
    504: Action.RETRY,
}


def classify(status: int) -> Action:
    if status < 400:
        return Action.OK
    if status in STATUS_ACTIONS:
        return STATUS_ACTIONS[status]
    return Action.RETRY if status >= 500 else Action.FAIL


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Parse Retry-After: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def raise_for(service: str, status: int, retry_after: str | None, detail: str) -> None:
    """Turn a non-2xx answer into the error its action calls for."""
    action = classify(status)
    if action is Action.OK:
        return
    if action is Action.AUTH:
        raise AuthError(f"{service}: HTTP {status}: credentials refused: {detail}")
    if action in (Action.RETRY, Action.RATE_LIMIT):
        raise TransientError(
            f"{service}: HTTP {status}: {detail}", retry_after_seconds(retry_after)
        )
    raise TerminalError(f"{service}: HTTP {status}: {detail}")


class _WaitRetryAfter(tenacity.wait.wait_base):
    """Wait what the server asked for; otherwise exponential backoff with jitter."""

    def __init__(self, fallback: tenacity.wait.wait_base, cap: float) -> None:
        self._fallback = fallback
        self._cap = cap

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return min(exc.retry_after, self._cap)
        return float(self._fallback(retry_state))


@dataclass
class RetryPolicy:
    max_attempts: int = 5
    initial_wait: float = 1.0
    max_wait: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    on_retry: Callable[[BaseException, float], None] | None = None

    def retrying(self) -> tenacity.Retrying:
        def before_sleep(state: tenacity.RetryCallState) -> None:
            if self.on_retry is not None and state.outcome is not None and state.next_action:
                exc = state.outcome.exception()
                if exc is not None:
                    self.on_retry(exc, state.next_action.sleep)

        return tenacity.Retrying(
            # a budget used up for longer than we wait is not retried: the run stops there
            retry=tenacity.retry_if_exception_type(TransientError)
            & tenacity.retry_if_not_exception_type(BudgetExhaustedError),
            wait=_WaitRetryAfter(
                tenacity.wait_exponential_jitter(initial=self.initial_wait, max=self.max_wait),
                cap=self.max_wait,
            ),
            stop=tenacity.stop_after_attempt(self.max_attempts),
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )


class BudgetExhaustedError(TransientError):
    """A call budget has no room for longer than its owner waits (Xero's day quota, Toggl's
    hourly quota): the run stops with when to come back instead of sleeping for hours, and the
    retry policy does not retry it."""


def _span(seconds: float) -> str:
    names = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}
    return names.get(float(seconds), f"{seconds:g} s")


@dataclass(frozen=True)
class Limit:
    """One documented limit of a provider: at most ``calls`` per ``seconds`` for an account.

    ``window`` names it as the limit headers do ("minute", "day"), so what the provider says
    is left can be applied to the right budget.
    """

    calls: int
    seconds: float
    window: str

    def __post_init__(self) -> None:
        if self.calls < 1 or self.seconds <= 0:
            raise ValueError(f"a limit needs calls >= 1 and seconds > 0, not {self}")


@dataclass
class RateBudget:
    """At most ``calls`` per ``period`` seconds, enforced before each call by waiting.

    A provider's documented limit (Harvest 100 per 15 s, Xero 60 per minute, QuickBooks 500
    per minute) becomes a wait on our side instead of a 429 on theirs. Clock and sleep are
    injectable so tests never really wait. A wait longer than ``max_wait`` (when given) is not
    slept: ``BudgetExhaustedError`` says when the budget frees up.
    """

    calls: int
    period: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    max_wait: float | None = None
    label: str = "calls"
    _sent: deque[float] = field(default_factory=deque, repr=False)
    _offset: float = field(default=0.0, repr=False)

    def _now(self) -> float:
        return self.clock() + self._offset

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.period:
            self._sent.popleft()

    def acquire(self) -> float:
        """Wait until a call is allowed, record it, and return how long we waited."""
        waited = 0.0
        while True:
            now = self._now()
            self._expire(now)
            if len(self._sent) < self.calls:
                self._sent.append(now)
                return waited
            pause = self._sent[0] + self.period - now
            if self.max_wait is not None and pause > self.max_wait:
                raise BudgetExhaustedError(
                    f"{self.label}: the call quota of {self.calls} per {_span(self.period)} is "
                    f"used up; it frees up in {pause:.0f} s: run again then",
                    retry_after=pause,
                )
            self.sleep(pause)
            # An injected sleep that doesn't move the clock still counts as time passed.
            self._offset += max(0.0, pause - (self._now() - now))
            waited += pause

    def observe_remaining(self, remaining: int, resets_in: float | None = None) -> None:
        """Align with what the provider says is left in this window (X-MinLimit-Remaining):
        calls made by other processes or apps on the same account count against us too.
        With ``resets_in`` (Toggl's X-Toggl-Quota-Resets-In), those calls leave our window
        when the provider's does; without it, a full period from now. Never loosens."""
        now = self._now()
        self._expire(now)
        unseen = (self.calls - len(self._sent)) - max(0, remaining)
        if unseen <= 0:
            return
        at = now if resets_in is None else min(now, now + max(0.0, resets_in) - self.period)
        self._sent = deque(sorted([*self._sent, *([at] * unseen)]))
        self._expire(now)


class CallBudget(Protocol):
    """Anything that makes a caller wait for room before a call (e.g. core.budgets' shared
    window); returns how long it waited."""

    def acquire(self) -> float: ...


class CallGate(Protocol):
    """At most so many calls at once (Xero's 5, QuickBooks' 10 per organisation): ``hold``
    waits for a free place and keeps it while the call is in flight."""

    def hold(self) -> AbstractContextManager[None]: ...


@dataclass
class Budget:
    """What a connector waits on before each call: a sliding ``RateBudget`` per limit (this
    process), then any shared caps (every process on the same database: core.budgets), and,
    while the call is in flight, a place under any concurrency gate."""

    local: Mapping[str, RateBudget]
    shared: Sequence[CallBudget] = ()
    gates: Sequence[CallGate] = ()

    def acquire(self) -> float:
        """Wait until every part has room; returns the total wait."""
        waited = 0.0
        for part in (*self.local.values(), *self.shared):
            waited += part.acquire()
        return waited

    @contextmanager
    def call(self) -> Iterator[float]:
        """Around one call: wait for room (``acquire``), hold a place under every gate until
        the call returns or fails; yields the wait."""
        waited = self.acquire()
        with ExitStack() as held:
            for gate in self.gates:
                held.enter_context(gate.hold())
            yield waited

    def observe(self, window: str, remaining: int, resets_in: float | None = None) -> None:
        """What the provider says is left of ``window`` (a limit header); unknown: ignored."""
        budget = self.local.get(window)
        if budget is not None:
            budget.observe_remaining(remaining, resets_in)


class BudgetFactory(Protocol):
    """Makes the budget of one provider account (``service``, ``account``: a Xero tenant, a
    QuickBooks realm, a Harvest account, a Toggl or Clockify workspace). Whoever builds the
    connectors passes one, with its own clock and sleep: not the retry policy's."""

    def __call__(
        self, service: str, account: str, limits: Sequence[Limit], *, concurrent: int | None = None
    ) -> Budget:
        """``concurrent``: at most that many calls in flight for the account at once."""
        ...


@dataclass(frozen=True)
class LocalBudgets:
    """Budgets kept in this process only: a sliding window per limit. The default where no
    database is at hand; ``core.budgets.SharedBudgets`` adds a cap shared by processes."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    max_wait: float | None = 120.0

    def __call__(
        self, service: str, account: str, limits: Sequence[Limit], *, concurrent: int | None = None
    ) -> Budget:
        # No gate: a run makes one call at a time, so one process alone never exceeds a
        # provider's concurrency limit; SharedBudgets gates what processes do together.
        return Budget(
            {
                limit.window: RateBudget(
                    limit.calls,
                    limit.seconds,
                    clock=self.clock,
                    sleep=self.sleep,
                    max_wait=self.max_wait,
                    label=f"{service} ({account})",
                )
                for limit in limits
            }
        )


# Headers in which providers report what is left of a limit, and the window each covers.
LIMIT_HEADERS: Mapping[str, str] = {
    "X-MinLimit-Remaining": "minute",
    "X-DayLimit-Remaining": "day",
    "X-AppMinLimit-Remaining": "app_minute",
}

# Message fragments that mark a transient error as a throttle (429, QuickBooks 3001, quotas).
RATE_LIMIT_MARKS = ("429", "throttl", "rate limit", "quota")


def is_rate_limit(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(mark in text for mark in RATE_LIMIT_MARKS)


class BearerTokens(Protocol):
    """Where a connector gets its bearer token: a static one, or a stored OAuth connection."""

    @property
    def tenant(self) -> str | None:
        """The organisation (Xero tenant id, QuickBooks realm id) the token is for, if known."""
        ...

    def access_token(self) -> str:
        """A token good for the next call (a stored one is refreshed shortly before expiry)."""
        ...

    def after_unauthorized(self, rejected: str) -> bool:
        """The provider answered 401 to ``rejected``: refresh if possible; True to retry."""
        ...


@dataclass(frozen=True)
class StaticBearer:
    """A bearer token from the config: never refreshed, a 401 is final."""

    token: str
    tenant: str | None = None

    def access_token(self) -> str:
        return self.token

    def after_unauthorized(self, rejected: str) -> bool:
        return False


@dataclass
class CallCounter:
    """API calls, and the retries they needed, per service, as the run report shows them."""

    counts: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    rate_limited: Counter[str] = field(default_factory=Counter)
    # what the provider's last answer said is left, per window: {"xero": {"day": 4990}}
    remaining: dict[str, dict[str, int]] = field(default_factory=dict)

    def note_limits(self, service: str, headers: Mapping[str, str]) -> dict[str, int]:
        """Record the limit headers of an answer (X-MinLimit-Remaining, X-DayLimit-Remaining,
        X-AppMinLimit-Remaining); returns what it found, by window."""
        found: dict[str, int] = {}
        for header, window in LIMIT_HEADERS.items():
            value = headers.get(header)
            if value is not None and str(value).strip().isdigit():
                found[window] = int(str(value).strip())
        if found:
            self.remaining.setdefault(service, {}).update(found)
        return found

    def add(self, service: str, n: int = 1) -> None:
        self.counts[service] += n

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))

    def counted(self, policy: RetryPolicy, service: str) -> RetryPolicy:
        """``policy``, counting each retry (and each throttled one) against ``service``."""
        inner = policy.on_retry

        def on_retry(exc: BaseException, wait: float) -> None:
            self.retries[service] += 1
            if is_rate_limit(exc):
                self.rate_limited[service] += 1
            if inner is not None:
                inner(exc, wait)

        return replace(policy, on_retry=on_retry)


__all__ = [
    "Action",
    "BearerTokens",
    "Budget",
    "BudgetExhaustedError",
    "BudgetFactory",
    "CallBudget",
    "CallCounter",
    "CallGate",
    "Limit",
    "LocalBudgets",
    "RateBudget",
    "RetryPolicy",
    "StaticBearer",
    "TerminalError",
    "classify",
    "raise_for",
    "retry_after_seconds",
]
