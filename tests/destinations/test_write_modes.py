"""Write modes, schema evolution, state atomicity and locking, on DuckDB and on a real Postgres."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kit.dest_records import BASE_TIME, EVENT_SCHEMA, EVENTS, OpenDestination, event
from klaviyo_source.destinations.base import Batch, DestinationBusyError, SqlDestination, WriteMode


def batch(records: list[dict[str, Any]], state: dict[str, Any] | None = None) -> Batch:
    start = datetime.now(UTC)
    return Batch("events", records, [start + timedelta(microseconds=i) for i in range(len(records))], state)


def rows(
    destination: SqlDestination, columns: str = "id, uuid", table: str = "events"
) -> list[tuple[Any, ...]]:
    return destination.query(f"SELECT {columns} FROM {destination.qualified(table)} ORDER BY {columns}")


def test_dedup_keeps_newest_cursor_and_latest_extracted_on_ties(open_destination: OpenDestination) -> None:
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
    later = BASE_TIME + timedelta(hours=1)
    first = dest.write(batch([event(1), event(2), event(1, at=later, uuid="v2"), event(1, uuid="older")]))
    assert (first.inserted, first.updated) == (2, 0)
    assert rows(dest) == [("EV00000001", "v2"), ("EV00000002", "uuid-2")]

    # an older version is ignored; the same cursor again (a boundary repeat) replaces: latest extracted wins
    second = dest.write(batch([event(1, uuid="stale"), event(2, uuid="tie"), event(3)]))
    assert (second.inserted, second.updated) == (1, 1)
    assert rows(dest) == [("EV00000001", "v2"), ("EV00000002", "tie"), ("EV00000003", "uuid-3")]


def test_dedup_loads_new_keys_in_one_pass_and_merges_a_stored_one(open_destination: OpenDestination) -> None:
    """Distinct keys the table lacks go straight in (Postgres's backfill path); one stored key in
    an otherwise new batch still merges: replaced, never a second row."""
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
    assert dest.write(batch([event(1), event(2)])).inserted == 2
    later = BASE_TIME + timedelta(hours=1)
    mixed = dest.write(batch([event(3), event(2, at=later, uuid="v2"), event(4)]))
    assert (mixed.inserted, mixed.updated, mixed.unchanged) == (2, 1, 0)
    assert rows(dest) == [
        ("EV00000001", "uuid-1"),
        ("EV00000002", "v2"),
        ("EV00000003", "uuid-3"),
        ("EV00000004", "uuid-4"),
    ]


def test_append_keeps_every_version(open_destination: OpenDestination) -> None:
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.APPEND, EVENT_SCHEMA)
    dest.write(batch([event(1), event(1, uuid="again")]))
    dest.write(batch([event(1, uuid="third")]))
    assert rows(dest) == [("EV00000001", "again"), ("EV00000001", "third"), ("EV00000001", "uuid-1")]


def test_typed_columns_round_trip(open_destination: OpenDestination) -> None:
    dest = open_destination("sync-typed")
    dest.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
    dest.write(batch([event(4)]))
    (row,) = rows(dest, 'id, "datetime", "timestamp", value, is_test, _sync_id')
    assert row[0] == "EV00000004"
    assert row[1] == BASE_TIME + timedelta(seconds=4)
    assert row[2:] == (int((BASE_TIME + timedelta(seconds=4)).timestamp()), 6.0, True, "sync-typed")
    (nested,) = dest.query(
        f"SELECT CAST(event_properties AS TEXT), CAST(relationships AS TEXT) FROM {dest.qualified('events')}"
    )
    assert '"items"' in nested[0] and '"M4"' in nested[1]


def test_overwrite_swaps_at_the_end_and_keeps_old_table_on_failure(open_destination: OpenDestination) -> None:
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
    dest.write(batch([event(1), event(2)], {"datetime": "2024-09-03T10:00:02+00:00"}))

    dest.prepare(EVENTS, WriteMode.OVERWRITE, EVENT_SCHEMA)
    dest.write(batch([event(7)]))
    assert [r[0] for r in rows(dest)] == ["EV00000001", "EV00000002"]  # not swapped yet
    dest.abandon("events")
    assert [r[0] for r in rows(dest)] == ["EV00000001", "EV00000002"]

    dest.prepare(EVENTS, WriteMode.OVERWRITE, EVENT_SCHEMA)
    dest.write(batch([event(8), event(9)]))
    dest.finish("events", {"datetime": "2024-09-03T10:00:09+00:00"})
    assert [r[0] for r in rows(dest)] == ["EV00000008", "EV00000009"]
    assert dest.stored_states() == {"events": {"datetime": "2024-09-03T10:00:09+00:00"}}
    # the swapped-in table works as a normal table afterwards, and a second overwrite works too
    dest.prepare(EVENTS, WriteMode.OVERWRITE, EVENT_SCHEMA)
    dest.write(batch([event(10)]))
    dest.finish("events", None)
    assert [r[0] for r in rows(dest)] == ["EV00000010"]


def test_schema_evolution_adds_a_json_column_and_keeps_rows(open_destination: OpenDestination) -> None:
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
    dest.write(batch([event(1)]))
    dest.write(batch([event(2, loyalty={"tier": "gold"})]))
    loaded = [(i, None if v is None else json.loads(v)) for i, v in rows(dest, "id, CAST(loyalty AS TEXT)")]
    assert loaded == [("EV00000001", None), ("EV00000002", {"tier": "gold"})]
    dest.close()

    # a later sync: the column exists in the table but not in the schema; it keeps filling
    again = open_destination("sync-2")
    again.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
    again.write(batch([event(3, loyalty={"tier": "silver"})]))
    loaded = rows(again, "id, CAST(loyalty AS TEXT)")
    assert [r[0] for r in loaded] == ["EV00000001", "EV00000002", "EV00000003"]
    assert loaded[2][1] is not None and "silver" in loaded[2][1]


def test_state_is_committed_with_its_rows_or_not_at_all(
    open_destination: OpenDestination, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
    dest.write(batch([event(1)], {"datetime": "a"}))
    assert dest.stored_states() == {"events": {"datetime": "a"}}

    def broken_state(*_: object) -> None:
        raise RuntimeError("disk full while saving the state")

    monkeypatch.setattr(dest, "_save_state", broken_state)
    with pytest.raises(RuntimeError):
        dest.write(batch([event(2), event(3)], {"datetime": "b"}))
    monkeypatch.undo()
    assert [r[0] for r in rows(dest)] == ["EV00000001"]  # the rows rolled back with the state
    assert dest.stored_states() == {"events": {"datetime": "a"}}


def test_a_second_sync_on_the_same_destination_is_refused(open_destination: OpenDestination) -> None:
    first = open_destination()
    with pytest.raises(DestinationBusyError, match="Another sync"):
        open_destination("sync-2")
    first.close()
    open_destination("sync-3")  # free again once the first one is closed
