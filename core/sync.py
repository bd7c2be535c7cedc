"""The sync engine: pull → canonical entries → mapping → invoice plans and ledger → target.

Crash safety comes from the order of commits:
1. entries and the source cursor are committed together;
2. before a write, the ledger marks its entries ``pushed`` and the invoice its ``pushed_hash``;
3. the target's answer marks them ``confirmed``.
A run that died between 2 and 3 is settled by the next run, which looks the invoices up by
their Reference key before planning anything: a write that landed is confirmed, one that did
not is planned again. So a re-run never creates a second invoice, and no entry is billed twice.

A run asked to stop (``stop``, set by SIGTERM/SIGINT: core/shutdown.py) stops at the next safe
point: between sources (a source's pull is kept only once complete), before the push, between
the target's batches, or before the follow-up writes. The batch in flight is answered and
recorded first; the invoices not sent go back to what the target last confirmed (as if their
write had not landed), so the next run plans and sends them. The run is saved ``interrupted``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Engine
from sqlmodel import Session, select

from connectors.base import (
    AccountingTarget,
    AttachmentTarget,
    BatchedTarget,
    CreditNotePlan,
    CreditNoteTarget,
    Directory,
    InvoicedWriter,
    PullRequest,
    PushResult,
    ReceiptSource,
    RemoteContact,
    RemoteInvoice,
    TrackerSource,
)
from core import ledger, mapping_store
from core.billing import (
    RetainerBook,
    agreement_problem,
    contact_of,
    currency_of,
    plan_modes,
    record_usage,
    wanted,
)
from core.closing import Placement, placement
from core.drift import DriftBook, DriftKey, changed_elsewhere
from core.errors import HourbridgeError
from core.http import CallCounter
from core.invoices import InvoicePlan, InvoiceSlot, build_plan, invoice_key, reference_prefix
from core.lease import Lease
from core.model import EntryKind, SourceEntry, WritebackResult
from core.money import ZERO
from core.periods import MONTHLY, Period, PeriodScheme
from core.receipts import InvoiceReceipts, attach_receipts, record_receipts, recorded_receipts
from core.report import (
    InvoiceAction,
    InvoiceSummary,
    LineExplanation,
    PendingReason,
    RunReport,
    UnmappedItem,
    count_classes,
    drift_totals,
    run_events,
)
from core.shutdown import StopCheck, never
from core.tables import (
    DriftRow,
    DriftState,
    InvoiceRow,
    InvoiceStatus,
    LedgerRow,
    LedgerState,
    RunEventRow,
    RunStatus,
    SyncCursor,
    SyncRunRow,
    WritebackRow,
)
from mapping.billing import Agreement, active_agreements, agreement_for
from mapping.resolver import ContactKind, ContactRef, MappedEntry, Resolver, Unmapped
from mapping.rules import MappingRules

log = structlog.get_logger("hourbridge.sync")

Clock = Callable[[], datetime]
CURSOR_SAFETY = timedelta(minutes=10)
UTC_ZONE = ZoneInfo("UTC")
DELETE_MARK = "delete"  # pushed_hash of a write that deletes an emptied DRAFT


def utcnow() -> datetime:
    return datetime.now(UTC)


class Stage(StrEnum):
    PULL = "pull"
    MAP = "map"
    PUSH = "push"


@dataclass(frozen=True)
class ProgressEvent:
    """How far a stage has got: ``done`` of ``total`` items (None while unknown, as when
    pulling). ``final`` marks the stage's (or, when pulling, one source's) last event."""

    stage: Stage
    done: int
    total: int | None
    detail: str = ""
    final: bool = False


Progress = Callable[[ProgressEvent], None]


def no_progress(event: ProgressEvent) -> None:
    """The default: report nothing."""


@dataclass(frozen=True)
class Profile:
    name: str
    sources: tuple[TrackerSource, ...]
    target: AccountingTarget
    rules: MappingRules
    reference_prefix: str
    due_days: int
    # True: the config gives no `mapping:`; each run reads the latest version from the
    # database's mapping store (core.mapping_store) instead of ``rules``.
    mapping_stored: bool = False
    drift: str = "flag"  # an entry edited after its invoice left DRAFT: see core.drift
    periods: PeriodScheme = MONTHLY  # how time is cut into periods, and when they close
    timezone: ZoneInfo = UTC_ZONE  # the organisation's


@dataclass
class _Plan:
    plans: list[InvoicePlan] = field(default_factory=list)
    unmapped: dict[str, UnmappedItem] = field(default_factory=dict)


class _StopRequestedError(Exception):
    """A stop was asked and the run reached a safe point: it ends ``interrupted``.
    ``message`` says where it stopped and what is left; ``left``: invoice writes not sent."""

    def __init__(self, message: str, left: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.left = left


class SyncEngine:
    def __init__(
        self,
        engine: Engine,
        profile: Profile,
        *,
        clock: Clock = utcnow,
        api_calls: Callable[[], dict[str, int]] = dict,
        counter: CallCounter | None = None,
        progress: Progress = no_progress,
        scrub: Callable[[str], str] = str,
        stop: StopCheck = never,
    ) -> None:
        self._engine = engine
        self._p = profile
        self._clock = clock
        self._api_calls = api_calls
        self._counter = counter  # retries per service, for the report and its events
        self._progress = progress  # rich bars on a terminal, log lines under the scheduler
        # Removes secrets (the config's tokens, Bearer values) from every message we store or
        # print: a provider may echo a token in an error.
        self._scrub = scrub
        # True once SIGTERM/SIGINT (or a caller) asked the run to stop: checked at safe points.
        self._stop = stop
        self._resolver = Resolver(profile.rules)
        self.directory: Directory | None = None  # the target's, as the last run fetched it
        self.lease = Lease(engine, profile.name, clock)
        self._writers = {s.name: s for s in profile.sources if isinstance(s, InvoicedWriter)}
        # Import files wait for a person to confirm the import before their entries are billed.
        self._awaiting = bool(getattr(profile.target, "awaits_confirmation", False))
        self._held = LedgerState.EXPORTED if self._awaiting else LedgerState.CONFIRMED
        self._explain = False
        self._drifts = self._drift_book()

    def _drift_book(self) -> DriftBook:
        return DriftBook(
            profile=self._p.name,
            prefix=self._p.reference_prefix,
            mode=self._p.drift,
            resolver=self._resolver,
            clock=self._clock,
        )

    # -- entry point ----------------------------------------------------------------------

    def run(
        self,
        period: Period,
        *,
        dry_run: bool = False,
        explain: bool = False,
        trigger: str = "manual",
        retry_of: str | None = None,
        only_invoices: frozenset[str] | None = None,
    ) -> RunReport:
        """Sync ``period``. ``explain``: each invoice in the report lists its lines with the
        rule that priced them and how their hours were rounded. ``only_invoices`` (a retry of
        failed invoices) restricts the writes to those invoice keys; everything else is
        reconciled and counted as usual."""
        self._explain = explain
        self._drifts = self._drift_book()
        report = RunReport(
            run_id=uuid.uuid4().hex,
            profile=self._p.name,
            period=str(period),
            dry_run=dry_run,
            trigger=trigger,
            retry_of=retry_of,
        )
        # Every log line during the run (connectors' and progress lines included) carries these.
        with structlog.contextvars.bound_contextvars(
            run_id=report.run_id, profile=self._p.name, period=str(period)
        ):
            return self._run(report, period, only_invoices)

    def _run(
        self, report: RunReport, period: Period, only_invoices: frozenset[str] | None
    ) -> RunReport:
        dry_run = report.dry_run
        bound = log.bind(run_id=report.run_id, profile=self._p.name, period=str(period))
        started = self._clock()
        bound.info("sync.start", dry_run=dry_run)
        leased = False
        failure: BaseException | None = None
        try:
            started = self._take_lease(report)
            leased = True
            self._stages(period, report, dry_run=dry_run, only_invoices=only_invoices)
        except _StopRequestedError as stopped:
            report.status = RunStatus.INTERRUPTED.value
            report.invoices_left = stopped.left
            report.warnings.append(stopped.message)
            bound.warning("sync.interrupted", reason=stopped.message, invoices_left=stopped.left)
        except HourbridgeError as exc:
            failure = exc
            report.errors.append(self._scrub(str(exc)))
            report.status = RunStatus.FAILED.value
            bound.error("sync.failed", error=str(exc))
        except Exception as exc:  # a bug or an unexpected library error: record it, then raise
            failure = exc
            report.errors.append(self._scrub(f"internal error: {type(exc).__name__}: {exc}"))
            report.status = RunStatus.FAILED.value
            bound.exception("sync.crashed")
            raise
        finally:
            finished = self._clock()
            if leased:
                self.lease.release()
                bound.info("lease.released")
            self._count_calls(report)
            self._save_run(report, started, finished=finished, failure=failure)
        bound.info(
            "sync.done",
            status=report.status,
            created=report.invoices_created,
            updated=report.invoices_updated,
            unchanged=report.invoices_unchanged,
            failed=report.invoices_failed,
        )
        return report

    def _stages(
        self,
        period: Period,
        report: RunReport,
        *,
        dry_run: bool,
        only_invoices: frozenset[str] | None,
    ) -> None:
        """Pull, reconcile, plan, then push (or only summarise, for a preview)."""
        self._load_stored_mapping(report)
        for source in self._p.sources:
            self._checkpoint(f"before pulling {source.name}")
            report.entries_pulled += self._pull(source, period, report)
        self._checkpoint("after pulling, before planning")
        self.lease.renew()
        directory = self._p.target.load_directory()
        self.directory = directory
        remote = self._p.target.find_invoices(self._prefix(period), period)
        planned = self._reconcile_and_plan(period, directory, remote, report)
        actions = self._decide(planned.plans, remote, only_invoices)
        report.unmapped = sorted(
            planned.unmapped.values(), key=lambda u: (-u.at_stake(), -u.entries, u.what)
        )
        if dry_run:
            self._summarise(report, actions)
        else:
            writes = sum(1 for _p, a, _f in actions if a is not InvoiceAction.UNCHANGED)
            self._checkpoint("before pushing", left=writes)
            self._push(actions, report)
            self._checkpoint("after pushing every invoice, before credit notes")
            self._settle_drifts(directory, period, report)
            self._after_push(actions, report)
        report.status = (
            RunStatus.PARTIAL.value if report.invoices_failed else RunStatus.SUCCEEDED.value
        )

    def _checkpoint(self, where: str, left: int = 0) -> None:
        """A safe point: if a stop was asked, end the run here (``left`` invoice writes not
        sent; nothing after this point has been written)."""
        if self._stop():
            raise _StopRequestedError(_stopped_message(where, left), left)

    def _load_stored_mapping(self, report: RunReport) -> None:
        """A profile without `mapping:` in its config maps with its latest stored version."""
        if not self._p.mapping_stored:
            return
        with Session(self._engine) as session:
            stored = mapping_store.current(session, self._p.name)
        if stored is None:
            report.warnings.append(mapping_store.no_mapping_message(self._p.name))
            self._resolver = Resolver(MappingRules())
            return
        report.mapping_version = stored.version
        self._resolver = Resolver(stored.rules)

    def _take_lease(self, report: RunReport) -> datetime:
        """Acquire the profile's lease, then record the run as running. The run row appears
        once the lease is ours, so the runs of a profile that held it never overlap in the runs
        table: [started_at, finished_at] lies within the hold."""
        self.lease.acquire()
        started = self._clock()
        log.info("lease.acquired", run_id=report.run_id, owner=self.lease.owner)
        with Session(self._engine) as session:
            # A run row says "running" only while its run holds the lease; now that we hold
            # it, any other such row of this profile belongs to a process that died.
            orphans = session.exec(
                select(SyncRunRow).where(
                    SyncRunRow.profile == self._p.name,
                    SyncRunRow.status == RunStatus.RUNNING.value,
                    SyncRunRow.id != report.run_id,
                )
            ).all()
            for orphan in orphans:
                orphan.status = RunStatus.INTERRUPTED.value
                orphan.finished_at = started
                session.add(orphan)
                log.warning("run.interrupted_found", interrupted_run=orphan.id)
            session.commit()
        self._save_run(report, started, finished=None)
        return started

    def _count_calls(self, report: RunReport) -> None:
        report.api_calls = self._api_calls()
        if self._counter is not None:
            report.api_retries = dict(sorted(self._counter.retries.items()))
            report.api_rate_limited = dict(sorted(self._counter.rate_limited.items()))
            report.api_remaining = {k: dict(v) for k, v in sorted(self._counter.remaining.items())}

    def _reconcile_and_plan(
        self,
        period: Period,
        directory: Directory,
        remote: dict[str, RemoteInvoice],
        report: RunReport,
    ) -> _Plan:
        # An entry billed on another period's invoice changed: that invoice may have left
        # DRAFT since its period was synced. Look it up, so the change is handled now.
        with Session(self._engine) as session:
            stale = changed_elsewhere(session, self._p.name, str(period))
        others = [self._p.periods.parse(text) for text in stale]
        elsewhere = [
            (other, self._p.target.find_invoices(self._prefix(other), other)) for other in others
        ]
        with Session(self._engine) as session:
            for other, found in elsewhere:
                self._reconcile(session, other, found, report)
            self._reconcile(session, period, remote, report)
            planned = self._plan(session, period, directory, report)
            if report.dry_run:
                self._report_drifts(report, None)
                session.rollback()  # a preview changes nothing, not even our own records
            else:
                session.commit()
        return planned

    def _prefix(self, period: Period) -> str:
        return reference_prefix(self._p.reference_prefix, self._p.name, period)

    def _report_drifts(self, report: RunReport, session: Session | None) -> None:
        report.drifts, report.drifts_noted = self._drifts.summaries(session)
        report.drift_totals = drift_totals(report.drifts)

    # -- 1. pull --------------------------------------------------------------------------

    def _pull(self, source: TrackerSource, period: Period, report: RunReport) -> int:
        with Session(self._engine) as session:
            cursor = ledger.get_cursor(session, source.name)
        started = self._clock()
        # Sources that cannot report deletions list the period in full, to reveal them.
        window = None if source.reports_deletions else (period.start, period.end)
        if cursor is None or period.start < cursor.covered_from:
            spent_from = period.start if cursor is None else min(period.start, cursor.covered_from)
            request = PullRequest(spent_from=spent_from, updated_since=None, window=window)
        else:
            request = PullRequest(
                spent_from=cursor.covered_from, updated_since=cursor.updated_since, window=window
            )
        entries: list[SourceEntry] = []
        self._progress(ProgressEvent(Stage.PULL, 0, None, source.name))
        for entry in source.pull(request):
            # Stopping mid-source keeps nothing of it: a partial listing must not move the
            # cursor, nor mark the entries it did not reach as deleted.
            self._checkpoint(f"while pulling {source.name} (its partial pull is discarded)")
            entries.append(entry)
            self._progress(ProgressEvent(Stage.PULL, len(entries), None, source.name))
        self._progress(ProgressEvent(Stage.PULL, len(entries), len(entries), source.name, True))
        newest = max((e.updated_at for e in entries), default=None)
        with Session(self._engine) as session:
            changes = ledger.upsert_entries(session, source.name, entries, started, window=window)
            report.entries_changed.extend(changes)
            for change in changes:
                log.info("entry.changed", **asdict(change))
            # The cursor moves in the same transaction as the entries it covers. It never passes
            # the newest change seen, nor "now" less a margin for clock skew, nor goes backward.
            mark = started - CURSOR_SAFETY
            if newest is not None:
                mark = min(mark, newest)
            row = ledger.get_cursor(session, source.name)
            if row is None:
                row = SyncCursor(
                    source=source.name,
                    covered_from=request.spent_from,
                    updated_since=mark,
                    updated_at=started,
                )
            else:
                row.covered_from = min(row.covered_from, request.spent_from)
                if newest is not None:
                    row.updated_since = max(row.updated_since, mark)
                row.updated_at = started
            session.add(row)
            session.commit()
        return len(entries)

    # -- 2. reconcile with the target's truth ---------------------------------------------

    def _reconcile(
        self,
        session: Session,
        period: Period,
        remote: dict[str, RemoteInvoice],
        report: RunReport,
    ) -> None:
        """Settle writes a previous run left unconfirmed, and notice invoices no longer DRAFT.

        Only this period's invoices: ``remote`` holds what the look-up found for its prefix.
        """
        for key, row in ledger.invoice_rows(session, self._p.name).items():
            if row.period != str(period):
                continue
            found = remote.get(key)
            rows = ledger.rows_for_invoice(session, key)
            if row.pushed_hash == DELETE_MARK and found is None:
                found = RemoteInvoice(  # deleted outright (QuickBooks): the delete landed
                    invoice_id=row.remote_id or "",
                    number=row.number,
                    reference=key,
                    status="DELETED",
                    content_hash="",
                    subtotal=row.subtotal,
                    total_tax=row.total_tax or row.subtotal * 0,
                    total=row.total or row.subtotal * 0,
                )
            if row.pushed_hash is not None:
                landed = found is not None and (
                    found.content_hash == row.pushed_hash
                    or (row.pushed_hash == DELETE_MARK and found.status == "DELETED")
                )
                if landed and found is not None:
                    # a write an earlier run never saw answered: its entries are billed now
                    newly = self._confirm(session, row, found, rows)
                    report.entries_billed += 0 if report.dry_run else newly
                else:
                    self._revert(session, row, rows)
            if found is not None:
                row.remote_id = found.invoice_id
                row.number = found.number
                row.remote_status = found.status
                if found.status != "DRAFT":
                    row.status = InvoiceStatus.LOCKED.value
                    for lrow in ledger.rows_for_invoice(session, key):
                        if lrow.confirmed_hash is None:
                            session.delete(lrow)  # never reached the target: bill it anew
                elif row.status not in (
                    InvoiceStatus.FAILED.value,
                    InvoiceStatus.LOCKED.value,
                    InvoiceStatus.EXPORTED.value,
                ):
                    row.status = InvoiceStatus.DRAFT.value
                session.add(row)

    def _confirm(
        self, session: Session, row: InvoiceRow, found: RemoteInvoice, rows: list[LedgerRow]
    ) -> int:
        """The write with ``row.pushed_hash`` landed. Returns how many entries became billed."""
        newly = 0
        now = self._clock()
        for lrow in rows:
            if lrow.state == LedgerState.PUSHED.value:
                if lrow.confirmed_hash is None and not self._awaiting:
                    newly += 1
                    if lrow.source in self._writers:
                        # recorded with the confirmation, so a crash can't lose it
                        session.merge(
                            WritebackRow(
                                source=lrow.source,
                                source_id=lrow.source_id,
                                invoice_key=row.key,
                                updated_at=now,
                            )
                        )
                lrow.state = self._held.value
                lrow.confirmed_hash = found.content_hash
                lrow.updated_at = now
                session.add(lrow)
            else:
                session.delete(lrow)  # not in the latest content: released from the invoice
        self._drifts.confirm(session, row.key)
        row.content_hash = found.content_hash
        row.pushed_hash = None
        row.remote_id = found.invoice_id
        row.number = found.number
        row.remote_status = found.status
        row.subtotal = found.subtotal
        row.total_tax = found.total_tax
        row.total = found.total
        row.error = None
        if found.status != "DRAFT":
            row.status = InvoiceStatus.LOCKED.value
        else:
            row.status = (
                InvoiceStatus.EXPORTED.value if self._awaiting else InvoiceStatus.DRAFT.value
            )
        row.updated_at = now
        session.add(row)
        return newly

    def _revert(self, session: Session, row: InvoiceRow, rows: list[LedgerRow]) -> None:
        """The write did not land: entries go back to what the target last confirmed."""
        for lrow in rows:
            if lrow.confirmed_hash is not None:
                lrow.state = self._held.value
                session.add(lrow)
            else:
                session.delete(lrow)
        self._drifts.revert(session, row.key)
        row.pushed_hash = None
        session.add(row)

    # -- 3. plan ---------------------------------------------------------------------------

    def _plan(
        self, session: Session, period: Period, directory: Directory, report: RunReport
    ) -> _Plan:
        out = _Plan()
        invoices = ledger.invoice_rows(session, self._p.name)
        groups: dict[tuple[ContactRef, str], list[MappedEntry]] = defaultdict(list)
        pending = report.entries_pending
        now = self._clock()
        broken = self._broken(directory)
        everyone = active_agreements(
            [a for _where, a in self._p.rules.agreements()], period.start, period.end
        )

        stored = list(self._entries(session))
        for done, (entry, lrow) in enumerate(stored, start=1):
            self._progress(ProgressEvent(Stage.MAP, done, len(stored), final=done == len(stored)))
            current = invoices.get(lrow.invoice_key) if lrow is not None else None
            if (
                lrow is not None
                and current is not None
                and self._billed_elsewhere(session, period, entry, lrow, current)
            ) or entry.deleted:
                continue
            place = placement(
                self._p.periods,
                entry.spent_date,
                period,
                now,
                self._p.timezone,
                on_our_invoice=current is not None,
            )
            outcome = self._classify(entry, place, directory, on_our_invoice=current is not None)
            if isinstance(outcome, MappedEntry):
                outcome = _mode_checked(outcome, place, self._p.rules, everyone, broken)
            if outcome is None:
                continue
            if isinstance(outcome, PendingReason):
                pending[outcome.value] += 1
                continue
            if isinstance(outcome, Unmapped):
                pending[PendingReason.UNMAPPED.value] += 1
                _count_unmapped(out.unmapped, outcome)
                continue
            mapped = outcome
            if current is not None:
                # An entry already on one of our DRAFT invoices stays on it.
                slot_contact = _parse_contact(current.contact)
                groups[(slot_contact, current.currency)].append(mapped)
            else:
                # One invoice per target contact, however the rules name it (by id, number
                # or name, from one tracker or several): group by the target's own id.
                remote = directory.contact(mapped.contact)
                assert remote is not None  # _check_target made sure of it
                groups[(ContactRef(ContactKind.ID, remote.contact_id), mapped.currency)].append(
                    mapped
                )

        adjustments = self._drifts.slots(session, str(period), invoices)
        for contact_text, currency in adjustments:
            groups.setdefault((_parse_contact(contact_text), currency), [])
        present = self._agreements(period, directory, groups, report)
        planned_slots = {(str(c), cur) for c, cur in groups}
        for row in invoices.values():
            if (
                row.period == str(period)
                and row.status in (InvoiceStatus.DRAFT.value, InvoiceStatus.EXPORTED.value)
                and row.remote_id is not None
                and (row.contact, row.currency) not in planned_slots
            ):
                groups[(_parse_contact(row.contact), row.currency)] = []  # emptied: delete it

        balances = RetainerBook(session, self._p.name, period)
        for (contact, currency), members in sorted(groups.items()):
            self._plan_slot(
                session,
                out,
                report,
                invoices=invoices,
                period=period,
                directory=directory,
                contact=contact,
                currency=currency,
                members=members,
                agreements=present.get((contact, currency), []),
                balances=balances,
                drifts=adjustments.get((str(contact), currency), []),
            )
        return out

    def _billed_elsewhere(
        self,
        session: Session,
        period: Period,
        entry: SourceEntry,
        lrow: LedgerRow,
        current: InvoiceRow,
    ) -> bool:
        """True if the entry is billed on an invoice this run may not touch: one that left
        DRAFT (an edit there is a drift, see core.drift), or another period's."""
        if current.status == InvoiceStatus.LOCKED.value:
            self._drifts.check_locked(session, entry, lrow, current)
            return True
        this_run = current.period == str(period)
        self._drifts.check_draft(entry, lrow, current, this_run=this_run)
        return not this_run

    def _broken(self, directory: Directory) -> dict[str, str]:
        """Agreements the target can't take, by key, with why: their entries wait."""
        broken: dict[str, str] = {}
        for where, agreement in self._p.rules.agreements():
            ref = contact_of(self._p.rules.clients[agreement.client])
            problem = agreement_problem(agreement, directory)
            if directory.contact(ref) is None:
                problem = f"contact {ref} not found in the target"
            if problem is not None:
                broken[agreement.key] = f"{where}: {problem}"
        return broken

    def _agreements(
        self,
        period: Period,
        directory: Directory,
        groups: dict[tuple[ContactRef, str], list[MappedEntry]],
        report: RunReport,
    ) -> dict[tuple[ContactRef, str], list[Agreement]]:
        """Retainers and fixed fees by the invoice (contact, currency) they go on; a retainer,
        or a fixed fee with a milestone in the period, gets its invoice even without hours."""
        present: dict[tuple[ContactRef, str], list[Agreement]] = defaultdict(list)
        for _where, agreement in self._p.rules.agreements():
            if not agreement.active(period.start, period.end):
                continue
            ref = contact_of(self._p.rules.clients[agreement.client])
            remote = directory.contact(ref)
            problem = agreement_problem(agreement, directory)
            if remote is None or problem is not None:
                continue  # its entries wait as unmapped, naming the problem (_broken)
            slot = (
                ContactRef(ContactKind.ID, remote.contact_id),
                currency_of(self._p.rules, agreement),
            )
            present[slot].append(agreement)
            if wanted(agreement, period):
                groups.setdefault(slot, [])
        return present

    def _plan_slot(
        self,
        session: Session,
        out: _Plan,
        report: RunReport,
        *,
        invoices: dict[str, InvoiceRow],
        period: Period,
        directory: Directory,
        contact: ContactRef,
        currency: str,
        members: list[MappedEntry],
        agreements: list[Agreement],
        balances: RetainerBook,
        drifts: list[DriftRow],
    ) -> None:
        """Plan one (contact, currency) invoice, or refuse it with the reason."""
        remote_contact = directory.contact(contact)
        seq = _open_seq(invoices, self._p.name, str(contact), currency, str(period))
        slot = InvoiceSlot(self._p.name, contact, currency, period, seq)
        modes = plan_modes(
            members,
            agreements,
            self._p.rules,
            period,
            seq,
            rolled_in=balances.rolled_in,
            prior=partial(balances.prior, seq=seq),
            max_description=directory.max_description,
        )
        plan = build_plan(
            prefix=self._p.reference_prefix,
            slot=slot,
            contact_id=remote_contact.contact_id if remote_contact else "",
            contact_name=remote_contact.name if remote_contact else str(contact),
            entries=modes.hourly,
            due_days=self._p.due_days,
            max_description=directory.max_description,
            mode_lines=modes.lines,
            covered=modes.covered,
            retainers=modes.retainers,
            line_amount_types=self._p.rules.line_amount_types,
        )
        if drifts:
            plan = self._drifts.attach(session, plan, drifts)
        problem = currency_mismatch(remote_contact, currency) if plan.lines else None
        if problem is None:
            out.plans.append(plan)
        else:  # an error on this invoice, never a silent conversion: its entries wait
            _refuse(report, out, plan, problem, self._explain)

    def _entries(self, session: Session) -> Iterator[tuple[SourceEntry, LedgerRow | None]]:
        """Every stored entry of the profile's sources, with its ledger row if it has one."""
        for source in self._p.sources:
            billed = ledger.ledger_rows(session, source.name)
            for entry in ledger.load_entries(session, source.name):
                yield entry, billed.get(entry.source_id)

    def _classify(
        self, entry: SourceEntry, place: Placement, directory: Directory, *, on_our_invoice: bool
    ) -> MappedEntry | Unmapped | PendingReason | None:
        """Why an entry waits, or how it maps. None: not this period's business at all."""
        reason = _pending_reason(entry, on_our_invoice=on_our_invoice)
        if not (place.here or place.waits_late):
            # Counted only if it would be billable: revenue waiting in another period.
            return PendingReason.OUT_OF_PERIOD if reason is None else None
        if reason is not None:
            return reason
        mapped = self._resolver.resolve(entry)
        if isinstance(mapped, MappedEntry):
            problem = _check_target(mapped, directory)
            if problem is not None:
                return Unmapped(entry, (problem,))
        if place.waits_late and isinstance(mapped, MappedEntry):
            # this period's own, but it closed before the entry was invoiced
            return PendingReason.LATE
        return mapped

    def _decide(
        self,
        plans: list[InvoicePlan],
        remote: dict[str, RemoteInvoice],
        only: frozenset[str] | None = None,
    ) -> list[tuple[InvoicePlan, InvoiceAction, RemoteInvoice | None]]:
        decided: list[tuple[InvoicePlan, InvoiceAction, RemoteInvoice | None]] = []
        for plan in plans:
            if only is not None and plan.key not in only:
                continue  # a retry of failed invoices leaves every other invoice alone
            found = remote.get(plan.key)
            if found is not None and found.status != "DRAFT":
                continue  # never touch an invoice that left DRAFT (reconcile moved us past it)
            if not plan.lines:
                if found is not None:
                    decided.append((plan, InvoiceAction.DELETE, found))
                continue
            if found is None:
                decided.append((plan, InvoiceAction.CREATE, None))
            elif found.content_hash == self._p.target.fingerprint(plan):
                decided.append((plan, InvoiceAction.UNCHANGED, found))
            else:
                decided.append((plan, InvoiceAction.UPDATE, found))
        return decided

    # -- 4. push ---------------------------------------------------------------------------

    def _push(
        self,
        actions: list[tuple[InvoicePlan, InvoiceAction, RemoteInvoice | None]],
        report: RunReport,
    ) -> None:
        writes = [(p, a, r) for p, a, r in actions if a is not InvoiceAction.UNCHANGED]
        by_key = {p.key: (p, a, r) for p, a, r in actions}
        now = self._clock()
        # Before the transaction: a fingerprint may call the target (Xero looks its tracking
        # names up once), and no call is made while we hold the database's write lock (the
        # call budgets shared through the database need it; SQLite has one writer at a time).
        prints = {
            plan.key: self._p.target.fingerprint(plan)
            for plan, action, _found in actions
            if action is not InvoiceAction.DELETE
        }
        with Session(self._engine) as session:
            for plan, action, found in actions:
                self._record(session, plan, action, found, now, fingerprint=prints.get(plan.key))
            session.commit()
        for plan, action, found in actions:
            if action is InvoiceAction.UNCHANGED:
                _count(report, action)
                report.invoices.append(_summary(plan, action, found, self._explain))
        if not writes:
            return
        self.lease.renew()
        target = self._p.target
        # One batch of the target's at a time, so a stop lands between two batches: never
        # between a request and the recording of its answers.
        size = target.push_batch_size if isinstance(target, BatchedTarget) else len(writes)
        size = max(1, size)
        self._progress(ProgressEvent(Stage.PUSH, 0, len(writes)))
        done = 0
        for start in range(0, len(writes), size):
            if start and self._stop():
                left = writes[start:]
                self._leave(left)
                where = f"after {start} of {len(writes)} invoice writes (whole batches)"
                raise _StopRequestedError(_stopped_message(where, len(left)), len(left))
            batch = writes[start : start + size]
            results = target.push(
                [(plan, found.invoice_id if found else None) for plan, _a, found in batch]
            )
            for result in results:
                done += 1
                final = done == len(writes)
                self._progress(ProgressEvent(Stage.PUSH, done, len(writes), final=final))
                self._settle(by_key, result, report)

    def _leave(
        self, left: Sequence[tuple[InvoicePlan, InvoiceAction, RemoteInvoice | None]]
    ) -> None:
        """Invoices a stopped run never sent: as if their write had not landed. Their entries
        go back to what the target last confirmed, so the ledger claims none of them as billed
        on an invoice never sent, and the next run plans and sends them."""
        with Session(self._engine) as session:
            for plan, _action, _found in left:
                row = session.get(InvoiceRow, plan.key)
                assert row is not None
                self._revert(session, row, ledger.rows_for_invoice(session, plan.key))
                log.info("invoice.left_for_next_run", key=plan.key, contact=plan.contact_name)
            session.commit()

    def _settle(
        self,
        by_key: dict[str, tuple[InvoicePlan, InvoiceAction, RemoteInvoice | None]],
        result: PushResult,
        report: RunReport,
    ) -> None:
        """Record the target's answer for one invoice: confirmed, or failed and reverted."""
        self.lease.renew_if_due()  # a long, rate-limited push keeps its lease
        plan, action, _found = by_key[result.key]
        with Session(self._engine) as session:
            row = session.get(InvoiceRow, plan.key)
            assert row is not None
            rows = ledger.rows_for_invoice(session, plan.key)
            if result.ok and result.remote is not None:
                report.entries_billed += self._confirm(session, row, result.remote, rows)
                _count(report, action)
                report.invoices.append(_summary(plan, action, result.remote, self._explain))
                log.info(
                    "invoice.pushed",
                    run_id=report.run_id,
                    key=plan.key,
                    action=action.value,
                    number=result.remote.number,
                    contact=plan.contact_name,
                )
            else:
                message = self._scrub("; ".join(result.errors))
                self._revert(session, row, rows)
                row.status = InvoiceStatus.FAILED.value
                row.error = message
                session.add(row)
                report.invoices_failed += 1
                report.errors.append(f"invoice {plan.key} ({plan.contact_name}): {message}")
                log.warning("invoice.rejected", run_id=report.run_id, key=plan.key, errors=message)
                summary = _summary(plan, InvoiceAction.FAILED, None, self._explain)
                summary.error = message
                report.invoices.append(summary)
            session.commit()

    def _record(
        self,
        session: Session,
        plan: InvoicePlan,
        action: InvoiceAction,
        found: RemoteInvoice | None,
        now: datetime,
        *,
        fingerprint: str | None,
    ) -> None:
        """Commit the plan before the write: invoice row, and every entry marked pushed.
        ``fingerprint`` is the target's for the plan (None for a deletion)."""
        row = session.get(InvoiceRow, plan.key)
        if row is None:
            row = InvoiceRow(
                key=plan.key,
                profile=self._p.name,
                target=self._p.target.name,
                contact=str(plan.slot.contact),
                currency=plan.slot.currency,
                period=str(plan.slot.period),
                seq=plan.slot.seq,
                subtotal=plan.subtotal,
                created_at=now,
                updated_at=now,
            )
        row.contact_id = plan.contact_id
        row.contact_name = plan.contact_name
        row.subtotal = plan.subtotal
        row.line_count = len(plan.lines)
        row.updated_at = now
        writing = action is not InvoiceAction.UNCHANGED
        if action is InvoiceAction.DELETE:
            row.pushed_hash = DELETE_MARK
        else:
            row.pushed_hash = fingerprint if writing else None
        if not writing and found is not None:
            row.content_hash = found.content_hash
        session.add(row)
        session.flush()
        self._drifts.record(session, plan.key, writing=writing)
        existing = {(r.source, r.source_id): r for r in ledger.rows_for_invoice(session, plan.key)}
        # the entries' rows on other invoices (or none yet), in a few queries, not one each
        keys = [(m.entry.source, m.entry.source_id) for m in plan.entries]
        existing.update(ledger.rows_for_entries(session, [k for k in keys if k not in existing]))
        for mapped in plan.entries:
            e = mapped.entry
            lrow = existing.get((e.source, e.source_id))
            if lrow is None:
                lrow = LedgerRow(
                    source=e.source,
                    source_id=e.source_id,
                    invoice_key=plan.key,
                    state=LedgerState.PLANNED.value,
                    entry_hash=e.content_hash,
                    quantity=e.quantity,
                    unit_price=mapped.unit_price,
                    updated_at=now,
                )
                existing[(e.source, e.source_id)] = lrow
            lrow.invoice_key = plan.key
            lrow.entry_hash = e.content_hash
            lrow.quantity = e.quantity
            lrow.unit_price = mapped.unit_price
            lrow.updated_at = now
            if writing:
                lrow.state = LedgerState.PUSHED.value
            else:
                lrow.state = self._held.value
                lrow.confirmed_hash = fingerprint
            session.add(lrow)
        record_usage(session, self._p.name, plan, now)

    # -- 4b. credit notes for reductions (drift: credit_note) -----------------------------

    def _settle_drifts(self, directory: Directory, period: Period, report: RunReport) -> None:
        self._credit_notes(directory, period, report)
        with Session(self._engine) as session:
            self._report_drifts(report, session)

    def _credit_notes(self, directory: Directory, period: Period, report: RunReport) -> None:
        """Each reduction billed on an invoice that left DRAFT becomes a DRAFT credit note.
        Looked up by key first, marked pushed before the write, settled on the answer."""
        target = self._p.target
        if not isinstance(target, CreditNoteTarget):
            return
        with Session(self._engine) as session:
            todo = self._drifts.credit_drifts(session)
        if not todo:
            return
        self.lease.renew()
        found = target.find_credit_notes(self._drifts.credit_prefix())
        plans: list[tuple[CreditNotePlan, DriftKey]] = []
        with Session(self._engine) as session:
            for pk in todo:
                row = session.get(DriftRow, pk)
                assert row is not None
                key = self._drifts.credit_key(row)
                if key in found:  # an earlier write landed: settled, never sent twice
                    self._drifts.mark(session, row, DriftState.SETTLED, key)
                    continue
                contact = directory.contact(_parse_contact(row.contact))
                plan = self._drifts.credit_plan(
                    row,
                    contact.contact_id if contact else "",
                    contact.name if contact else row.contact,
                    period.end,
                )
                if plan is None or not plan.lines:
                    continue  # its mapping is gone: it stays open and is reported
                if contact is None:
                    self._drifts.mark(session, row, DriftState.OPEN, None)
                    _credit_failed(report, plan, f"contact {row.contact} not found in the target")
                    continue
                self._drifts.mark(session, row, DriftState.PUSHED, key)
                plans.append((plan, pk))
            session.commit()
        if not plans:
            return
        drift_of = {plan.key: pk for plan, pk in plans}
        plans_by_key = {plan.key: plan for plan, _pk in plans}
        for result in target.push_credit_notes([plan for plan, _pk in plans]):
            with Session(self._engine) as session:
                row = session.get(DriftRow, drift_of[result.key])
                assert row is not None
                if result.ok:
                    self._drifts.mark(session, row, DriftState.SETTLED, result.key)
                else:
                    message = "; ".join(result.errors)
                    self._drifts.mark(session, row, DriftState.OPEN, None)
                    _credit_failed(report, plans_by_key[result.key], message)
                session.commit()

    def _after_push(
        self,
        actions: list[tuple[InvoicePlan, InvoiceAction, RemoteInvoice | None]],
        report: RunReport,
    ) -> None:
        """Receipts onto their invoices, then tell the trackers what was invoiced."""
        self._checkpoint("after pushing every invoice, before attaching receipts")
        self._attach_receipts(actions, report)
        self._checkpoint("after pushing every invoice, before marking entries invoiced")
        self._write_back(report)

    def _attach_receipts(
        self,
        actions: list[tuple[InvoicePlan, InvoiceAction, RemoteInvoice | None]],
        report: RunReport,
    ) -> None:
        """Each expense's receipt onto its invoice, once (core/receipts.py)."""
        target = self._p.target
        sources = {s.name: s for s in self._p.sources if isinstance(s, ReceiptSource)}
        if not sources or not isinstance(target, AttachmentTarget):
            return
        remote_ids = {
            inv.key: inv.remote_id
            for inv in report.invoices
            if inv.remote_id and inv.action != InvoiceAction.FAILED.value
        }
        keys = [
            p.key for p, a, _f in actions if a is not InvoiceAction.DELETE and p.key in remote_ids
        ]
        with Session(self._engine) as session:
            recorded = recorded_receipts(session, keys)
        todo = [
            InvoiceReceipts(
                invoice_id=remote_ids[plan.key],
                key=plan.key,
                label=f"{plan.key} ({plan.contact_name})",
                entries=[m.entry for m in plan.entries],
                recorded=recorded.get(plan.key, frozenset()),
                # a new invoice has none; an update keeps what the look-up saw
                has_attachments=found.has_attachments if found is not None else False,
            )
            for plan, action, found in actions
            if action is not InvoiceAction.DELETE and plan.key in remote_ids
        ]
        self.lease.renew()
        outcome = attach_receipts(target, sources, todo)
        with Session(self._engine) as session:
            record_receipts(session, outcome.recorded, self._clock())
            session.commit()
        report.receipts_attached += outcome.attached
        report.warnings.extend(outcome.warnings[:20])

    # -- 5. tell the trackers -------------------------------------------------------------

    def _write_back(self, report: RunReport, batch: int = 200) -> None:
        """Mark confirmed entries invoiced in their tracker. Failures are retried next run
        and never undo or block an invoice."""
        for name, writer in self._writers.items():
            with Session(self._engine) as session:
                todo = ledger.pending_writebacks(session, name)
            for start in range(0, len(todo), batch):
                chunk = todo[start : start + batch]
                try:
                    result = writer.mark_invoiced(chunk)
                except HourbridgeError as exc:
                    result = WritebackResult(done=(), failed=dict.fromkeys(chunk, str(exc)))
                result = WritebackResult(
                    done=result.done,
                    failed={k: self._scrub(v) for k, v in result.failed.items()},
                    skipped=result.skipped,
                )
                with Session(self._engine) as session:
                    ledger.record_writebacks(session, name, result, self._clock())
                    session.commit()
                report.writebacks_done += len(result.done)
                report.writebacks_failed += len(result.failed)
                report.writebacks_skipped += len(result.skipped)
                for source_id, error in sorted(result.failed.items())[:20]:
                    report.warnings.append(
                        f"{name}: entry {source_id} not marked invoiced (will retry): {error}"
                    )

    # -- report and run row --------------------------------------------------------------

    def _summarise(
        self,
        report: RunReport,
        actions: list[tuple[InvoicePlan, InvoiceAction, RemoteInvoice | None]],
    ) -> None:
        for plan, action, found in actions:
            report.invoices.append(_summary(plan, action, found, self._explain))
            _count(report, action)

    def _save_run(
        self,
        report: RunReport,
        started: datetime,
        finished: datetime | None,
        failure: BaseException | None = None,
    ) -> None:
        """Save the run row; once finished, with its events, in the same transaction."""
        events = run_events(report, failure) if finished is not None else []
        if finished is not None:
            report.error_classes = count_classes(events)
        with Session(self._engine) as session:
            row = session.get(SyncRunRow, report.run_id) or SyncRunRow(
                id=report.run_id,
                profile=report.profile,
                period=report.period,
                dry_run=report.dry_run,
                status=report.status,
                started_at=started,
            )
            row.status = report.status
            row.trigger = report.trigger
            row.retry_of = report.retry_of
            row.finished_at = finished
            row.report = report.to_json()
            session.add(row)
            session.flush()  # the run row first: its events refer to it
            for event in events:
                session.add(
                    RunEventRow(
                        run_id=report.run_id,
                        kind=event.kind.value,
                        error_class=event.error_class.value,
                        subject=event.subject,
                        message=event.message,
                        entries=event.entries,
                        hours=event.hours,
                        amount=event.amount,
                        created_at=finished or started,
                    )
                )
            session.commit()


def _stopped_message(where: str, left: int) -> str:
    """What an interrupted run says about where it stopped and what it left."""
    what = (
        f"{left} invoice(s) not sent are left for the next run"
        if left
        else "nothing was left half-pushed"
    )
    return (
        f"stopped on request (SIGTERM/SIGINT) {where}: {what}; the next run resumes from the ledger"
    )


def _credit_failed(report: RunReport, plan: CreditNotePlan, message: str) -> None:
    """A credit note not made: counted as a failed document (the run is partial, with a
    target_rejected event); its drift stays open and the next run tries again."""
    report.errors.append(f"credit note {plan.key} ({plan.contact_name}): {message}")
    log.warning("credit_note.rejected", key=plan.key, errors=message)
    report.invoices_failed += 1
    report.invoices.append(
        InvoiceSummary(
            key=plan.key,
            contact=plan.contact_name,
            currency=plan.currency,
            action=InvoiceAction.FAILED.value,
            lines=len(plan.lines),
            entries=1,
            subtotal=plan.subtotal,
            error=message,
        )
    )


def _mode_checked(
    mapped: MappedEntry,
    place: Placement,
    rules: MappingRules,
    everyone: list[Agreement],
    broken: dict[str, str],
) -> MappedEntry | Unmapped:
    """A late entry marked with its period; one whose agreement the target can't take, or
    that is in another currency than its agreement, waits (never billed by the hour instead)."""
    entry = mapped.entry
    agreement = agreement_for(everyone, entry) if entry.kind is EntryKind.TIME else None
    if agreement is not None and agreement.key in broken:
        return Unmapped(entry, (broken[agreement.key],))
    if agreement is not None and currency_of(rules, agreement) != mapped.currency:
        return Unmapped(
            entry,
            (
                f"agreement {agreement.key} bills in {currency_of(rules, agreement)} "
                f"but the entry is in {mapped.currency}",
            ),
        )
    if place.late_from is not None:
        return replace(mapped, late_from=str(place.late_from))
    return mapped


def _count_unmapped(items: dict[str, UnmappedItem], unmapped: Unmapped) -> None:
    """What waits on each missing mapping: entries, hours and value at the tracker's rate."""
    entry = unmapped.entry
    for what in unmapped.missing:
        item = items.setdefault(what, UnmappedItem(what))
        item.entries += 1
        item.hours += entry.quantity
        if entry.unit_price is not None:
            amount = entry.quantity * entry.unit_price
            item.value[entry.currency] = item.value.get(entry.currency, ZERO) + amount


def _count(report: RunReport, action: InvoiceAction) -> None:
    if action is InvoiceAction.CREATE:
        report.invoices_created += 1
    elif action is InvoiceAction.UPDATE:
        report.invoices_updated += 1
    elif action is InvoiceAction.DELETE:
        report.invoices_deleted += 1
    elif action is InvoiceAction.UNCHANGED:
        report.invoices_unchanged += 1


def _pending_reason(entry: SourceEntry, *, on_our_invoice: bool) -> PendingReason | None:
    if entry.running:
        return PendingReason.RUNNING
    if not entry.billable:
        return PendingReason.NON_BILLABLE
    if entry.billed_in_source and not on_our_invoice:
        return PendingReason.ALREADY_BILLED
    if not entry.approved:
        return PendingReason.UNAPPROVED
    return None


def _check_target(mapped: MappedEntry, directory: Directory) -> str | None:
    """Why the target can't take this entry's mapping (what it names doesn't exist), if so."""
    problems = [
        (directory.contact(mapped.contact) is None, f"contact {mapped.contact}"),
        (
            directory.requires_item and not mapped.item_code,
            f"an item for {mapped.entry.task.name!r} (this target needs one on every line)",
        ),
        (
            bool(mapped.item_code)
            and not directory.open_names
            and mapped.item_code not in directory.item_codes,
            f"item {mapped.item_code}",
        ),
        (_missing(mapped.category, directory.classes), f"class {mapped.category}"),
        (_missing(mapped.department, directory.departments), f"department {mapped.department}"),
        (_missing(mapped.tax_type, directory.tax_codes), f"tax code {mapped.tax_type}"),
    ]
    for failed, what in problems:
        if failed:
            return what if what.startswith("an item") else f"{what} not found in the target"
    return None


def currency_mismatch(contact: RemoteContact | None, currency: str) -> str | None:
    """Why ``contact`` can't take an invoice in ``currency``: its default currency in the
    target differs (Xero DefaultCurrency, QuickBooks CurrencyRef). None: no objection."""
    if contact is None or not contact.currency or contact.currency == currency:
        return None
    return (
        f"currency mismatch: the client is billed in {currency} but contact "
        f"{contact.name!r} has default currency {contact.currency} in the target; "
        "hourbridge never converts: fix the client's currency or the contact's default "
        "currency (its entries stay pending)"
    )


def _refuse(report: RunReport, out: _Plan, plan: InvoicePlan, problem: str, explain: bool) -> None:
    """An invoice that must not be pushed: reported as failed, its entries pending."""
    report.invoices_failed += 1
    report.errors.append(f"invoice {plan.key} ({plan.contact_name}): {problem}")
    summary = _summary(plan, InvoiceAction.FAILED, None, explain)
    summary.error = problem
    report.invoices.append(summary)
    report.entries_pending[PendingReason.UNMAPPED.value] += len(plan.entries)
    what = f"currency of contact {plan.contact_name!r}: the client bills {plan.slot.currency}"
    for mapped in plan.entries:
        _count_unmapped(out.unmapped, Unmapped(mapped.entry, (what,)))


def _missing(value: str | None, known: frozenset[str] | None) -> bool:
    """A value the mapping gives that the target's list (when it has one) doesn't hold."""
    return known is not None and value is not None and value not in known


def _parse_contact(text: str) -> ContactRef:
    kind, _, value = text.partition("=")
    return ContactRef(ContactKind(kind), value)


def _open_seq(
    invoices: dict[str, InvoiceRow], profile: str, contact: str, currency: str, period: str
) -> int:
    """The slot's current invoice, or the next one when the current is locked in the target."""
    seqs = [
        row
        for row in invoices.values()
        if row.profile == profile
        and row.contact == contact
        and row.currency == currency
        and row.period == period
    ]
    if not seqs:
        return 1
    last = max(seqs, key=lambda r: r.seq)
    return last.seq + 1 if last.status == InvoiceStatus.LOCKED.value else last.seq


def _summary(
    plan: InvoicePlan, action: InvoiceAction, remote: RemoteInvoice | None, explain: bool
) -> InvoiceSummary:
    lines = (
        [
            LineExplanation(
                description=line.description,
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount=line.amount,
                rate_rule=line.rate_rule,
                rounding=line.rounding,
                entries=len(line.entry_keys),
                tax_type=line.tax_type,
            )
            for line in plan.lines
        ]
        if explain
        else None
    )
    return InvoiceSummary(
        key=plan.key,
        contact=plan.contact_name,
        currency=plan.slot.currency,
        action=action.value,
        lines=len(plan.lines),
        entries=len(plan.entries),
        subtotal=plan.subtotal,
        total=remote.total if remote else None,
        number=remote.number if remote else None,
        remote_id=remote.invoice_id if remote else None,
        explain=lines,
    )


__all__ = ["Profile", "SyncEngine", "invoice_key"]
