"""Workers: read one time window of a group page by page and hand shaped pages to the consumer.

A worker follows `links.next` within its window, cuts the page at the window's upper bound
(which adaptive splitting may lower while it runs), selects and shapes each member stream's
records (top-level cursor copy, included merge, detail fetches), and puts the page on the
output queue. When it has more pages to go and the scheduler has room, it splits the rest of its
window at the midpoint: it keeps [last cursor, mid) and the new window [mid, hi) goes to another
worker. It stops at mid by cutting, so no request is wasted and no record is read twice.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from klaviyo_source.config import Config
from klaviyo_source.engine.outbox import FailItem, NoteItem, Outbox, PageItem, StatsObserver, TaskEnd
from klaviyo_source.engine.pages import parse_cursor, tail_ids, window_slice
from klaviyo_source.engine.partitions import GroupPlan, Member, Window
from klaviyo_source.engine.requests import bucket_of, listing_params, wants_predictive
from klaviyo_source.errors import KlaviyoSourceError, MalformedResponseError, TransientError
from klaviyo_source.http.client import KlaviyoClient, NotFoundError, RequestObserver, ServerError
from klaviyo_source.http.rawpage import RawEventsPage, decode_events_page, event_fragment
from klaviyo_source.state import parse_time
from klaviyo_source.streams import records as shape
from klaviyo_source.streams.table import DETAILS

Record = dict[str, Any]
MIN_PREDICTIVE_PAGE = 25  # smallest page size tried on profiles+predictive 503s


class Scanner:
    def __init__(
        self,
        client: KlaviyoClient,
        config: Config,
        outbox: Outbox,
        hi_final: datetime,
        spawn: Callable[[Window], None],
        can_split: Callable[[str], bool],
        *,
        raw_events: bool = False,
    ) -> None:
        self.client = client
        self.config = config
        self.outbox = outbox
        self.hi_final = hi_final
        self.spawn = spawn
        self.can_split = can_split
        self.raw_events = raw_events  # the events group serves `events` alone to a raw-capable sink
        self._observers: dict[str, StatsObserver] = {}

    def observer(self, plan: GroupPlan) -> StatsObserver:
        obs = self._observers.get(plan.name)
        if obs is None:
            obs = StatsObserver(plan.members, self.outbox, plan.row.path)
            self._observers[plan.name] = obs
        return obs

    async def run(self, window: Window) -> None:
        plan = window.track.group
        try:
            await self._scan(window, plan)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            plan.failed = True
            self.outbox.note(FailItem([m for m in plan.members if m.alive], error))
        finally:
            self.outbox.note(TaskEnd(window))

    async def _scan(self, window: Window, plan: GroupPlan) -> None:
        key = window.track.key
        row = plan.row
        predictive = wants_predictive(plan, self.config.disable_fetching_predictive_analytics)
        bucket = bucket_of(plan, self.config.disable_fetching_predictive_analytics)
        observer = self.observer(plan)
        page_size = row.page_size
        url: str | None = row.path
        params: dict[str, str] | None = listing_params(
            plan, key, window.lo, window.hi, page_size=page_size, disable_predictive=not predictive
        )
        seen: set[str] = set()
        skip_at: datetime | None = None  # after a restart: ids already passed at this cursor
        skip_ids: set[str] = set()
        last: datetime | None = None
        ids_at_last: set[str] = set()
        while url is not None:
            if not plan.alive():
                return
            large = row.splittable
            await self.outbox.reserve(large)
            handed = False
            try:
                try:
                    if self.raw_events and row.name == "events":
                        fetched: Any = await self.client.fetch(
                            url, params, decode_events_page, bucket=bucket, observer=observer
                        )
                    else:
                        fetched = await self.client.get_json(url, params, bucket=bucket, observer=observer)
                except ServerError as error:
                    if not (predictive and error.status == 503):
                        raise
                    if page_size is None or page_size <= MIN_PREDICTIVE_PAGE:
                        raise TransientError(
                            "Klaviyo keeps answering 503 on profiles with predictive analytics "
                            f"(even {page_size} per page). Retry the sync later, or set "
                            "disable_fetching_predictive_analytics to true.",
                            str(error),
                        ) from error
                    page_size = max(MIN_PREDICTIVE_PAGE, page_size // 2)
                    restart = last or window.lo
                    skip_at, skip_ids = last, set(ids_at_last)
                    url = row.path
                    params = listing_params(
                        plan, key, restart, window.hi, page_size=page_size, disable_predictive=False
                    )
                    seen.clear()
                    message = f"profiles: 503 with predictive analytics; retrying with page size {page_size}"
                    self.outbox.note(NoteItem(None, message, level="WARN"))
                    continue
                next_url = self._next_link(fetched, row.path, url, seen)
                try:
                    if isinstance(fetched, RawEventsPage):
                        item, cut, page_tail = self._raw_page(
                            plan, window, fetched, skip_at, skip_ids, next_url is None
                        )
                    else:
                        item, cut, page_tail = await self._page(
                            plan, window, fetched, skip_at, skip_ids, final=next_url is None
                        )
                except (KeyError, TypeError, ValueError, AttributeError) as error:
                    raise MalformedResponseError(
                        f"Malformed record in a page of {row.path}: {type(error).__name__}: {error} "
                        f"(every record needs an id and attributes.{row.cursor_path[-1]} as a datetime)."
                    ) from error
                skip_at = None
                if cut:
                    next_url = None
                    item.final = True
                if item.last is not None:
                    ids_at_last = page_tail | ids_at_last if item.last == last else page_tail
                    last = item.last
                item.large = large
                self.outbox.page(item)
                handed = True
            finally:
                if not handed:
                    self.outbox.release(large)
            url, params = next_url, None
            if url is not None and row.splittable and last is not None and self.can_split(bucket):
                self._split(window, last)

    @staticmethod
    def _next_link(fetched: Any, path: str, url: str, seen: set[str]) -> str | None:
        """The page's links.next (None on the last page); a link seen before is a loop."""
        if isinstance(fetched, RawEventsPage):
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

    def _split(self, window: Window, last: datetime) -> None:
        mid = last + (window.hi - last) / 2
        mid = mid.replace(microsecond=0)
        if mid <= last or window.hi - mid < timedelta(seconds=1):
            return
        new = window.track.add(mid, window.hi)
        window.hi = mid
        self.spawn(new)

    def _raw_page(
        self,
        plan: GroupPlan,
        window: Window,
        page: RawEventsPage,
        skip_at: datetime | None,
        skip_ids: set[str],
        final: bool,
    ) -> tuple[PageItem, bool, set[str]]:
        """The fast path for `events` alone: records stay pre-serialized JSON (orjson.Fragment)."""
        heads = page.heads

        def cursor_at(i: int) -> datetime:
            return parse_time(heads[i].attributes.datetime)

        def id_at(i: int) -> str:
            return heads[i].id

        start, end, cut = window_slice(len(heads), cursor_at, id_at, window.hi, skip_at, skip_ids)
        member = plan.members[0]
        member_start = member.starts[window.track.key]
        if end > start and cursor_at(start) < member_start:
            start = bisect_left(range(len(heads)), member_start, lo=start, hi=end, key=cursor_at)
        last = cursor_at(end - 1) if end > start else None
        records = page.records
        fragments = [event_fragment(records[i], heads[i]) for i in range(start, end)]
        batches: list[tuple[Member, list[Record]]] = []
        if member.alive:
            # Sinks that set `accepts_raw_records` take orjson.Fragment items (see engine/run.py).
            batches.append((member, cast(list[Record], fragments)))
        tail = tail_ids(start, end, cursor_at, id_at)
        return PageItem(window, batches, end - start, last, last, final), cut, tail

    async def _page(
        self,
        plan: GroupPlan,
        window: Window,
        doc: dict[str, Any],
        skip_at: datetime | None,
        skip_ids: set[str],
        *,
        final: bool,
    ) -> tuple[PageItem, bool, set[str]]:
        """Cut, select per member and shape one page; returns the item, whether it was cut and the
        ids of its records at the last cursor."""
        row = plan.row
        path = row.cursor_path
        key = window.track.key
        data: list[Record] = doc["data"]
        cut = False
        tail: set[str] = set()
        if plan.ordered:
            page = data

            def cursor_at(i: int) -> datetime:
                return parse_cursor(shape.cursor_value(page[i], path))

            def id_at(i: int) -> str:
                return str(page[i].get("id"))

            start, end, cut = window_slice(len(page), cursor_at, id_at, window.hi, skip_at, skip_ids)
            tail = tail_ids(start, end, cursor_at, id_at)
            data = page[start:end]
            last = cursor_at(end - 1) if end > start else None
            first = cursor_at(start) if end > start else None
            max_cursor = last
        else:
            kept = []
            max_cursor = None
            for rec in data:
                cursor = parse_cursor(shape.cursor_value(rec, path))
                if cursor < self.hi_final:
                    kept.append(rec)
                    if max_cursor is None or cursor > max_cursor:
                        max_cursor = cursor
            data, last, first = kept, None, None

        field = plan.members[0].row.cursor_field
        leaf = path[-1]
        for rec in data:
            rec[field] = rec["attributes"][leaf]
        if row.name == "campaigns":
            channel = dict(key)["campaign_type"]
            for rec in data:
                rec["attributes"]["channel"] = channel

        index: shape.IncludedIndex | None = None
        batches: list[tuple[Member, list[Record]]] = []
        for member in plan.members:
            if not member.alive:
                continue
            member_start = member.starts[key]
            if plan.ordered:
                if first is None or first >= member_start:
                    selected = data
                else:
                    at = bisect_left(
                        data, member_start, key=lambda r: parse_cursor(shape.cursor_value(r, path))
                    )
                    selected = data[at:]
            else:
                selected = [r for r in data if parse_cursor(shape.cursor_value(r, path)) >= member_start]
            name = member.name
            if name == "events_detailed":
                index = index if index is not None else shape.include_index(doc)
                selected = [shape.merge_included(r, index) for r in selected]
            elif name == "profiles":
                for rec in selected:
                    shape.normalize_profile(rec)
            elif name == "global_exclusions":
                selected = [g for r in selected if (g := shape.global_exclusion(r)) is not None]
            elif member.row.detail:
                index = index if index is not None else shape.include_index(doc)
                try:
                    selected = await self._details(plan, member, selected, index)
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    self.outbox.note(FailItem([member], error))
                    continue
            batches.append((member, selected))
        item = PageItem(window, batches, len(data), last, max_cursor, final)
        return item, cut, tail

    async def _details(
        self, plan: GroupPlan, member: Member, records: list[Record], index: shape.IncludedIndex
    ) -> list[Record]:
        template, fixed, bucket = DETAILS[member.row.detail]
        observer: RequestObserver = StatsObserver([member], self.outbox, template)

        async def one(rec: Record) -> Record | None:
            try:
                doc = await self.client.get_json(
                    template.format(id=rec["id"]), dict(fixed) or None, bucket=bucket, observer=observer
                )
            except NotFoundError:
                doc = None
            if member.row.detail == "list_profile_count":
                if doc is None or not isinstance(doc.get("data"), dict):
                    return None  # the list was deleted between the listing and the detail fetch
                detailed: Record = doc["data"]
                detailed[member.row.cursor_field] = rec[member.row.cursor_field]
                return detailed
            count = 0
            if doc is not None and isinstance(doc.get("data"), dict):
                count = (doc["data"].get("attributes") or {}).get("estimated_recipient_count") or 0
            return {
                **rec,
                "estimated_recipient_count": count,
                "campaign_messages": shape.campaign_messages(rec, index),
            }

        results = await asyncio.gather(*(one(r) for r in records))
        return [r for r in results if r is not None]
