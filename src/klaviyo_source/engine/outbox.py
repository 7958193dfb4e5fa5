"""The channel from workers to the consumer: page, failure and note items, and the bounded outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from klaviyo_source.engine.partitions import ListingPlan, Member, Window
from klaviyo_source.streams.rawshape import RawRows
from klaviyo_source.streams.records import Record
from klaviyo_source.streams.table import PartitionKey

RawBatch = Callable[[], RawRows]
WAITING_LARGE_PAGES = 8  # large pages queued for the consumer before new large requests wait


@dataclass(eq=False)
class PageItem:
    window: Window
    batches: list[tuple[Member, list[Record]]]
    count: int  # records of the group's page inside the window
    last: datetime | None  # cursor of the page's last record (ordered groups)
    max_cursor: datetime | None  # largest cursor in the page (all groups)
    final: bool
    # The same page pre-serialized, for a sink that takes raw records (instead of `batches`):
    # each member's records (and rows holding their keys, for the deletion checks) are made when
    # the consumer takes them, so a queued page holds only its bytes, not a copy of each record.
    raw_batches: list[tuple[Member, RawBatch]] = field(default_factory=list)
    large: bool = False  # counted in the large listings' page budget (else the small ones')
    # Members whose rows replace their parents' (`Stream.replaces`): the parent ids on the page.
    parents: list[tuple[Member, list[str]]] = field(default_factory=list)


@dataclass(eq=False)
class ChildItem:
    """One page of a fan-out child listing: one parent's records of one member stream."""

    plan: ListingPlan
    member: Member
    key: PartitionKey  # the parent's partition, e.g. (("list_id", "Y6nRLr"),)
    records: list[Record]
    last: datetime | None  # cursor of the page's last record (child pages come sorted)


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


@dataclass(eq=False)
class ReconcileItem:
    """A member's id scan is done: its deleted keys (None when the scan failed: `error`)."""

    plan: ListingPlan
    member: Member
    deleted: list[tuple[str, ...]] | None
    live: set[tuple[str, ...]] | None = None  # the live keys, when the scan lists whole keys
    error: BaseException | None = None


@dataclass(eq=False)
class ReportItem:
    """What a report stream's task hands the consumer (engine/reports.py), in order: records,
    then the state covering them; `end`: the task is over (with `error` when it failed)."""

    stream: str
    records: list[Record] = field(default_factory=list)
    state: dict[str, object] | None = None
    end: bool = False
    error: Exception | None = None


Item = PageItem | ChildItem | FailItem | NoteItem | TaskEnd | ReconcileItem | ReportItem


class Outbox:
    """The single ordered channel to the consumer. Memory is a page budget: a worker reserves a
    page before sending its request and the consumer frees it once the Sink has the records, so
    at most `capacity` parsed pages are alive however many windows are open. Large listings (events,
    profiles) and small ones have separate budgets, so small streams never queue behind events.
    A consumer slower than the API (a sync's database) holds back new large requests once
    `waiting` pages queue for it, so the pages alive stay near `waiting`, not the budget.
    Notes never block (they are tiny and come from sync callbacks)."""

    def __init__(self, capacity: int, waiting: int = WAITING_LARGE_PAGES) -> None:
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        self._gates = {True: asyncio.Semaphore(capacity), False: asyncio.Semaphore(capacity)}
        # Large pages handed over and not yet taken: while `waiting` of them queue, the consumer
        # is the slower side and no new large request starts (the budget alone let every worker
        # fetch one more page to wait in memory).
        self._waiting = waiting
        self._queued = 0
        self._room = asyncio.Event()  # set while fewer than `waiting` large pages queue
        self._room.set()
        # Fan-out children have their own budget per stream: their parent's page holds a
        # reservation while they are read (sharing it would deadlock), and children waiting on a
        # slow rate tier (flow messages) must not hold the budget of another stream's children.
        self._capacity = capacity
        self._children: dict[str, asyncio.Semaphore] = {}

    async def reserve(self, large: bool) -> None:
        await self._gates[large].acquire()
        if not large:
            return
        try:
            while self._queued >= self._waiting:
                await self._room.wait()
        except BaseException:  # cancelled while held back: the reservation was never used
            self._gates[large].release()
            raise

    def taken(self, item: PageItem) -> None:
        """The consumer took a page: its reservation is free (and a held-back request may start)."""
        self.release(item.large)
        if item.large:
            self._queued -= 1
            if self._queued < self._waiting:
                self._room.set()

    def release(self, large: bool) -> None:
        """Give back a reservation (the page was consumed, or never came)."""
        self._gates[large].release()

    def _child_gate(self, stream: str) -> asyncio.Semaphore:
        gate = self._children.get(stream)
        if gate is None:
            gate = self._children[stream] = asyncio.Semaphore(self._capacity)
        return gate

    async def reserve_child(self, stream: str) -> None:
        await self._child_gate(stream).acquire()

    def release_child(self, stream: str) -> None:
        self._child_gate(stream).release()

    def full(self) -> bool:
        """No room for another large page right now."""
        return self._gates[True].locked()

    def page(self, item: PageItem) -> None:
        """Hand over a page reserved with `reserve()`."""
        if item.large:
            self._queued += 1
            if self._queued >= self._waiting:
                self._room.clear()
        self.queue.put_nowait(item)

    def note(self, item: Item) -> None:
        self.queue.put_nowait(item)
