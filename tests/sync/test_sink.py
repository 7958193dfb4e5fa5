"""The destination sink: buffering, rows + state per transaction, overwrite swap, failure handling."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kit.dest_records import EVENT_SCHEMA, EVENTS, OpenDestination, event
from klaviyo_source.destinations.base import SqlDestination, WriteMode
from klaviyo_source.engine.contract import StreamStatus
from klaviyo_source.sync.sink import DestinationSink


def ids(destination: SqlDestination) -> list[str]:
    return [r[0] for r in destination.query(f"SELECT id FROM {destination.qualified('events')} ORDER BY id")]


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_rows_wait_for_their_state_then_commit_with_it(open_destination: OpenDestination) -> None:
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)

    async def scenario() -> DestinationSink:
        async with DestinationSink(dest, {"events": WriteMode.DEDUP}) as sink:
            await sink.records("events", [event(1), event(2)])
            await sink.state("events", {"datetime": "s1"})
            await sink.records("events", [event(3)])  # not covered by any state: dropped on failure
            await sink.status("events", StreamStatus.INCOMPLETE)
        return sink

    sink = run(scenario())
    assert ids(dest) == ["EV00000001", "EV00000002"]
    assert dest.stored_states() == {"events": {"datetime": "s1"}}
    assert (sink.counts["events"].received, sink.counts["events"].inserted) == (3, 2)


def test_complete_flushes_the_tail_and_size_flushes_bound_memory(open_destination: OpenDestination) -> None:
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)

    async def scenario() -> DestinationSink:
        async with DestinationSink(dest, {"events": WriteMode.DEDUP}, flush_bytes=700) as sink:
            for number in range(10):
                await sink.records("events", [event(number)])
                assert sink._pending["events"].spool.bytes < 700  # cut at the size: memory is bounded
            await sink.state("events", {"datetime": "s"})
            await sink.records("events", [event(10)])
            await sink.status("events", StreamStatus.COMPLETE)
        return sink

    sink = run(scenario())
    assert len(ids(dest)) == 11
    assert sink.counts["events"].inserted == 11


def test_overwrite_swaps_on_complete_with_the_last_state(open_destination: OpenDestination) -> None:
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
    run(_load(dest, WriteMode.DEDUP, [event(1)], {"datetime": "old"}))
    dest.prepare(EVENTS, WriteMode.OVERWRITE, EVENT_SCHEMA)
    run(_load(dest, WriteMode.OVERWRITE, [event(5), event(6)], {"datetime": "new"}))
    assert ids(dest) == ["EV00000005", "EV00000006"]
    assert dest.stored_states() == {"events": {"datetime": "new"}}


async def _load(
    dest: SqlDestination, mode: WriteMode, records: list[dict[str, Any]], state: dict[str, Any]
) -> None:
    async with DestinationSink(dest, {"events": mode}) as sink:
        await sink.records("events", records)
        await sink.state("events", state)
        await sink.status("events", StreamStatus.COMPLETE)


def test_a_failed_write_stops_the_sink_and_commits_nothing_after_it(
    open_destination: OpenDestination, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = open_destination()
    dest.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
    calls = 0
    real_write = dest.write

    def failing_once(batch: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("disk full")
        return real_write(batch)

    monkeypatch.setattr(dest, "write", failing_once)

    async def scenario() -> None:
        async with DestinationSink(dest, {"events": WriteMode.DEDUP}, max_delay=0) as sink:
            for number in range(5):  # max_delay=0: every checkpoint is a transaction
                await sink.records("events", [event(number)])
                await sink.state("events", {"datetime": f"s{number}"})
                await asyncio.sleep(0.05)

    with pytest.raises(OSError, match="disk full"):
        run(scenario())
    assert ids(dest) == ["EV00000000"]
    assert dest.stored_states() == {"events": {"datetime": "s0"}}
