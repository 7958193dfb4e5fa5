"""DuckDB's whole-spool read (`read_json` over a batch's spool file) lands exactly the rows the
chunk path (msgspec split + tab-separated text) lands, for every kind of value a record can
hold, and hands a batch it cannot take to the chunk path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kit.dest_records import EVENT_SCHEMA, EVENTS, event
from klaviyo_source.destinations import duckdb as duckdb_destination
from klaviyo_source.destinations import open_destination as open_url
from klaviyo_source.destinations.base import Batch, SqlDestination, WriteMode

BIG = 123456789012345678901234567890


def odd_records() -> list[dict[str, Any]]:
    records = [event(n) for n in range(1, 30)]
    records[0]["attributes"]["uuid"] = 'tab\there "quoted" \\ back\nline é 😀 \u2028'
    records[1]["attributes"]["uuid"] = 12345  # a number in a text column
    records[2]["attributes"]["uuid"] = {"nested": [1, None, "x"]}  # an object in a text column
    records[3]["attributes"]["event_properties"] = {"big": BIG, "neg": -BIG, "f": 1.25, "e": 1e300}
    records[4]["attributes"]["uuid"] = None
    del records[5]["attributes"]["uuid"]
    records[6]["attributes"]["extra_field"] = [1, {"a": "b"}]  # a key the schema does not have
    records[7]["attributes"]["timestamp"] = "soon"  # widens bigint -> JSON
    records[8]["attributes"]["value"] = BIG  # a double column cannot hold it exactly
    records[9]["relationships"] = None
    records[10]["attributes"]["is_test"] = "yes"  # widens boolean -> JSON
    records[11]["attributes"]["event_properties"] = []
    records[12]["type"] = 7
    records += [event(3, uuid="again")]  # a repeated key: dedup keeps the newer
    return records


def batch(records: list[dict[str, Any]]) -> Batch:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    return Batch("events", records, [start + timedelta(microseconds=i) for i in range(len(records))])


def table(dest: SqlDestination) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
    types = dest.query(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'events' "
        "ORDER BY ordinal_position"
    )
    json_columns = {name for name, kind in types if kind == "JSON"}
    names = ", ".join(f'CAST("{name}" AS TEXT)' for name, _ in types)
    rows = dest.query(f"SELECT {names} FROM {dest.qualified('events')} ORDER BY id, uuid")
    decoded = [
        tuple(
            json.loads(value) if value is not None and name in json_columns else value
            for (name, _), value in zip(types, row, strict=True)
        )
        for row in rows
    ]
    return [(str(n), str(k)) for n, k in types], decoded


def load(path: Path, records: list[dict[str, Any]], *, whole: bool) -> tuple[Any, list[str], int]:
    dest = open_url(f"duckdb:///{path}", "sync-1")
    staged: list[int] = []
    try:
        assert isinstance(dest, duckdb_destination.DuckDBDestination)
        if whole:
            stage = dest._stage_spool

            def spy(*args: Any) -> None:
                staged.append(1)
                stage(*args)

            dest._stage_spool = spy  # type: ignore[method-assign]
        else:
            dest._write_whole = lambda *args: None  # type: ignore[method-assign]
        dest.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
        dest.write(batch(records[:15]))
        dest.write(batch(records[15:]))
        return table(dest), dest.take_notices(), len(staged)
    finally:
        dest.close()


def test_the_whole_spool_read_lands_what_the_chunk_path_lands(tmp_path: Path) -> None:
    records = odd_records()
    whole, whole_notices, staged = load(tmp_path / "whole.duckdb", records, whole=True)
    chunks, chunk_notices, _ = load(tmp_path / "chunks.duckdb", records, whole=False)
    assert staged == 2  # both batches went through read_json
    assert whole == chunks
    assert sorted(whole_notices) == sorted(chunk_notices)
    types = dict(whole[0])
    assert (types["timestamp"], types["value"], types["is_test"]) == ("JSON", "JSON", "JSON")
    rows = {row[0]: row for row in whole[1]}
    assert len(rows) == 29  # one row per key
    names = [name for name, _ in whole[0]]
    assert rows["EV00000004"][names.index("event_properties")]["big"] == BIG
    assert rows["EV00000001"][names.index("uuid")] == records[0]["attributes"]["uuid"]
    assert rows["EV00000003"][names.index("uuid")] == "again"


@pytest.mark.parametrize("attributes", ["not an object", 5, [1, 2]])
def test_a_batch_the_read_cannot_take_goes_down_the_chunk_path(tmp_path: Path, attributes: Any) -> None:
    records = [event(1), event(2)]
    records[1]["attributes"] = attributes
    (_types, rows), notices, staged = load(tmp_path / "odd.duckdb", [*records, event(3)], whole=True)
    assert staged == 0  # the first batch holds the odd record: the chunk path took it
    assert [row[0] for row in rows] == ["EV00000001", "EV00000002", "EV00000003"]
    assert any("not an object" in notice for notice in notices)
