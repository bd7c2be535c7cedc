"""Consents under way in the console, in this process's memory only.

Between the redirect to the provider and its answer, the console keeps the consent (its
``state`` and PKCE verifier) here, keyed by the state, which the user's signed session also
holds; between the answer and the choice of an organisation, it keeps the granted token set,
keyed by a random key the session holds. Neither ever reaches a cookie, a page, a log or the
database; both expire after ``LIFETIME`` and a restart forgets them (the person connects
again). The console runs as one process, so one dictionary is enough.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.connect import Consent, Granted

LIFETIME = timedelta(minutes=10)  # as long as the providers' codes last


@dataclass
class Waiting:
    """A consent sent to the provider, waiting for its answer."""

    user: str
    consent: Consent
    started: datetime
    # the redirect's query, kept here when it arrived without the session cookie
    answer: str | None = field(default=None, repr=False)


@dataclass
class Picking:
    """A granted consent reaching several organisations, waiting for the user's choice."""

    user: str
    granted: Granted
    started: datetime


class Consents:
    def __init__(self, lifetime: timedelta = LIFETIME) -> None:
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._waiting: dict[str, Waiting] = {}
        self._picking: dict[str, Picking] = {}

    def expired(self, started: datetime, now: datetime) -> bool:
        return now - started > self.lifetime

    def _forget_old(self, now: datetime) -> None:
        for key in [k for k, w in self._waiting.items() if self.expired(w.started, now)]:
            del self._waiting[key]
        for key in [k for k, p in self._picking.items() if self.expired(p.started, now)]:
            del self._picking[key]

    def wait(self, user: str, consent: Consent, now: datetime) -> None:
        with self._lock:
            self._forget_old(now)
            self._waiting[consent.state] = Waiting(user, consent, now)

    def answered(self, state: str, answer: str) -> bool:
        """Keep the redirect's query with the consent whose state it names (the first answer
        only). False when no such consent waits."""
        with self._lock:
            found = self._waiting.get(state)
            if found is None or found.answer is not None:
                return False
            found.answer = answer
            return True

    def take(self, state: str) -> Waiting | None:
        """The consent (once: it is forgotten here), expired or not; None if none waits."""
        with self._lock:
            return self._waiting.pop(state, None)

    def pick(self, user: str, granted: Granted, now: datetime) -> str:
        """Keep a granted consent until the user picks an organisation; the key to it."""
        key = secrets.token_urlsafe(24)
        with self._lock:
            self._forget_old(now)
            self._picking[key] = Picking(user, granted, now)
        return key

    def picking(self, key: str) -> Picking | None:
        with self._lock:
            return self._picking.get(key)

    def picked(self, key: str) -> None:
        with self._lock:
            self._picking.pop(key, None)
