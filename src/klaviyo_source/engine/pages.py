"""Where a sorted page meets its window: the slice inside [lo, hi), restart skips, tail ids."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from datetime import datetime


def window_slice(
    count: int,
    cursor_at: Callable[[int], datetime],
    id_at: Callable[[int], str],
    hi: datetime,
    skip_at: datetime | None,
    skip_ids: set[str],
) -> tuple[int, int, bool]:
    """[start, end) of a sorted page inside its window, and whether the window ends in it.
    Leading records already passed before a restart (at `skip_at`) are skipped."""
    start = 0
    if skip_at is not None:
        while start < count and cursor_at(start) == skip_at and id_at(start) in skip_ids:
            start += 1
    end = count
    if end > start and cursor_at(end - 1) >= hi:
        return start, bisect_left(range(count), hi, lo=start, key=cursor_at), True
    return start, end, False


def tail_ids(
    start: int, end: int, cursor_at: Callable[[int], datetime], id_at: Callable[[int], str]
) -> set[str]:
    """Ids of the records at the page's last cursor (a restart skips them)."""
    if end <= start:
        return set()
    last = cursor_at(end - 1)
    ids = set()
    for i in range(end - 1, start - 1, -1):
        if cursor_at(i) != last:
            break
        ids.add(id_at(i))
    return ids
