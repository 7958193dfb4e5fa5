"""Where a page meets its window: the records inside [lo, hi), restart skips, tail ids.

Pages of ordered listings come sorted on the cursor, so the window is a slice found by bisection.
Klaviyo does not always keep its own contract (2026): `greater-than` can return records at the
bound (they are below the window: cut here, they belong to the window before), and archived
campaigns come back slightly out of `sort` order. An out-of-order page is not an error: its
records are picked one by one (`in_order` False), so none is lost or kept twice.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import islice
from operator import le
from typing import overload

from klaviyo_source.times import parse_time


class ParsedCursors(Sequence[datetime]):
    """Cursor strings read as datetimes when looked at (bisection parses only what it visits)."""

    def __init__(self, cursors: Sequence[str]) -> None:
        self.cursors = cursors

    def __len__(self) -> int:
        return len(self.cursors)

    @overload
    def __getitem__(self, index: int) -> datetime: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[datetime]: ...
    def __getitem__(self, index: int | slice) -> datetime | Sequence[datetime]:
        if isinstance(index, slice):
            return [parse_time(c) for c in self.cursors[index]]
        return parse_time(self.cursors[index])


def cursor_layout(cursors: Sequence[str]) -> tuple[bool, bool]:
    """(in time order, some written with a space between date and time) for a page's cursor
    strings. Strings of one layout (same length, one separator, one offset) compare as their
    times do; others are parsed. C-level passes only: the fast path's pages hold 1000 records."""
    joined = "".join(cursors)
    spaced = " " in joined
    count = len(cursors)
    if count < 2:
        return True, spaced
    offset = cursors[0][-6:]
    uniform = (
        len(set(map(len, cursors))) == 1
        and joined.count(offset) == count
        and (joined.count("T") == count or joined.count(" ") == count)
    )
    if uniform:
        return sorted(cursors) == list(cursors), spaced
    return times_in_order([parse_time(c) for c in cursors]), spaced


def times_in_order(times: Sequence[datetime]) -> bool:
    return all(map(le, times, islice(times, 1, None)))


def window_slice(
    times: Sequence[datetime],
    id_at: Callable[[int], str],
    lo: datetime,
    hi: datetime,
    skip_at: datetime | None,
    skip_ids: set[str],
    *,
    in_order: bool = True,
) -> tuple[Sequence[int], bool]:
    """The positions of a page's records inside [lo, hi) (a range when the page is in order),
    and whether the window ends in this page. Records already passed before a restart (at
    `skip_at`, with one of `skip_ids`) are skipped."""
    count = len(times)
    if not in_order:
        picked = [
            i
            for i in range(count)
            if lo <= times[i] < hi and not (times[i] == skip_at and id_at(i) in skip_ids)
        ]
        return picked, any(t >= hi for t in times)
    start = bisect_left(times, lo) if count and times[0] < lo else 0
    if skip_at is not None:
        while start < count and times[start] == skip_at and id_at(start) in skip_ids:
            start += 1
    if count > start and times[count - 1] >= hi:
        return range(start, bisect_left(times, hi, lo=start)), True
    return range(start, count), False


def tail_ids(picked: Sequence[int], times: Sequence[datetime], id_at: Callable[[int], str]) -> set[str]:
    """Ids of the picked records at the last picked record's cursor (a restart skips them)."""
    if not picked:
        return set()
    last = times[picked[-1]]
    if isinstance(picked, range):
        ids = set()
        for i in reversed(picked):
            if times[i] != last:
                break
            ids.add(id_at(i))
        return ids
    return {id_at(i) for i in picked if times[i] == last}
