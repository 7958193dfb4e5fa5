"""Late-arriving events over real sockets: the simulator makes events visible after a sync has
passed their `datetime`; the trailing re-scan (late_events_hours / lookback_window) picks them up
on the next incremental sync, re-read records keep their id, and state never moves back."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from kit.sim import run_against_simulator
from kit.sink import CollectingSink
from klaviyo_simulator.server import Simulator
from klaviyo_source.config import Config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamSelection, StreamStatus

SIZES = {"events": 400, "profiles": 40, "campaigns": 3, "lists": 1, "templates": 1, "flows": 1}
STREAMS = ["events", "events_detailed"]
DAY = 86_400


async def _sync(sim: Simulator, states: dict[str, Any], **overrides: Any) -> CollectingSink:
    config = Config(api_key=sim.api_key, base_url=sim.base_url, backoff_base=0.01, max_retries=1, **overrides)
    sink = CollectingSink()
    outcomes = await read(config, [StreamSelection(n) for n in STREAMS], states, sink)
    assert all(o.status is StreamStatus.COMPLETE for o in outcomes), [(o.name, o.error) for o in outcomes]
    return sink


async def _latest_event_now(sim: Simulator) -> None:
    """An event stamped now, and that second passed: the next sync's saved cursor is now."""
    sim.advance(events=1)
    await asyncio.sleep(1.1)


def _cursor(state: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(state["datetime"])


def _final(sink: CollectingSink) -> dict[str, Any]:
    return {n: sink.states_of(n)[-1] for n in STREAMS}


def test_late_events_are_picked_up_by_the_rescan_and_state_never_moves_back() -> None:
    async def body(sim: Simulator) -> None:
        await _latest_event_now(sim)
        first = await _sync(sim, {}, late_events_hours=48)
        states = _final(first)
        seen = {r["id"] for r in first.records_of("events")}
        assert len(seen) == sim.store.event_count

        late = sim.advance(late_events=4, late_events_age=DAY)["late_events"]  # dated yesterday
        too_late = sim.advance(late_events=2, late_events_age=3 * DAY)["late_events"]  # beyond 48 h
        new = sim.advance(events=3)["events"]
        await asyncio.sleep(1.1)  # a sync reads up to its start second: let the advance's second pass
        second = await _sync(sim, states, late_events_hours=48)
        for name in STREAMS:
            ids = [r["id"] for r in second.records_of(name)]
            assert len(ids) == len(set(ids)), name  # nothing twice within a sync
            assert set(late) | set(new) <= set(ids), name  # the late ones are found
            assert not set(too_late) & set(ids), name  # older than the re-scan: out of reach
            assert set(ids) - set(late) - set(new) <= seen, name  # the rest are re-reads, same ids
            assert len(ids) < len(seen)  # only the trailing window was read again
            cursors = [_cursor(s) for s in second.states_of(name)]
            assert cursors == sorted(cursors) and cursors[0] >= _cursor(states[name]), name

        # lookback_window (Airbyte's days) widens the re-scan: 4 days reach the 3-day-old events
        third = await _sync(sim, _final(second), late_events_hours=0, lookback_window=4)
        assert set(too_late) <= {r["id"] for r in third.records_of("events")}

    run_against_simulator(body, seed=5, sizes=SIZES)


def test_without_rescan_late_events_are_lost() -> None:
    async def body(sim: Simulator) -> None:
        await _latest_event_now(sim)
        first = await _sync(sim, {}, late_events_hours=0)
        late = sim.advance(late_events=3, late_events_age=3600)["late_events"]
        second = await _sync(sim, _final(first), late_events_hours=0)
        assert not set(late) & {r["id"] for r in second.records_of("events")}  # what the re-scan fixes

    run_against_simulator(body, seed=5, sizes=SIZES)
