"""Request slots (num_workers in flight) handed out slowest rate bucket first.

A request waits for its rate bucket first, then for a slot. When slots are short (big scans keep
every slot busy), a request of a slow bucket (XS: 15 a minute) that waited in line behind
dozens of fast ones would push its bucket's whole timeline back at each request; it goes first
instead (its bucket's pacing keeps it to a few a second), so the slow tiers run behind the big
scans. Equal priorities keep their arrival order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Slots:
    """A semaphore of `size` whose waiters are served by priority (lower first), then in order."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def free(self) -> int:
        """Slots nobody holds or waits for."""
        return 0 if self._waiters else self._free

    async def acquire(self, priority: float) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (priority, next(self._order), future)
        heapq.heappush(self._waiters, entry)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.release()  # granted, then cancelled: the slot goes to the next waiter
            else:
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)  # the slot passes on without ever being free
                return
        self._free += 1

    @asynccontextmanager
    async def hold(self, priority: float) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()
