"""Billing modes on one invoice: which entries are billed by the hour, and the lines that
retainers and fixed fees add (README: Billing modes).

For one contact's invoice in one period:
- entries no agreement covers (and every expense) are billed by the hour, as usual;
- a retainer adds its line (quantity 1 × amount) on the period's first invoice for the
  contact, even without hours, and an overage line for the hours beyond those available. Its
  entries are on the invoice (so they count as billed) but have no lines of their own. A later
  invoice of the same period (the first was approved) adds only the further overage, and a
  zero-priced line showing the further hours;
- a fixed fee adds its milestones dated in the period (on the period's first invoice) and a
  zero-priced line showing the hours tracked, which are covered, not billed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from sqlmodel import Session, col, select

from connectors.base import Directory
from core.invoices import InvoicePlan, PlannedLine, build_lines
from core.model import EntryKind
from core.money import ZERO
from core.periods import Period
from core.tables import RetainerBalanceRow
from mapping.billing import (
    Agreement,
    FixedFee,
    Retainer,
    RetainerUsage,
    active_agreements,
    agreement_for,
    hours_text,
    milestones_in,
    retainer_usage,
)
from mapping.resolver import ContactKind, ContactRef, MappedEntry
from mapping.rules import ClientRule, MappingRules

ONE = Decimal(1)


@dataclass
class ModePlan:
    hourly: list[MappedEntry] = field(default_factory=list)
    lines: list[PlannedLine] = field(default_factory=list)
    covered: list[MappedEntry] = field(default_factory=list)
    retainers: list[RetainerUsage] = field(default_factory=list)


def contact_of(rule: ClientRule) -> ContactRef:
    """The contact an agreement's client is invoiced as, named as its rule names it."""
    if rule.contact_id is not None:
        return ContactRef(ContactKind.ID, str(rule.contact_id))
    if rule.contact_number is not None:
        return ContactRef(ContactKind.NUMBER, rule.contact_number)
    return ContactRef(ContactKind.NAME, rule.contact_name or "")


def currency_of(rules: MappingRules, agreement: Agreement) -> str:
    client = rules.clients[agreement.client]
    currency = agreement.currency or client.currency
    assert currency is not None  # MappingRules checks one is given
    return currency


def agreement_problem(agreement: Agreement, directory: Directory) -> str | None:
    """Why the target can't take the agreement's lines (an item it doesn't have), if so."""
    codes = {agreement.item_code}
    if isinstance(agreement, Retainer):
        codes.add(agreement.overage_item_code)
    else:
        codes.update(m.item_code for m in agreement.milestones)
    if directory.requires_item and not agreement.item_code:
        return "an item_code (this target needs one on every line)"
    if not directory.open_names:
        missing = sorted(c for c in codes if c and c not in directory.item_codes)
        if missing:
            return f"item {missing[0]} not found in the target"
    return None


def wanted(agreement: Agreement, period: Period) -> bool:
    """Whether the agreement puts a line on the period's invoice even without hours."""
    if isinstance(agreement, Retainer):
        return True
    return bool(milestones_in(agreement, period.start, period.end))


def plan_modes(
    members: Sequence[MappedEntry],
    present: Sequence[Agreement],
    rules: MappingRules,
    period: Period,
    seq: int,
    *,
    rolled_in: Callable[[str], Decimal],
    prior: Callable[[str], RetainerUsage | None],
    max_description: int | None = None,
) -> ModePlan:
    """Split one invoice's entries by billing mode and build the modes' lines.

    ``present``: the agreements invoiced to this contact and currency this period.
    ``rolled_in(key)``: a retainer's hours rolled over from the period before.
    ``prior(key)``: its usage on an earlier, approved invoice of this period, if any.
    """
    everyone = active_agreements([a for _where, a in rules.agreements()], period.start, period.end)
    here = {a.key: a for a in present}
    scopes: dict[str, list[MappedEntry]] = {key: [] for key in here}
    out = ModePlan()
    for mapped in members:
        agreement = (
            agreement_for(everyone, mapped.entry) if mapped.entry.kind is EntryKind.TIME else None
        )
        if agreement is None or agreement.key not in scopes:
            out.hourly.append(mapped)
        else:
            scopes[agreement.key].append(mapped)
    for key in sorted(here):
        agreement, scope = here[key], scopes[key]
        hours = sum((line.quantity for line in build_lines(scope)), ZERO)
        if isinstance(agreement, Retainer):
            _retainer(
                out,
                rules=rules,
                rule=agreement,
                period=period,
                seq=seq,
                hours=hours,
                scope=scope,
                rolled_in=rolled_in,
                prior=prior,
            )
        else:
            _fixed_fee(
                out, rules=rules, fee=agreement, period=period, seq=seq, hours=hours, scope=scope
            )
        out.covered.extend(scope)
    if max_description is not None:
        out.lines = [
            line
            if len(line.description) <= max_description
            else replace(line, description=line.description[: max_description - 1] + "…")
            for line in out.lines
        ]
    return out


def _line(
    rules: MappingRules,
    agreement: Agreement,
    *,
    description: str,
    quantity: Decimal,
    unit_price: Decimal,
    why: str,
    scope: Sequence[MappedEntry],
    item_code: str | None = None,
    account_code: str | None = None,
) -> PlannedLine:
    client = rules.clients[agreement.client]
    project = rules.projects.get(agreement.project) if agreement.project else None
    return PlannedLine(
        description=description,
        quantity=quantity,
        unit_price=unit_price,
        item_code=item_code or agreement.item_code,
        account_code=account_code or agreement.account_code,
        tax_type=client.tax_type or rules.default_tax_type,
        category=(project.qbo_class if project and project.qbo_class else client.qbo_class),
        rate_rule=why,
        rounding="none",
        entry_keys=tuple(str(m.entry.key) for m in scope),
    )


def _retainer(
    out: ModePlan,
    *,
    rules: MappingRules,
    rule: Retainer,
    period: Period,
    seq: int,
    hours: Decimal,
    scope: Sequence[MappedEntry],
    rolled_in: Callable[[str], Decimal],
    prior: Callable[[str], RetainerUsage | None],
) -> None:
    before = prior(rule.key)
    if before is None:
        usage = retainer_usage(
            rule, key=rule.key, seq=seq, used=hours, rolled_in=rolled_in(rule.key)
        )
        new_overage = usage.overage
    else:
        usage = retainer_usage(
            rule, key=rule.key, seq=seq, used=before.used + hours, rolled_in=before.rolled_in
        )
        new_overage = usage.overage - before.overage
    fields = {
        "period": str(period),
        "hours": hours_text(usage.included),
        "used": hours_text(usage.used),
        "available": hours_text(usage.available),
        "rolled_in": hours_text(usage.rolled_in),
        "rolled_out": hours_text(usage.rolled_out),
        "overage": hours_text(new_overage),
    }
    why = f"retainer {rule.key}"
    if before is None:
        out.lines.append(
            _line(
                rules,
                rule,
                description=rule.description.format_map(fields),
                quantity=ONE,
                unit_price=rule.amount,
                why=why,
                scope=(),
            )
        )
    elif hours > ZERO:
        out.lines.append(
            _line(
                rules,
                rule,
                description=rule.description.format_map(fields),
                quantity=hours,
                unit_price=ZERO,
                why=f"{why}: further hours of an invoiced period",
                scope=scope,
            )
        )
    else:
        return  # nothing new for a period whose retainer is already invoiced
    if new_overage > ZERO:
        out.lines.append(
            _line(
                rules,
                rule,
                description=rule.overage_description.format_map(fields),
                quantity=new_overage,
                unit_price=rule.overage_rate,
                why=f"{why} overage",
                scope=scope,
                item_code=rule.overage_item_code,
                account_code=rule.overage_account_code,
            )
        )
    out.retainers.append(usage)


def _fixed_fee(
    out: ModePlan,
    *,
    rules: MappingRules,
    fee: FixedFee,
    period: Period,
    seq: int,
    hours: Decimal,
    scope: Sequence[MappedEntry],
) -> None:
    why = f"fixed fee {fee.key}"
    if seq == 1:  # a later invoice of the period: its milestones are on the first one
        for milestone in milestones_in(fee, period.start, period.end):
            out.lines.append(
                _line(
                    rules,
                    fee,
                    description=milestone.description,
                    quantity=ONE,
                    unit_price=milestone.amount,
                    why=f"{why}: milestone {milestone.date}",
                    scope=(),
                    item_code=milestone.item_code,
                    account_code=milestone.account_code,
                )
            )
    if hours > ZERO:
        fields = {"period": str(period), "hours": hours_text(hours)}
        out.lines.append(
            _line(
                rules,
                fee,
                description=fee.hours_description.format_map(fields),
                quantity=hours,
                unit_price=ZERO,
                why=f"{why}: hours shown, not billed",
                scope=scope,
            )
        )


class RetainerBook:
    """Retainer balances as stored (table ``retainer_balances``), for planning one period."""

    def __init__(self, session: Session, profile: str, period: Period) -> None:
        try:
            before = str(period.previous())
        except ValueError:  # the first of explicit custom ranges
            before = None
        rows = session.exec(
            select(RetainerBalanceRow).where(
                RetainerBalanceRow.profile == profile,
                col(RetainerBalanceRow.period).in_([str(period), before or str(period)]),
            )
        )
        self._now: dict[str, list[RetainerBalanceRow]] = defaultdict(list)
        self._before: dict[str, RetainerBalanceRow] = {}
        for row in rows:
            if row.period == str(period):
                self._now[row.retainer].append(row)
            elif row.retainer not in self._before or row.seq > self._before[row.retainer].seq:
                self._before[row.retainer] = row

    def rolled_in(self, key: str) -> Decimal:
        """Hours rolled over from the period before: what its last invoice rolled out."""
        row = self._before.get(key)
        return row.hours_out if row is not None else ZERO

    def prior(self, key: str, seq: int) -> RetainerUsage | None:
        """The retainer's usage on the period's earlier invoice (approved, so seq moved on)."""
        earlier = [r for r in self._now.get(key, []) if r.seq < seq]
        if not earlier:
            return None
        row = max(earlier, key=lambda r: r.seq)
        return RetainerUsage(
            retainer=key,
            seq=row.seq,
            included=row.hours_included,
            rolled_in=row.hours_in,
            used=row.hours_used,
            overage=row.hours_overage,
            rolled_out=row.hours_out,
        )


def record_usage(session: Session, profile: str, plan: InvoicePlan, now: datetime) -> None:
    """Store the retainer balances an invoice describes, in the caller's transaction (the one
    that records the invoice). Planned again, a period overwrites its rows: never adds."""
    for usage in plan.retainers:
        # merge: the stored row for this key is loaded and overwritten, or a new one added
        session.merge(
            RetainerBalanceRow(
                profile=profile,
                retainer=usage.retainer,
                period=str(plan.slot.period),
                seq=usage.seq,
                invoice_key=plan.key,
                hours_included=usage.included,
                hours_in=usage.rolled_in,
                hours_used=usage.used,
                hours_overage=usage.overage,
                hours_out=usage.rolled_out,
                updated_at=now,
            )
        )
