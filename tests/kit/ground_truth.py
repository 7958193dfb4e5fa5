"""What every table should hold after a complete sync: the simulator's records, by stream.

`expected(store)` (from `kit.truth`) -> stream -> {key: cursor in epoch microseconds}, the key
being the primary key ('/'-joined when composite); `loaded(url)` reads the same shape back from
a destination, and `duplicates(url)` counts keys stored more than once.
"""

from __future__ import annotations

from typing import Any

import duckdb
import psycopg

from kit.truth import epoch_us, expected
from klaviyo_source.destinations.base import parse_destination, quote
from klaviyo_source.streams.table import STREAMS_BY_NAME


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    spec = parse_destination(url)
    if spec.kind == "duckdb":
        with duckdb.connect(spec.target, read_only=True) as con:
            return con.execute(sql).fetchall()
    with psycopg.connect(spec.target) as con:
        return con.execute(sql.encode()).fetchall()


def _key_sql(stream: str) -> str:
    """The stream's primary key as one text value (composite keys '/'-joined, as `record_key`)."""
    return " || '/' || ".join(quote(k) for k in STREAMS_BY_NAME[stream].primary_key)


def loaded(url: str, streams: list[str]) -> dict[str, dict[str, int | None]]:
    schema = parse_destination(url).schema
    out = {}
    for stream in streams:
        field = STREAMS_BY_NAME[stream].cursor_field
        cursor = quote(field) if field is not None else "NULL"  # no cursor: keys only
        rows = _query(url, f"SELECT {_key_sql(stream)}, {cursor} FROM {quote(schema)}.{quote(stream)}")
        out[stream] = {row[0]: epoch_us(row[1]) for row in rows}
    return out


def soft_deleted(
    url: str, streams: list[str]
) -> tuple[dict[str, dict[str, int | None]], dict[str, set[str]]]:
    """(live rows: key -> cursor, as `loaded`; keys whose row has `_deleted_at` set), per stream."""
    schema = parse_destination(url).schema
    live: dict[str, dict[str, int | None]] = {}
    deleted: dict[str, set[str]] = {}
    for stream in streams:
        field = STREAMS_BY_NAME[stream].cursor_field
        cursor = quote(field) if field is not None else "NULL"
        row = STREAMS_BY_NAME[stream]
        marked = "_deleted_at IS NOT NULL" if row.reconcile is not None or row.replaces else "FALSE"
        rows = _query(
            url, f"SELECT {_key_sql(stream)}, {cursor}, {marked} FROM {quote(schema)}.{quote(stream)}"
        )
        live[stream] = {row[0]: epoch_us(row[1]) for row in rows if not row[2]}
        deleted[stream] = {row[0] for row in rows if row[2]}
    return live, deleted


def duplicates(url: str, streams: list[str]) -> dict[str, int]:
    schema = parse_destination(url).schema
    found = {}
    for stream in streams:
        ((total, distinct),) = _query(
            url, f"SELECT count(*), count(DISTINCT {_key_sql(stream)}) FROM {quote(schema)}.{quote(stream)}"
        )
        if total != distinct:
            found[stream] = total - distinct
    return found


def stored_states(url: str) -> dict[str, Any]:
    schema = parse_destination(url).schema
    return {
        row[0]: row[1] for row in _query(url, f"SELECT stream, state FROM {quote(schema)}._klaviyo_state")
    }


__all__ = ["duplicates", "expected", "loaded", "soft_deleted", "stored_states"]
