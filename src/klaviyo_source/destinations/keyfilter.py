"""Which of a batch's keys a table may already hold: a Bloom filter over 64-bit key hashes.

Dedup must find the stored row of every key a batch repeats. A join of the batch with the table's
key column costs a scan of the whole column per batch (rows/s fell as the table grew); DuckDB's
ART index does not fit a small memory limit. This filter answers "certainly new" for almost every
key of a batch in O(batch) numpy work, so only the few keys it cannot clear (keys really stored,
and false positives at under 0.1%) are merged against the table. It holds `BITS_PER_KEY` bits per
key (2 MB per million keys) and is rebuilt twice as large from the table's hashes when a batch
would overfill it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt

BITS_PER_KEY = 16
HASHES = 11  # ~ BITS_PER_KEY * ln 2: false positives ~0.05% at capacity, far fewer below it
SLICE = 1 << 16  # keys per numpy pass: (SLICE, HASHES) uint64 temporaries of ~6 MB
MIN_CAPACITY = 1 << 14  # 32 KB: a catalog has dozens of small tables

Hashes = npt.NDArray[np.uint64]


class KeyFilter:
    """A Bloom filter of uint64 key hashes (as DuckDB's `hash()` gives them)."""

    def __init__(self, capacity: int = MIN_CAPACITY) -> None:
        self.capacity = max(MIN_CAPACITY, capacity)
        words = (self.capacity * BITS_PER_KEY + 63) // 64
        self.bits: npt.NDArray[np.uint64] = np.zeros(words, dtype=np.uint64)
        self.m = np.uint64(words * 64)
        self.count = 0

    def _positions(self, hashes: Hashes) -> npt.NDArray[np.uint64]:
        """HASHES bit positions per key (double hashing of the two 32-bit halves), shape (n, k)."""
        low = hashes & np.uint64(0xFFFFFFFF)
        high = (hashes >> np.uint64(32)) | np.uint64(1)
        steps = np.arange(HASHES, dtype=np.uint64)
        return (low[:, None] + steps[None, :] * high[:, None]) % self.m

    def add(self, hashes: Hashes) -> None:
        for start in range(0, len(hashes), SLICE):  # slices: the (n, k) positions stay small
            positions = self._positions(hashes[start : start + SLICE]).ravel()
            masks = np.uint64(1) << (positions & np.uint64(63))
            np.bitwise_or.at(self.bits, positions >> np.uint64(6), masks)
        self.count += len(hashes)

    def may_hold(self, hashes: Hashes) -> npt.NDArray[np.bool_]:
        """Per key: False = certainly not added; True = maybe added."""
        result: npt.NDArray[np.bool_] = np.zeros(len(hashes), dtype=np.bool_)
        if self.count == 0:
            return result
        for start in range(0, len(hashes), SLICE):
            positions = self._positions(hashes[start : start + SLICE])
            words = self.bits[positions >> np.uint64(6)]
            hit = (words >> (positions & np.uint64(63))) & np.uint64(1)
            result[start : start + SLICE] = hit.all(axis=1)
        return result


def build(count: int, chunks: Callable[[], Iterable[Hashes]]) -> KeyFilter:
    """A filter with room for twice `count` keys, filled from `chunks()` (the table's key hashes)."""
    keys = KeyFilter(2 * count)
    for hashes in chunks():
        keys.add(hashes)
    return keys
