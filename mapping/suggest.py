"""Fuzzy name matching for mapping suggestions (rapidfuzz).

Names only ever *suggest*: what a person confirms is stored as the target's stable id.
Names are compared after normalisation: case, accents, punctuation and legal suffixes
(Ltd, Limited, LLC, Inc, Pty, GmbH, ApS, ...) don't count.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

# Trailing words that say what kind of company it is, not which one.
LEGAL_SUFFIXES = frozenset(
    {
        "ab", "ag", "aps", "as", "bv", "co", "company", "corp", "corporation", "gmbh", "inc",
        "incorporated", "kg", "kk", "limited", "llc", "llp", "lp", "ltd", "nv", "oy", "plc",
        "pte", "pty", "sa", "sarl", "sas", "spa", "srl",
    }
)  # fmt: skip
# Letters NFKD does not take apart.
_FOLD = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ß": "ss", "đ": "d", "ł": "l", "þ": "th"})
_JOINERS = re.compile(r"['’`´.]")  # Hawke's → hawkes, S.A. → sa
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise(name: str) -> str:
    """Lower case, no accents, punctuation as spaces, ``&`` as "and", no legal suffixes."""
    text = unicodedata.normalize("NFKD", name.casefold().translate(_FOLD))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _JOINERS.sub("", text.replace("&", " and "))
    words = _NON_WORD.sub(" ", text).split()
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


@dataclass(frozen=True)
class Candidate:
    """Something in the target a source entity could map to: its stable id and its names."""

    id: str
    names: tuple[str, ...]
    label: str  # how to show it


@dataclass(frozen=True)
class Match:
    candidate: Candidate
    score: float  # 0..100; 100: the names are equal once normalised


def score(a: str, b: str) -> float:
    """Similarity of two names, 0..100, after normalisation (word order does not matter)."""
    na, nb = normalise(a), normalise(b)
    if not na or not nb:
        return 0.0
    return 100.0 if na == nb else float(fuzz.token_sort_ratio(na, nb))


class Matcher:
    """Candidates indexed once; each query is scored against all of their names."""

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        self._owners: list[Candidate] = []
        self._names: list[str] = []
        for candidate in candidates:
            for name in candidate.names:
                normal = normalise(name)
                if normal:
                    self._owners.append(candidate)
                    self._names.append(normal)

    def best(self, name: str, *, min_score: float, limit: int = 3) -> Sequence[Match]:
        """The best-scoring candidates at or above ``min_score``, best first (each once)."""
        query = normalise(name)
        if not query or not self._names:
            return []
        found = process.extract(
            query,
            self._names,
            scorer=fuzz.token_sort_ratio,
            processor=None,
            score_cutoff=min_score,
            limit=None,
        )
        by_id: dict[str, Match] = {}
        for _text, value, index in found:
            owner = self._owners[index]
            exact = self._names[index] == query
            match = Match(owner, 100.0 if exact else float(value))
            if owner.id not in by_id or by_id[owner.id].score < match.score:
                by_id[owner.id] = match
        ranked = sorted(by_id.values(), key=lambda m: (-m.score, m.candidate.label))
        return ranked[:limit]
