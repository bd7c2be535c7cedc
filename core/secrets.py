"""Secrets come only through ``${ENV_VAR}`` references, are substituted once, and are scrubbed.

``substitute`` walks the raw YAML tree before validation: it refuses literal values under
secret-looking keys, and replaces every ``${NAME}`` with the environment's value, naming the
key path when a variable is missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SECRET_KEYS = frozenset(
    {
        "access_token",
        "api_token",
        "api_key",
        "client_secret",
        "refresh_token",
        "password",
        "webhook_url",
    }
)


class SecretRefError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def substitute(tree: Any, environ: Mapping[str, str], secrets: set[str], path: str = "") -> Any:
    """Return a copy of ``tree`` with env references resolved; collect secret values."""
    if isinstance(tree, dict):
        out: dict[Any, Any] = {}
        for key, value in tree.items():
            sub = _join(path, key)
            if key in SECRET_KEYS:
                _require_reference(sub, value)
            elif key == "url" and isinstance(value, str):
                _refuse_literal_password(sub, value)
            resolved = substitute(value, environ, secrets, sub)
            if key in SECRET_KEYS and isinstance(resolved, str):
                secrets.add(resolved)
                if key == "webhook_url":  # errors quote the path alone: it holds the secret
                    parts = urlsplit(resolved)
                    secrets.add(parts.path + (f"?{parts.query}" if parts.query else ""))
            out[key] = resolved
        return out
    if isinstance(tree, list):
        return [substitute(v, environ, secrets, f"{path}[{i}]") for i, v in enumerate(tree)]
    if isinstance(tree, str):
        return _expand(path, tree, environ, secrets)
    return tree


def _expand(path: str, text: str, environ: Mapping[str, str], secrets: set[str]) -> str:
    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise SecretRefError(path, f"environment variable {name} is not set")
        value = environ[name]
        if value == "":
            raise SecretRefError(path, f"environment variable {name} is empty")
        return value

    return ENV_REF.sub(repl, text)


def _require_reference(path: str, value: object) -> None:
    if not (isinstance(value, str) and ENV_REF.fullmatch(value.strip())):
        raise SecretRefError(
            path,
            "literal secrets are refused; write a reference such as ${MY_SECRET} "
            "and set that environment variable",
        )


def _refuse_literal_password(path: str, url: str) -> None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # the URL's own validator reports malformed URLs
    password = parsed.password
    if password is not None and not ENV_REF.fullmatch(str(password)):
        raise SecretRefError(path, "the URL holds a literal password; use ${DB_PASSWORD}")
