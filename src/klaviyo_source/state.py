"""Stream state: reading every shape Airbyte's connector ever saved, and writing ours.

Input (per stream, the `stream_state` object): 2.10.x raw cursor strings (`T` or space, `+00:00`),
2.11+ `+0000` strings, campaigns/flows `{"updated_at": A, "archived": {"updated_at": B}}`, 2.13+
per-partition `{"states": [...], "state": {...}, "use_global_cursor": ...}`, events_detailed's
legacy `{"states": [{"partition": {"event_id": ..}, "cursor": {"datetime": ..}}]}` (minimum
wins) and lists_detailed's per-list partitions (the global `state`, else the maximum: every list
changed later has a later `updated`). Everything is read into one form: partition key -> saved
cursor (`SavedState`); single-cursor streams use the key `NO_PARTITION`.

Airbyte 3.x's config-partitioned streams (events per `event_metric_ids`): per-partition states
keyed by the row's `ConfigPartitions.key`; the unfiltered read's cursor (a plain cursor, a
partition of value "", legacy partitions of other keys) covers every value, a value never read
starts from start_date.

Output: `{"<cursor>": "2024-09-03T10:00:00.123456+00:00"}`, or for per-partition streams
(campaigns, campaigns_detailed, flows, events per metric id) Airbyte 2.13's shape, readable by
either connector.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from klaviyo_source.errors import ConfigError
from klaviyo_source.streams.table import (
    LISTINGS,
    NO_PARTITION,
    ConfigPartitions,
    Listing,
    PartitionKey,
    Stream,
)
from klaviyo_source.times import format_time, parse_time

SavedState = dict[PartitionKey, datetime]


def _bad(stream: str, why: str) -> ConfigError:
    return ConfigError(
        f"Invalid state for stream '{stream}': {why}. Supply a state this connector or Airbyte's "
        f"source-klaviyo wrote, or reset the stream (standalone sync: `klaviyo-source state reset "
        f"--streams {stream}`; Airbyte: reset the stream's data)."
    )


def _cursor(stream: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise _bad(stream, f"cursor value {value!r} is not a datetime string")
    try:
        return parse_time(value.strip())
    except ValueError:
        raise _bad(stream, f"cursor value {value!r} is not a datetime") from None


def _partition_key(row: Stream, partition: Any) -> PartitionKey | None:
    """Our key for an Airbyte partition dict, or None when it is not one of ours."""
    if not isinstance(partition, dict):
        return None
    if row.fanout is not None:
        parent = partition.get(row.fanout.parent_key)
        return ((row.fanout.parent_key, str(parent)),) if isinstance(parent, str | int) else None
    for option in LISTINGS[row.listing].partitions:
        if all(str(partition.get(k)).lower() == v for k, v in option.key):
            return option.key
    return None


def _parent_state(row: Stream, parent: dict[str, Any]) -> SavedState:
    """How far a fan-out stream read its parent listing: one cursor, or one per partition of a
    partitioned listing (flows' archived true/false) in the per-partition `states` shape."""
    listing = LISTINGS[row.listing]
    parent_field = listing.cursor_path[-1]
    if parent_field in parent:
        everywhere = _cursor(row.name, parent[parent_field])
        return {option.key: everywhere for option in listing.partitions}
    saved: SavedState = {}
    states = parent.get("states")
    for entry in states if isinstance(states, list) else ():
        cursor = entry.get("cursor") if isinstance(entry, dict) else None
        partition = entry.get("partition") if isinstance(entry, dict) else None
        if not isinstance(cursor, dict) or not isinstance(partition, dict) or parent_field not in cursor:
            raise _bad(row.name, "a 'parent_state' entry lacks its 'partition' or 'cursor' object")
        for option in listing.partitions:
            if all(str(partition.get(k)).lower() == v for k, v in option.key):
                saved[option.key] = _cursor(row.name, cursor[parent_field])
    return saved


def _per_partition(row: Stream, raw: dict[str, Any]) -> SavedState:
    field = row.cursor_field
    states = raw.get("states")
    saved: SavedState = {}
    global_cursor = raw.get("use_global_cursor") and row.fanout is None
    if global_cursor and isinstance(raw.get("state"), dict) and field in raw["state"]:
        everywhere = _cursor(row.name, raw["state"][field])
        return {option.key: everywhere for option in LISTINGS[row.listing].partitions}
    if isinstance(states, list):
        for entry in states:
            if not isinstance(entry, dict) or not isinstance(entry.get("cursor"), dict):
                raise _bad(row.name, "a 'states' entry lacks its 'cursor' object")
            key = _partition_key(row, entry.get("partition"))
            if key is not None and field in entry["cursor"]:
                saved[key] = _cursor(row.name, entry["cursor"][field])
        parent = raw.get("parent_state")
        if row.fanout is not None and isinstance(parent, dict):
            saved.update(_parent_state(row, parent))
        return saved
    # Airbyte <= 2.12: {"updated_at": A, "archived": {"updated_at": B}}; for campaigns it read
    # email campaigns only, so the sms and mobile_push partitions start from start_date.
    extra = row.legacy_archived_extra
    if field in raw:
        saved[(("archived", "false"), *extra)] = _cursor(row.name, raw[field])
    archived = raw.get("archived")
    if isinstance(archived, dict) and field in archived:
        saved[(("archived", "true"), *extra)] = _cursor(row.name, archived[field])
    elif archived is not None and not isinstance(archived, dict):
        raise _bad(row.name, "'archived' must be an object")
    return saved


def _single(row: Stream, raw: dict[str, Any]) -> SavedState:
    field = row.cursor_field
    if field in raw:
        return {NO_PARTITION: _cursor(row.name, raw[field])}
    inner = raw.get("state")
    if isinstance(inner, dict) and field in inner:
        return {NO_PARTITION: _cursor(row.name, inner[field])}
    states = raw.get("states")
    if isinstance(states, list):
        cursors = []
        for entry in states:
            cursor = entry.get("cursor") if isinstance(entry, dict) else None
            if not isinstance(cursor, dict):
                raise _bad(row.name, "a 'states' entry lacks its 'cursor' object")
            if field in cursor:
                cursors.append(_cursor(row.name, cursor[field]))
        if not cursors:
            return {}
        # events_detailed's legacy per-event partitions: the minimum misses nothing;
        # lists_detailed's per-list ones: every list changed later has a later cursor.
        return {NO_PARTITION: max(cursors) if row.legacy_states_pick == "max" else min(cursors)}
    return {}


def _by_config_value(
    row: Stream, raw: dict[str, Any], spec: ConfigPartitions
) -> tuple[dict[str, datetime], datetime | None]:
    """A config-partitioned stream's state (Airbyte 3.x `event_metric_ids`): the cursor per value,
    and the cursor of the unfiltered read, which covers every value (a plain cursor, the
    partition of value "" or null, legacy partitions of other keys: the row's pick)."""
    field = row.cursor_field
    assert field is not None
    inner = raw.get("state")
    inner_cursor = _cursor(row.name, inner[field]) if isinstance(inner, dict) and field in inner else None
    if raw.get("use_global_cursor") and inner_cursor is not None:
        return {}, inner_cursor  # one cursor for every partition
    covers: list[datetime] = [_cursor(row.name, raw[field])] if field in raw else []
    per_value: dict[str, datetime] = {}
    states = raw.get("states")
    for entry in states if isinstance(states, list) else ():
        cursor = entry.get("cursor") if isinstance(entry, dict) else None
        if not isinstance(cursor, dict):
            raise _bad(row.name, "a 'states' entry lacks its 'cursor' object")
        if field not in cursor:
            continue
        value = _cursor(row.name, cursor[field])
        partition = entry.get("partition")
        named = partition.get(spec.key) if isinstance(partition, dict) else None
        if isinstance(named, str | int) and str(named):
            per_value[str(named)] = max(value, per_value.get(str(named), value))
        else:
            covers.append(value)
    if not covers and not per_value and inner_cursor is not None:
        covers.append(inner_cursor)  # {"state": {...}} alone
    if not covers:
        return per_value, None
    return per_value, max(covers) if row.legacy_states_pick == "max" else min(covers)


def _config_partitioned(row: Stream, raw: dict[str, Any], listing: Listing) -> SavedState:
    """Per partition of the configured listing: its own cursor, or the unfiltered read's (which
    read every value up to it) when later; a value never read starts from start_date."""
    spec = LISTINGS[row.listing].config_partitions
    assert spec is not None
    per_value, cover = _by_config_value(row, raw, spec)
    saved: SavedState = {}
    for partition in listing.partitions:
        named = dict(partition.key).get(spec.key)
        own = per_value.get(named) if named is not None else None
        found = [c for c in (own, cover) if c is not None]
        if found:
            saved[partition.key] = max(found)
    return saved


def read_state(row: Stream, raw: Any, listing: Listing | None = None) -> SavedState:
    """Parse a stream's saved state (any Airbyte shape); ConfigError naming the stream if unreadable.
    A stream without a cursor keeps no state: whatever was saved, it reads everything. `listing`:
    the row's listing as the config partitions it (default: the row's own)."""
    if raw is None or raw == {} or not row.has_cursor:
        return {}
    configured = listing or LISTINGS[row.listing]
    if isinstance(raw, str):  # a bare cursor string (seen in hand-edited states)
        raw = {} if row.partitioned_state else {row.cursor_field: raw}
    if not isinstance(raw, dict):
        raise _bad(row.name, "expected a JSON object")
    if LISTINGS[row.listing].config_partitions is not None:
        return _config_partitioned(row, raw, configured)
    return _per_partition(row, raw) if row.partitioned_state else _single(row, raw)


def write_state(row: Stream, cursors: dict[PartitionKey, datetime]) -> dict[str, Any]:
    """Our output state for a stream from its per-partition watermarks ({} without a cursor)."""
    field = row.cursor_field
    if field is None:
        return {}
    if not row.partitioned_state and not any(cursors):  # any(): a partition key that is not ()
        value = cursors.get(NO_PARTITION)
        return {field: format_time(value)} if value is not None else {}
    parents: dict[PartitionKey, datetime] = {}
    if row.fanout is not None:  # one cursor per parent, and how far the parents were read
        child = row.fanout.parent_key
        parents = {k: v for k, v in cursors.items() if not (k and k[0][0] == child)}
        cursors = {k: v for k, v in cursors.items() if k not in parents}
    states = [
        {"partition": dict(key), "cursor": {field: format_time(value)}} for key, value in cursors.items()
    ]
    out: dict[str, Any] = {"states": states, "use_global_cursor": False}
    if cursors:
        out["state"] = {field: format_time(min(cursors.values()))}
    if parents:
        parent_field = LISTINGS[row.listing].cursor_path[-1]
        if len(parents) == 1 and NO_PARTITION in parents:
            out["parent_state"] = {parent_field: format_time(parents[NO_PARTITION])}
        else:  # a partitioned parent listing: how far each partition was read
            out["parent_state"] = {
                "states": [
                    {"partition": dict(key), "cursor": {parent_field: format_time(value)}}
                    for key, value in parents.items()
                ]
            }
    return out
