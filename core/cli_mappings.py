"""``hourbridge mappings export|import|history|suggest``: the mapping as finance staff keep it.

A profile's mapping lives either in the config file (``profiles.P.mapping``) or, when the
config leaves that key out, in the database's mapping store, versioned. Import and suggest
write new versions to the store; they refuse for a profile whose mapping lives in the config.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core import ledger, mapping_store, mapping_tools
from core.cliutil import (
    EXIT_FAILED,
    EXIT_OK,
    ConfigOpt,
    JsonOpt,
    PeriodOpt,
    ProfileOpt,
    database,
    err,
    fail,
    load,
    out,
    period,
    profile,
)
from core.config import LoadedConfig
from core.errors import ConfigError, HourbridgeError
from core.factory import build_profile
from core.http import CallCounter
from core.sync import SyncEngine
from mapping import documents
from mapping.rules import MappingRules

FormatOpt = Annotated[
    str | None,
    typer.Option("--format", "-f", help="yaml or csv [default: from the file name; else yaml]."),
]
AuthorOpt = Annotated[
    str | None,
    typer.Option("--author", help="Who makes this change [default: the OS user]."),
]
NoteOpt = Annotated[
    str | None, typer.Option("--note", help="Why: kept with the version in its history.")
]


def _author(given: str | None) -> str:
    if given:
        return given
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment
        return "unknown"


def _current(loaded: LoadedConfig, name: str) -> tuple[MappingRules | None, str]:
    """The profile's mapping in effect, and where it comes from (for messages)."""
    _name, cfg = profile(loaded, name)
    if mapping_store.in_config(cfg):
        return cfg.mapping, f"{loaded.path} (profiles.{name}.mapping)"
    engine = database(loaded)
    try:
        with Session(engine) as session:
            stored = mapping_store.current(session, name)
    except HourbridgeError as exc:
        raise fail(str(exc), EXIT_FAILED) from None
    if stored is None:
        return None, "the database (nothing stored yet)"
    return stored.rules, f"the database (version {stored.version} by {stored.author})"


def _store(
    loaded: LoadedConfig, name: str, rules: MappingRules, *, author: str, note: str | None
) -> mapping_store.StoredMapping | None:
    engine = database(loaded)
    try:
        with Session(engine) as session:
            saved = mapping_store.save(
                session, name, rules, author=author, note=note, now=datetime.now(UTC)
            )
            session.commit()
    except IntegrityError:
        raise fail(
            f"another change to profile {name!r}'s mapping was stored at the same moment; "
            "nothing stored: run the command again",
            EXIT_FAILED,
        ) from None
    return saved


def mappings_export(
    *,
    config: ConfigOpt,
    profile_name: ProfileOpt = None,
    fmt: FormatOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file [default: stdout].")
    ] = None,
    version: Annotated[
        int | None,
        typer.Option("--version", min=1, help="An older stored version [default: current]."),
    ] = None,
) -> None:
    """Write the profile's mapping as YAML (the whole document) or CSV (one row per rule),
    from the config or from the database, whichever holds it. Re-import it after editing."""
    loaded = load(config)
    name, cfg = profile(loaded, profile_name)
    try:
        chosen = documents.format_of(str(output or ""), fmt) if fmt or output else "yaml"
    except ValueError as exc:
        raise fail(str(exc)) from None
    if version is not None:
        if mapping_store.in_config(cfg):
            raise fail(
                f"{config}: profiles.{name}.mapping: this profile's mapping has no "
                "stored versions; it lives in the config file"
            )
        with Session(database(loaded)) as session:
            try:
                stored = mapping_store.version(session, name, version)
            except HourbridgeError as exc:
                raise fail(str(exc), EXIT_FAILED) from None
        if stored is None:
            raise fail(f"profile {name!r} has no stored mapping version {version}", EXIT_FAILED)
        rules: MappingRules | None = stored.rules
        origin = f"the database (version {stored.version} by {stored.author})"
    else:
        rules, origin = _current(loaded, name)
    if rules is None:
        raise fail(mapping_store.no_mapping_message(name), EXIT_FAILED)
    header = (
        f"hourbridge mapping of profile {name}, from {origin}\n"
        f"exported {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}; rules are keyed by the trackers' ids"
    )
    text = documents.render(rules, chosen, header)
    if output is None:
        sys.stdout.write(text)
        return
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, output)
    err.print(f"wrote {output} ({chosen}) from {origin}", highlight=False)


def mappings_import(
    file: Annotated[Path, typer.Argument(help="A YAML or CSV mapping document.")],
    *,
    config: ConfigOpt,
    profile_name: ProfileOpt = None,
    fmt: FormatOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show the changes; store nothing.")
    ] = False,
    author: AuthorOpt = None,
    note: NoteOpt = None,
) -> None:
    """Validate a mapping document and store it as the profile's next version (the whole
    mapping: keys missing from the file are removed). Prints what is added, changed and
    removed. Any error stores nothing."""
    loaded = load(config)
    name, cfg = profile(loaded, profile_name)
    if mapping_store.in_config(cfg):
        raise fail(str(mapping_store.config_owned_error(loaded, name)))
    try:
        chosen = documents.format_of(str(file), fmt)
        text = file.read_text(encoding="utf-8")
    except ValueError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{file}: cannot read: {exc.strerror or exc}") from None
    try:
        rules = documents.parse(text, chosen, str(file))
    except documents.DocumentError as exc:
        raise fail(str(exc)) from None
    if not documents.dump(rules):
        raise fail(f"{file}: the document holds no rules; nothing stored")
    before, _origin = _current(loaded, name)
    change = documents.diff(before, rules)
    out.print(f"{file}: {change.summary()}", highlight=False, soft_wrap=True)
    if dry_run:
        out.print("dry run: nothing stored", highlight=False)
        return
    who = _author(author)
    saved = _store(loaded, name, rules, author=who, note=note or f"imported from {file.name}")
    if saved is None:
        out.print("no changes: nothing stored", highlight=False)
        return
    out.print(
        f"stored version {saved.version} of profile {name}'s mapping (by {saved.author})",
        highlight=False,
    )


def mappings_history(
    config: ConfigOpt, profile_name: ProfileOpt = None, as_json: JsonOpt = False
) -> None:
    """Every stored version of the profile's mapping, newest first: who, when and why."""
    loaded = load(config)
    name, cfg = profile(loaded, profile_name)
    if mapping_store.in_config(cfg):
        out.print(
            f"profile {name}'s mapping lives in {config} (profiles.{name}.mapping); "
            "the database stores no versions of it",
            highlight=False,
        )
        return
    with Session(database(loaded)) as session:
        rows = mapping_store.history(session, name)
    if as_json:
        data = [
            {
                "version": r.version,
                "author": r.author,
                "note": r.note,
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ]
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"Mapping versions of {name}, newest first")
    for column in ("version", "author", "created", "note"):
        table.add_column(column)
    for r in rows:
        table.add_row(str(r.version), r.author, f"{r.created_at:%Y-%m-%d %H:%M:%S}", r.note or "")
    out.print(table)
    if not rows:
        out.print(mapping_store.no_mapping_message(name), highlight=False)


def mappings_suggest(
    *,
    config: ConfigOpt,
    profile_name: ProfileOpt = None,
    period_text: PeriodOpt = None,
    min_score: Annotated[
        float,
        typer.Option("--min-score", min=0, max=100, help="Hide matches scoring below this."),
    ] = 80.0,
    apply_: Annotated[
        bool,
        typer.Option("--apply", help="Store the best match of each as a new mapping version."),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm --apply without asking.")] = False,
    author: AuthorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose target contacts (for unmapped clients) and items (for unmapped tasks) by fuzzy
    name match, with scores. Pulls the period and reads the target's contacts and items once;
    writes nothing to the target. Nothing is applied without --apply and a confirmation."""
    loaded = load(config)
    name, cfg = profile(loaded, profile_name)
    billing = period(loaded, period_text)
    if apply_ and mapping_store.in_config(cfg):
        raise fail(str(mapping_store.config_owned_error(loaded, name)))
    calls = CallCounter()
    engine = database(loaded)
    try:
        built = build_profile(loaded, name, calls, engine=engine)
    except ConfigError as exc:
        raise fail(f"{config}: {exc}") from None
    sync = SyncEngine(engine, built, api_calls=calls.as_dict)
    with err.status(f"pulling {name} for {billing}…", spinner="dots"):
        report = sync.run(billing, dry_run=True)  # pulls and reads the target once
    if report.errors or sync.directory is None:
        for error in report.errors:
            err.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)
    if sync.directory.open_names:
        raise fail(f"target {built.target.name!r} has no contacts or items to match against")
    rules, _origin = _current(loaded, name)
    rules = rules or MappingRules()
    with Session(engine) as session:
        entries = [e for s in built.sources for e in ledger.load_entries(session, s.name)]
    needed = mapping_tools.wanted(
        rules, entries, sync.directory, billing, qualify=len(built.sources) > 1
    )
    suggestions = mapping_tools.suggest(needed, sync.directory, min_score=min_score)
    _show(suggestions, name, str(billing), as_json)
    if not apply_:
        return
    chosen = [(s.wanted, s.chosen) for s in suggestions if s.chosen is not None]
    if not chosen:
        out.print("nothing to apply", highlight=False)
        return
    if not yes and not typer.confirm(
        f"Store {len(chosen)} suggestion(s) as a new mapping version?", default=False
    ):
        out.print("nothing applied", highlight=False)
        raise typer.Exit(EXIT_OK)
    try:
        updated = mapping_tools.apply(rules, chosen)
    except ValueError as exc:
        raise fail(f"the suggestions do not validate: {exc}", EXIT_FAILED) from None
    saved = _store(
        loaded,
        name,
        updated,
        author=_author(author),
        note=f"mappings suggest: {len(chosen)} applied (min score {min_score:g})",
    )
    if saved is None:
        out.print("no changes: nothing stored", highlight=False)
        return
    out.print(
        f"stored version {saved.version} of profile {name}'s mapping: "
        f"{documents.diff(rules, updated).summary()}",
        highlight=False,
        soft_wrap=True,
    )


def _show(
    suggestions: list[mapping_tools.Suggestion], profile_name: str, billing: str, as_json: bool
) -> None:
    if as_json:
        data = [
            {
                "section": s.wanted.section,
                "key": s.wanted.key,
                "name": s.wanted.name,
                "why": s.wanted.why,
                "entries": s.wanted.entries,
                "hours": str(s.wanted.hours),
                "suggestions": [
                    {"id": m.candidate.id, "label": m.candidate.label, "score": round(m.score, 1)}
                    for m in s.matches
                ],
                "chosen": s.chosen.candidate.id if s.chosen else None,
            }
            for s in suggestions
        ]
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"Mapping suggestions for {profile_name} {billing}")
    for column in ("section", "key", "tracker name", "why", "hours", "suggestion", "score"):
        table.add_column(column, justify="right" if column in ("hours", "score") else "left")
    for s in suggestions:
        best = s.matches[0] if s.matches else None
        table.add_row(
            s.wanted.section,
            s.wanted.key,
            s.wanted.name,
            s.wanted.why,
            str(s.wanted.hours),
            (best.candidate.label if best else "(no match)")
            + ("" if s.chosen or not best else " (tie: choose by hand)"),
            f"{best.score:.0f}" if best else "",
        )
        for other in s.matches[1:]:
            table.add_row("", "", "", "", "", f"  or {other.candidate.label}", f"{other.score:.0f}")
    out.print(table)
    if not suggestions:
        out.print("Everything billable is mapped.", highlight=False)
