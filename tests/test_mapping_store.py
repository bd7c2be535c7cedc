"""The mapping store and the finance tools: export, import, history and suggest, end to end
against the sandbox (fake Harvest → hourbridge → fake Xero), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from core import mapping_store
from core.cli import app
from core.db import open_database
from mapping import documents
from mapping.rules import MappingRules
from sandbox.server import Sandbox
from tests.conftest import sandbox_config, write_config
from tests.helpers import CliResult, eligible, eligible_expense, live_invoices, run_cli

PERIOD = "2026-10"
PROFILE = "agency-monthly"


def _stored_setup(sandbox: Sandbox, db_url: str, tmp_path: Path) -> tuple[Path, Path]:
    """A config whose profile has no `mapping:` (so it lives in the database), and the
    example's mapping as a YAML document to import."""
    data = sandbox_config(sandbox, db_url)
    mapping = data["profiles"][PROFILE].pop("mapping")
    config = write_config(tmp_path / "c.yaml", data)
    document = tmp_path / "mapping.yaml"
    document.write_text(documents.to_yaml(MappingRules.model_validate(mapping)), encoding="utf-8")
    return config, document


def _cli(*args: str | Path, input: str | None = None, env: dict[str, str] | None = None
         ) -> CliResult:  # fmt: skip
    """run_cli with stdin and environment variables."""
    result = CliRunner().invoke(
        app, [str(a) for a in args], input=input, env=env, catch_exceptions=False
    )
    return CliResult(result.exit_code, result.stdout, result.stderr)


def _contact_reads(sandbox: Sandbox) -> int:
    return sum(n for call, n in sandbox.xero.calls.items() if call.startswith("GET /Contacts"))


def _versions(db_url: str) -> list[int]:
    with Session(open_database(db_url)) as session:
        return [r.version for r in mapping_store.history(session, PROFILE)]


def test_store_keeps_versions_and_the_latest_is_current(db_url: str) -> None:
    engine = open_database(db_url)
    now = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    one = MappingRules.model_validate({"clients": {"1": {"contact_number": "A"}}})
    two = MappingRules.model_validate({"clients": {"1": {"contact_number": "B"}}})
    with Session(engine) as session:
        assert mapping_store.current(session, PROFILE) is None
        first = mapping_store.save(session, PROFILE, one, author="ana", note="first", now=now)
        assert mapping_store.save(session, PROFILE, one, author="bo", note=None, now=now) is None
        second = mapping_store.save(session, PROFILE, two, author="bo", note=None, now=now)
        other = mapping_store.save(session, "other", two, author="cy", note=None, now=now)
        session.commit()
    assert first is not None and second is not None and other is not None
    assert (first.version, second.version, other.version) == (1, 2, 1)
    with Session(engine) as session:
        current = mapping_store.current(session, PROFILE)
        assert current is not None
        assert (current.version, current.author, current.rules) == (2, "bo", two)
        assert current.created_at == now
        old = mapping_store.version(session, PROFILE, 1)
        assert old is not None and old.rules == one and old.note == "first"
        assert [r.version for r in mapping_store.history(session, PROFILE)] == [2, 1]


@pytest.mark.usefixtures("tokens")
def test_import_export_round_trip_and_sync_uses_the_stored_mapping(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config, document = _stored_setup(sandbox, db_url, tmp_path)
    # nothing stored yet: entries wait, and the report says how to give a mapping
    bare = run_cli("sync", "--config", config, "--period", PERIOD, "--json", "--dry-run").json()
    assert bare["invoices_created"] == 0 and bare["entries_pending"]["unmapped"] > 0
    assert any("hourbridge mappings import" in w for w in bare["warnings"])
    text = run_cli("mappings", "unmapped", "--config", config, "--period", PERIOD)
    assert "hourbridge mappings import" in text.stdout + text.stderr
    missing = run_cli("mappings", "export", "--config", config)
    assert missing.code == 1 and "mappings import" in missing.stderr

    dry = run_cli("mappings", "import", document, "--config", config, "--dry-run")
    assert dry.code == 0, dry.stderr
    rules = documents.from_yaml(document.read_text("utf-8"), str(document))
    keys = sum(len(getattr(rules, s)) for s in ("clients", "projects", "tasks")) + len(
        rules.expense_categories
    )
    assert f"added {keys + 1} (clients 5000001" in dry.stdout  # + default_tax_type
    assert "changed 0; removed 0" in dry.stdout and "nothing stored" in dry.stdout
    assert _versions(db_url) == []
    done = run_cli("mappings", "import", document, "--config", config, "--author", "ana")
    assert done.code == 0, done.stderr
    assert "stored version 1" in done.stdout and "(by ana)" in done.stdout
    again = run_cli("mappings", "import", document, "--config", config)
    assert "no changes" in again.stdout and _versions(db_url) == [1]

    for fmt in ("yaml", "csv"):
        exported = tmp_path / f"out.{fmt}"
        result = run_cli("mappings", "export", "--config", config, "--output", exported)
        assert result.code == 0, result.stderr
        assert documents.parse(exported.read_text("utf-8"), fmt, str(exported)) == rules
    csv_out = run_cli("mappings", "export", "--config", config, "--format", "csv")
    assert csv_out.stdout.startswith("section,key,value,")

    # edit the CSV (map one more client, change a task) and import it: the diff says so
    edited = tmp_path / "edited.csv"
    unmapped = sandbox.month.unmapped_client_ids[0]
    contact = next(
        c for c in sandbox.month.xero_contacts if c["Name"] == "WAITEMATĀ SAILING CLUB LIMITED"
    )
    columns = documents.csv_columns()
    extra = {"section": "clients", "key": str(unmapped), "contact_id": contact["ContactID"]}
    rows = list(csv.DictReader(io.StringIO(csv_out.stdout)))
    task = next(r for r in rows if r["section"] == "tasks" and r["key"] == "8000006")
    assert task["item_code"] == "SUPPORT"
    task["item_code"] = "HELP"
    rows.append({c: extra.get(c, "") for c in columns})
    with edited.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    bad_item = run_cli("mappings", "import", edited, "--config", config, "--author", "bo")
    assert bad_item.code == 0, bad_item.stderr  # items are checked against the target at sync
    assert f"added 1 (clients {unmapped})" in bad_item.stdout
    assert "changed 1 (tasks 8000006)" in bad_item.stdout
    assert _versions(db_url) == [2, 1]
    history = run_cli("mappings", "history", "--config", config, "--json").json_list()
    assert [(h["version"], h["author"]) for h in history] == [(2, "bo"), (1, "ana")]
    assert history[0]["note"] == "imported from edited.csv"
    first = run_cli("mappings", "export", "--config", config, "--version", "1", "-f", "yaml")
    assert documents.from_yaml(first.stdout, "v1") == rules
    assert run_cli("mappings", "export", "--config", config, "--version", "9").code == 1

    report = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert report["mapping_version"] == 2
    assert report["invoices_created"] > 0 and report["errors"] == []
    whats = [u["what"] for u in report["unmapped"]]
    assert "item HELP not found in the target" in whats
    assert not any(w.startswith(f"client {unmapped} ") for w in whats)
    waiting = [
        e
        for e in sandbox.month.time_entries
        if e["client"]["id"] == unmapped and eligible(e, PERIOD) and e["task"]["id"] != 8000006
    ]
    assert waiting
    mine = [
        inv
        for inv in live_invoices(sandbox.xero.invoices)
        if str(inv["Contact"]["ContactID"]).lower() == contact["ContactID"].lower()
    ]
    assert len(mine) == 1
    expected = sum(
        (Decimal(str(e["hours"])) * Decimal(str(e["billable_rate"])) for e in waiting),
        Decimal(0),
    ) + sum(
        (
            Decimal(str(x["total_cost"]))
            for x in sandbox.month.expenses
            if x["client"]["id"] == unmapped and eligible_expense(x, PERIOD)
        ),
        Decimal(0),
    )
    assert Decimal(str(mine[0]["SubTotal"])) == expected.quantize(Decimal("0.01"))


def test_bad_documents_are_refused_with_line_numbers_and_store_nothing(
    db_url: str, tmp_path: Path
) -> None:
    data: dict[str, Any] = {
        "database": {"url": db_url},
        "organisation": {"timezone": "Pacific/Auckland"},
        "sources": {"h": {"type": "harvest", "account_id": "1", "access_token": "${T}"}},
        "targets": {
            "x": {
                "type": "xero",
                "tenant_id": "4c2b5f0a-6a3e-4d38-9c1e-0d6f2b8a7e11",
                "access_token": "${T}",
            }
        },
        "profiles": {PROFILE: {"source": "h", "target": "x"}},
    }
    config = write_config(tmp_path / "c.yaml", data)
    bad = tmp_path / "bad.yaml"
    bad.write_text('clients:\n  "1": {contact_number: A}\n  "2": {rate: "10"}\n', "utf-8")
    result = _cli("mappings", "import", bad, "--config", config, env={"T": "t"})
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {bad}: line 3: clients.2: give exactly one of contact_id, contact_number or "
        "contact_name"
    ]
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("section,key,contact_number\nclients,1,A\nclients,2,\n", "utf-8")
    result = _cli("mappings", "import", bad_csv, "--config", config, env={"T": "t"})
    assert result.code == 2 and f"{bad_csv}: line 3: clients.2: give exactly one" in (result.stderr)
    odd = tmp_path / "m.txt"
    odd.write_text("{}", "utf-8")
    result = _cli("mappings", "import", odd, "--config", config, env={"T": "t"})
    assert result.code == 2 and "give --format yaml|csv" in result.stderr
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n", "utf-8")
    result = _cli("mappings", "import", empty, "--config", config, env={"T": "t"})
    assert result.code == 2 and "holds no rules" in result.stderr
    assert _versions(db_url) == []

    # a profile whose mapping is in the config refuses imports, naming file and key path
    data["profiles"][PROFILE]["mapping"] = {}
    write_config(config, data)
    good = tmp_path / "good.yaml"
    good.write_text('clients:\n  "1": {contact_number: A}\n', "utf-8")
    result = _cli("mappings", "import", good, "--config", config, env={"T": "t"})
    assert result.code == 2
    assert result.stderr.strip() == (
        f"error: {config}: profiles.{PROFILE}.mapping: this profile's mapping lives in the "
        "config file; edit it there, or remove that key to keep the mapping in the database"
    )
    assert _versions(db_url) == []
    # its export is the config's mapping: the way to move it into the database
    data["profiles"][PROFILE]["mapping"] = {"clients": {"7": {"contact_name": "Seven Ltd"}}}
    write_config(config, data)
    exported = _cli("mappings", "export", "--config", config, "--format", "csv", env={"T": "t"})
    assert exported.code == 0, exported.stderr
    assert documents.from_csv(exported.stdout, "out.csv").clients["7"].contact_name == "Seven Ltd"


@pytest.mark.usefixtures("tokens")
def test_a_renamed_client_keeps_its_stored_mapping(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config, document = _stored_setup(sandbox, db_url, tmp_path)
    assert run_cli("mappings", "import", document, "--config", config).code == 0
    first = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert first["invoices_created"] > 0
    client_id = 5000004  # Harbour City Dental, mapped by contact name in Xero
    entries = [
        e
        for e in sandbox.month.time_entries
        if e["client"]["id"] == client_id and eligible(e, PERIOD)
    ]
    renamed = {**entries[0]["client"], "name": "HCD Group"}
    for e in entries:
        sandbox.harvest.edit_entry(e["id"], client=renamed)
    new_entry = {**entries[0], "id": 2_199_999_001, "hours": 1.5, "notes": "after the rename"}
    new_entry["client"] = renamed
    sandbox.harvest.add_entry(new_entry)
    after = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert after["errors"] == []
    assert not any("HCD Group" in u["what"] for u in after["unmapped"])
    updated = [i for i in after["invoices"] if i["contact"] == "Harbour City Dental"]
    assert len(updated) == 1 and updated[0]["action"] == "update"
    assert after["entries_billed"] == 1


@pytest.mark.usefixtures("tokens")
def test_suggest_proposes_contacts_by_name_and_applies_only_when_confirmed(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    month = sandbox.month
    names = {c["id"]: c["name"] for c in month.clients}
    contacts = {c["Name"]: c for c in month.xero_contacts}
    # The seed's unmapped clients have contacts named in other case, punctuation and suffix.
    expected = {
        str(month.unmapped_client_ids[0]): contacts["WAITEMATĀ SAILING CLUB LIMITED"],
        str(month.unmapped_client_ids[1]): contacts["canterbury agritech, Ltd."],
    }
    assert [names[int(k)] for k in expected] == ["Waitematā Sailing Club", "Canterbury Agritech"]

    # 1. a profile whose mapping is in the config: suggestions shown, never applied
    in_config = write_config(tmp_path / "in-config.yaml", sandbox_config(sandbox, db_url))
    shown = run_cli("mappings", "suggest", "--config", in_config, "--period", PERIOD, "--json")
    assert shown.code == 0, shown.stderr
    by_key = {(s["section"], s["key"]): s for s in shown.json_list()}
    assert {k for s, k in by_key if s == "clients"} == set(expected)
    for key, contact in expected.items():
        suggestion = by_key[("clients", key)]
        assert suggestion["why"] == "no rule" and suggestion["entries"] > 0
        best = suggestion["suggestions"][0]
        assert best["id"].lower() == contact["ContactID"].lower() and best["score"] == 100
        assert suggestion["chosen"] == best["id"]
    table = run_cli("mappings", "suggest", "--config", in_config, "--period", PERIOD)
    assert "WAITEMATĀ SAILING CLUB LIMITED" in table.stdout and "100" in table.stdout
    refused = run_cli(
        "mappings", "suggest", "--config", in_config, "--period", PERIOD, "--apply", "--yes"
    )
    assert refused.code == 2 and f"profiles.{PROFILE}.mapping" in refused.stderr
    assert sandbox.xero.invoice_writes() == 0

    # 2. a profile whose mapping is stored: --apply asks; only a yes stores a version
    config, document = _stored_setup(sandbox, db_url, tmp_path)
    assert run_cli("mappings", "import", document, "--config", config).code == 0
    calls_before = _contact_reads(sandbox)
    declined = _cli(
        "mappings", "suggest", "--config", config, "--period", PERIOD, "--apply", input="n\n"
    )
    assert declined.code == 0 and "nothing applied" in declined.stdout
    assert _versions(db_url) == [1]
    assert _contact_reads(sandbox) == calls_before + 1  # the target's contacts fetched once
    applied = run_cli(
        "mappings", "suggest", "--config", config, "--period", PERIOD, "--apply", "--yes",
        "--author", "finance",
    )  # fmt: skip
    assert applied.code == 0, applied.stderr
    assert "stored version 2" in applied.stdout and "added 2" in applied.stdout
    with Session(open_database(db_url)) as session:
        current = mapping_store.current(session, PROFILE)
    assert current is not None and current.author == "finance"
    for key, contact in expected.items():
        assert str(current.rules.clients[key].contact_id) == contact["ContactID"].lower()
    unmapped = run_cli("mappings", "unmapped", "--config", config, "--period", PERIOD, "--json")
    assert not any(u["missing"].startswith("client ") for u in unmapped.json_list())
    nothing = run_cli("mappings", "suggest", "--config", config, "--period", PERIOD)
    assert "Everything billable is mapped" in nothing.stdout
