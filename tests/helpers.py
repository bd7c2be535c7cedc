"""Helpers shared by the end-to-end tests: run the CLI, and compute expectations from the seed."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from core.cli import app
from sandbox.seed import AgencyMonth
from sandbox.server import Sandbox
from tests.conftest import ROOT, sandbox_config


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        data = json.loads(self.stdout)
        assert isinstance(data, dict)
        return data

    def json_list(self) -> list[dict[str, Any]]:
        data = json.loads(self.stdout)
        assert isinstance(data, list)
        return data


def run_cli(*args: str | Path) -> CliResult:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)


def eligible(entry: dict[str, Any], period: str) -> bool:
    """The billing rule, restated from the issue: approved, billable, not billed, not running."""
    return (
        entry["is_closed"]
        and entry["billable"]
        and not entry["is_billed"]
        and not entry["is_running"]
        and str(entry["spent_date"]).startswith(period)
    )


def eligible_expense(expense: dict[str, Any], period: str) -> bool:
    return (
        expense["is_closed"]
        and expense["billable"]
        and not expense["is_billed"]
        and str(expense["spent_date"]).startswith(period)
    )


def expected_subtotals(
    month: AgencyMonth,
    *,
    period: str = "2026-10",
    clients: Iterable[int],
    tasks: Iterable[int],
    expenses: bool = True,
) -> dict[int, Decimal]:
    """Σ hours × rate (+ expenses at cost) per client, to the cent, straight from the seed."""
    wanted_clients, wanted_tasks = set(clients), set(tasks)
    sums: dict[int, Decimal] = defaultdict(Decimal)
    for e in month.time_entries:
        if not eligible(e, period):
            continue
        if e["client"]["id"] in wanted_clients and e["task"]["id"] in wanted_tasks:
            sums[e["client"]["id"]] += Decimal(str(e["hours"])) * Decimal(str(e["billable_rate"]))
    for x in month.expenses if expenses else []:
        if eligible_expense(x, period) and x["client"]["id"] in wanted_clients:
            sums[x["client"]["id"]] += Decimal(str(x["total_cost"]))
    return {c: v.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) for c, v in sums.items()}


def client_of_contact(month: AgencyMonth) -> dict[str, int]:
    """Xero ContactID (lower case) → Harvest client id, through the seed's ContactNumber."""
    out: dict[str, int] = {}
    for contact in month.xero_contacts:
        number = contact.get("ContactNumber") or ""
        if number.startswith("HV-"):
            out[str(contact["ContactID"]).lower()] = int(number[3:])
    return out


def invoices_per_contact(invoices: dict[str, dict[str, Any]]) -> Counter[tuple[str, str]]:
    """How many live invoices each (contact, currency) has in the fake Xero: must be 1."""
    return Counter(
        (str(inv["Contact"]["ContactID"]).lower(), str(inv["CurrencyCode"]))
        for inv in live_invoices(invoices)
    )


def live_invoices(invoices: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [inv for inv in invoices.values() if inv.get("Status") not in ("DELETED", "VOIDED")]


def quickbooks_config(sandbox: Sandbox, db_url: str) -> dict[str, Any]:
    """The example profile, re-pointed at QuickBooks: contacts by DisplayName, QBO tax codes."""
    data = sandbox_config(sandbox, db_url)
    data["targets"] = {
        "qbo": {
            "type": "quickbooks",
            "realm_id": sandbox.quickbooks.settings.realm_id,
            "access_token": "${QUICKBOOKS_ACCESS_TOKEN}",
            "environment": "sandbox",
            "base_url": sandbox.quickbooks_url + "/v3",
            "max_attempts": 3,
        }
    }
    profile = data["profiles"]["agency-monthly"]
    profile["target"] = "qbo"
    names = {str(c["id"]): c["name"] for c in sandbox.month.clients}
    mapping = profile["mapping"]
    for client_id, rule in mapping["clients"].items():
        tax = "GST on Income" if rule["currency"] == "NZD" else "Zero-rated"
        mapping["clients"][client_id] = {
            "contact_name": names[client_id],
            "tax_type": tax,
            "currency": rule["currency"],
        }
    mapping["default_tax_type"] = "GST on Income"
    for rule in mapping["expense_categories"].values():
        rule["item_code"] = "SUPPORT"  # every QuickBooks line needs an item
    return data


def commented_example(first_line: str) -> dict[str, Any]:
    """The YAML of a commented-out example block in config.example.yaml: the lines under a
    profile's ``mapping:`` that start with ``first_line`` (after the comment prefix), up to the
    first line that is not commented. Prose between keys stays a comment."""
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    prefix = "      # "
    lines = text.splitlines()
    start = lines.index(prefix + first_line)
    block = []
    for line in lines[start:]:
        if not line.startswith(prefix):
            break
        content = line[len(prefix) :]
        # keys and their indented values are YAML; the prose between them is comment
        block.append(content if re.match(r"^([a-z_]+:| )", content) else "# " + content)
    examples = yaml.safe_load("\n".join(block))
    assert isinstance(examples, dict)
    return examples
