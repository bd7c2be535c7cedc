"""`hourbridge preview --explain`: every planned line with why it has its price and hours."""

from __future__ import annotations

from rich.table import Table

from core.cliutil import out
from core.report import RunReport

DESCRIPTION_WIDTH = 60


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= DESCRIPTION_WIDTH else flat[: DESCRIPTION_WIDTH - 1] + "…"


def explain_lines(report: RunReport) -> None:
    """One table of lines, invoice by invoice, when the report carries explanations."""
    explained = [inv for inv in report.invoices if inv.explain]
    if not explained:
        return
    table = Table(title="Lines, with the rule that priced each and its rounding")
    for column in ("contact", "line", "entries"):
        table.add_column(column)
    for column in ("hours", "unit price", "amount"):
        table.add_column(column, justify="right")
    table.add_column("rate from")
    table.add_column("rounding")
    for inv in explained:
        for line in inv.explain or []:
            table.add_row(
                inv.contact,
                _short(line.description),
                str(line.entries),
                str(line.quantity),
                str(line.unit_price),
                f"{line.amount:,.2f}",
                line.rate_rule,
                line.rounding,
                end_section=line is (inv.explain or [])[-1],
            )
    out.print(table)
