"""End to end: a mid-month rate change splits a line in the fake Xero, and
`preview --explain` names the rule behind each price."""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox.server import Sandbox
from tests.conftest import sandbox_config, write_config
from tests.helpers import client_of_contact, eligible, live_invoices, quickbooks_config, run_cli

PERIOD = "2026-10"
TASKS = range(8000001, 8000007)
BEFORE, AFTER = Decimal("111.11"), Decimal("222.22")  # prices no tracker rate in the seed has


def _pick(sandbox: Sandbox) -> tuple[int, int, int, int]:
    """A (client, project, user, task) with billable hours both before and from the 15th."""
    sides: dict[tuple[int, int, int, int], set[bool]] = defaultdict(set)
    for e in sandbox.month.time_entries:
        if not eligible(e, PERIOD) or e["task"]["id"] not in TASKS:
            continue
        if e["client"]["id"] in sandbox.month.unmapped_client_ids:
            continue
        key = (e["client"]["id"], e["project"]["id"], e["user"]["id"], e["task"]["id"])
        sides[key].add(e["spent_date"] >= "2026-10-15")
    return min(key for key, seen in sides.items() if seen == {False, True})


def _hours(sandbox: Sandbox, key: tuple[int, int, int, int], *, after: bool) -> Decimal:
    return sum(
        (
            Decimal(str(e["hours"]))
            for e in sandbox.month.time_entries
            if eligible(e, PERIOD)
            and (e["client"]["id"], e["project"]["id"], e["user"]["id"], e["task"]["id"]) == key
            and (e["spent_date"] >= "2026-10-15") == after
        ),
        Decimal(0),
    )


def _task_name(sandbox: Sandbox, task_id: int) -> str:
    return next(str(t["name"]) for t in sandbox.month.tasks if t["id"] == task_id)


@pytest.mark.usefixtures("tokens")
def test_a_mid_month_rate_change_splits_the_line_and_explain_names_the_rule(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    client, project, user, task = _pick(sandbox)
    data = sandbox_config(sandbox, db_url)
    data["profiles"]["agency-monthly"]["mapping"]["rates"] = [
        {"project": str(project), "user": str(user), "rate": str(BEFORE), "until": "2026-10-14"},
        {"project": str(project), "user": str(user), "rate": str(AFTER), "from": "2026-10-15"},
    ]
    config = write_config(tmp_path / "c.yaml", data)
    hours_before = _hours(sandbox, (client, project, user, task), after=False)
    hours_after = _hours(sandbox, (client, project, user, task), after=True)
    assert hours_before > 0 and hours_after > 0
    name = _task_name(sandbox, task)
    rule_before = f"rates[0]: project+user {project}/{user} until 2026-10-14"
    rule_after = f"rates[1]: project+user {project}/{user} from 2026-10-15"

    preview = run_cli("preview", "--config", config, "--period", PERIOD, "--explain", "--json")
    assert preview.code == 0, preview.stderr
    contacts = client_of_contact(sandbox.month)
    explained: dict[str, Any] = {}
    for inv in preview.json()["invoices"]:
        for line in inv["explain"]:
            if line["rate_rule"] in (rule_before, rule_after) and line["description"] == name:
                explained[line["rate_rule"]] = line
    assert set(explained) == {rule_before, rule_after}
    assert Decimal(explained[rule_before]["unit_price"]) == BEFORE
    assert Decimal(explained[rule_before]["quantity"]) == hours_before
    assert Decimal(explained[rule_after]["unit_price"]) == AFTER
    assert Decimal(explained[rule_after]["quantity"]) == hours_after
    for line in explained.values():
        amount = Decimal(line["quantity"]) * Decimal(line["unit_price"])
        assert Decimal(line["amount"]) == amount.quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert line["rounding"] == "none"
    # every other line of the preview names where its price came from too
    lines = [line for inv in preview.json()["invoices"] for line in inv["explain"]]
    assert all(line["rate_rule"] for line in lines)
    assert {line["rate_rule"] for line in lines} >= {"tracker rate", "expense at cost"}

    table = run_cli("preview", "--config", config, "--period", PERIOD, "--explain")
    assert table.code == 0, table.stderr
    assert "rates[0]:" in table.stdout and "rates[1]:" in table.stdout
    assert "rate from" in table.stdout

    synced = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert synced.code == 0, synced.stderr
    ours = [
        inv
        for inv in live_invoices(sandbox.xero.invoices)
        if contacts[str(inv["Contact"]["ContactID"]).lower()] == client
    ]
    assert len(ours) == 1
    split = sorted(
        (
            Decimal(str(li["UnitAmount"])),
            Decimal(str(li["Quantity"])),
            Decimal(str(li["LineAmount"])),
        )
        for li in ours[0]["LineItems"]
        if li.get("Description") == name and Decimal(str(li["UnitAmount"])) in (BEFORE, AFTER)
    )
    assert split == [
        (BEFORE, hours_before, (hours_before * BEFORE).quantize(Decimal("0.01"), ROUND_HALF_UP)),
        (AFTER, hours_after, (hours_after * AFTER).quantize(Decimal("0.01"), ROUND_HALF_UP)),
    ]


@pytest.mark.usefixtures("tokens")
def test_notes_longer_than_quickbooks_takes_are_cut_and_the_invoice_goes_through(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake QuickBooks refuses a Line.Description over 4,000 characters, as QuickBooks
    does: one entry's 6,000-character note is cut at a word boundary, marked, and billed."""
    monkeypatch.setenv("QUICKBOOKS_ACCESS_TOKEN", sandbox.quickbooks.settings.access_token)
    entry = next(
        e
        for e in sandbox.month.time_entries
        if eligible(e, PERIOD)
        and e["task"]["id"] in TASKS
        and e["client"]["id"] not in sandbox.month.unmapped_client_ids
    )
    sandbox.harvest.edit_entry(entry["id"], notes="lorem ipsum " * 500)
    data = quickbooks_config(sandbox, f"sqlite:///{tmp_path / 'qbo.db'}")
    client_rule = data["profiles"]["agency-monthly"]["mapping"]["clients"][
        str(entry["client"]["id"])
    ]
    client_rule["grouping"] = "entry"  # one line per entry: "{task} ({user}, {date}): {notes}"
    config = write_config(tmp_path / "qbo.yaml", data)

    synced = run_cli("sync", "--config", config, "--period", PERIOD, "--json")
    assert synced.code == 0, synced.stdout + synced.stderr
    assert synced.json()["errors"] == []
    head = f"{_task_name(sandbox, entry['task']['id'])} ({entry['user']['name']}, "
    cut_lines = [
        str(line.get("Description"))
        for inv in sandbox.quickbooks.invoices.values()
        for line in inv.get("Line", [])
        if str(line.get("Description", "")).startswith(head)
        and "lorem ipsum" in str(line.get("Description"))
    ]
    assert len(cut_lines) == 1
    text = cut_lines[0]
    assert len(text) <= 4000 and text.endswith("ipsum…")  # cut between words, and marked
    assert len(text) > 3900  # only as much as needed was cut
