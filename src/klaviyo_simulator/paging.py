"""Keyset paging over a sorted key sequence: the stable-cursor core shared by every collection.

Keys are unique and totally ordered (the sort value plus a row/id tie-break), so "every key after
the last one returned" resumes exactly where the previous page stopped, also while rows are
added or moved (an updated row moves to its new key).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

K = TypeVar("K")


def keyset_page(
    keys: Sequence[K],
    *,
    after: K | None,
    desc: bool,
    size: int,
    accept: Callable[[K], bool] | None,
    lo: K | None = None,
    hi: K | None = None,
) -> tuple[list[K], bool]:
    """Up to `size` accepted keys in [lo, hi) strictly after `after`, and whether more follow.

    `accept=None` accepts every key (no residual filter).
    """
    start = bisect.bisect_left(keys, lo) if lo is not None else 0  # type: ignore[call-overload]
    end = bisect.bisect_left(keys, hi) if hi is not None else len(keys)  # type: ignore[call-overload]
    if after is not None:
        if desc:
            end = min(end, bisect.bisect_left(keys, after))  # type: ignore[call-overload]
        else:
            start = max(start, bisect.bisect_right(keys, after))  # type: ignore[call-overload]
    if accept is None:  # no residual filter: a slice
        if desc:
            chosen = [keys[pos] for pos in range(end - 1, max(start, end - size) - 1, -1)]
        else:
            chosen = list(keys[start : min(end, start + size)])
        return chosen, (end - start) > size
    out: list[K] = []
    positions = range(end - 1, start - 1, -1) if desc else range(start, end)
    for pos in positions:
        key = keys[pos]
        if accept(key):
            if len(out) == size:
                return out, True
            out.append(key)
    return out, False


def tuple_key(value: Any, tie: Any) -> tuple[bool, Any, Any]:
    """A sortable key for a possibly-null value: nulls after values (ascending), then the tie-break."""
    return (value is None, "" if value is None else value, tie)
