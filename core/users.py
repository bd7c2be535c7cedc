"""Console users: names, roles and argon2id password hashes (argon2-cffi), in the database.

``hourbridge users add`` writes them; the web console checks sign-ins against them. A
password is never stored, logged or shown: only its hash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.tables import UserRow

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10
_HASHER = PasswordHasher()
# Verified against when the name is unknown, so a sign-in takes as long either way.
_DUMMY = _HASHER.hash("not a password of anyone")


class Role(StrEnum):
    VIEWER = "viewer"  # can look
    FINANCE = "finance"  # can also edit mappings, approve pushes, retry runs, remove connections


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    @property
    def can_edit(self) -> bool:
        return self.role is Role.FINANCE


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ValueError(
            f"user name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-', starting "
            "with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must be at least {MIN_PASSWORD} characters")
    return password


def add(engine: Engine, name: str, role: Role, password: str, *, now: datetime) -> bool:
    """Create the user, or replace an existing one's role and password. True if new."""
    check_name(name)
    check_password(password)
    with Session(engine) as session:
        row = session.get(UserRow, name)
        new = row is None
        if row is None:
            row = UserRow(name=name, role=role.value, password_hash="", created_at=now)
        row.role = role.value
        row.password_hash = _HASHER.hash(password)
        session.add(row)
        session.commit()
    return new


def remove(engine: Engine, name: str) -> bool:
    with Session(engine) as session:
        row = session.get(UserRow, name)
        if row is None:
            return False
        session.delete(row)
        session.commit()
    return True


def listed(engine: Engine) -> list[User]:
    with Session(engine) as session:
        rows = session.exec(select(UserRow).order_by(col(UserRow.name))).all()
    return [User(r.name, Role(r.role)) for r in rows]


def authenticate(engine: Engine, name: str, password: str) -> User | None:
    """The user if the password is theirs, else None (same work for an unknown name)."""
    with Session(engine) as session:
        row = session.get(UserRow, name) if NAME.match(name) else None
    stored = row.password_hash if row is not None else _DUMMY
    try:
        _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    return User(row.name, Role(row.role))


def get(engine: Engine, name: str) -> User | None:
    with Session(engine) as session:
        row = session.get(UserRow, name)
    return None if row is None else User(row.name, Role(row.role))
