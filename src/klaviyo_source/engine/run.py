"""`read()`: plan the run, start workers, and consume their pages in order into the Sink.

One consumer task is the only caller of the Sink: it passes each page's records, advances the
window's progress, and emits state (after each finished window, every 10,000 records or 30 s,
and at stream end) computed from the watermark, so a state always follows the records it covers.
Workers run concurrently (one asyncio task per window); the client caps requests in flight at
`num_workers` and paces each rate bucket; the outbox caps parsed pages alive at num_workers + 2
(per budget: large and small groups), so memory does not grow with the data or the windows.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from klaviyo_source.config import Config
from klaviyo_source.engine.contract import Sink, StreamOutcome, StreamSelection, StreamStats, StreamStatus
from klaviyo_source.engine.outbox import FailItem, Item, NoteItem, Outbox, PageItem, TaskEnd
from klaviyo_source.engine.partitions import (
    GroupPlan,
    Member,
    Window,
    mark_running,
    member_starts,
    plan_windows,
)
from klaviyo_source.engine.scan import Scanner
from klaviyo_source.errors import ConfigError, KlaviyoSourceError
from klaviyo_source.http.client import KlaviyoClient
from klaviyo_source.http.ratelimit import RateLimiters
from klaviyo_source.state import read_state
from klaviyo_source.streams.table import GROUPS, STREAMS_BY_NAME

STATE_EVERY_RECORDS = 10_000
STATE_EVERY_SECONDS = 30.0
IDLE_LOG_SECONDS = 25.0  # the consumer logs a line when nothing happened for this long
RATE_LIMITED_STATUS_EVERY = 5.0
MAX_WINDOWS_PER_WORKER = 4  # at most one RUNNING/RATE_LIMITED status per stream per 5 s


def _plan(
    config: Config,
    selections: Sequence[StreamSelection],
    states: Mapping[str, Any],
    stats: Mapping[str, StreamStats] | None,
) -> list[GroupPlan]:
    members: dict[str, Member] = {}
    for selection in selections:
        row = STREAMS_BY_NAME.get(selection.name)
        if row is None:
            known = ", ".join(STREAMS_BY_NAME)
            raise ConfigError(f"Unknown stream '{selection.name}' in the catalog (this source has: {known}).")
        if row.name in members:
            continue
        saved = read_state(row, states.get(row.name)) if selection.incremental else {}
        starts = member_starts(
            row,
            GROUPS[row.group],
            saved,
            start_date=config.start_date,
            lookback_days=config.lookback_window if selection.incremental else 0,
        )
        outcome = StreamOutcome(
            row.name, stats=stats[row.name] if stats and row.name in stats else StreamStats()
        )
        members[row.name] = Member(row, selection.incremental, saved, starts, outcome)

    plans: dict[str, GroupPlan] = {}
    for member in members.values():
        group = member.row.group
        host = members.get(member.row.shares) if member.row.shares else None
        if host is not None and all(host.starts[k] <= member.starts[k] for k in member.starts):
            group = host.row.group  # ride on the scan that is read anyway
        plan = plans.get(group)
        if plan is None:
            plan = plans[group] = GroupPlan(GROUPS[group], [])
        plan.members.append(member)
    return list(plans.values())


class _Run:
    def __init__(self, config: Config, plans: list[GroupPlan], sink: Sink, hi_final: datetime) -> None:
        self.config = config
        self.plans = plans
        self.sink = sink
        self.hi_final = hi_final
        self.outbox = Outbox(capacity=config.num_workers + 2)
        self.active = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.scanner: Scanner | None = None
        self.client: KlaviyoClient | None = None
        self.rate_status_at: dict[str, float] = {}

    def spawn(self, window: Window) -> None:
        assert self.scanner is not None
        self.active += 1
        for member in window.track.group.members:
            member.outcome.stats.partitions_total += 1
        task = asyncio.create_task(self.scanner.run(window))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def can_split(self, bucket: str) -> bool:
        """Split only when it can make the read faster: the window's rate bucket is not what holds
        it back (more windows would only add requests), request capacity is idle (a slot besides
        the caller's own is free; windows waiting on a slow bucket hold none), pages have room,
        and the number of open windows stays bounded."""
        assert self.client is not None
        if self.active >= MAX_WINDOWS_PER_WORKER * self.config.num_workers or self.outbox.full():
            return False
        if self.client.limiters.get(bucket).delay() > 0:
            return False
        return self.client.free_slots() >= 2 or self.active < self.config.num_workers

    async def emit_state(self, plan: GroupPlan, member: Member, *, force: bool) -> None:
        state = member.state(plan, self.hi_final)
        if state == member.last_state and not force:
            return
        await self.sink.state(member.name, state)
        member.last_state = state
        member.records_since_state = 0
        member.last_state_time = time.monotonic()

    async def finish(self, plan: GroupPlan, member: Member) -> None:
        await self.emit_state(plan, member, force=True)
        member.finished = True
        member.outcome.status = StreamStatus.COMPLETE
        if mark_running(member):
            await self.sink.status(member.name, StreamStatus.RUNNING)
        member.outcome.status = StreamStatus.COMPLETE
        await self.sink.status(member.name, StreamStatus.COMPLETE)

    async def fail(self, member: Member, error: BaseException) -> None:
        if not member.alive:
            return
        member.failed = True
        member.outcome.status = StreamStatus.INCOMPLETE
        member.outcome.error = error if isinstance(error, Exception) else KlaviyoSourceError(str(error))
        await self.sink.error(member.name, member.outcome.error)
        await self.sink.status(member.name, StreamStatus.INCOMPLETE)

    async def on_page(self, item: PageItem) -> None:
        self.outbox.release(item.large)
        window = item.window
        track = window.track
        plan = track.group
        for member, records in item.batches:
            if not member.alive:
                continue
            if mark_running(member):
                await self.sink.status(member.name, StreamStatus.RUNNING)
            if records:
                await self.sink.records(member.name, records)
                member.outcome.stats.records += len(records)
                member.records_since_state += len(records)
                if item.max_cursor is not None:
                    previous = member.max_cursor.get(track.key)
                    if previous is None or item.max_cursor > previous:
                        member.max_cursor[track.key] = item.max_cursor
        if item.last is not None and (window.last is None or item.last > window.last):
            window.last = item.last
        if item.final:
            window.done = True
            for member in plan.members:
                member.outcome.stats.partitions_done += 1
        group_done = plan.done()
        now = time.monotonic()
        for member in plan.members:
            if not member.alive:
                continue
            if group_done:
                await self.finish(plan, member)
            elif (
                item.final
                or member.records_since_state >= STATE_EVERY_RECORDS
                or now - member.last_state_time >= STATE_EVERY_SECONDS
            ):
                await self.emit_state(plan, member, force=False)

    async def on_note(self, item: NoteItem) -> None:
        if item.status_reason and item.stream:
            now = time.monotonic()
            if now - self.rate_status_at.get(item.stream, -1e9) >= RATE_LIMITED_STATUS_EVERY:
                self.rate_status_at[item.stream] = now
                await self.sink.status(item.stream, StreamStatus.RUNNING, item.status_reason)
                await self.sink.log("WARN", f"{item.stream}: {item.message}")
            return
        await self.sink.log(item.level, item.message)

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
            elif isinstance(item, NoteItem):
                await self.on_note(item)
            elif isinstance(item, FailItem):
                for member in item.members:
                    await self.fail(member, item.error)
            elif isinstance(item, TaskEnd):
                self.active -= 1

    async def run(self, client: KlaviyoClient) -> None:
        self.client = client
        events = next((p for p in self.plans if p.name == "events"), None)
        raw_events = (
            getattr(self.sink, "accepts_raw_records", False) is True
            and events is not None
            and [m.name for m in events.members] == ["events"]
        )
        self.scanner = Scanner(
            client, self.config, self.outbox, self.hi_final, self.spawn, self.can_split, raw_events=raw_events
        )
        for plan in self.plans:
            for member in plan.members:
                await self.sink.status(member.name, StreamStatus.STARTED)
        for plan in self.plans:
            windows = plan_windows(plan, self.hi_final)
            if not windows:
                for member in plan.members:
                    await self.finish(plan, member)
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


async def read(
    config: Config,
    selections: Sequence[StreamSelection],
    states: Mapping[str, Any],
    sink: Sink,
    *,
    stats: Mapping[str, StreamStats] | None = None,
    limiters: RateLimiters | None = None,
) -> list[StreamOutcome]:
    """Read the selected streams concurrently into `sink`; one outcome per selected stream.

    `states`: stream name -> the stream_state the user supplied (any Airbyte shape); ignored for
    full-refresh selections. A stream's failure never raises: it ends INCOMPLETE (sink.error +
    sink.status) while the others go on. ConfigError is raised, before any request, for an
    unknown stream or an unreadable state. `stats` (optional): StreamStats objects, by stream
    name, that the engine updates live (progress bars read them during the run); they also end
    up in the returned outcomes. `limiters`: share rate limiters with other clients of the run.

    Fast path: a sink whose attribute `accepts_raw_records` is True receives the records of
    `events` (when read without events_detailed) as `orjson.Fragment`s, pre-serialized JSON
    objects equal to the dict records (orjson.dumps embeds them as they are); every other stream,
    and every stream for other sinks, gets dicts.
    """
    plans = _plan(config, selections, states, stats)
    hi_final = datetime.now(UTC).replace(microsecond=0)
    run = _Run(config, plans, sink, hi_final)
    with few_gc_passes():
        async with KlaviyoClient(config, limiters=limiters) as client:
            await run.run(client)
    outcomes = {m.name: m.outcome for p in plans for m in p.members}
    return [outcomes[name] for name in dict.fromkeys(s.name for s in selections)]
