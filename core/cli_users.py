"""``hourbridge users``: who may sign in to the web console, and with which role."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from core import users
from core.cliutil import EXIT_FAILED, ConfigOpt, database, fail, load, out

users_app = typer.Typer(
    help="Web console users: add (or reset), list, remove.", no_args_is_help=True
)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    config: ConfigOpt,
    role: Annotated[
        users.Role, typer.Option("--role", help="viewer: can look; finance: can also change.")
    ] = users.Role.VIEWER,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from stdin's first line."),
    ] = False,
) -> None:
    """Add a console user, or set an existing one's role and password. The password is asked
    for (twice) unless --password-stdin; only its argon2 hash is stored."""
    loaded = load(config)
    try:
        users.check_name(name)
        password = users.check_password(_read_password(password_stdin))
    except ValueError as exc:
        raise fail(str(exc)) from None
    engine = database(loaded)
    new = users.add(engine, name, role, password, now=datetime.now(UTC))
    out.print(f"{'added' if new else 'updated'} user {name} ({role.value})", highlight=False)


@users_app.command("list")
def users_list(config: ConfigOpt) -> None:
    """Every console user and their role."""
    engine = database(load(config))
    found = users.listed(engine)
    for user in found:
        out.print(f"{user.name}\t{user.role.value}", highlight=False)
    if not found:
        out.print("no users yet: add one with `hourbridge users add NAME --role finance`")


@users_app.command("remove")
def users_remove(
    name: Annotated[str, typer.Argument(help="Sign-in name.")], config: ConfigOpt
) -> None:
    """Remove a console user (their open sessions stop working at the next request)."""
    engine = database(load(config))
    if not users.remove(engine, name):
        raise fail(f"no user named {name!r}", EXIT_FAILED)
    out.print(f"removed user {name}", highlight=False)
