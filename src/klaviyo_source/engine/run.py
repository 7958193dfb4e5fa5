"""`read()`: plan the run, start workers, and consume their pages in order into the Sink.

One consumer task is the only caller of the Sink: it passes each page's records, advances the
window's progress, and emits state (after each finished window, every 10,000 records or 30 s,
and at stream end) computed from the watermark, so a state always follows the records it covers.
Workers run concurrently (one asyncio task per window); the client caps requests in flight at
`num_workers` and paces each rate bucket; the outbox caps parsed pages alive at num_workers + 2
(per budget: large and small listings), and starts no large request while 8 large pages wait for
a slow consumer, so memory does not grow with the data or the windows.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from klaviyo_source.config import Config
from klaviyo_source.endpoints import bucket_for, rate_for
from klaviyo_source.engine.cadence import Resting, resting, stamped
from klaviyo_source.engine.contract import (
    DeletionSink,
    RawRecordSink,
    Record,
    SerializedSink,
    Sink,
    StreamOutcome,
    StreamSelection,
    StreamStats,
    StreamStatus,
)
from klaviyo_source.engine.known import STATE_KEY, Key, KnownKeys, deletion_markers
from klaviyo_source.engine.names import named_ids, resolve
from klaviyo_source.engine.observer import StatsObserver
from klaviyo_source.engine.outbox import (
    ChildItem,
    FailItem,
    Item,
    NoteItem,
    Outbox,
    PageItem,
    ReconcileItem,
    ReportItem,
    TaskEnd,
)
from klaviyo_source.engine.partitions import (
    FLOOR,
    ListingPlan,
    Member,
    Window,
    mark_running,
    member_starts,
    plan_windows,
)
from klaviyo_source.engine.reconcile import IdScans, deletions, due, live_keys, rereads_everything
from klaviyo_source.engine.report_state import read_report_state
from klaviyo_source.engine.reports import ReportMember, Reports
from klaviyo_source.engine.scan import MALFORMED, Scanner, malformed
from klaviyo_source.errors import ConfigError, KlaviyoSourceError
from klaviyo_source.http.client import KlaviyoClient, preflight
from klaviyo_source.http.ratelimit import RateLimiters
from klaviyo_source.state import read_state
from klaviyo_source.streams.rawshape import Serialized
from klaviyo_source.streams.table import LISTINGS, STREAMS_BY_NAME, Listing

STATE_EVERY_RECORDS = 10_000
STATE_EVERY_SECONDS = 30.0
IDLE_LOG_SECONDS = 25.0  # the consumer logs a line when nothing happened for this long
RATE_LIMITED_STATUS_EVERY = 5.0
BLANK_START_DATE = (
    "start_date is not set: streams without a saved state read everything since 2012-01-01 (as "
    "Airbyte's connector 2.x did; its 3.x reads the last year only). Set start_date to read less."
)
MAX_WINDOWS_PER_WORKER = 4  # at most one RUNNING/RATE_LIMITED status per stream per 5 s


def configured_listing(name: str, config: Config) -> Listing:
    """A listing as the config partitions it (Airbyte 3.x `event_metric_ids`: one per value)."""
    listing = LISTINGS[name]
    spec = listing.config_partitions
    return listing.configured(getattr(config, spec.setting)) if spec is not None else listing


def trailing_rescan(config: Config) -> timedelta:
    """How far before the saved cursor incremental reads of `lookback` streams start: the larger
    of late_events_hours and Airbyte's lookback_window (days)."""
    return max(timedelta(hours=config.late_events_hours), timedelta(days=config.lookback_window))


def _plan(
    config: Config, selections: Sequence[StreamSelection], states: Mapping[str, Any], now: datetime
) -> tuple[list[ListingPlan], list[StreamOutcome], list[Resting]]:
    """The listings to scan with their members, the outcomes of streams that failed before any
    request (an unreadable saved state fails only its own stream), and the streams that rest
    this read (not due for their slow refresh: engine/cadence.py)."""
    members: dict[str, Member] = {}
    failed: dict[str, StreamOutcome] = {}
    rested: dict[str, Resting] = {}
    for selection in selections:
        row = STREAMS_BY_NAME.get(selection.name)
        if row is None:
            known = ", ".join(STREAMS_BY_NAME)
            raise ConfigError(f"Unknown stream '{selection.name}' in the catalog (this source has: {known}).")
        if row.name in members or row.name in failed or row.name in rested or row.report is not None:
            continue
        configured = configured_listing(row.listing, config)
        try:
            saved = read_state(row, states.get(row.name), configured) if selection.incremental else {}
            rest = resting(row, config, states.get(row.name), incremental=selection.incremental, now=now)
        except ConfigError as error:
            failed[row.name] = StreamOutcome(row.name, StreamStatus.INCOMPLETE, error)
            continue
        if rest is not None:
            rested[row.name] = rest
            continue
        starts = member_starts(
            row,
            configured,
            saved,
            start_date=config.start_date,
            rescan=trailing_rescan(config) if selection.incremental else timedelta(0),
        )
        members[row.name] = Member(
            row,
            selection.incremental,
            saved,
            starts,
            StreamOutcome(row.name),
            floor=config.start_date or FLOOR,
        )
        if row.reconcile is not None or row.replaces:
            raw = states.get(row.name) if selection.incremental else None
            members[row.name].known = KnownKeys.from_state(row.primary_key, raw)
            if rereads_everything(row):
                members[row.name].reread = set()

    plans: dict[str, ListingPlan] = {}
    for member in members.values():
        listing = member.row.listing
        host = next((m for m in members.values() if m.row.listing == member.row.rides_on), None)
        if host is not None and all(host.starts[k] <= member.starts[k] for k in member.starts):
            listing = host.row.listing  # ride on the scan that is read anyway
        plan = plans.get(listing)
        if plan is None:
            plan = plans[listing] = ListingPlan(configured_listing(listing, config), [])
        plan.members.append(member)
    return list(plans.values()), list(failed.values()), list(rested.values())


def slowest_rate(plan: ListingPlan) -> int:
    """The lowest steady rate (per minute) of the per-record requests (details, child listings)
    the plan's members make: their listing starts first, so the slow tiers run behind the big
    scans instead of after them (a plan without such requests: no limit)."""
    rates = [
        rate_for(bucket_for(extra.path, dict(extra.params)))[1]
        for member in plan.members
        for extra in (member.row.detail, member.row.fanout)
        if extra is not None
    ]
    return min(rates, default=1 << 30)


def _report_members(
    selections: Sequence[StreamSelection], states: Mapping[str, Any]
) -> tuple[list[ReportMember], list[StreamOutcome]]:
    """The selected report streams (engine/reports.py), and those whose saved state is unreadable."""
    members: dict[str, ReportMember] = {}
    failed: list[StreamOutcome] = []
    for selection in selections:
        row = STREAMS_BY_NAME[selection.name]
        if row.report is None or row.name in members:
            continue
        try:
            saved = read_report_state(row.name, states.get(row.name) if selection.incremental else None)
        except ConfigError as error:
            failed.append(StreamOutcome(row.name, StreamStatus.INCOMPLETE, error))
            continue
        members[row.name] = ReportMember(row, selection.incremental, saved, StreamOutcome(row.name))
    return list(members.values()), failed


class _Run:
    def __init__(
        self,
        config: Config,
        plans: list[ListingPlan],
        failed: list[StreamOutcome],
        rested: list[Resting],
        sink: Sink,
        hi_final: datetime,
        reports: list[ReportMember] | None = None,
    ) -> None:
        self.config = config
        self.plans = plans
        self.failed_early = failed
        self.rested = rested
        self.sink = sink
        self.serialized = isinstance(sink, SerializedSink)  # raw records go as JSON texts
        self.hi_final = hi_final
        self.outbox = Outbox(capacity=config.num_workers + 2)
        self.reports = Reports(config, reports or [], self.outbox, hi_final)
        self.active = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.scanner: Scanner | None = None
        self.client: KlaviyoClient | None = None
        self.rate_status_at: dict[str, float] = {}
        self.id_scans: IdScans | None = None
        self.overflow_noted: set[str] = set()

    def spawn(self, window: Window) -> None:
        assert self.scanner is not None
        self.active += 1
        for member in window.track.plan.members:
            member.outcome.stats.partitions_total += 1
        task = asyncio.create_task(self.scanner.run(window))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def can_split(self, bucket: str, windows: int) -> bool:
        """Split only when it can make the read faster: the window's rate bucket has spare rate
        (it is not waiting, and its `windows` scanning are fewer than the requests in flight
        that hold its burst rate: more would only wait and add requests), request capacity is
        idle (a slot besides the caller's own is free; windows waiting on a slow bucket hold
        none), pages have room, and the number of open windows stays bounded."""
        assert self.client is not None
        if self.active >= MAX_WINDOWS_PER_WORKER * self.config.num_workers or self.outbox.full():
            return False
        limiter = self.client.limiters.get(bucket)
        if limiter.delay() > 0:
            return False
        useful = limiter.useful_parallelism()
        if useful is not None and windows >= useful:
            return False
        return self.client.free_slots() >= 2 or self.active < self.config.num_workers

    async def emit_state(
        self, plan: ListingPlan, member: Member, *, force: bool, final: bool = False
    ) -> None:
        state = member.state(plan, self.hi_final)
        if member.known is not None and member.known.worth_saving:
            state = {**state, STATE_KEY: member.known.state(final=final)}
        if final:  # read completely: a slow-refresh stream keeps when (engine/cadence.py)
            state = stamped(member.row, state, self.hi_final)
        checkpoint = member.checkpoint
        if state == checkpoint.last and not force:
            return
        await self.sink.state(member.name, state)
        checkpoint.last = state
        checkpoint.records_since = 0
        checkpoint.at = time.monotonic()

    async def finish(self, plan: ListingPlan, member: Member) -> None:
        await self.emit_state(plan, member, force=True, final=True)
        if member.known is not None:
            member.known.release()  # its final entry is out: the keys are not read again
        member.finished = True
        member.outcome.status = StreamStatus.COMPLETE
        if mark_running(member):
            await self.sink.status(member.name, StreamStatus.RUNNING)
        member.outcome.status = StreamStatus.COMPLETE
        await self.sink.status(member.name, StreamStatus.COMPLETE)

    async def complete(self, plan: ListingPlan, member: Member) -> None:
        """The member's listing is read: reconcile its keys when due, then finish it."""
        known = member.known
        if member.reconciling or not member.alive:
            return
        if known is not None and known.overflow and member.name not in self.overflow_noted:
            self.overflow_noted.add(member.name)
            await self.sink.log(
                "WARN",
                f"{member.name}: more keys than the state keeps for deletion checks; deleted records of "
                "this stream are not detected.",
            )
        if known is None or not due(member, self.config, self.hi_final):
            if known is not None and member.incremental and known.at is None and not member.saved:
                known.set_at(self.hi_final)  # a first read lists everything: it counts as one
            await self.finish(plan, member)
            return
        if rereads_everything(member.row):
            live = set(member.reread) if member.reread is not None else set()
            gone = sorted(k for k in known.keys if k not in live)
            await self.on_reconciled(ReconcileItem(plan, member, gone, live), counted=False)
            return
        member.reconciling = True
        self.active += 1
        task = asyncio.create_task(self.reconcile(plan, member))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def reconcile(self, plan: ListingPlan, member: Member) -> None:
        assert self.id_scans is not None and self.scanner is not None and member.known is not None
        row = member.row
        observer = StatsObserver([member], self.outbox, f"{row.name} id scan", self.scanner.requests)
        try:
            live = await self.id_scans.live(member, observer)
            item = ReconcileItem(plan, member, deletions(row, member.known, live), live_keys(row, live))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            item = ReconcileItem(plan, member, None, error=error)
        self.outbox.note(item)

    async def on_reconciled(self, item: ReconcileItem, *, counted: bool = True) -> None:
        if counted:
            self.active -= 1
        member, known = item.member, item.member.known
        assert known is not None
        member.reconciling = False
        if not member.alive:
            return
        if item.deleted is None:
            reason = getattr(item.error, "message", None) or str(item.error)
            await self.sink.log("WARN", f"{member.name}: deletion check skipped this sync ({reason}).")
        else:
            await self.emit_deletions(member, item.deleted)
            if item.live is not None:
                known.reset(item.live)
            known.set_at(self.hi_final)
        await self.finish(item.plan, member)

    async def emit_deletions(self, member: Member, keys: list[Key]) -> None:
        """Deletion records for keys gone from Klaviyo; the keys leave the known set."""
        if not keys or member.known is None:
            return
        row = member.row
        markers = deletion_markers(row.primary_key, row.cursor_field, keys, self.hi_final)
        if mark_running(member):
            await self.sink.status(member.name, StreamStatus.RUNNING)
        if isinstance(self.sink, DeletionSink):
            await self.sink.deletions(member.name, markers)
        else:
            await self.sink.records(member.name, markers)
        member.known.remove(keys)
        member.outcome.stats.deleted += len(keys)
        member.checkpoint.records_since += len(keys)

    def track(self, member: Member, records: Sequence[Record]) -> None:
        """Keep the keys of emitted records (and, for streams read whole, this run's keys)."""
        known = member.known
        if known is None:
            return
        known.add(records)
        if member.reread is not None:
            member.reread.update(known.key_of(r) for r in records)

    async def fail(self, member: Member, error: BaseException) -> None:
        if not member.alive:
            return
        member.failed = True
        member.outcome.status = StreamStatus.INCOMPLETE
        member.outcome.error = error if isinstance(error, Exception) else KlaviyoSourceError(str(error))
        await self.sink.error(member.name, member.outcome.error)
        await self.sink.status(member.name, StreamStatus.INCOMPLETE)

    async def on_page(self, item: PageItem) -> None:
        self.outbox.taken(item)
        window = item.window
        track = window.track
        plan = track.plan
        batches: Sequence[tuple[Member, Any]] = item.batches or item.raw_batches
        produced: dict[int, Sequence[Record]] = {}
        for member, batch in batches:
            if not member.alive:
                continue
            if mark_running(member):
                await self.sink.status(member.name, StreamStatus.RUNNING)
            records: Sequence[Any] = batch
            keys: Sequence[Record] = batch
            if item.raw_batches:
                try:
                    records, keys = batch()  # the texts are made now, one page at a time
                except MALFORMED as error:
                    await self.malformed(plan, error)
                    break
            produced[id(member)] = keys
            if records:
                if isinstance(records, Serialized):
                    if self.serialized:
                        sink = cast(SerializedSink, self.sink)
                        await sink.serialized_records(member.name, records.texts, breaks=records.breaks)
                    else:
                        assert isinstance(self.sink, RawRecordSink)
                        await self.sink.raw_records(member.name, list(records))
                else:
                    await self.sink.records(member.name, records)
                self.track(member, keys)
                member.outcome.stats.records += len(records)
                member.checkpoint.records_since += len(records)
                if item.max_cursor is not None:
                    previous = member.max_cursor.get(track.key)
                    if previous is None or item.max_cursor > previous:
                        member.max_cursor[track.key] = item.max_cursor
        for member, parent_ids in item.parents:
            if member.alive and member.known is not None:
                stale = member.known.stale(member.row.replaces, parent_ids, produced.get(id(member), ()))
                await self.emit_deletions(member, stale)
        if item.last is not None and (window.last is None or item.last > window.last):
            window.last = item.last
        if item.final:
            window.done = True
            for member in plan.members:
                member.outcome.stats.partitions_done += 1
        plan_done = plan.done()
        now = time.monotonic()
        for member in plan.members:
            if not member.alive:
                continue
            if plan_done:
                await self.complete(plan, member)
            elif (
                item.final
                or member.checkpoint.records_since >= STATE_EVERY_RECORDS
                or now - member.checkpoint.at >= STATE_EVERY_SECONDS
            ):
                await self.emit_state(plan, member, force=False)

    async def malformed(self, plan: ListingPlan, error: Exception) -> None:
        """A raw shaper could not read a record of the page: the listing fails, as when its
        worker cannot read one."""
        plan.failed = True
        failure = malformed(plan.row, error)
        for member in plan.members:
            await self.fail(member, failure)

    async def on_child(self, item: ChildItem) -> None:
        member = item.member
        self.outbox.release_child(member.name)
        if not member.alive:
            return
        if mark_running(member):
            await self.sink.status(member.name, StreamStatus.RUNNING)
        if item.records:
            await self.sink.records(member.name, item.records)
            self.track(member, item.records)
            member.outcome.stats.records += len(item.records)
            member.checkpoint.records_since += len(item.records)
        if item.last is not None:
            previous = member.children.get(item.key)
            member.children[item.key] = item.last if previous is None else max(previous, item.last)
        checkpoint = member.checkpoint
        if (
            checkpoint.records_since >= STATE_EVERY_RECORDS
            or time.monotonic() - checkpoint.at >= STATE_EVERY_SECONDS
        ):
            await self.emit_state(item.plan, member, force=False)

    async def on_note(self, item: NoteItem) -> None:
        if item.status_reason and item.stream:
            now = time.monotonic()
            if now - self.rate_status_at.get(item.stream, -1e9) >= RATE_LIMITED_STATUS_EVERY:
                self.rate_status_at[item.stream] = now
                await self.sink.status(item.stream, StreamStatus.RUNNING, item.status_reason)
                await self.sink.log("WARN", f"{item.stream}: {item.message}")
            return
        await self.sink.log(item.level, item.message)

    async def on_report(self, item: ReportItem) -> None:
        member = next(m for m in self.reports.members if m.name == item.stream)
        if not member.started:
            member.started = True
            member.outcome.status = StreamStatus.RUNNING
            await self.sink.status(member.name, StreamStatus.RUNNING)
        if item.records:
            await self.sink.records(member.name, item.records)
            member.outcome.stats.records += len(item.records)
        if item.state is not None:
            await self.sink.state(member.name, item.state)
        if not item.end:
            return
        self.active -= 1
        if item.error is not None:
            error = item.error
            member.outcome.status = StreamStatus.INCOMPLETE
            member.outcome.error = error
            await self.sink.error(member.name, error)
            await self.sink.status(member.name, StreamStatus.INCOMPLETE)
        else:
            member.outcome.status = StreamStatus.COMPLETE
            await self.sink.status(member.name, StreamStatus.COMPLETE)

    async def consume(self) -> None:
        queue = self.outbox.queue
        while self.active > 0 or not queue.empty():
            try:
                item: Item = await asyncio.wait_for(queue.get(), IDLE_LOG_SECONDS)
            except TimeoutError:
                running = sorted({m.name for p in self.plans for m in p.members if m.alive})
                await self.sink.log(
                    "INFO", f"Still reading {', '.join(running)} ({self.active} windows open)"
                )
                continue
            if isinstance(item, PageItem):
                await self.on_page(item)
            elif isinstance(item, ChildItem):
                await self.on_child(item)
            elif isinstance(item, NoteItem):
                await self.on_note(item)
            elif isinstance(item, FailItem):
                for member in item.members:
                    await self.fail(member, item.error)
            elif isinstance(item, TaskEnd):
                self.active -= 1
            elif isinstance(item, ReconcileItem):
                await self.on_reconciled(item)
            elif isinstance(item, ReportItem):
                await self.on_report(item)

    def has_work(self) -> bool:
        """Some stream needs data from before hi_final (else the run sends no request at all)."""
        return self.reports.has_work() or any(
            start < self.hi_final for p in self.plans for m in p.members for start in m.starts.values()
        )

    async def run(self, client: KlaviyoClient) -> None:
        self.client = client
        raw_plans = frozenset(
            plan.name
            for plan in self.plans
            if isinstance(self.sink, RawRecordSink)
            and plan.row.raw_capable
            and all(m.row.raw_ready for m in plan.members)
        )
        self.scanner = Scanner(
            client, self.config, self.outbox, self.hi_final, self.spawn, self.can_split, raw_plans=raw_plans
        )
        self.id_scans = IdScans(client, self.hi_final)
        for outcome in self.failed_early:
            assert outcome.error is not None
            await self.sink.status(outcome.name, StreamStatus.STARTED)
            await self.sink.error(outcome.name, outcome.error)
            await self.sink.status(outcome.name, StreamStatus.INCOMPLETE)
        for plan in self.plans:
            for member in plan.members:
                await self.sink.status(member.name, StreamStatus.STARTED)
        for rest in self.rested:  # not due for a refresh: no request, the saved state again
            await self.sink.status(rest.outcome.name, StreamStatus.STARTED)
            await self.sink.log("INFO", rest.note(self.config.slow_refresh_hours))
            await self.sink.state(rest.outcome.name, rest.state)
            rest.outcome.status = StreamStatus.COMPLETE
            await self.sink.status(rest.outcome.name, StreamStatus.COMPLETE)
        for report in self.reports.members:
            await self.sink.status(report.name, StreamStatus.STARTED)
        self.active += len(self.reports.members)
        for task in self.reports.tasks(client):
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        if self.config.start_date is None and any(
            m.row.has_cursor and not m.saved and not m.row.pinned_start for p in self.plans for m in p.members
        ):
            await self.sink.log("INFO", BLANK_START_DATE)
        for plan in sorted(self.plans, key=slowest_rate):  # stable: catalog order otherwise
            windows = plan_windows(plan, self.hi_final)
            if not windows:
                for member in plan.members:
                    await self.complete(plan, member)
            for window in windows:
                self.spawn(window)
        try:
            await self.consume()
        finally:
            for task in list(self.tasks):
                task.cancel()
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
        for plan in self.plans:
            for member in plan.members:
                if member.alive:
                    await self.fail(
                        member,
                        KlaviyoSourceError(f"Stream {member.name} ended before all its windows were read."),
                    )
        for report in self.reports.members:
            if report.outcome.status not in (StreamStatus.COMPLETE, StreamStatus.INCOMPLETE):
                await self.on_report(
                    ReportItem(
                        report.name, end=True, error=KlaviyoSourceError(f"Stream {report.name} ended early.")
                    )
                )


@contextmanager
def few_gc_passes() -> Iterator[None]:
    """Parsed pages are tens of thousands of small acyclic objects each, alive for a moment: with
    the default thresholds the cyclic GC runs dozens of times per page and its full passes walk
    every live page again (measured: 3.5x the parse time). Collect young objects less often and
    full passes not at all during the run; restored afterwards."""
    previous = gc.get_threshold()
    gc.set_threshold(100_000, 50, 1_000)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


class ReadRun:
    """A read in progress. `await run` (or `await run.outcomes()`) runs it and returns one outcome
    per selected stream (in selection order); `snapshot()` copies the live per-stream stats (for
    progress displays) and `requests_sent` counts the requests actually sent (a page shared by
    two streams counts once)."""

    def __init__(
        self,
        run: _Run,
        selections: Sequence[StreamSelection],
        limiters: RateLimiters | None,
        states: Mapping[str, Any] | None = None,
    ) -> None:
        self._run = run
        self._selections = selections
        self._states = states or {}
        self._names = list(dict.fromkeys(s.name for s in selections))
        self._limiters = limiters
        self._outcomes: dict[str, StreamOutcome] = {}
        self._index_outcomes()
        self._preflights = 0

    def _index_outcomes(self) -> None:
        self._outcomes = {m.name: m.outcome for p in self._run.plans for m in p.members}
        self._outcomes.update((m.name, m.outcome) for m in self._run.reports.members)
        self._outcomes.update((o.name, o) for o in self._run.failed_early)
        self._outcomes.update((r.outcome.name, r.outcome) for r in self._run.rested)

    async def _resolve_names(self, client: KlaviyoClient) -> None:
        """Config lists that partition a selected listing may hold names (metric names in
        event_metric_ids): resolve them to ids once, and plan again with the ids."""
        run = self._run
        changes: dict[str, tuple[str, ...]] = {}
        for plan in run.plans:
            spec = plan.row.config_partitions
            values: tuple[str, ...] = getattr(run.config, spec.setting) if spec is not None else ()
            if spec is None or not spec.names_from or not values or spec.setting in changes:
                continue
            try:
                ids, by_name, sent = await named_ids(client, spec.names_from)
            except KlaviyoSourceError as error:
                self._preflights += 1
                await run.sink.log(
                    "WARN",
                    f"{spec.setting}: could not list {spec.names_from} to resolve names ({error}); "
                    "the values are used as ids.",
                )
                continue
            self._preflights += sent
            resolved = resolve(values, ids, by_name, spec.setting)
            for note in resolved.notes:
                await run.sink.log("INFO", note)
            for warning in resolved.warnings:
                await run.sink.log("WARN", warning)
            if resolved.ids != values:
                changes[spec.setting] = resolved.ids
        if changes:
            run.config = replace(run.config, **changes)  # type: ignore[arg-type]
            run.plans, failed, run.rested = _plan(run.config, self._selections, self._states, run.hi_final)
            _, unreadable = _report_members(self._selections, self._states)
            run.failed_early = [*failed, *unreadable]
            self._index_outcomes()

    def snapshot(self) -> dict[str, StreamStats]:
        return {name: replace(self._outcomes[name].stats) for name in self._names}

    @property
    def requests_sent(self) -> int:
        scanner = self._run.scanner
        sent = self._run.reports.requests
        return self._preflights + sent + (scanner.requests.sent if scanner is not None else 0)

    def __await__(self) -> Generator[Any, None, list[StreamOutcome]]:
        return self.outcomes().__await__()

    async def outcomes(self) -> list[StreamOutcome]:
        """Run the read (once) and return the outcomes; `asyncio.run(run.outcomes())` from sync code."""
        with few_gc_passes():
            async with KlaviyoClient(self._run.config, limiters=self._limiters) as client:
                if self._run.has_work():
                    self._preflights += 1
                    await preflight(client)  # a rejected key or an unreachable base_url stops here, once
                    await self._resolve_names(client)
                await self._run.run(client)
        return [self._outcomes[name] for name in self._names]


def read(
    config: Config,
    selections: Sequence[StreamSelection],
    states: Mapping[str, Any],
    sink: Sink,
    *,
    limiters: RateLimiters | None = None,
) -> ReadRun:
    """Plan a read of the selected streams into `sink`; `await` the returned run to read them
    concurrently (one outcome per selected stream).

    `states`: stream name -> the stream_state the user supplied (any Airbyte shape); ignored for
    full-refresh selections. A stream's failure never raises: it ends INCOMPLETE (sink.error +
    sink.status) while the others go on; so does a stream whose saved state is unreadable
    (config_error, before any request). ConfigError is raised here for an unknown stream, and
    by `await` after one pre-flight request (http/client.py `preflight`) for a rejected key
    (AccessError) or an unreachable base_url (UnreachableError).
    `limiters`: share rate limiters with other clients of the run.

    Fast path: a sink that implements `RawRecordSink` receives the records of listings whose
    selected streams all take records as listed or have a raw shaper (`Stream.raw_ready`:
    events, events_detailed, profiles and its derived tables, ...) through `raw_records`, as
    `orjson.Fragment`s (pre-serialized JSON, byte for byte the dict records serialized), or
    their JSON texts through `serialized_records` when it also implements `SerializedSink`;
    everything else goes through `records` as dicts.
    """
    hi_final = datetime.now(UTC).replace(microsecond=0)
    plans, failed, rested = _plan(config, selections, states, hi_final)
    reports, unreadable = _report_members(selections, states)
    run = _Run(config, plans, [*failed, *unreadable], rested, sink, hi_final, reports)
    return ReadRun(run, selections, limiters, states)
