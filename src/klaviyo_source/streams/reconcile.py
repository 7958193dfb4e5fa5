"""Id reconciliation as row data: how a stream's live keys are listed cheaply, so records that
disappeared from Klaviyo (deleted campaigns, GDPR-deleted profiles, lifted suppressions, removed
members) can be emitted as deletions.

A `Reconcile` names an id-only scan: the stream's listing (or another one) with sparse fieldsets
(`fields[<type>]=id`, the spec allows `id` on every listing) and no includes beyond what carries
the ids, or a `/relationships/...` endpoint read once per known parent (memberships, flow
messages). The engine (`engine/reconcile.py`) runs it; nothing here knows a stream name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Params = tuple[tuple[str, str], ...]
IdsOf = Callable[[dict[str, Any]], list[str]]


def data_ids(doc: dict[str, Any]) -> list[str]:
    """The ids of a page's `data` (a listing with `fields[<type>]=id`, or a relationships page)."""
    return [str(item["id"]) for item in doc.get("data") or ()]


def included_ids(resource_type: str) -> IdsOf:
    """The ids of a page's included resources of one type (flow actions of `include=flow-actions`)."""

    def ids(doc: dict[str, Any]) -> list[str]:
        return [str(item["id"]) for item in doc.get("included") or () if item.get("type") == resource_type]

    return ids


@dataclass(frozen=True, kw_only=True)
class Reconcile:
    """An id scan that lists every live value of one of the stream's key columns.

    Deletions = the keys the destination holds (engine/known.py) whose `column` value the scan
    did not list. `column` is the stream's own key ("id"), or its parent's id for rows derived
    from a parent (profile_subscriptions' `profile_id`: a deleted profile takes its rows along).
    With `per_parent`, the scan is one relationships listing per parent value the destination
    holds in `parent_column` (list_memberships: GET /api/lists/{id}/relationships/profiles; a
    parent answering 404 has no live children).
    """

    params: Params = ()  # the id-only query: sparse fieldsets, and includes when ids come from them
    ids: IdsOf = data_ids  # a page of the scan -> the live ids on it
    column: str = "id"
    listing: str = ""  # scan this LISTINGS entry (its path and partitions); "" = the stream's own
    # The listing's window filter from this time on (no upper bound): the records the listing
    # exists for (suppressed profiles: a suppression time at all). "" = no filter.
    window_from: str = ""
    per_parent: str = ""  # a path with {id}, read per parent value of `parent_column`
    parent_column: str = ""
    page_size: int | None = None  # per_parent pages (the spec's maximum)
    # per_parent whose parent is not part of the stream's key (flow messages by flow action): the
    # id scan that lists the parents.
    parents: Reconcile | None = None
    # Cadence: False = every incremental sync (small collections); True = every
    # `deletion_check_days` days (profiles, memberships: the scan costs one request per 100).
    large: bool = False
