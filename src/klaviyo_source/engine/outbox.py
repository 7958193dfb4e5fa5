"""The channel from workers to the consumer: page, failure and note items, the bounded outbox,
and the request observer that counts into the streams' live stats."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from klaviyo_source.engine.partitions import Member, Window

Record = dict[str, Any]


@dataclass(eq=False)
class PageItem:
    window: Window
    batches: list[tuple[Member, list[Record]]]
    count: int  # records of the group's page inside the window
    last: datetime | None  # cursor of the page's last record (ordered groups)
    max_cursor: datetime | None  # largest cursor in the page (all groups)
    final: bool
    large: bool = False  # counted in the large groups' page budget (else the small groups')


@dataclass(eq=False)
class FailItem:
    members: list[Member]
    error: BaseException


@dataclass(eq=False)
class NoteItem:
    stream: str | None
    message: str
    status_reason: str | None = None  # "RATE_LIMITED": sent as RUNNING status with this reason
    level: str = "INFO"


@dataclass(eq=False)
class TaskEnd:
    window: Window


Item = PageItem | FailItem | NoteItem | TaskEnd


class Outbox:
    """The single ordered channel to the consumer. Memory is a page budget: a worker reserves a
    page before sending its request and the consumer frees it once the Sink has the records, so
    at most `capacity` parsed pages are alive however many windows are open. Large groups (events,
    profiles) and small ones have separate budgets, so small streams never queue behind events.
    Notes never block (they are tiny and come from sync callbacks)."""

    def __init__(self, capacity: int) -> None:
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        self._gates = {True: asyncio.Semaphore(capacity), False: asyncio.Semaphore(capacity)}

    async def reserve(self, large: bool) -> None:
        await self._gates[large].acquire()

    def release(self, large: bool) -> None:
        """Give back a reservation (the page was consumed, or never came)."""
        self._gates[large].release()

    def full(self) -> bool:
        """No room for another large page right now."""
        return self._gates[True].locked()

    def page(self, item: PageItem) -> None:
        """Hand over a page reserved with `reserve()`."""
        self.queue.put_nowait(item)

    def note(self, item: Item) -> None:
        self.queue.put_nowait(item)


@dataclass(eq=False)
class StatsObserver:
    """Counts requests, 429s, retries and waits into the members' stats; relays heartbeats."""

    members: list[Member]
    outbox: Outbox
    path: str
    last_status: dict[str, float] = field(default_factory=dict)

    def _alive(self) -> list[Member]:
        return [m for m in self.members if m.alive]

    def on_request(self) -> None:
        for m in self._alive():
            m.outcome.stats.requests += 1

    def on_throttled(self, wait: float) -> None:
        for m in self._alive():
            m.outcome.stats.throttled += 1
            now = time.monotonic()
            m.add_wait(now, now + wait)
            self.outbox.note(
                NoteItem(m.name, f"Rate limited on {self.path}; waiting {wait:.1f}s", "RATE_LIMITED")
            )

    def on_retry(self, reason: str, wait: float) -> None:
        names = []
        for m in self._alive():
            m.outcome.stats.retries += 1
            names.append(m.name)
        message = f"{'/'.join(names)}: retrying {self.path} in {wait:.1f}s after {reason}"
        self.outbox.note(NoteItem(None, message, level="WARN"))

    def on_rate_wait(self, seconds: float) -> None:
        now = time.monotonic()
        for m in self._alive():
            m.add_wait(now - seconds, now)

    def heartbeat(self, message: str) -> None:
        names = "/".join(m.name for m in self._alive())
        self.outbox.note(NoteItem(None, f"{names}: {message}"))
