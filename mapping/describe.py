"""Line descriptions from templates, cut to what the target takes without breaking anything.

A template names fields in braces ({client}, {project}, {task}, {user}, {date_range},
{notes}); mapping.rules checks the names when the config loads. A field left empty can leave
a dangling separator at the end ("Design: "), which is trimmed. When the text is longer than
the target allows, the notes are cut first, at a word boundary, and marked with "…"; if that
is not enough, the whole text is cut the same way.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping

ELLIPSIS = "…"
_DANGLING = re.compile(r"[\s:;,·–-]+$")


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: cut at the last word boundary that fits,
    with "…" appended. A single word longer than the room is cut inside the word."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    room = text[: limit - 1]
    boundary = max(room.rfind(" "), room.rfind("\n"), room.rfind("\t"))
    if boundary > 0 and text[limit - 1] not in " \n\t":
        room = room[:boundary]
    return room.rstrip() + ELLIPSIS


def _uses(template: str, name: str) -> int:
    return sum(1 for _t, field, _s, _c in string.Formatter().parse(template) if field == name)


def _fill(template: str, fields: Mapping[str, str]) -> str:
    return _DANGLING.sub("", template.format_map(fields)).strip()


def render(template: str, fields: Mapping[str, str], limit: int | None) -> str:
    """The template filled in, never longer than ``limit`` characters (None: no limit)."""
    text = _fill(template, fields) or fields.get("task", "") or "Professional services"
    if limit is None or len(text) <= limit:
        return text
    notes, uses = fields.get("notes", ""), _uses(template, "notes")
    if notes and uses:
        keep = len(notes) - math.ceil((len(text) - limit) / uses)
        if keep > 0:
            shorter = _fill(template, {**fields, "notes": cut(notes, keep)})
            if shorter and len(shorter) <= limit:
                return shorter
    return cut(text, limit)
