"""Rate resolution: the most specific rate rule in force on an entry's spent date wins.

Levels, most specific first: entry, project+task+user, project+user, project+task, project,
client+user, client, user, the profile default (a rule naming no id), then the tracker's own
rate when ``trust_tracker_rate`` allows it. Each id in a rule may be bare ("14000001") or
qualified by its source ("harvest:14000001"); within a level, a rule qualifying more ids wins.
Dates are inclusive and compare with the entry's spent date, which is already the
organisation's local date. Rules of one level and key never overlap (the config refuses it),
so at most one rule per key is in force on any day.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import product

from core.model import SourceEntry
from mapping.rules import RATE_LEVELS, MappingRules, RateRule


@dataclass(frozen=True, slots=True)
class RateChoice:
    """A rate and why: the rule that gave it, for people ("rates[2]: project+user …")."""

    rate: Decimal
    rule: str


@dataclass(frozen=True, slots=True)
class _Dated:
    start: date
    end: date
    choice: RateChoice


def _ids(entry: SourceEntry, name: str) -> str:
    if name == "entry":
        return entry.source_id
    ref = getattr(entry, name)
    return str(ref.id)


class RateBook:
    """Every rate rule of a profile, indexed by (level, ids as written) for quick look-ups."""

    def __init__(self, rules: MappingRules) -> None:
        self._trust_tracker = rules.trust_tracker_rate
        self._index: dict[tuple[tuple[str, ...], tuple[str, ...]], list[_Dated]] = defaultdict(list)
        for where, rule in rules.rate_rules():
            self._index[(rule.level_ids, rule.values)].append(
                _Dated(
                    rule.from_ or date.min,
                    rule.until or date.max,
                    RateChoice(rule.rate, _name(where, rule)),
                )
            )

    def rate_for(self, entry: SourceEntry) -> RateChoice | None:
        """The rate of a time entry on its spent date, or None when nothing gives one."""
        for level in RATE_LEVELS:
            for values in _candidates(entry, level):
                for dated in self._index.get((level, values), ()):
                    if dated.start <= entry.spent_date <= dated.end:
                        return dated.choice
        if self._trust_tracker and entry.unit_price is not None:
            return RateChoice(entry.unit_price, "tracker rate")
        return None


def _name(where: str, rule: RateRule) -> str:
    """How the plan and `preview --explain` name a rule. The client and project ``rate``
    fields keep their short names ("project 14000001")."""
    if where.startswith(("clients.", "projects.")):
        return rule.describe()
    return f"{where}: {rule.describe()}"


def _candidates(entry: SourceEntry, level: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The keys a rule of ``level`` may be written with for this entry: qualified ids first."""
    options = []
    for name in level:
        bare = _ids(entry, name)
        options.append((f"{entry.source}:{bare}", bare))
    keys = list(product(*options))
    # more qualified ids first; product() keeps a stable order among equals
    return sorted(keys, key=lambda key: -sum(1 for v in key if v.startswith(entry.source + ":")))
