"""Benchmark: map + rate + round + group + ledger write, against the floor of parsing JSON.

    .venv/bin/python benchmarks/mapping_pipeline.py --n 1000000 [--database-url URL]

1. Generates N entries (JSON lines, in a temporary file) spread over realistic clients,
   projects, users and tasks, with client and project rate rules (the rest at the tracker's
   rate) and a few expenses.
2. The floor: parses every line with the fastest parser installed (orjson, else json);
   the best of three runs.
3. The pipeline: parses the same lines, builds canonical ``SourceEntry`` objects, maps and
   prices them with the real ``Resolver``, groups them into invoice plans with the real
   ``build_plan`` (lines grouped by task and price, amounts rounded to cents) and writes the
   invoices and ledger rows (``InvoiceRow``, ``LedgerRow``) to the database, one chunk at a
   time, so memory stays flat however large N is.

Prints entries per second for both, the ratio of the pipeline's time to the floor's, and the
process's peak memory (``ru_maxrss``). Run one N per process for a clean peak. Not a test:
``tests/test_benchmark_smoke.py`` only checks that it runs.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session

from core.db import open_database
from core.invoices import InvoiceSlot, build_plan
from core.model import EntryKind, Ref, SourceEntry
from core.periods import Period
from core.tables import InvoiceRow, LedgerRow, LedgerState
from mapping.resolver import MappedEntry, Resolver
from mapping.rules import MappingRules

try:
    import orjson

    def _loads(line: bytes) -> Any:
        return orjson.loads(line)

    PARSER = f"orjson {orjson.__version__}"
except ImportError:  # pragma: no cover - orjson is in the dev extra

    def _loads(line: bytes) -> Any:
        return json.loads(line)

    PARSER = "json (stdlib)"

PERIOD = Period(2026, 10)
SOURCE = "bench"
TASKS = ("Design", "Development", "Project Management", "QA", "Consulting", "Support",
         "Copywriting", "Research", "Training", "Hosting")  # fmt: skip
CURRENCIES = ("NZD", "NZD", "NZD", "USD", "AUD", "EUR", "GBP")


@dataclass(frozen=True)
class World:
    """The agency: clients, projects, users and tasks, and the mapping with its rate rules."""

    clients: list[tuple[str, str, str]]  # id, name, currency
    projects: list[tuple[str, str, int]]  # id, name, client index
    users: list[tuple[str, str, int]]  # id, name, hourly rate in cents
    rules: MappingRules


def build_world(rng: random.Random, clients: int = 400) -> World:
    client_rows = [
        (str(5_000_000 + i), f"Client {i:04d} Ltd", rng.choice(CURRENCIES)) for i in range(clients)
    ]
    projects = [
        (str(14_000_000 + 3 * i + j), f"Project {i:04d}-{j}", i)
        for i in range(clients)
        for j in range(rng.randint(1, 3))
    ]
    users = [(str(1_780_000 + i), f"User {i:03d}", rng.randrange(90, 260) * 100) for i in range(80)]
    rules: dict[str, Any] = {
        "clients": {
            cid: {"contact_number": f"BENCH-{cid}", "tax_type": "OUTPUT2", "currency": cur}
            | ({"rate": f"{rng.randrange(120, 220)}.00"} if rng.random() < 0.4 else {})
            for cid, _name, cur in client_rows
        },
        "projects": {
            pid: {"rate": f"{rng.randrange(100, 250)}.50"}
            for pid, _name, _client in projects
            if rng.random() < 0.25
        },
        "tasks": {
            str(8_000_000 + t): {"item_code": name.upper()[:10], "account_code": "200"}
            for t, name in enumerate(TASKS)
        },
        "expense_categories": {"4100001": {"account_code": "260", "description": "Travel"}},
        "default_tax_type": "OUTPUT2",
    }
    return World(client_rows, projects, users, MappingRules.model_validate(rules))


def generate(path: Path, n: int, world: World, rng: random.Random) -> None:
    """N entries as JSON lines (tracker-shaped, canonical fields), streamed to ``path``."""
    stamp = "2026-11-01T09:00:00+00:00"
    days = PERIOD.end.day
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            pid, pname, ci = world.projects[rng.randrange(len(world.projects))]
            cid, cname, currency = world.clients[ci]
            uid, uname, urate = world.users[rng.randrange(len(world.users))]
            expense = rng.random() < 0.03
            t = rng.randrange(len(TASKS))
            record = {
                "id": str(2_100_000_000 + i),
                "kind": "expense" if expense else "time",
                "spent_date": (PERIOD.start + timedelta(days=rng.randrange(days))).isoformat(),
                "quantity": f"{rng.randrange(10, 800) / 100:.2f}" if not expense else "1",
                "unit_price": f"{urate / 100:.2f}"
                if not expense
                else f"{rng.randrange(5, 900)}.00",
                "currency": currency,
                "client": [cid, cname],
                "project": [pid, pname],
                "task": ["4100001", "Travel"] if expense else [str(8_000_000 + t), TASKS[t]],
                "user": [uid, uname],
                "notes": f"Work item {i % 997}: review and follow-up" if i % 3 else "",
                "updated_at": stamp,
            }
            out.write(json.dumps(record, separators=(",", ":")) + "\n")


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        yield from source


def floor(path: Path) -> int:
    count = 0
    for line in _lines(path):
        _loads(line)
        count += 1
    return count


def _entry(raw: dict[str, Any]) -> SourceEntry:
    return SourceEntry(
        source=SOURCE,
        source_id=raw["id"],
        kind=EntryKind(raw["kind"]),
        spent_date=date.fromisoformat(raw["spent_date"]),
        quantity=Decimal(raw["quantity"]),
        unit_price=Decimal(raw["unit_price"]),
        currency=raw["currency"],
        client=Ref(*raw["client"]),
        project=Ref(*raw["project"]),
        task=Ref(*raw["task"]),
        user=Ref(*raw["user"]),
        notes=raw["notes"],
        billable=True,
        approved=True,
        billed_in_source=False,
        running=False,
        updated_at=datetime.fromisoformat(raw["updated_at"]),
    )


@dataclass
class Totals:
    entries: int = 0
    unmapped: int = 0
    invoices: int = 0
    lines: int = 0
    subtotal: Decimal = Decimal(0)


def pipeline(path: Path, engine: Engine, rules: MappingRules, chunk: int, profile: str) -> Totals:
    resolver = Resolver(rules)
    totals = Totals()
    batch: list[MappedEntry] = []
    seq = 0

    def flush() -> None:
        nonlocal seq
        seq += 1
        groups: dict[tuple[Any, str], list[MappedEntry]] = defaultdict(list)
        for mapped in batch:
            groups[(mapped.contact, mapped.currency)].append(mapped)
        now = datetime.now(UTC)
        with Session(engine) as session:
            ledger_rows: list[LedgerRow] = []
            for (contact, currency), entries in groups.items():
                slot = InvoiceSlot(profile, contact, currency, PERIOD, seq)
                plan = build_plan(
                    prefix="hb",
                    slot=slot,
                    contact_id=contact.value,
                    contact_name=contact.value,
                    entries=entries,
                    due_days=30,
                )
                subtotal = plan.subtotal  # each line: quantity × price, rounded to cents
                totals.invoices += 1
                totals.lines += len(plan.lines)
                totals.subtotal += subtotal
                session.add(
                    InvoiceRow(
                        key=plan.key,
                        profile=profile,
                        target="bench",
                        contact=str(contact),
                        contact_name=plan.contact_name,
                        currency=currency,
                        period=str(PERIOD),
                        seq=seq,
                        subtotal=subtotal,
                        line_count=len(plan.lines),
                        created_at=now,
                        updated_at=now,
                    )
                )
                ledger_rows.extend(
                    LedgerRow(
                        source=SOURCE,
                        source_id=f"{profile}:{m.entry.source_id}",
                        invoice_key=plan.key,
                        state=LedgerState.PLANNED.value,
                        entry_hash=m.entry.content_hash,
                        quantity=m.entry.quantity,
                        unit_price=m.unit_price,
                        updated_at=now,
                    )
                    for m in plan.entries
                )
            session.flush()  # invoices first: ledger rows refer to them
            session.add_all(ledger_rows)
            session.commit()
        batch.clear()

    for line in _lines(path):
        totals.entries += 1
        outcome = resolver.resolve(_entry(_loads(line)))
        if isinstance(outcome, MappedEntry):
            batch.append(outcome)
            if len(batch) >= chunk:
                flush()
        else:
            totals.unmapped += 1
    if batch:
        flush()
    return totals


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _scratch_schema(url: str) -> tuple[str, Callable[[], None]]:
    """PostgreSQL: a throw-away schema, so runs never mix with real data."""
    if not url.startswith("postgresql") or "search_path" in url:
        return url, lambda: None  # SQLite, or a schema the caller chose
    schema = f"hb_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{url}{sep}options=-csearch_path%3D{schema}", drop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1_000_000, help="entries (default 1,000,000)")
    parser.add_argument(
        "--database-url",
        default=None,
        help="SQLAlchemy URL (default: a SQLite file in a temporary directory); PostgreSQL "
        "runs in a throw-away schema",
    )
    parser.add_argument("--chunk", type=int, default=5000, help="entries per write (5000)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.n < 1 or args.chunk < 1:
        parser.error("--n and --chunk must be at least 1")
    rng = random.Random(args.seed)  # noqa: S311  (reproducible data, not cryptography)
    with tempfile.TemporaryDirectory(prefix="hb-bench-") as tmp:
        data = Path(tmp) / "entries.jsonl"
        world = build_world(rng)
        generate(data, args.n, world, rng)
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        url, cleanup = _scratch_schema(url)
        try:
            engine = open_database(url)
            # the floor is short, so noise moves it most: the best of three runs
            runs = [_timed(lambda: floor(data)) for _ in range(3)]
            parsed, floor_s = min(runs, key=lambda run: run[1])
            profile = f"b{uuid.uuid4().hex[:8]}"
            totals, pipe_s = _timed(
                lambda: pipeline(data, engine, world.rules, args.chunk, profile)
            )
            engine.dispose()
        finally:
            cleanup()
    assert parsed == totals.entries == args.n
    result = {
        "entries": args.n,
        "database": url.split(":", 1)[0],
        "parser": PARSER,
        "floor_seconds": round(floor_s, 3),
        "floor_entries_per_second": round(args.n / floor_s),
        "pipeline_seconds": round(pipe_s, 3),
        "pipeline_entries_per_second": round(args.n / pipe_s),
        "ratio_to_floor": round(pipe_s / floor_s, 1),
        "peak_memory_mb": round(_peak_mb(), 1),
        "invoices": totals.invoices,
        "lines": totals.lines,
        "unmapped": totals.unmapped,
        "subtotal": str(totals.subtotal),
    }
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    width = max(len(k) for k in result)
    for key, value in result.items():
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        sys.stdout.write(f"{key.ljust(width)}  {shown}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
