"""End to end: fake Harvest → hourbridge (CLI) → fake Xero, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.db import open_database
from core.lease import Lease
from sandbox.seed import SeedSpec
from sandbox.server import Sandbox, start_sandbox
from tests.conftest import FAST_HARVEST, FAST_XERO, sandbox_config, write_config
from tests.helpers import (
    client_of_contact,
    eligible,
    eligible_expense,
    expected_subtotals,
    invoices_per_contact,
    live_invoices,
    run_cli,
)

PERIOD = "2026-10"
TASKS = range(8000001, 8000007)


def _mapped_clients(sandbox: Sandbox) -> list[int]:
    return [
        c["id"] for c in sandbox.month.clients if c["id"] not in sandbox.month.unmapped_client_ids
    ]


@pytest.mark.usefixtures("tokens")
def test_sync_pushes_one_draft_per_contact_with_exact_totals_and_rerun_creates_nothing(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))

    first = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert first.code == 0, first.stderr
    report = first.json()
    expected = expected_subtotals(sandbox.month, clients=_mapped_clients(sandbox), tasks=TASKS)
    assert report["invoices_created"] == len(expected)
    assert report["errors"] == []

    invoices = live_invoices(sandbox.xero.invoices)
    assert len(invoices) == len(expected)
    by_client = client_of_contact(sandbox.month)
    got = {by_client[str(inv["Contact"]["ContactID"]).lower()]: inv for inv in invoices}
    for client_id, subtotal in expected.items():
        inv = got[client_id]
        assert Decimal(str(inv["SubTotal"])) == subtotal, client_id
        assert inv["Status"] == "DRAFT"
        assert inv["Type"] == "ACCREC"
        assert str(inv["Reference"]).startswith(f"hb/agency-monthly/{PERIOD}/")
    # every eligible entry of a mapped client was billed, once
    billable = sum(
        1
        for e in sandbox.month.time_entries
        if eligible(e, PERIOD) and e["client"]["id"] in expected and e["task"]["id"] in TASKS
    ) + sum(
        1
        for x in sandbox.month.expenses
        if eligible_expense(x, PERIOD) and x["client"]["id"] in expected
    )
    assert report["entries_billed"] == billable

    second = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert second.code == 0, second.stderr
    again = second.json()
    assert again["invoices_created"] == 0
    assert again["invoices_updated"] == 0
    assert again["invoices_unchanged"] == len(expected)
    assert again["entries_billed"] == 0
    assert len(live_invoices(sandbox.xero.invoices)) == len(expected)


@pytest.mark.usefixtures("tokens")
def test_pending_entries_are_counted_by_reason(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    report = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    # The first pull starts at the period; what it sees of later months counts as out_of_period
    # when it would otherwise be billable. Reasons are counted for the period's own entries.
    expenses_as_entries = [x | {"is_running": False} for x in sandbox.month.expenses]
    everything = sandbox.month.time_entries + expenses_as_entries
    seen = [e for e in everything if e["spent_date"] >= "2026-10-01"]
    inside = [e for e in seen if e["spent_date"].startswith(PERIOD)]
    pending = report["entries_pending"]
    assert pending["running"] == sum(1 for e in inside if e["is_running"]) == 1
    assert len(expenses_as_entries) > 0
    assert pending["non_billable"] == sum(
        1 for e in inside if not e["is_running"] and not e["billable"]
    )
    assert pending["already_billed"] == sum(
        1 for e in inside if not e["is_running"] and e["billable"] and e["is_billed"]
    )
    assert pending["unapproved"] == sum(
        1
        for e in inside
        if not e["is_running"] and e["billable"] and not e["is_billed"] and not e["is_closed"]
    )
    later = [e for e in seen if not e["spent_date"].startswith(PERIOD)]
    assert later, "the seed has entries after the period"
    assert pending["out_of_period"] == sum(1 for e in later if eligible(e, e["spent_date"][:7]))
    assert all(pending[reason] > 0 for reason in ("non_billable", "already_billed", "unapproved"))
    assert set(report["api_calls"]) == {"harvest", "xero"}


@pytest.mark.usefixtures("tokens")
def test_unmapped_clients_are_named_and_billed_once_mapped(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    data = sandbox_config(sandbox, db_url)
    config = write_config(tmp_path / "c.yaml", data)
    report = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()

    month = sandbox.month
    names = {c["id"]: c["name"] for c in month.clients}
    waiting = Counter(
        e["client"]["id"]
        for e in month.time_entries
        if eligible(e, PERIOD) and e["client"]["id"] in month.unmapped_client_ids
    ) + Counter(
        x["client"]["id"]
        for x in month.expenses
        if eligible_expense(x, PERIOD) and x["client"]["id"] in month.unmapped_client_ids
    )
    assert waiting, "the seed must give unmapped clients some billable entries"
    reported = {item["what"]: item["entries"] for item in report["unmapped"]}
    for client_id, count in waiting.items():
        assert reported[f"client {client_id} {names[client_id]!r}"] == count
    assert report["entries_pending"]["unmapped"] >= sum(waiting.values())

    # Finance staff map them to contacts that already exist in Xero, by exact name.
    spare = [
        c for c in month.xero_contacts if not str(c.get("ContactNumber") or "").startswith("HV-")
    ]
    assert len(spare) >= len(waiting)
    for client_id, contact in zip(sorted(waiting), spare, strict=False):
        data["profiles"]["agency-monthly"]["mapping"]["clients"][str(client_id)] = {
            "contact_name": contact["Name"],
            "currency": month.clients[[c["id"] for c in month.clients].index(client_id)][
                "currency"
            ],
        }
    write_config(config, data)
    after = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert after["invoices_created"] == len(waiting)
    assert after["entries_billed"] == sum(waiting.values())
    assert after["unmapped"] == [] or all(
        not item["what"].startswith("client ") for item in after["unmapped"]
    )


@pytest.mark.usefixtures("tokens")
def test_a_lost_response_after_commit_never_makes_a_second_invoice(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    sandbox.xero.drop_after_commit(1)
    first = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    # The SDK saw no answer, our retry replays the same Idempotency-Key, or the run fails;
    # either way, the next run must settle it without duplicates.
    second = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert second.code == 0, second.stderr
    per_slot = invoices_per_contact(sandbox.xero.invoices)
    assert per_slot and max(per_slot.values()) == 1
    expected = expected_subtotals(sandbox.month, clients=_mapped_clients(sandbox), tasks=TASKS)
    assert len(per_slot) == len(expected)
    assert first.json()["invoices_created"] + second.json()["invoices_created"] <= len(expected)


@pytest.mark.usefixtures("tokens")
def test_lost_response_with_retries_off_fails_then_rerun_settles(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    data = sandbox_config(sandbox, db_url)
    data["targets"]["xero"]["max_attempts"] = 1  # no retry: the run must fail on the lost answer
    config = write_config(tmp_path / "c.yaml", data)
    sandbox.xero.drop_after_commit(1)
    first = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert first.code == 1
    assert first.json()["status"] == "failed"
    committed = len(live_invoices(sandbox.xero.invoices))
    assert committed > 0  # the fake did commit the batch it never answered

    second = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert second.code == 0, second.stderr
    report = second.json()
    assert report["invoices_created"] == 0  # found by Reference: nothing created again
    per_slot = invoices_per_contact(sandbox.xero.invoices)
    assert max(per_slot.values()) == 1
    assert len(per_slot) == committed


@pytest.mark.usefixtures("tokens")
def test_locked_invoice_is_never_touched_and_new_entries_go_on_a_new_invoice(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    assert run_cli("sync", "--config", config, "--period", PERIOD).code == 0
    acme_contact = next(
        c for c in sandbox.month.xero_contacts if c.get("ContactNumber") == "HV-5000001"
    )
    locked = next(
        inv
        for inv in live_invoices(sandbox.xero.invoices)
        if str(inv["Contact"]["ContactID"]).lower() == acme_contact["ContactID"].lower()
    )
    sandbox.xero.set_status(locked["InvoiceID"], "AUTHORISED")
    before = dict(sandbox.xero.invoices[locked["InvoiceID"]])

    template = next(
        e
        for e in sandbox.month.time_entries
        if e["client"]["id"] == 5000001 and eligible(e, PERIOD)
    )
    new_entry = dict(template, id=2199999999, hours=2.5, spent_date="2026-10-30")
    del new_entry["created_at"], new_entry["updated_at"]  # the fake stamps a new entry "now"
    sandbox.harvest.add_entry(new_entry)

    report = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert report["invoices_created"] == 1
    assert report["entries_billed"] == 1
    assert sandbox.xero.invoices[locked["InvoiceID"]] == before
    acme = [
        inv
        for inv in live_invoices(sandbox.xero.invoices)
        if str(inv["Contact"]["ContactID"]).lower() == acme_contact["ContactID"].lower()
    ]
    assert len(acme) == 2
    fresh = next(inv for inv in acme if inv["InvoiceID"] != locked["InvoiceID"])
    expected = Decimal("2.5") * Decimal(str(template["billable_rate"]))
    assert Decimal(str(fresh["SubTotal"])) == expected.quantize(Decimal("0.01"))


@pytest.mark.usefixtures("tokens")
def test_edited_entry_updates_the_draft_in_place(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    assert run_cli("sync", "--config", config, "--period", PERIOD).code == 0
    entry = next(
        e
        for e in sandbox.month.time_entries
        if e["client"]["id"] == 5000003 and eligible(e, PERIOD)
    )
    ids_before = {inv["InvoiceID"] for inv in live_invoices(sandbox.xero.invoices)}
    sandbox.harvest.edit_entry(entry["id"], hours=float(Decimal(str(entry["hours"])) + 1))
    report = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert report["invoices_updated"] == 1
    assert report["invoices_created"] == 0
    assert {inv["InvoiceID"] for inv in live_invoices(sandbox.xero.invoices)} == ids_before
    [change] = report["entries_changed"]
    assert change["entry"] == f"harvest:{entry['id']}" and change["change"] == "edited"
    assert Decimal(change["hours_after"]) - Decimal(change["hours_before"]) == 1


@pytest.mark.usefixtures("tokens")
def test_an_entry_deleted_in_harvest_is_seen_and_leaves_the_draft(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    assert run_cli("sync", "--config", config, "--period", PERIOD).code == 0
    mine = [
        e
        for e in sandbox.month.time_entries
        if e["client"]["id"] == 5000003 and eligible(e, PERIOD)
    ]
    gone = mine[0]
    sandbox.harvest.delete_entry(gone["id"])
    report = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert [(c["entry"], c["change"]) for c in report["entries_changed"]] == [
        (f"harvest:{gone['id']}", "deleted")
    ]
    assert report["invoices_updated"] == 1
    before = expected_subtotals(sandbox.month, clients=[5000003], tasks=TASKS)[5000003]
    expected = before - Decimal(str(gone["hours"])) * Decimal(str(gone["billable_rate"]))
    contact = next(c for c in sandbox.month.xero_contacts if c.get("ContactNumber") == "HV-5000003")
    [invoice] = [
        inv
        for inv in live_invoices(sandbox.xero.invoices)
        if str(inv["Contact"]["ContactID"]).lower() == contact["ContactID"].lower()
    ]
    assert Decimal(str(invoice["SubTotal"])) == expected.quantize(Decimal("0.01"))


def test_invoice_writes_are_batched_and_lookups_constant(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = start_sandbox(
        SeedSpec(clients=130, entries=3000),
        harvest_settings=FAST_HARVEST,
        xero_settings=FAST_XERO,
    )
    try:
        monkeypatch.setenv("HARVEST_ACCESS_TOKEN", big.harvest.settings.access_token)
        monkeypatch.setenv("XERO_ACCESS_TOKEN", big.xero.settings.access_token)
        data = sandbox_config(big, db_url)
        clients = data["profiles"]["agency-monthly"]["mapping"]["clients"]
        clients.clear()
        for contact in big.month.xero_contacts:
            number = contact.get("ContactNumber") or ""
            if number.startswith("HV-"):
                clients[number[3:]] = {"contact_number": number}
        config = write_config(tmp_path / "c.yaml", data)
        report = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
        n = report["invoices_created"]
        assert n > 100
        assert big.xero.invoice_writes() <= math.ceil(n / 50)
        lookups = sum(count for call, count in big.xero.calls.items() if call.startswith("GET "))
        assert lookups <= 3  # contacts, items, our invoices by Reference
    finally:
        big.stop()


@pytest.mark.usefixtures("tokens")
def test_a_rejected_invoice_is_reported_and_the_others_go_through(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    data = sandbox_config(sandbox, db_url)
    rule = data["profiles"]["agency-monthly"]["mapping"]["clients"]["5000001"]
    rule["tax_type"] = "NOSUCHTAX"  # Xero will reject this one invoice
    config = write_config(tmp_path / "c.yaml", data)
    result = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert result.code == 1  # some invoices failed
    report = result.json()
    assert report["status"] == "partial"
    assert report["invoices_failed"] == 1
    expected = expected_subtotals(sandbox.month, clients=_mapped_clients(sandbox), tasks=TASKS)
    assert report["invoices_created"] == len(expected) - 1
    assert len(report["errors"]) == 1 and "Acme Corporation" in report["errors"][0]
    assert "NOSUCHTAX" in report["errors"][0] or "tax" in report["errors"][0].lower()
    failed = [inv for inv in report["invoices"] if inv["action"] == "failed"]
    assert failed and failed[0]["error"]

    # Fix the mapping: the next run creates just that invoice.
    rule["tax_type"] = "ZERORATEDOUTPUT"
    write_config(config, data)
    fixed = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert (fixed["invoices_created"], fixed["invoices_failed"]) == (1, 0)
    assert len(live_invoices(sandbox.xero.invoices)) == len(expected)


@pytest.mark.usefixtures("tokens")
def test_xero_429_and_503_are_waited_out(sandbox: Sandbox, db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    sandbox.xero.fail_next(429, retry_after=1)
    sandbox.xero.fail_next(503)
    result = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["invoices_created"] == len(live_invoices(sandbox.xero.invoices)) > 0
    # every call is counted, retries included: 3 look-ups + 1 write + 2 retried answers,
    # then one PUT per expense receipt attached to a new invoice (no look-up needed)
    attached = report["receipts_attached"]
    assert attached == sandbox.xero.calls["PUT /Invoices/{InvoiceID}/Attachments/{FileName}"]
    assert report["api_calls"]["xero"] == sum(sandbox.xero.calls.values()) == 6 + attached


@pytest.mark.usefixtures("tokens")
def test_a_draft_left_without_billable_entries_is_deleted_and_its_entries_released(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    assert run_cli("sync", "--config", config, "--period", PERIOD).code == 0
    client = 5000005
    for x in sandbox.month.expenses:
        if x["client"]["id"] == client:
            sandbox.harvest.edit_expense(x["id"], billable=False)
    mine = [
        e for e in sandbox.month.time_entries if e["client"]["id"] == client and eligible(e, PERIOD)
    ]
    for e in mine:
        sandbox.harvest.edit_entry(e["id"], billable=False, billable_rate=None)
    report = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert report["invoices_deleted"] == 1
    assert report["invoices_created"] == report["invoices_updated"] == 0
    statuses = Counter(inv["Status"] for inv in sandbox.xero.invoices.values())
    assert statuses["DELETED"] == 1

    # One entry becomes billable again: it goes on a new invoice, never the deleted one.
    sandbox.harvest.edit_entry(mine[0]["id"], billable=True, billable_rate=mine[0]["billable_rate"])
    again = run_cli("sync", "--config", config, "--period", PERIOD, "--json").json()
    assert again["invoices_created"] == 1
    assert again["entries_billed"] == 1


@pytest.mark.usefixtures("tokens")
def test_each_period_gets_its_own_invoices_and_earlier_periods_are_pulled_when_asked(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    clients = _mapped_clients(sandbox)
    october = run_cli("sync", "--config", config, "--period", "2026-10", "--json").json()
    november = run_cli("sync", "--config", config, "--period", "2026-11", "--json").json()
    expected_nov = expected_subtotals(sandbox.month, period="2026-11", clients=clients, tasks=TASKS)
    assert expected_nov and november["invoices_created"] == len(expected_nov)
    again = run_cli("sync", "--config", config, "--period", "2026-10", "--json").json()
    assert (again["invoices_created"], again["invoices_unchanged"]) == (
        0,
        october["invoices_created"],
    )
    # September was never pulled (the first pull started at October): asking for it pulls it.
    september = run_cli("sync", "--config", config, "--period", "2026-09", "--json").json()
    expected_sep = expected_subtotals(sandbox.month, period="2026-09", clients=clients, tasks=TASKS)
    assert expected_sep and september["invoices_created"] == len(expected_sep)
    by_client = client_of_contact(sandbox.month)
    for inv in live_invoices(sandbox.xero.invoices):
        period = str(inv["Reference"]).split("/")[2]
        client = by_client[str(inv["Contact"]["ContactID"]).lower()]
        expected = {"2026-09": expected_sep, "2026-11": expected_nov}.get(period)
        if expected is not None:
            assert Decimal(str(inv["SubTotal"])) == expected[client]


@pytest.mark.usefixtures("tokens")
def test_a_profile_being_synced_elsewhere_is_not_synced_twice(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", sandbox_config(sandbox, db_url))
    engine = open_database(db_url)
    other = Lease(engine, "agency-monthly", lambda: datetime.now(UTC), owner="worker-2:4242")
    other.acquire()
    blocked = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert blocked.code == 1
    [error] = blocked.json()["errors"]
    assert "being synced by worker-2:4242" in error
    assert sum(sandbox.harvest.calls.values()) == sum(sandbox.xero.calls.values()) == 0

    other.release()
    assert run_cli("sync", "--config", config, "--period", PERIOD).code == 0
    # a crashed holder's lease expires and is taken over
    stale = Lease(
        engine,
        "agency-monthly",
        lambda: datetime.now(UTC) - timedelta(hours=1),
        owner="crashed:1",
    )
    stale.acquire()
    assert run_cli("sync", "--config", config, "--period", PERIOD).code == 0
    engine.dispose()
