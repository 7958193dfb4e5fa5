"""Workers: read one time window of a listing page by page and hand shaped pages to the consumer.

A worker follows `links.next` within its window, cuts the page at the window's upper bound
(which adaptive splitting may lower while it runs), selects and shapes each member stream's
records (top-level cursor copy, the row's shaper, detail fetches), and puts the page on the
output queue. When it has more pages to go and the scheduler has room, it splits the rest of its
window at the midpoint: it keeps [last cursor, mid) and the new window [mid, hi) goes to another
worker. It stops at mid by cutting, so no request is wasted and no record is read twice.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import orjson

from klaviyo_source.config import Config
from klaviyo_source.endpoints import bucket_for
from klaviyo_source.engine.observer import RequestCount, StatsObserver
from klaviyo_source.engine.outbox import ChildItem, FailItem, NoteItem, Outbox, PageItem, RawBatch, TaskEnd
from klaviyo_source.engine.pages import (
    ParsedCursors,
    cursor_layout,
    tail_ids,
    times_in_order,
    window_slice,
)
from klaviyo_source.engine.params import fanout_params, listing_params, parent_batches, variant_of
from klaviyo_source.engine.partitions import ListingPlan, Member, Window
from klaviyo_source.engine.rawpage import RawPage, cursor_key, page_decoder, raw_slice, repaired, text
from klaviyo_source.errors import (
    KlaviyoSourceError,
    MalformedResponseError,
    NotFoundError,
    ServerError,
    TransientError,
)
from klaviyo_source.http.client import KlaviyoClient, RequestObserver
from klaviyo_source.streams import records as shape
from klaviyo_source.streams.rawshape import RawRows, Serialized
from klaviyo_source.streams.records import Page, Record
from klaviyo_source.streams.table import Fanout, Listing, PartitionKey, Variant
from klaviyo_source.times import iso_datetime, normalize_datetimes, parse_cursor, parse_time


@dataclass(eq=False)
class _Cursor:
    """Where a window's scan is: the next URL, and what a restart must skip."""

    url: str | None
    params: dict[str, str] | None
    seen: set[str] = field(default_factory=set)
    skip_at: datetime | None = None  # after a restart: ids already passed at this cursor
    skip_ids: set[str] = field(default_factory=set)
    last: datetime | None = None
    ids_at_last: set[str] = field(default_factory=set)
    page_first: datetime | None = None  # cursor of the last page's first record in the window
    page_records: int = 0  # records of the last page in the window


# Split a window only when the rest of it is estimated at this many pages or more (halves of 8):
# each split costs about half a page on average (the page that crosses the cut), ~3 % at most.
SPLIT_MIN_PAGES = 16


class Scanner:
    def __init__(
        self,
        client: KlaviyoClient,
        config: Config,
        outbox: Outbox,
        hi_final: datetime,
        spawn: Callable[[Window], None],
        can_split: Callable[[str, int], bool],
        *,
        raw_plans: frozenset[str] = frozenset(),
    ) -> None:
        self.client = client
        self.config = config
        self.outbox = outbox
        self.hi_final = hi_final
        self.spawn = spawn
        self.can_split = can_split
        self.raw_plans = raw_plans  # listings whose pages go pre-serialized to a raw-capable sink
        self.requests = RequestCount()
        self._observers: dict[str, StatsObserver] = {}
        self.windows_by_bucket: Counter[str] = Counter()  # windows scanning, per rate bucket
        self._out_of_order: set[tuple[str, PartitionKey]] = set()

    def observer(self, plan: ListingPlan) -> StatsObserver:
        obs = self._observers.get(plan.name)
        if obs is None:
            obs = StatsObserver(plan.members, self.outbox, plan.row.path, self.requests)
            self._observers[plan.name] = obs
        return obs

    async def run(self, window: Window) -> None:
        plan = window.track.plan
        try:
            await self._scan(window, plan)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            plan.failed = True
            self.outbox.note(FailItem([m for m in plan.members if m.alive], error))
        finally:
            self.outbox.note(TaskEnd(window))

    async def _scan(self, window: Window, plan: ListingPlan) -> None:
        key = window.track.key
        row = plan.row
        variant = variant_of(plan, self.config)
        decode = None
        if plan.name in self.raw_plans:
            reads = tuple(sorted({path for m in plan.members for path in m.row.raw_reads}))
            decode = page_decoder(row.cursor_path, reads, checks=row.datetime_paths)
        page_size = row.page_size
        at = _Cursor(
            row.path, listing_params(plan, key, window.lo, window.hi, page_size=page_size, variant=variant)
        )
        bucket = bucket_for(row.path, at.params)  # the client derives the same for each request
        self.windows_by_bucket[bucket] += 1
        try:
            await self._pages(window, plan, at, bucket, variant, decode, page_size)
        finally:
            self.windows_by_bucket[bucket] -= 1

    async def _pages(
        self,
        window: Window,
        plan: ListingPlan,
        at: _Cursor,
        bucket: str,
        variant: Variant | None,
        decode: Callable[[bytes], RawPage] | None,
        page_size: int | None,
    ) -> None:
        pending: list[asyncio.Task[None]] = []  # pages waiting for their members' requests
        try:
            await self._page_loop(window, plan, at, bucket, variant, decode, page_size, pending)
            if pending:
                await pending[-1]  # each waits for the one before it
        finally:
            for task in pending:
                task.cancel()

    async def _page_loop(
        self,
        window: Window,
        plan: ListingPlan,
        at: _Cursor,
        bucket: str,
        variant: Variant | None,
        decode: Callable[[bytes], RawPage] | None,
        page_size: int | None,
        pending: list[asyncio.Task[None]],
    ) -> None:
        key = window.track.key
        row = plan.row
        observer = self.observer(plan)
        while (url := at.url) is not None:
            if not plan.alive():
                return
            large = row.splittable
            await self.outbox.reserve(large)
            handed = False
            work: list[tuple[Member, Coroutine[Any, Any, list[Record] | None]]] = []
            try:
                try:
                    if decode is not None:
                        fetched: Any = await self.client.fetch(url, at.params, decode, observer=observer)
                    else:
                        fetched = await self.client.get_json(url, at.params, observer=observer)
                except ServerError as error:
                    if variant is None or error.status != 503:
                        raise
                    if page_size is None or page_size <= variant.min_page_size:
                        raise TransientError(
                            f"Klaviyo keeps answering 503 on {row.path} with {variant.label} "
                            f"(even {page_size} per page). {variant.on_503_advice}",
                            str(error),
                        ) from error
                    page_size = max(variant.min_page_size, page_size // 2)
                    restart = at.last or window.lo
                    params = listing_params(
                        plan, key, restart, window.hi, page_size=page_size, variant=variant
                    )
                    at = _Cursor(
                        row.path,
                        params,
                        skip_at=at.last,
                        skip_ids=set(at.ids_at_last),
                        last=at.last,
                        ids_at_last=at.ids_at_last,
                    )
                    names = "/".join(m.name for m in plan.members if m.alive)
                    message = f"{names}: 503 with {variant.label}; retrying with page size {page_size}"
                    self.outbox.note(NoteItem(None, message, level="WARN"))
                    continue
                if isinstance(fetched, RawPage) and self._dict_way(plan, fetched):
                    fetched = orjson.loads(fetched.body)
                next_url = self._next_link(fetched, row.path, url, at.seen)
                try:
                    if isinstance(fetched, RawPage):
                        item, cut, page_tail = self._raw_page(
                            plan, window, fetched, at, final=next_url is None
                        )
                    else:
                        item, cut, page_tail, work = self._page(
                            plan, window, fetched, at, final=next_url is None
                        )
                except MALFORMED as error:
                    raise malformed(row, error) from error
                at.skip_at = None
                if cut:
                    next_url = None
                    item.final = True
                if item.last is not None:
                    at.ids_at_last = page_tail | at.ids_at_last if item.last == at.last else page_tail
                    at.last = item.last
                item.large = large
                if work or pending:
                    # The members' own requests run while the next page is fetched; pages still
                    # reach the consumer in order (state follows them).
                    previous = pending[-1] if pending else None
                    pending.append(asyncio.create_task(self._hand_after(item, work, previous)))
                else:
                    self.outbox.page(item)
                handed = True
            finally:
                if not handed:
                    self.outbox.release(large)
                    for job in work:
                        job[1].close()
            # The page is the consumer's now: a worker waiting for its next reservation must not
            # keep it alive (windows outnumber the budget; each held its last page, 1 MB of events).
            del fetched, item
            at.url, at.params = next_url, None
            if (
                at.url is not None
                and row.splittable
                and at.last is not None
                and self._pages_left(window, at, page_size) >= SPLIT_MIN_PAGES
                and self.can_split(bucket, self.windows_by_bucket[bucket])
            ):
                self._split(window, at.last)

    async def _hand_after(
        self,
        item: PageItem,
        work: list[tuple[Member, Coroutine[Any, Any, list[Record] | None]]],
        previous: asyncio.Task[None] | None,
    ) -> None:
        """Make the members' requests of one page (all members at once), then hand the page over
        after the window's previous page. A member whose requests fail fails alone."""

        async def one(member: Member, job: Coroutine[Any, Any, list[Record] | None]) -> None:
            try:
                records = await job
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.outbox.note(FailItem([member], error))
                return
            if records is not None:
                item.batches.append((member, records))

        try:
            await asyncio.gather(*(one(member, job) for member, job in work))
            if previous is not None:
                await previous
        except BaseException:
            self.outbox.release(item.large)
            raise
        self.outbox.page(item)

    @staticmethod
    def _pages_left(window: Window, at: _Cursor, page_size: int | None) -> float:
        """Pages the rest of the window [last, hi) will take, at the density of the last page
        (records per second of cursor time): a split costs about one partly used page, so it pays
        only for a window with many pages to go. A page all at one second: dense, many to go."""
        first, last = at.page_first, at.last
        if first is None or last is None or not page_size or at.page_records < 2:
            return 0.0
        span = (last - first).total_seconds()
        if span <= 0:
            return float("inf")
        density = (at.page_records - 1) / span
        return density * (window.hi - last).total_seconds() / page_size

    @staticmethod
    def _next_link(fetched: Any, path: str, url: str, seen: set[str]) -> str | None:
        """The page's links.next (None on the last page); a link seen before is a loop."""
        if isinstance(fetched, RawPage):
            next_url = fetched.next
        else:
            if not isinstance(fetched["data"], list):
                raise MalformedResponseError(f"Malformed response from {path}: 'data' is not a list.")
            links = fetched.get("links")
            next_url = links.get("next") if isinstance(links, dict) else None
        if next_url is not None and not isinstance(next_url, str):
            raise MalformedResponseError(f"Malformed response from {path}: links.next is not a string.")
        if not next_url:
            return None
        if next_url in seen or next_url == url:
            raise KlaviyoSourceError(
                f"Pagination loop on {path}: Klaviyo returned a links.next already followed "
                f"({next_url}). Stopping the stream instead of reading forever."
            )
        seen.add(next_url)
        return next_url

    def _note_out_of_order(self, plan: ListingPlan, window: Window) -> None:
        """Say once per partition that Klaviyo sent a page out of its sort order (all records kept)."""
        key = (plan.name, window.track.key)
        if key in self._out_of_order:
            return
        self._out_of_order.add(key)
        names = "/".join(m.name for m in plan.members if m.alive)
        where = ", ".join(f"{k}={v}" for k, v in window.track.key)
        self.outbox.note(
            NoteItem(
                None,
                f"{names}{f' ({where})' if where else ''}: Klaviyo returned a page of {plan.row.path} "
                f"out of its sort order ({plan.row.sort}); every record of it was kept.",
                level="WARN",
            )
        )

    def _split(self, window: Window, last: datetime) -> None:
        mid = last + (window.hi - last) / 2
        mid = mid.replace(microsecond=0)
        if mid <= last or window.hi - mid < timedelta(seconds=1):
            return
        new = window.track.add(mid, window.hi)
        window.hi = mid
        self.spawn(new)

    @staticmethod
    def _dict_way(plan: ListingPlan, page: RawPage) -> bool:
        """A raw page that goes the dict path after all: Klaviyo wrote a datetime the listing
        normalizes with a space (its records change), or its cursors so and a member has a raw
        shaper (passthrough members get the cursor repaired on the fast path)."""
        if page.spaced:
            return True
        return any(m.row.raw_shape is not None for m in plan.members) and cursor_layout(page.cursors)[1]

    def _raw_page(
        self, plan: ListingPlan, window: Window, page: RawPage, at: _Cursor, *, final: bool
    ) -> tuple[PageItem, bool, set[str]]:
        """The fast path for listings whose selected members all take records as listed or have a
        raw shaper: records stay pre-serialized JSON (`rawshape.Serialized`)."""
        cursors, ids = page.cursors, page.ids
        in_order, spaced = cursor_layout(cursors)  # spaced: Klaviyo's datetimes with a space
        times: Sequence[datetime] = ParsedCursors(cursors) if in_order else [parse_time(c) for c in cursors]
        if not in_order:
            self._note_out_of_order(plan, window)

        def id_at(i: int) -> str:
            return ids[i]

        picked, cut = window_slice(
            times, id_at, window.lo, window.hi, at.skip_at, at.skip_ids, in_order=in_order
        )
        last = times[picked[-1]] if picked else None
        at.page_first, at.page_records = (times[picked[0]] if picked else None), len(picked)
        leaf = plan.row.cursor_path[-1]
        name = plan.row.cursor_name
        raw_batches: list[tuple[Member, RawBatch]] = []
        parents: list[tuple[Member, list[str]]] = []
        for member in plan.members:
            if not member.alive:
                continue
            member_start = member.starts[window.track.key]
            chosen: Sequence[int] = picked
            if isinstance(picked, range):
                if picked and times[picked[0]] < member_start:
                    first = bisect_left(times, member_start, lo=picked.start, hi=picked.stop)
                    chosen = range(first, picked.stop)
            else:
                chosen = [i for i in picked if times[i] >= member_start]
            stream = member.row
            if stream.replaces and member.known is not None:
                parents.append((member, [ids[i] for i in chosen]))
            make: RawBatch
            keyed = member.known is not None  # key rows only for the deletion checks
            if stream.raw_shape is not None:  # pages with spaced datetimes went the dict way
                part = raw_slice(page, chosen, stream.raw_reads, name)
                part.keyed = keyed
                make = partial(stream.raw_shape, part)
            elif spaced:
                make = partial(_repaired, page, chosen, keyed, leaf, name)
            else:
                make = partial(_texts, page, chosen, keyed, cursor_key(name))
            raw_batches.append((member, make))
        tail = tail_ids(picked, times, id_at)
        item = PageItem(window, [], len(picked), last, last, final, raw_batches=raw_batches, parents=parents)
        return item, cut, tail

    def _page(
        self, plan: ListingPlan, window: Window, doc: dict[str, Any], at: _Cursor, *, final: bool
    ) -> tuple[PageItem, bool, set[str], list[tuple[Member, Coroutine[Any, Any, list[Record] | None]]]]:
        """Cut, select per member and shape one page; returns the item, whether it was cut, the
        ids of its records at the last cursor, and the members' requests still to make (detail
        fetches, fan-outs: a coroutine per member, its records or None when they went as children)."""
        row = plan.row
        path = row.cursor_path
        key = window.track.key
        data: list[Record] = doc["data"]
        cut = False
        tail: set[str] = set()
        if row.ordered:
            listed = data
            times = [parse_cursor(shape.cursor_value(r, path)) for r in listed]
            in_order = times_in_order(times)
            if not in_order:
                self._note_out_of_order(plan, window)

            def id_at(i: int) -> str:
                return str(listed[i].get("id"))

            picked, cut = window_slice(
                times, id_at, window.lo, window.hi, at.skip_at, at.skip_ids, in_order=in_order
            )
            tail = tail_ids(picked, times, id_at)
            data = [listed[i] for i in picked]
            kept_times = [times[i] for i in picked]
            last = kept_times[-1] if kept_times else None
            first = min(kept_times) if kept_times else None
            max_cursor = max(kept_times) if kept_times else None
            at.page_first, at.page_records = first, len(picked)
        elif not row.has_cursor:  # every record, every read
            last, first, max_cursor = None, None, None
        else:
            kept = []
            max_cursor = oldest = None
            for rec in data:
                cursor = parse_cursor(shape.cursor_value(rec, path))
                oldest = cursor if oldest is None else min(oldest, cursor)
                if cursor < self.hi_final:
                    kept.append(rec)
                    if max_cursor is None or cursor > max_cursor:
                        max_cursor = cursor
            starts = [m.starts[key] for m in plan.members if m.alive]
            if row.newest_first and oldest is not None and starts:  # newest first: the rest is older
                cut = oldest < min(starts)
            data, last, first = kept, None, None

        for datetime_path in row.datetime_paths:  # before the cursor copy: it may be one of them
            for rec in data:
                normalize_datetimes(rec, datetime_path)
        if row.has_cursor:  # the top-level cursor copy (Airbyte's envelope), ISO-8601 with `T`
            name = row.cursor_name
            if len(path) == 2:
                outer, leaf = path
                for rec in data:
                    held = rec[outer]
                    rec[name] = held[leaf] = iso_datetime(held[leaf])
            else:
                for rec in data:
                    rec[name] = iso_datetime(shape.cursor_value(rec, path))
        extra = row.partition(key).attributes
        if extra:
            for rec in data:
                rec["attributes"].update(extra)

        page = Page(doc)
        batches: list[tuple[Member, list[Record]]] = []
        work: list[tuple[Member, Coroutine[Any, Any, list[Record] | None]]] = []
        parents: list[tuple[Member, list[str]]] = []
        for member in plan.members:
            if not member.alive:
                continue
            member_start = member.starts[key]
            if row.ordered:
                if first is None or first >= member_start:
                    selected = data
                else:
                    selected = [r for r, t in zip(data, kept_times, strict=True) if t >= member_start]
            elif row.has_cursor:
                selected = [r for r in data if parse_cursor(shape.cursor_value(r, path)) >= member_start]
            else:
                selected = data
            stream = member.row
            if stream.replaces and member.known is not None:
                parents.append((member, [str(r["id"]) for r in selected]))
            if stream.shape is not None:
                selected = stream.shape(selected, page)
                own = stream.cursor_field
                if stream.rows_own_cursor and own is not None:
                    selected = [r for r in selected if parse_cursor(r[own]) >= member_start]
            if stream.fanout is not None:  # its records go out as child items, parent by parent
                work.append((member, self._fanout(plan, member, stream.fanout, selected)))
            elif stream.detail is not None:
                work.append((member, self._details(member, selected, page)))
            else:
                batches.append((member, selected))
        item = PageItem(window, batches, len(data), last, max_cursor, final, parents=parents)
        return item, cut, tail, work

    async def _fanout(self, plan: ListingPlan, member: Member, fanout: Fanout, parents: list[Record]) -> None:
        """Read each parent's child listing from where that parent's cursor stopped, page by page
        (pages come sorted on the child cursor, so each page's last cursor is safe to resume from);
        with `batch`, one listing per group of parents, each child naming its parent."""
        observer: RequestObserver = StatsObserver([member], self.outbox, fanout.path, self.requests)

        async def chain(
            url: str | None,
            params: dict[str, str] | None,
            key: PartitionKey,
            lo: datetime,
            parent_of: Callable[[Record], Record],
        ) -> None:
            """One child listing, page by page; `parent_of` finds each child's parent record."""
            seen: set[str] = set()
            while url is not None and member.alive:
                await self.outbox.reserve_child(member.name)
                handed = False
                try:
                    doc = await self.client.get_json(url, params, observer=observer)
                    next_url = self._next_link(doc, fanout.path, url, seen)
                    records: list[Record] = []
                    last: datetime | None = None
                    for child in doc["data"]:
                        if not fanout.cursor_path:  # no child cursor: every child, every read
                            records.append(fanout.row(parent_of(child), child))
                            continue
                        cursor = parse_cursor(shape.cursor_value(child, fanout.cursor_path))
                        if cursor >= self.hi_final:
                            next_url = None  # sorted: the rest is newer than this sync
                            break
                        if cursor >= lo:
                            records.append(fanout.row(parent_of(child), child))
                            last = cursor
                    self.outbox.note(ChildItem(plan, member, key, records, last))
                    handed = True
                finally:
                    if not handed:
                        self.outbox.release_child(member.name)
                url, params = next_url, None

        async def one(parent: Record) -> None:
            key = ((fanout.parent_key, str(parent["id"])),)
            lo = member.child_start(key)
            if lo >= self.hi_final:
                return
            params = fanout_params(fanout, [str(parent["id"])], lo, self.hi_final)
            await chain(fanout.path.format(id=parent["id"]), params, key, lo, lambda _: parent)

        async def many(group: list[Record], path: tuple[str, ...]) -> None:
            by_id = {str(parent["id"]): parent for parent in group}

            def parent_of(child: Record) -> Record:
                named = shape.cursor_value(child, path)
                parent = by_id.get(str(named)) if isinstance(named, str | int) else None
                if parent is None:
                    raise MalformedResponseError(
                        f"Malformed response from {fanout.path}: a record's {'.'.join(path)} "
                        f"({named!r}) names none of the {fanout.parent_key}s it was asked for."
                    )
                return parent

            lo = member.child_start(())
            params = fanout_params(fanout, list(by_id), lo, self.hi_final)
            await chain(fanout.path, params, (), lo, parent_of)

        if fanout.has_children is not None:
            parents = [parent for parent in parents if fanout.has_children(parent)]
        if fanout.batch is None:
            await asyncio.gather(*(one(parent) for parent in parents))
            return
        by_id = {str(parent["id"]): parent for parent in parents}
        groups = [[by_id[i] for i in ids] for ids in parent_batches(fanout, list(by_id))]
        await asyncio.gather(*(many(group, fanout.batch.parent_path) for group in groups))

    async def _details(self, member: Member, records: list[Record], page: Page) -> list[Record]:
        detail = member.row.detail
        assert detail is not None
        observer: RequestObserver = StatsObserver([member], self.outbox, detail.path, self.requests)
        cursor_field = member.row.cursor_field

        async def one(rec: Record) -> Record | None:
            try:
                doc = await self.client.get_json(
                    detail.path.format(id=rec["id"]),
                    dict(detail.params) or None,
                    observer=observer,
                )
            except NotFoundError:
                doc = None
            combined = detail.combine(rec, doc, page)
            if combined is not None and cursor_field is not None and cursor_field not in combined:
                combined[cursor_field] = rec[cursor_field]
            return combined

        results = await asyncio.gather(*(one(r) for r in records))
        return [r for r in results if r is not None]


def _keys(page: RawPage, chosen: Sequence[int], keyed: bool) -> list[Record]:
    ids = page.ids
    return [{"id": ids[i]} for i in chosen] if keyed else []


def _texts(page: RawPage, chosen: Sequence[int], keyed: bool, key: bytes) -> RawRows:
    records, cursors = page.records, page.cursors
    texts = [text(records[i], key, cursors[i]) for i in chosen]
    return Serialized(texts, breaks=page.breaks), _keys(page, chosen, keyed)


def _repaired(page: RawPage, chosen: Sequence[int], keyed: bool, leaf: str, name: str) -> RawRows:
    records, cursors = page.records, page.cursors
    batch = [repaired(records[i], leaf, name, iso_datetime(cursors[i])) for i in chosen]
    return Serialized(batch), _keys(page, chosen, keyed)


MALFORMED = (KeyError, TypeError, ValueError, AttributeError)  # what reading an odd record raises


def malformed(row: Listing, error: Exception) -> MalformedResponseError:
    """The error of a listing record the engine or a shaper cannot read."""
    needs = f" and {'.'.join(row.cursor_path)} as a datetime" if row.has_cursor else ""
    return MalformedResponseError(
        f"Malformed record in a page of {row.path}: {type(error).__name__}: {error} "
        f"(every record needs an id{needs})."
    )
