"""The contracts connectors implement. Trackers produce canonical entries; targets take plans."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from core.model import SourceEntry


@dataclass(frozen=True)
class PullRequest:
    """What to pull: entries spent on or after ``spent_from``, changed since ``updated_since``."""

    spent_from: date
    updated_since: datetime | None


class TrackerSource(Protocol):
    """A time tracker. ``pull`` yields every entry matching the request, paging to the end."""

    name: str

    def pull(self, request: PullRequest) -> Iterator[SourceEntry]: ...
