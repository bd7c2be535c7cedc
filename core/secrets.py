"""Secrets come only through references, are substituted once, and are scrubbed.

``substitute`` walks the raw YAML tree before validation: it refuses literal values under
secret-looking keys, and replaces every reference, naming the key path when one cannot be
resolved. References:

* ``${NAME}``: the environment variable NAME;
* ``${file:/run/secrets/x}``: the file's content, without its trailing newline (a relative
  path is relative to the config file);
* ``${secret:NAME}``: a secret stored encrypted with ``hourbridge secrets set NAME``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

REF = re.compile(r"\$\{(?:(?P<kind>file|secret):(?P<arg>[^}]+)|(?P<env>[A-Za-z_][A-Za-z0-9_]*))\}")
ENV_REF = REF  # kept for callers that check "is this a reference"
SECRET_KEYS = frozenset(
    {
        "access_token",
        "api_token",
        "api_key",
        "client_secret",
        "refresh_token",
        "password",
        "session_secret",
        "webhook_url",
    }
)


class SecretRefError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Resolvers:
    """Where ``${file:}`` paths are relative to, and how ``${secret:NAME}`` is looked up
    (None: stored secrets are not available here; the lookup raises LookupError when the
    store cannot be read)."""

    base_dir: Path | None = None
    stored: Callable[[str], str | None] | None = None
    keep_stored: bool = False  # without a lookup: leave ${secret:NAME} as written


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def substitute(
    tree: Any,
    environ: Mapping[str, str],
    secrets: set[str],
    path: str = "",
    resolvers: Resolvers | None = None,
) -> Any:
    """Return a copy of ``tree`` with references resolved; collect secret values."""
    how = resolvers or Resolvers()
    if isinstance(tree, dict):
        out: dict[Any, Any] = {}
        for key, value in tree.items():
            sub = _join(path, key)
            if key in SECRET_KEYS:
                _require_reference(sub, value)
            elif key == "url" and isinstance(value, str):
                _refuse_literal_password(sub, value)
            resolved = substitute(value, environ, secrets, sub, how)
            if key in SECRET_KEYS and isinstance(resolved, str):
                secrets.add(resolved)
                if key == "webhook_url":  # errors quote the path alone: it holds the secret
                    parts = urlsplit(resolved)
                    secrets.add(parts.path + (f"?{parts.query}" if parts.query else ""))
            out[key] = resolved
        return out
    if isinstance(tree, list):
        return [substitute(v, environ, secrets, f"{path}[{i}]", how) for i, v in enumerate(tree)]
    if isinstance(tree, str):
        return _expand(path, tree, environ, secrets, how)
    return tree


def _expand(
    path: str, text: str, environ: Mapping[str, str], secrets: set[str], how: Resolvers
) -> str:
    def repl(match: re.Match[str]) -> str:
        kind, arg, name = match.group("kind"), match.group("arg"), match.group("env")
        if kind == "file":
            value = _read_file(path, arg, how.base_dir)
        elif kind == "secret":
            if how.stored is None and how.keep_stored:
                return match.group(0)
            value = _stored(path, arg, how)
        else:
            if name not in environ:
                raise SecretRefError(path, f"environment variable {name} is not set")
            value = environ[name]
            if value == "":
                raise SecretRefError(path, f"environment variable {name} is empty")
            return value
        secrets.add(value)  # file and stored values are secrets wherever they are used
        return value

    return REF.sub(repl, text)


def _read_file(path: str, name: str, base_dir: Path | None) -> str:
    file = Path(name).expanduser()
    if not file.is_absolute() and base_dir is not None:
        file = base_dir / file
    try:
        value = file.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise SecretRefError(
            path, f"cannot read secret file {file}: {exc.strerror or exc}"
        ) from None
    if not value:
        raise SecretRefError(path, f"secret file {file} is empty")
    return value


def _stored(path: str, name: str, how: Resolvers) -> str:
    if how.stored is None:
        raise SecretRefError(path, f"${{secret:{name}}} cannot be used here")
    try:
        value = how.stored(name)
    except LookupError as exc:
        raise SecretRefError(path, f"${{secret:{name}}}: {exc}") from None
    if value is None:
        raise SecretRefError(
            path, f"no stored secret {name!r}; store it with `hourbridge secrets set {name}`"
        )
    return value


def _require_reference(path: str, value: object) -> None:
    if not (isinstance(value, str) and REF.fullmatch(value.strip())):
        raise SecretRefError(
            path,
            "literal secrets are refused; write a reference such as ${MY_SECRET}, "
            "${file:/run/secrets/my_secret} or ${secret:my_secret}",
        )


def _refuse_literal_password(path: str, url: str) -> None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # the URL's own validator reports malformed URLs
    password = parsed.password
    if password is not None and not REF.fullmatch(str(password)):
        raise SecretRefError(path, "the URL holds a literal password; use ${DB_PASSWORD}")
