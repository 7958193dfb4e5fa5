"""The plan of a run: which listings to read, for which streams, over which time windows, and
the watermark that turns window progress into state.

A `ListingPlan` = one listing endpoint serving one or more selected streams (`Member`s). Per
fixed partition (campaign channel x archived, ...) a `Track` holds the listing's time windows in order.
Windows are [lo, hi); a window's `last` is the cursor of the last record passed to the Sink
(pages come sorted ascending, so everything below it is done), None before any.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from klaviyo_source.engine.contract import StreamOutcome, StreamStats, StreamStatus
from klaviyo_source.engine.known import KnownKeys
from klaviyo_source.state import SavedState, write_state
from klaviyo_source.streams.table import FLOOR_ISO, Listing, PartitionKey, Stream
from klaviyo_source.times import parse_time

FLOOR = parse_time(FLOOR_ISO)
ONE_US = timedelta(microseconds=1)


@dataclass(eq=False)
class Window:
    track: Track
    lo: datetime
    hi: datetime  # lowered when the window is split
    last: datetime | None = None  # cursor of the last record passed to the Sink
    done: bool = False


@dataclass(eq=False)
class Track:
    """The windows of one (listing, partition key), sorted by lo."""

    plan: ListingPlan
    key: PartitionKey
    windows: list[Window] = field(default_factory=list)

    def add(self, lo: datetime, hi: datetime) -> Window:
        window = Window(self, lo, hi)
        bisect.insort(self.windows, window, key=lambda w: w.lo)
        return window

    def done(self) -> bool:
        return all(w.done for w in self.windows)

    def watermark(self) -> datetime | None:
        """The largest record cursor of the finished prefix of windows and of the first unfinished
        window: everything below it has been read. It is a record's cursor (not an empty window's
        bound), so a record arriving later at that very second is still re-read (resumption is
        inclusive); it only grows, as the prefix and each window's last cursor only grow."""
        mark: datetime | None = None
        for window in self.windows:
            if window.last is not None and (mark is None or window.last > mark):
                mark = window.last
            if not window.done:
                break
        return mark


@dataclass(eq=False)
class Checkpoint:
    """The member's last emitted state, when, and how many records it has passed since."""

    records_since: int = 0
    at: float = field(default_factory=time.monotonic)
    last: dict[str, Any] | None = None


@dataclass(eq=False)
class WaitClock:
    """Rate-limit waits as wall-clock time: overlapping waits of concurrent requests count once,
    so the figure never exceeds the run's duration."""

    covered_until: float = 0.0  # monotonic end of the waits counted so far

    def add(self, stats: StreamStats, start: float, end: float) -> None:
        if end > self.covered_until:
            stats.rate_limit_wait_seconds += end - max(start, self.covered_until)
            self.covered_until = end


@dataclass(eq=False)
class Member:
    """A selected stream served by a listing."""

    row: Stream
    incremental: bool
    saved: SavedState
    starts: dict[PartitionKey, datetime]  # first cursor this stream needs, per partition
    outcome: StreamOutcome
    max_cursor: dict[PartitionKey, datetime] = field(default_factory=dict)
    failed: bool = False
    finished: bool = False
    running_sent: bool = False
    checkpoint: Checkpoint = field(default_factory=lambda: Checkpoint())
    waits: WaitClock = field(default_factory=lambda: WaitClock())
    floor: datetime = FLOOR  # start_date (or the 2012 floor): where a new fan-out child starts
    children: dict[PartitionKey, datetime] = field(default_factory=dict)  # fan-out progress per parent
    known: KnownKeys | None = None  # the destination's keys, for deletions (engine/known.py)
    reconciling: bool = False  # its id scan is running; it finishes when the scan is in
    reread: set[tuple[str, ...]] | None = None  # a stream read whole each sync: this run's keys

    def child_start(self, key: PartitionKey) -> datetime:
        """Where a fan-out child listing resumes: its saved cursor (inclusive), else the floor
        (every child of a child listing without a cursor)."""
        if self.row.fanout is not None and not self.row.fanout.cursor_path:
            return FLOOR
        saved = self.saved.get(key)
        return max(saved, self.floor) if saved is not None else self.floor

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def alive(self) -> bool:
        return not self.failed and not self.finished

    def cursors(self, plan: ListingPlan, hi_final: datetime) -> dict[PartitionKey, datetime]:
        """The watermark per partition: never lowered, never beyond hi_final (unless saved so),
        and never a start that nothing was read from (a start_date after the sync's start).
        None for a stream without a cursor."""
        out: dict[PartitionKey, datetime] = {}
        if not self.row.has_cursor:
            return out
        for key, start in self.starts.items():
            track = plan.tracks[key]
            if plan.row.ordered:
                progress = track.watermark()
            else:
                progress = self.max_cursor.get(key) if track.done() else None
            previous = self.saved.get(key)
            if start >= hi_final and progress is None:
                if previous is not None:
                    out[key] = previous
                continue
            candidate = min(max(start, progress) if progress else start, hi_final)
            out[key] = max(previous, candidate) if previous is not None else candidate
        return out

    def state(self, plan: ListingPlan, hi_final: datetime) -> dict[str, Any]:
        fanout = self.row.fanout
        if fanout is None:
            return write_state(self.row, self.cursors(plan, hi_final))
        child = fanout.parent_key
        merged = {k: v for k, v in self.saved.items() if k and k[0][0] == child}
        for key, cursor in self.children.items():
            merged[key] = max(merged[key], cursor) if key in merged else cursor
        if not fanout.every_parent:
            merged.update(self.cursors(plan, hi_final))
        return write_state(self.row, merged)


@dataclass(eq=False)
class ListingPlan:
    row: Listing
    members: list[Member]
    tracks: dict[PartitionKey, Track] = field(default_factory=dict)
    failed: bool = False

    @property
    def name(self) -> str:
        return self.row.name

    def alive(self) -> bool:
        return not self.failed and any(m.alive for m in self.members)

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    def done(self) -> bool:
        return all(t.done() for t in self.tracks.values())


def member_starts(
    row: Stream,
    listing: Listing,
    saved: SavedState,
    *,
    start_date: datetime | None,
    rescan: timedelta,
) -> dict[PartitionKey, datetime]:
    """The first cursor a stream needs per partition: saved state (minus the trailing re-scan for
    the streams it applies to) but never before start_date (or the 2012 floor)."""
    floor = parse_time(row.pinned_start) if row.pinned_start else start_date or FLOOR
    if not row.has_cursor or (row.fanout is not None and row.fanout.every_parent):
        return {partition.key: FLOOR for partition in listing.partitions}  # every parent, always
    out: dict[PartitionKey, datetime] = {}
    for partition in listing.partitions:
        cursor = saved.get(partition.key)
        if cursor is not None and row.lookback and rescan:
            cursor -= rescan
        if cursor is not None and row.fixed_lookback_seconds:
            cursor -= timedelta(seconds=row.fixed_lookback_seconds)
        out[partition.key] = max(floor, cursor) if cursor is not None else floor
    return out


def plan_windows(plan: ListingPlan, hi_final: datetime) -> list[Window]:
    """One window per partition from the earliest start any member needs up to hi_final."""
    windows = []
    for partition in plan.row.partitions:
        key = partition.key
        track = Track(plan, key)
        plan.tracks[key] = track
        lo = min(m.starts[key] for m in plan.members)
        if lo < hi_final:
            windows.append(track.add(lo, hi_final))
    return windows


def mark_running(member: Member) -> bool:
    """True the first time (the caller then sends RUNNING)."""
    if member.running_sent:
        return False
    member.running_sent = True
    member.outcome.status = StreamStatus.RUNNING
    return True
