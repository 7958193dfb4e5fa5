"""What every table should hold after a complete sync: the simulator's records, by stream.

`expected(store)` -> stream -> {id: cursor in epoch microseconds}; `loaded(url)` reads the same
shape back from a destination, and `duplicates(url)` counts ids stored more than once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import psycopg

from klaviyo_source.destinations.base import parse_destination, quote
from klaviyo_source.streams.table import STREAMS_BY_NAME

SMALL = {
    "metrics": ("metric", "updated"),
    "lists": ("list", "updated"),
    "lists_detailed": ("list", "updated"),
    "email_templates": ("template", "updated"),
    "flows": ("flow", "updated"),
    "campaigns": ("campaign", "updated_at"),
    "campaigns_detailed": ("campaign", "updated_at"),
}


def _us(moment: datetime | str | None) -> int | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def expected(store: Any) -> dict[str, dict[str, int | None]]:
    cols = store.cols
    events = {event_id: ts * 1_000_000 for event_id, ts in zip(store.event_ids(), cols.event_ts, strict=True)}
    profiles = {
        store.profile_id(row): cols.profile_updated[row] * 1_000_000 for row in range(store.profile_count)
    }
    truth: dict[str, dict[str, int | None]] = {
        "events": events,
        "events_detailed": dict(events),
        "profiles": profiles,
        "global_exclusions": {
            store.profile_id(row): profiles[store.profile_id(row)] for row in cols.suppression
        },
    }
    for stream, (resource, cursor) in SMALL.items():
        truth[stream] = {row.id: _us(row.attributes[cursor]) for row in store.records(resource)}
    return truth


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    spec = parse_destination(url)
    if spec.kind == "duckdb":
        with duckdb.connect(spec.target, read_only=True) as con:
            return con.execute(sql).fetchall()
    with psycopg.connect(spec.target) as con:
        return con.execute(sql.encode()).fetchall()


def loaded(url: str, streams: list[str]) -> dict[str, dict[str, int | None]]:
    schema = parse_destination(url).schema
    out = {}
    for stream in streams:
        cursor = quote(STREAMS_BY_NAME[stream].cursor_field)
        rows = _query(url, f"SELECT id, {cursor} FROM {quote(schema)}.{quote(stream)}")
        out[stream] = {row[0]: _us(row[1]) for row in rows}
    return out


def duplicates(url: str, streams: list[str]) -> dict[str, int]:
    schema = parse_destination(url).schema
    found = {}
    for stream in streams:
        ((total, distinct),) = _query(
            url, f"SELECT count(*), count(DISTINCT id) FROM {quote(schema)}.{quote(stream)}"
        )
        if total != distinct:
            found[stream] = total - distinct
    return found


def stored_states(url: str) -> dict[str, Any]:
    schema = parse_destination(url).schema
    return {
        row[0]: row[1] for row in _query(url, f"SELECT stream, state FROM {quote(schema)}._klaviyo_state")
    }
