"""The sync report's table of drifts: billed entries that changed, their delta and handling."""

from __future__ import annotations

from rich.table import Table

from core.cliutil import out
from core.report import RunReport


def drift_lines(report: RunReport) -> None:
    """One row per drift, then the delta per currency (nothing when there is none)."""
    if not report.drifts:
        return
    table = Table(title="Billed entries changed in the tracker (drift)")
    for column in ("entry", "invoice", "change", "hours", "delta h", "delta", "handling"):
        table.add_column(column, justify="right" if column.startswith("delta") else "left")
    table.add_column("outcome")
    for d in report.drifts:
        table.add_row(
            d.entry,
            d.invoice,
            d.change,
            f"{d.hours_before} → {d.hours_after}",
            str(d.delta_hours),
            f"{d.delta_amount:,.2f} {d.currency}",
            d.handling,
            d.outcome,
        )
    out.print(table)
    for currency, sums in sorted(report.drift_totals.items()):
        out.print(
            f"drift {currency}: {sums['hours']} h, {sums['amount']:,.2f}",
            highlight=False,
        )
