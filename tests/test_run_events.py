"""Run events: each run's failures, classified, stored with the run, and shown with next steps."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from core.db import open_database
from core.errors import (
    AuthError,
    ConfigError,
    HourbridgeError,
    SourceDataError,
    TerminalError,
    TransientError,
)
from core.lease import LeaseHeldError
from core.report import (
    NEXT_STEPS,
    EntryChange,
    ErrorClass,
    EventKind,
    InvoiceSummary,
    RunReport,
    UnmappedItem,
    classify_exception,
    count_classes,
    run_events,
)
from core.tables import RunEventRow
from sandbox.server import Sandbox
from tests.conftest import sandbox_config, write_config
from tests.helpers import run_cli

PERIOD = "2026-10"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (AuthError("harvest: HTTP 401: credentials refused: no"), ErrorClass.AUTH),
        (TransientError("xero: HTTP 429: slow down", retry_after=5), ErrorClass.RATE_LIMITED),
        (
            TransientError("quickbooks: throttled by QuickBooks (Fault 3001)"),
            ErrorClass.RATE_LIMITED,
        ),
        (
            TransientError("toggl: HTTP 402: the hourly API quota is used up"),
            ErrorClass.RATE_LIMITED,
        ),
        (TransientError("xero: HTTP 503: unavailable"), ErrorClass.NETWORK),
        (TransientError("xero: no answer from Xero (ConnectionError)"), ErrorClass.NETWORK),
        (LeaseHeldError("profile p is being synced by host:1:abc"), ErrorClass.NETWORK),
        (TerminalError("xero: HTTP 400: bad request"), ErrorClass.VALIDATION),
        (SourceDataError("harvest: entry 7: bad hours"), ErrorClass.VALIDATION),
        (ConfigError("c.yaml: profiles: unknown"), ErrorClass.VALIDATION),
        (HourbridgeError("something of ours"), ErrorClass.VALIDATION),
        (KeyError("a bug"), ErrorClass.VALIDATION),
    ],
)
def test_exceptions_are_classified_by_type(exc: BaseException, expected: ErrorClass) -> None:
    assert classify_exception(exc) is expected


def test_every_class_has_a_next_step() -> None:
    assert set(NEXT_STEPS) == set(ErrorClass)
    assert "--period {period}" in NEXT_STEPS[ErrorClass.MAPPING_MISSING]


def test_events_are_derived_from_the_report() -> None:
    report = RunReport(run_id="r1", profile="p", period=PERIOD, dry_run=False)
    report.unmapped = [
        UnmappedItem("client 5000017 'Waitematā Sailing Club'", 4, Decimal("6.5")),
        UnmappedItem("task 8000009 'Travel'", 1, Decimal("2")),
    ]
    report.invoices = [
        InvoiceSummary("hb/p/2026-10/ok", "Good Co", "NZD", "create", 1, 3, Decimal("300")),
        InvoiceSummary(
            "hb/p/2026-10/bad", "Acme", "NZD", "failed", 2, 5, Decimal("812.50"), error="tax"
        ),
    ]
    report.entries_changed = [
        EntryChange("harvest:9", "edited", "Acme", "2026-10-03", Decimal("1"), Decimal("1.5"))
    ]
    report.errors = ["invoice hb/p/2026-10/bad (Acme): tax", "xero: HTTP 503: down"]
    events = run_events(report, TransientError("xero: HTTP 503: down"))

    assert [(e.kind, e.error_class) for e in events] == [
        (EventKind.ENTRY, ErrorClass.MAPPING_MISSING),
        (EventKind.ENTRY, ErrorClass.MAPPING_MISSING),
        (EventKind.INVOICE, ErrorClass.TARGET_REJECTED),
        (EventKind.RUN, ErrorClass.NETWORK),
        (EventKind.ENTRY, ErrorClass.DRIFT),
    ]
    sailing = events[0]
    assert sailing.subject == "client 5000017 'Waitematā Sailing Club'"
    assert (sailing.entries, sailing.hours) == (4, Decimal("6.5"))
    rejected = events[2]
    assert rejected.subject == "invoice hb/p/2026-10/bad (Acme)"
    assert (rejected.message, rejected.entries, rejected.amount) == ("tax", 5, Decimal("812.50"))
    assert events[3].message == "xero: HTTP 503: down"
    assert "harvest:9" in events[4].subject and "1 h → 1.5 h" in events[4].message
    counts = count_classes(events)
    assert counts == {
        "mapping_missing": 2,
        "validation": 0,
        "rate_limited": 0,
        "auth": 0,
        "network": 1,
        "target_rejected": 1,
        "drift": 1,
    }
    # without a failure, no run event; a clean report has none at all
    assert all(e.kind is not EventKind.RUN for e in run_events(report))
    assert run_events(RunReport(run_id="r2", profile="p", period=PERIOD, dry_run=False)) == []


def _events(db_url: str, run_id: str) -> list[RunEventRow]:
    with Session(open_database(db_url)) as session:
        return list(
            session.exec(
                select(RunEventRow)
                .where(RunEventRow.run_id == run_id)
                .order_by(col(RunEventRow.id))
            ).all()
        )


@pytest.mark.usefixtures("tokens")
def test_unmapped_and_rejected_are_recorded_and_shown_with_next_steps(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    data = sandbox_config(sandbox, db_url)
    data["profiles"]["agency-monthly"]["mapping"]["clients"]["5000001"]["tax_type"] = "NOSUCHTAX"
    config = write_config(tmp_path / "c.yaml", data)

    preview = run_cli("preview", "--config", config, "--period", PERIOD, "--json")
    assert preview.code == 0, preview.stderr
    result = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert result.code == 1
    report = result.json()
    assert report["status"] == "partial"
    run_id = report["run_id"]
    assert report["unmapped"], "the seed has unmapped clients"

    events = _events(db_url, run_id)
    missing = [e for e in events if e.error_class == "mapping_missing"]
    assert [(e.subject, e.entries, str(e.hours)) for e in missing] == [
        (u["what"], u["entries"], u["hours"]) for u in report["unmapped"]
    ]
    assert all(e.kind == "entry" for e in missing)
    rejected = [e for e in events if e.error_class == "target_rejected"]
    assert len(rejected) == 1
    failed = next(inv for inv in report["invoices"] if inv["action"] == "failed")
    assert rejected[0].kind == "invoice"
    assert rejected[0].subject == f"invoice {failed['key']} (Acme Corporation)"
    assert rejected[0].message == failed["error"]
    assert rejected[0].amount == Decimal(failed["subtotal"])
    assert {e.error_class for e in events} == {"mapping_missing", "target_rejected"}
    assert report["error_classes"]["mapping_missing"] == len(missing)
    assert report["error_classes"]["target_rejected"] == 1
    assert sum(report["error_classes"].values()) == len(events)

    shown = run_cli("runs", "show", run_id, "--config", config)
    assert shown.code == 0, shown.stderr
    text = shown.stdout
    assert f"mapping_missing ({len(missing)})" in text
    assert "target_rejected (1)" in text
    assert f"add the mapping in the config, then run `hourbridge sync --period {PERIOD}`" in text
    assert "fix the invoice's cause (see message) and re-run; nothing else was affected" in text
    assert missing[0].subject in text and failed["key"] in text
    assert text.index("mapping_missing (") < text.index("target_rejected (")
    assert "auth (" not in text

    as_json = run_cli("runs", "show", run_id, "--config", config, "--json").json()
    assert as_json["invoices_failed"] == 1
    assert [(e["error_class"], e["subject"]) for e in as_json["events"]] == [
        (e.error_class, e.subject) for e in events
    ]

    partial = run_cli("runs", "list", "--config", config, "--status", "partial", "--json")
    assert partial.code == 0, partial.stderr
    assert [r["run_id"] for r in partial.json_list()] == [run_id]
    succeeded = run_cli("runs", "list", "--config", config, "--status", "succeeded", "--json")
    assert [r["run_id"] for r in succeeded.json_list()] == [preview.json()["run_id"]]
    everything = run_cli(
        "runs",
        "list",
        "--config",
        config,
        "--profile",
        "agency-monthly",
        "--since",
        "2000-01-01",
        "--json",
    )
    assert len(everything.json_list()) == 2
    future = run_cli("runs", "list", "--config", config, "--since", "2999-01-01", "--json")
    assert future.json_list() == []


@pytest.mark.usefixtures("tokens")
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--since", "2026-13-01"], "--since"),
        (["--since", "yesterday"], "--since"),
        (["--status", "done"], "--status"),
        (["--profile", "nobody"], "--profile"),
    ],
)
def test_bad_runs_list_filters_exit_2_with_one_line(
    sandbox: Sandbox, tmp_path: Path, args: list[str], needle: str
) -> None:
    config = write_config(
        tmp_path / "c.yaml", sandbox_config(sandbox, f"sqlite:///{tmp_path / 'hb.db'}")
    )
    result = run_cli("runs", "list", "--config", config, *args)
    assert result.code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_refused_credentials_record_an_auth_event(
    sandbox: Sandbox, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARVEST_ACCESS_TOKEN", "wrong-token")
    monkeypatch.setenv("XERO_ACCESS_TOKEN", sandbox.xero.settings.access_token)
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    result = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert result.code == 1
    report = result.json()
    assert report["error_classes"]["auth"] == 1
    events = _events(db_url, report["run_id"])
    assert [(e.kind, e.error_class) for e in events] == [("run", "auth")]
    assert "harvest: HTTP 401: credentials refused" in events[0].message
    assert events[0].subject == f"run of profile agency-monthly for {PERIOD}"

    shown = run_cli("runs", "show", report["run_id"], "--config", config)
    assert "auth (1)" in shown.stdout
    assert "check the access token" in shown.stdout
    failed = run_cli("runs", "list", "--config", config, "--status", "failed", "--json")
    assert [r["run_id"] for r in failed.json_list()] == [report["run_id"]]
