"""Ground truth for tests: what a complete read of each connector stream must return.

The simulator exists to test the connector, so this one place maps the connector's stream names
onto the store's collections: stream -> {record key: cursor in epoch microseconds}; a record's
key is its primary key, '/'-joined when composite (`record_key`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from klaviyo_simulator.resources.profiles import ROW_MASK, SHIFT
from klaviyo_simulator.store import Store
from klaviyo_source.streams.table import STREAMS_BY_NAME

# stream -> (resource type in the store, cursor attribute) for the small collections.
SMALL_STREAMS: dict[str, tuple[str, str]] = {
    "metrics": ("metric", "updated"),
    "lists": ("list", "updated"),
    "lists_detailed": ("list", "updated"),
    "email_templates": ("template", "updated"),
    "flows": ("flow", "updated"),
    "campaigns": ("campaign", "updated_at"),
    "campaigns_detailed": ("campaign", "updated_at"),
    "segments": ("segment", "updated"),
    "segments_detailed": ("segment", "updated"),
    "flow_actions": ("flow-action", "updated"),
    "flow_messages": ("flow-message", "updated"),
}


# stream -> the group type whose members it lists
MEMBERSHIP_STREAMS: dict[str, str] = {"list_memberships": "list", "segment_memberships": "segment"}


def epoch_us(moment: datetime | str | None) -> int | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def expected(store: Store) -> dict[str, dict[str, int | None]]:
    """Every stream's records: id -> cursor (epoch µs)."""
    events_ts, profile_cols = store.events.cols.ts, store.profiles.cols
    events: dict[str, int | None] = {
        event_id: ts * 1_000_000 for event_id, ts in zip(store.event_ids(), events_ts, strict=True)
    }
    profiles: dict[str, int | None] = {
        store.profile_id(row): profile_cols.updated[row] * 1_000_000 for row in range(store.profile_count)
    }
    truth: dict[str, dict[str, int | None]] = {
        "events": events,
        "events_detailed": dict(events),
        "profiles": profiles,
        "global_exclusions": {
            store.profile_id(row): profiles[store.profile_id(row)] for row in profile_cols.suppression
        },
    }
    for stream, (resource, cursor) in SMALL_STREAMS.items():
        truth[stream] = {row.id: epoch_us(row.attributes[cursor]) for row in store.records(resource)}
    for stream, group_type in MEMBERSHIP_STREAMS.items():
        truth[stream] = {f"{g}/{p}": joined for (g, p), joined in memberships(store, group_type).items()}
    return truth


def record_key(stream: str, record: Mapping[str, Any]) -> str:
    """A record's primary key as one string ('/'-joined when composite), as `expected` keys it."""
    return "/".join(str(record[k]) for k in STREAMS_BY_NAME[stream].primary_key)


def expected_ids(store: Store, stream: str) -> set[str]:
    """The ids every complete read of `stream` must contain."""
    if stream in ("events", "events_detailed"):
        return set(store.event_ids())
    if stream == "profiles":
        return set(store.profile_ids())
    if stream == "global_exclusions":
        return {store.profile_id(row) for row in store.profiles.cols.suppression}
    if stream in MEMBERSHIP_STREAMS:
        return {f"{g}/{p}" for g, p in memberships(store, MEMBERSHIP_STREAMS[stream])}
    resource, _ = SMALL_STREAMS[stream]
    return {row.id for row in store.records(resource)}


def memberships(store: Store, group_type: str) -> dict[tuple[str, str], int]:
    """(group id, profile id) -> joined_group_at (epoch µs) of every member of every group."""
    out: dict[tuple[str, str], int] = {}
    for group in store.records(group_type):
        for key in store.members(group_type, group.id):
            out[(group.id, store.profile_id(key & ROW_MASK))] = (key >> SHIFT) * 1_000_000
    return out
