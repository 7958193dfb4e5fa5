"""Drifting types never break a load, on DuckDB and on a real Postgres: a value that does not fit
its column widens the column (with a notice) instead of being dropped, integers beyond 64 bits
keep every digit, and custom properties stay queryable JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from kit.dest_records import EVENT_SCHEMA, EVENTS, OpenDestination, event
from klaviyo_source.destinations.base import Batch, SqlDestination, WriteMode

BIG = 123456789012345678901234567890  # beyond 64 (and 96) bits


def batch(records: list[dict[str, Any]]) -> Batch:
    start = datetime.now(UTC)
    return Batch("events", records, [start + timedelta(microseconds=i) for i in range(len(records))])


def column_type(dest: SqlDestination, column: str) -> str:
    mark = dest.placeholder
    ((kind,),) = dest.query(
        "SELECT lower(data_type) FROM information_schema.columns WHERE table_schema = "
        f"{mark} AND table_name = 'events' AND column_name = {mark}",
        [dest.schema, column],
    )
    return str(kind)


def texts(dest: SqlDestination, column: str) -> list[Any]:
    rows = dest.query(f'SELECT CAST("{column}" AS TEXT) FROM {dest.qualified("events")} ORDER BY id')
    return [row[0] for row in rows]


def test_a_string_in_a_number_column_widens_it_and_keeps_both(open_destination: OpenDestination) -> None:
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
    dest.write(batch([event(1)]))
    assert column_type(dest, "timestamp") == "bigint"
    dest.write(batch([event(2, timestamp="soon"), event(3, timestamp=7)]))
    assert column_type(dest, "timestamp") in ("json", "jsonb")
    values = [json.loads(v) for v in texts(dest, "timestamp")]
    assert values[1:] == ["soon", 7] and isinstance(values[0], int)
    (notice,) = dest.take_notices()
    assert "events.timestamp" in notice and "bigint" in notice


def test_integers_beyond_64_bits_keep_every_digit(open_destination: OpenDestination) -> None:
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.APPEND, EVENT_SCHEMA)
    props = {"$value": BIG, "order": {"total": -BIG}}
    dest.write(batch([event(1, timestamp=BIG, value=BIG, event_properties=props)]))
    assert texts(dest, "timestamp") == [str(BIG)]  # bigint -> JSON, exact
    assert texts(dest, "value") == [str(BIG)]  # double -> JSON: a double would round it
    (stored,) = texts(dest, "event_properties")
    assert json.loads(stored) == props  # json.loads keeps big integers exact
    assert len(dest.take_notices()) == 2


def test_a_double_column_takes_integers_it_can_hold_exactly(open_destination: OpenDestination) -> None:
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.APPEND, EVENT_SCHEMA)
    dest.write(batch([event(1, value=2**53), event(2, value=3)]))
    assert column_type(dest, "value") in ("double", "double precision")
    assert dest.take_notices() == []


def test_object_then_null_then_a_new_property(open_destination: OpenDestination) -> None:
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
    dest.write(batch([event(1), event(2, event_properties=None)]))
    dest.write(batch([event(3, first_seen_later={"a": [1, 2]})]))
    stored = texts(dest, "event_properties")
    assert stored[0] is not None and stored[1] is None
    assert [None if v is None else json.loads(v) for v in texts(dest, "first_seen_later")] == [
        None,
        None,
        {"a": [1, 2]},
    ]
    assert dest.take_notices() == []


def test_a_date_column_that_gets_a_non_date_becomes_text(open_destination: OpenDestination) -> None:
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.APPEND, EVENT_SCHEMA)
    dest.write(batch([event(1)]))
    odd = event(2)
    odd["datetime"] = "next tuesday"  # the top-level cursor copy: the `datetime` column
    dest.write(batch([odd]))
    assert column_type(dest, "datetime") in ("varchar", "text")
    values = texts(dest, "datetime")
    assert values[0] is not None and values[0].startswith("2024-09-03") and values[1] == "next tuesday"


def test_a_widened_column_stays_wide_in_the_next_sync(open_destination: OpenDestination) -> None:
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
    dest.write(batch([event(1, is_test="maybe")]))
    dest.close()
    again = open_destination("sync-2")
    again.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
    again.write(batch([event(2, is_test=True), event(3, is_test="no")]))
    assert [json.loads(v) for v in texts(again, "is_test")] == ["maybe", True, "no"]
    assert again.take_notices() == []
