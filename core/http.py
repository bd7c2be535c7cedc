"""One HTTP policy for every connector.

A table maps each status to an action (retry, wait for the rate limit, stop on auth, fail);
tenacity does the retrying, honouring Retry-After, with sleep injectable so tests never wait.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
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
            retry=tenacity.retry_if_exception_type(TransientError),
            wait=_WaitRetryAfter(
                tenacity.wait_exponential_jitter(initial=self.initial_wait, max=self.max_wait),
                cap=self.max_wait,
            ),
            stop=tenacity.stop_after_attempt(self.max_attempts),
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )


@dataclass
class RateBudget:
    """At most ``calls`` per ``period`` seconds, enforced before each call by waiting.

    A provider's documented limit (Harvest 100 per 15 s, Xero 60 per minute, QuickBooks 500
    per minute) becomes a wait on our side instead of a 429 on theirs. Clock and sleep are
    injectable so tests never really wait.
    """

    calls: int
    period: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _sent: deque[float] = field(default_factory=deque, repr=False)
    _offset: float = field(default=0.0, repr=False)

    def _now(self) -> float:
        return self.clock() + self._offset

    def acquire(self) -> float:
        """Wait until a call is allowed, record it, and return how long we waited."""
        waited = 0.0
        while True:
            now = self._now()
            while self._sent and self._sent[0] <= now - self.period:
                self._sent.popleft()
            if len(self._sent) < self.calls:
                self._sent.append(now)
                return waited
            pause = self._sent[0] + self.period - now
            self.sleep(pause)
            # An injected sleep that doesn't move the clock still counts as time passed.
            self._offset += max(0.0, pause - (self._now() - now))
            waited += pause

    def observe_remaining(self, remaining: int) -> None:
        """Align with what the provider says is left in this window (X-MinLimit-Remaining):
        calls made by other processes or apps on the same account count against us too."""
        now = self._now()
        while self._sent and self._sent[0] <= now - self.period:
            self._sent.popleft()
        unseen = (self.calls - len(self._sent)) - max(0, remaining)
        for _ in range(max(0, unseen)):
            self._sent.append(now)


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
    "CallCounter",
    "RetryPolicy",
    "StaticBearer",
    "TerminalError",
    "classify",
    "raise_for",
    "retry_after_seconds",
]
