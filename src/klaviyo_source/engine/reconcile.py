"""Id reconciliation: list a stream's live ids cheaply, and from them its deleted keys.

A stream row's `Reconcile` (streams/reconcile.py) says what to scan; `IdScans` runs the scans
of one read, sharing a scan between streams that need the same one (campaigns, campaign_tags
and campaign_audiences list the same campaign ids once). When it runs (`due`): every
incremental sync for small collections, every `deletion_check_days` days for large ones
(profiles and what derives from them, memberships, per-parent relationship scans); never on a
full refresh (the destination is rebuilt) nor on a stream's first sync (it just read
everything). A stream without a cursor re-reads every record each sync: its read is the scan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from klaviyo_source.config import Config
from klaviyo_source.engine.known import Key, KnownKeys
from klaviyo_source.engine.params import query_params
from klaviyo_source.engine.partitions import FLOOR, Member
from klaviyo_source.errors import MalformedResponseError, NotFoundError
from klaviyo_source.http.client import KlaviyoClient, RequestObserver
from klaviyo_source.streams.reconcile import Reconcile
from klaviyo_source.streams.table import LISTINGS, Stream, WindowFilter
from klaviyo_source.times import parse_time

ScanKey = tuple[str, tuple[tuple[str, str], ...]]


def due(member: Member, config: Config, now: datetime) -> bool:
    """Whether this run reconciles the member (see the module docstring)."""
    row, known = member.row, member.known
    if row.reconcile is None or known is None or known.overflow or not config.detect_deletions:
        return False
    if not member.incremental or (not member.saved and row.has_cursor and not known.baseline):
        return False  # a full refresh, or a first sync: everything was just read
    if member.starts and all(start >= now for start in member.starts.values()):
        return False  # a state in the future: the run reads nothing, and sends nothing
    if not row.reconcile.large or known.at is None:
        return True
    return now - known.at >= timedelta(days=config.deletion_check_days)


def rereads_everything(row: Stream) -> bool:
    """The stream's own read lists every live record (no cursor): no scan needed."""
    reconcile = row.reconcile
    return reconcile is not None and not row.has_cursor and not reconcile.per_parent and not reconcile.listing


@dataclass(frozen=True)
class Live:
    """What a scan found: live ids (of `column`), or per parent the live child ids."""

    ids: frozenset[str] = frozenset()
    children: dict[str, frozenset[str]] | None = None


def deletions(row: Stream, known: KnownKeys, live: Live) -> list[Key]:
    """Known keys whose scanned column value is not live."""
    reconcile = row.reconcile
    assert reconcile is not None
    column = known.primary_key.index(reconcile.column)
    if live.children is not None:
        parent = (
            known.primary_key.index(reconcile.parent_column)
            if reconcile.parent_column in row.primary_key
            else None
        )
        if parent is not None:
            return sorted(k for k in known.keys if k[column] not in live.children.get(k[parent], frozenset()))
        alive = frozenset().union(*live.children.values())
        return sorted(k for k in known.keys if k[column] not in alive)
    return sorted(k for k in known.keys if k[column] not in live.ids)


def live_keys(row: Stream, live: Live) -> set[Key] | None:
    """The live set as keys, when the scan lists whole keys (else None: only remove deletions)."""
    reconcile = row.reconcile
    assert reconcile is not None
    if live.children is None:
        return {(i,) for i in live.ids} if row.primary_key == (reconcile.column,) else None
    if row.primary_key == (reconcile.parent_column, reconcile.column):
        return {(p, c) for p, ids in live.children.items() for c in ids}
    if row.primary_key == (reconcile.column,):
        return {(c,) for ids in live.children.values() for c in ids}
    return None


class IdScans:
    """The id scans of one read, each run once however many streams need it."""

    def __init__(self, client: KlaviyoClient, hi_final: datetime) -> None:
        self.client = client
        self.hi_final = hi_final
        self._tasks: dict[ScanKey, asyncio.Task[list[dict[str, Any]]]] = {}

    async def live(self, member: Member, observer: RequestObserver) -> Live:
        row = member.row
        reconcile = row.reconcile
        assert reconcile is not None and member.known is not None
        if reconcile.per_parent:
            if reconcile.parent_column in row.primary_key:  # the parents the destination holds
                parents = sorted(member.known.grouped(reconcile.parent_column))
            else:  # every live parent, from the parents' own id scan
                assert reconcile.parents is not None
                parents = sorted(await self._listing_ids(reconcile.parents, row.listing, observer))
            return Live(children=await self._children(reconcile, parents, observer))
        return Live(ids=await self._listing_ids(reconcile, row.listing, observer))

    async def _listing_ids(self, reconcile: Reconcile, own: str, observer: RequestObserver) -> frozenset[str]:
        """The ids an id-only listing scan finds, over every fixed partition of the listing."""
        listing = LISTINGS[reconcile.listing or own]
        results = []
        for partition in listing.partitions:
            params = query_params(
                fixed=reconcile.params,
                predicates=partition.predicates,
                window=_open_window(listing.window) if reconcile.window_from else None,
                lo=parse_time(reconcile.window_from) if reconcile.window_from else FLOOR,
                hi=self.hi_final,
                sort=None,
                page_size=listing.page_size,
            )
            key: ScanKey = (listing.path, tuple(sorted(params.items())))
            task = self._tasks.get(key)
            if task is None:
                task = self._tasks[key] = asyncio.ensure_future(self._pages(listing.path, params, observer))
            results.append(task)
        pages = await asyncio.gather(*results)  # shared by every stream scanning the same query
        return frozenset(i for docs in pages for doc in docs for i in reconcile.ids(doc))

    async def _pages(
        self,
        path: str,
        params: dict[str, str] | None,
        observer: RequestObserver,
        *,
        missing_ok: bool = False,
    ) -> list[dict[str, Any]]:
        """Every page of an id-only listing (links.next until the end); id-only pages are small."""
        out: list[dict[str, Any]] = []
        url: str | None = path
        seen: set[str] = set()
        while url is not None:
            try:
                doc = await self.client.get_json(url, params, observer=observer)
            except NotFoundError:
                if missing_ok:
                    return []
                raise
            if not isinstance(doc.get("data"), list):
                raise MalformedResponseError(f"Malformed response from {path}: 'data' is not a list.")
            out.append(doc)
            links = doc.get("links")
            next_url = links.get("next") if isinstance(links, dict) else None
            if not isinstance(next_url, str) or not next_url or next_url in seen:
                break
            seen.add(next_url)
            url, params = next_url, None
        return out

    async def _children(
        self, reconcile: Reconcile, parents: Iterable[str], observer: RequestObserver
    ) -> dict[str, frozenset[str]]:
        """Per parent, its live child ids (a parent that is gone, 404, has none)."""
        size = {"page[size]": str(reconcile.page_size)} if reconcile.page_size else None

        async def one(parent: str) -> tuple[str, frozenset[str]]:
            path = reconcile.per_parent.format(id=parent)
            docs = await self._pages(path, dict(size) if size else None, observer, missing_ok=True)
            return parent, frozenset(i for doc in docs for i in reconcile.ids(doc))

        return dict(await asyncio.gather(*(one(p) for p in parents)))


def _open_window(window: WindowFilter | None) -> WindowFilter | None:
    """The listing's window filter, lower bound only."""
    if window is None:
        return None
    return WindowFilter(field=window.field, lower=window.lower, upper=None)
