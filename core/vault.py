"""Encryption at rest: stored tokens and secrets are Fernet tokens, under a key kept outside
the database (env ``HOURBRIDGE_SECRET_KEY``, or a key file readable by its owner only).

Without the key nothing is read or written. A wrong key is noticed before anything is written:
every write first decrypts a value already stored (if any), so one database never mixes keys.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.errors import ConfigError
from core.tables import OAuthConnectionRow, StoredSecretRow

KEY_ENV = "HOURBRIDGE_SECRET_KEY"
KEY_FILE_ENV = "HOURBRIDGE_SECRET_KEY_FILE"


class SecretKeyError(ConfigError):
    """The encryption key is missing, unreadable, badly protected or not the right one."""


def load_key(key_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Fernet:
    """The Fernet key from ``key_file``, else env HOURBRIDGE_SECRET_KEY_FILE, else env
    HOURBRIDGE_SECRET_KEY. Raises SecretKeyError with one line naming what to do."""
    env = os.environ if environ is None else environ
    if key_file is None and env.get(KEY_FILE_ENV):
        key_file = Path(env[KEY_FILE_ENV])
    if key_file is not None:
        try:
            mode = key_file.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise SecretKeyError(
                    f"{key_file}: the key file is readable by others (mode "
                    f"{stat.S_IMODE(mode):o}); refusing it: chmod 600 {key_file}"
                )
            text = key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretKeyError(
                f"{key_file}: cannot read the key file: {exc.strerror or exc}"
            ) from None
        where = str(key_file)
    elif env.get(KEY_ENV):
        text, where = env[KEY_ENV].strip(), KEY_ENV
    else:
        raise SecretKeyError(
            f"no encryption key for stored tokens and secrets: set {KEY_ENV} or "
            "secrets.key_file in the config (make one with `hourbridge secrets keygen`)"
        )
    try:
        return Fernet(text.encode())
    except ValueError:
        raise SecretKeyError(
            f"{where}: not a valid encryption key (a Fernet key: 32 url-safe base64 bytes; "
            "make one with `hourbridge secrets keygen`)"
        ) from None


def new_key() -> str:
    return Fernet.generate_key().decode()


class Vault:
    """Encrypts and decrypts with one key; checks it against what the database holds."""

    def __init__(self, engine: Engine, fernet: Fernet) -> None:
        self.engine = engine
        self._fernet = fernet

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str, what: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                f"{what} cannot be decrypted: the encryption key is not the one it was stored with"
            ) from None

    def check_key(self, session: Session) -> None:
        """Raise SecretKeyError unless the key decrypts a value already stored (if any)."""
        row = session.exec(select(OAuthConnectionRow).limit(1)).first()
        if row is not None:
            self.decrypt(row.token_set, f"the stored tokens of connection {row.name!r}")
            return
        secret = session.exec(select(StoredSecretRow).limit(1)).first()
        if secret is not None:
            self.decrypt(secret.value, f"the stored secret {secret.name!r}")

    # -- named secrets (${secret:NAME}) ---------------------------------------------------

    def set_secret(self, name: str, value: str) -> None:
        with Session(self.engine) as session:
            self.check_key(session)
            row = session.get(StoredSecretRow, name) or StoredSecretRow(
                name=name, value="", updated_at=datetime.now(UTC)
            )
            row.value = self.encrypt(value)
            row.updated_at = datetime.now(UTC)
            session.add(row)
            session.commit()

    def get_secret(self, name: str) -> str | None:
        with Session(self.engine) as session:
            row = session.get(StoredSecretRow, name)
        return None if row is None else self.decrypt(row.value, f"the stored secret {name!r}")

    def secret_names(self) -> list[str]:
        with Session(self.engine) as session:
            return list(
                session.exec(select(StoredSecretRow.name).order_by(col(StoredSecretRow.name)))
            )

    def delete_secret(self, name: str) -> bool:
        with Session(self.engine) as session:
            row = session.get(StoredSecretRow, name)
            if row is None:
                return False
            session.delete(row)
            session.commit()
        return True
