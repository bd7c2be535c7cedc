"""The mapping store: versioned mapping documents per profile, in the database.

A profile's mapping has one source of truth. If the config gives ``profiles.P.mapping``, the
config is it; otherwise it is the latest version stored here (written by
``hourbridge mappings import`` or ``mappings suggest --apply``). Every version is kept, with
who wrote it, when and why. Rules are keyed by the trackers' stable ids and name the target's
stable ids, so renaming a client or a contact never loses its mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import func
from sqlmodel import Session, col, select

from core.config import LoadedConfig, ProfileConfig
from core.errors import ConfigError, HourbridgeError
from core.tables import MappingVersionRow
from mapping.documents import diff
from mapping.rules import MappingRules


class StoredMappingError(HourbridgeError):
    """A stored mapping version no longer validates (the rules' schema changed under it)."""


@dataclass(frozen=True)
class StoredMapping:
    profile: str
    version: int
    rules: MappingRules
    author: str
    note: str | None
    created_at: datetime


def in_config(profile: ProfileConfig) -> bool:
    """Whether the config file holds this profile's mapping (then the store is not used)."""
    return "mapping" in profile.model_fields_set


def config_owned_error(loaded: LoadedConfig, profile: str) -> ConfigError:
    return ConfigError(
        f"{loaded.path}: profiles.{profile}.mapping: this profile's mapping lives in the config "
        "file; edit it there, or remove that key to keep the mapping in the database"
    )


def no_mapping_message(profile: str) -> str:
    return (
        f"profile {profile!r} has no mapping yet (none in the config, none stored): run "
        f"`hourbridge mappings import --profile {profile} FILE`, or start from "
        f"`hourbridge mappings suggest --profile {profile}`"
    )


def _stored(row: MappingVersionRow) -> StoredMapping:
    try:
        rules = MappingRules.model_validate_json(row.rules)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise StoredMappingError(
            f"stored mapping version {row.version} of profile {row.profile!r} no longer "
            f"validates: {where}: {first['msg']}; import a corrected one with "
            f"`hourbridge mappings import`"
        ) from None
    return StoredMapping(
        profile=row.profile,
        version=row.version,
        rules=rules,
        author=row.author,
        note=row.note,
        created_at=row.created_at,
    )


def current(session: Session, profile: str) -> StoredMapping | None:
    """The latest stored version of the profile's mapping, if any."""
    row = session.exec(
        select(MappingVersionRow)
        .where(MappingVersionRow.profile == profile)
        .order_by(col(MappingVersionRow.version).desc())
        .limit(1)
    ).first()
    return None if row is None else _stored(row)


def version(session: Session, profile: str, number: int) -> StoredMapping | None:
    row = session.exec(
        select(MappingVersionRow).where(
            MappingVersionRow.profile == profile, MappingVersionRow.version == number
        )
    ).first()
    return None if row is None else _stored(row)


def history(session: Session, profile: str) -> list[MappingVersionRow]:
    """Every version's row, newest first (rules left as stored JSON)."""
    return list(
        session.exec(
            select(MappingVersionRow)
            .where(MappingVersionRow.profile == profile)
            .order_by(col(MappingVersionRow.version).desc())
        )
    )


def save(
    session: Session,
    profile: str,
    rules: MappingRules,
    *,
    author: str,
    note: str | None,
    now: datetime,
) -> StoredMapping | None:
    """Add ``rules`` as the profile's next version; None if it equals the current one.

    The caller commits. Two writers racing for the same version number are stopped by the
    (profile, version) unique constraint: the second one fails and stores nothing.
    """
    latest = current(session, profile)
    if latest is not None and diff(latest.rules, rules).empty:
        return None
    top = session.exec(
        select(func.max(MappingVersionRow.version)).where(MappingVersionRow.profile == profile)
    ).one()
    row = MappingVersionRow(
        profile=profile,
        version=(top or 0) + 1,
        rules=rules.model_dump_json(exclude_defaults=True, by_alias=True),
        author=author[:128],
        note=note,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return _stored(row)
