"""The plan of a run: which fetch groups to read, for which streams, over which time windows,
and the watermark that turns window progress into state.

Group = one listing endpoint serving one or more selected streams (`Member`s). Per fixed
partition (campaign channel x archived, ...) a `Track` holds the group's time windows in order.
Windows are [lo, hi); a window's `last` is the cursor of the last record passed to the Sink
(pages come sorted ascending, so everything below it is done), None before any.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from klaviyo_source.engine.contract import StreamOutcome, StreamStatus
from klaviyo_source.state import SavedState, parse_time, write_state
from klaviyo_source.streams.table import FLOOR_ISO, GroupRow, PartitionKey, StreamRow

FLOOR = parse_time(FLOOR_ISO)
ONE_US = timedelta(microseconds=1)

# Streams whose cursor the group's windows and sort follow (ordered scans). The others (metrics:
# no sort; global_exclusions' own scan: windows on the suppression time) advance state at the end.
UNORDERED_GROUPS = frozenset({"metrics", "suppressions"})


@dataclass(eq=False)
class Window:
    track: Track
    lo: datetime
    hi: datetime  # lowered when the window is split
    last: datetime | None = None  # cursor of the last record passed to the Sink
    done: bool = False


@dataclass(eq=False)
class Track:
    """The windows of one (group, partition key), sorted by lo."""

    group: GroupPlan
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
class Member:
    """A selected stream served by a group."""

    row: StreamRow
    incremental: bool
    saved: SavedState
    starts: dict[PartitionKey, datetime]  # first cursor this stream needs, per partition
    outcome: StreamOutcome
    max_cursor: dict[PartitionKey, datetime] = field(default_factory=dict)
    failed: bool = False
    finished: bool = False
    records_since_state: int = 0
    last_state_time: float = field(default_factory=time.monotonic)
    last_state: dict[str, Any] | None = None
    running_sent: bool = False
    waits_covered_until: float = 0.0  # monotonic end of the rate-limit waits counted so far

    def add_wait(self, start: float, end: float) -> None:
        """Count a rate-limit wait [start, end] into stats as wall-clock time: overlapping waits of
        concurrent requests count once, so the figure never exceeds the run's duration."""
        if end > self.waits_covered_until:
            self.outcome.stats.rate_limit_wait_seconds += end - max(start, self.waits_covered_until)
            self.waits_covered_until = end

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def alive(self) -> bool:
        return not self.failed and not self.finished

    def cursors(self, group: GroupPlan, hi_final: datetime) -> dict[PartitionKey, datetime]:
        """The watermark per partition: never lowered, never beyond hi_final (unless saved so)."""
        out: dict[PartitionKey, datetime] = {}
        for key, start in self.starts.items():
            track = group.tracks[key]
            if group.ordered:
                progress = track.watermark()
            else:
                progress = self.max_cursor.get(key) if track.done() else None
            candidate = min(max(start, progress) if progress else start, hi_final)
            previous = self.saved.get(key)
            out[key] = max(previous, candidate) if previous is not None else candidate
        return out

    def state(self, group: GroupPlan, hi_final: datetime) -> dict[str, Any]:
        return write_state(self.row, self.cursors(group, hi_final))


@dataclass(eq=False)
class GroupPlan:
    row: GroupRow
    members: list[Member]
    tracks: dict[PartitionKey, Track] = field(default_factory=dict)
    failed: bool = False

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def ordered(self) -> bool:
        return self.row.name not in UNORDERED_GROUPS

    def alive(self) -> bool:
        return not self.failed and any(m.alive for m in self.members)

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    def done(self) -> bool:
        return all(t.done() for t in self.tracks.values())


def member_starts(
    row: StreamRow,
    group: GroupRow,
    saved: SavedState,
    *,
    start_date: datetime | None,
    lookback_days: int,
) -> dict[PartitionKey, datetime]:
    """The first cursor a stream needs per partition: saved state (minus the lookback for events)
    but never before start_date (or the 2012 floor)."""
    floor = start_date or FLOOR
    out: dict[PartitionKey, datetime] = {}
    for key in group.partitions:
        cursor = saved.get(key)
        if cursor is not None and row.group == "events" and lookback_days:
            cursor -= timedelta(days=lookback_days)
        out[key] = max(floor, cursor) if cursor is not None else floor
    return out


def plan_windows(plan: GroupPlan, hi_final: datetime) -> list[Window]:
    """One window per partition from the earliest start any member needs up to hi_final."""
    windows = []
    for key in plan.row.partitions:
        track = Track(plan, key)
        plan.tracks[key] = track
        needed = min(m.starts[key] for m in plan.members)
        # Suppression time <= updated: every suppressed profile is looked at, the members filter.
        lo = FLOOR if plan.name == "suppressions" else needed
        if needed < hi_final:
            windows.append(track.add(lo, hi_final))
    return windows


def mark_running(member: Member) -> bool:
    """True the first time (the caller then sends RUNNING)."""
    if member.running_sent:
        return False
    member.running_sent = True
    member.outcome.status = StreamStatus.RUNNING
    return True
