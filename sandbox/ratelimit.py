"""Rate limits the fakes enforce, as the real providers document them.

A sliding window counts requests per key (tenant, account) over a period; a
concurrency gate counts requests in flight. Both take an injectable clock so
tests can move time instead of sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass
class SlidingWindow:
    """At most ``limit`` requests per ``period`` seconds for each key."""

    limit: int
    period: float
    clock: Clock = time.monotonic
    _hits: dict[str, deque[float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def acquire(self, key: str) -> int | None:
        """Record a request. Returns None if allowed, else seconds to wait (>= 1)."""
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.period:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.period - now))
            hits.append(now)
            return None

    def remaining(self, key: str) -> int:
        now = self.clock()
        with self._lock:
            hits = self._hits.get(key, deque())
            live = sum(1 for t in hits if t > now - self.period)
            return max(0, self.limit - live)


@dataclass
class ConcurrencyGate:
    """At most ``limit`` requests in flight for each key."""

    limit: int
    _inflight: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def enter(self, key: str) -> bool:
        with self._lock:
            n = self._inflight.get(key, 0)
            if n >= self.limit:
                return False
            self._inflight[key] = n + 1
            return True

    def leave(self, key: str) -> None:
        with self._lock:
            self._inflight[key] = max(0, self._inflight.get(key, 0) - 1)
