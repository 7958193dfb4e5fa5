"""Klaviyo breaking its own contract (peers met each in 2026), one simulator switch each, over
real sockets: the engine loses no record, keeps none twice, does not fail on an out-of-order page,
and writes datetimes as ISO-8601 with offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kit.sim import run_against_simulator
from kit.sink import CollectingSink
from kit.truth import expected_ids
from klaviyo_simulator.server import Simulator
from klaviyo_source.config import Config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamSelection, StreamStatus
from klaviyo_source.engine.pages import cursor_layout, times_in_order, window_slice

SIZES = {"events": 600, "profiles": 450, "campaigns": 150, "lists": 12, "templates": 2, "flows": 2}


def _config(sim: Simulator, **overrides: Any) -> Config:
    values: dict[str, Any] = {"backoff_base": 0.01, "max_retries": 1, "late_events_hours": 0, **overrides}
    return Config(api_key=sim.api_key, base_url=sim.base_url, **values)


async def _read(
    sim: Simulator, names: list[str], states: dict[str, Any] | None = None, **overrides: Any
) -> CollectingSink:
    sink = CollectingSink()
    selections = [StreamSelection(n, incremental=states is not None) for n in names]
    outcomes = await read(_config(sim, **overrides), selections, states or {}, sink)
    assert all(o.status is StreamStatus.COMPLETE for o in outcomes), [(o.name, o.error) for o in outcomes]
    return sink


def _ids(sink: CollectingSink, stream: str) -> list[str]:
    return [r["id"] for r in sink.records_of(stream)]


def _iso(value: str) -> bool:
    """ISO-8601 with `T` and an offset."""
    return value[10] == "T" and datetime.fromisoformat(value).utcoffset() is not None


def test_greater_than_returning_the_bound_loses_and_repeats_nothing() -> None:
    async def body(sim: Simulator) -> None:
        # profiles (greater-than lower bound) split into windows: each window's lower bound comes
        # back too, and belongs to the window before
        sink = await _read(sim, ["profiles", "lists"], num_workers=8)
        ids = _ids(sink, "profiles")
        assert len(ids) == len(set(ids)) and set(ids) == expected_ids(sim.store, "profiles")
        assert sink.records_of("profiles")  # sanity
        # incremental from a state: nothing from before it comes back
        lists = sorted(sink.records_of("lists"), key=lambda r: r["updated"])
        state = {"lists": {"updated": lists[len(lists) // 2]["updated"]}}
        again = await _read(sim, ["lists"], state)
        assert all(r["updated"] >= state["lists"]["updated"] for r in again.records_of("lists"))
        assert len(_ids(again, "lists")) == len(set(_ids(again, "lists")))

    run_against_simulator(body, seed=3, sizes=SIZES, quirk_greater_than_equal=True)


def test_archived_campaigns_out_of_sort_order_are_all_read_once() -> None:
    async def body(sim: Simulator) -> None:
        truth = {row.id: row for row in sim.store.records("campaign")}
        full = await _read(sim, ["campaigns"])
        assert sorted(_ids(full, "campaigns")) == sorted(truth)
        warnings = [value[1] for kind, _, value in full.calls if kind == "log" and value[0] == "WARN"]
        assert any("out of its sort order" in m and "archived=true" in m for m in warnings), warnings
        # campaigns from a state inside the archived ones, campaign_messages from scratch: one scan
        # serves both, each member picks its records from the out-of-order pages by its own start
        archived = sorted(r.attributes["updated_at"] for r in truth.values() if r.attributes["archived"])
        for cut in archived[1::3]:
            states = {"campaigns": full.states_of("campaigns")[-1]}
            for entry in states["campaigns"]["states"]:
                entry["cursor"]["updated_at"] = cut
            both = await _read(sim, ["campaigns", "campaign_messages"], states)
            got = _ids(both, "campaigns")
            assert len(got) == len(set(got))
            assert set(got) == {i for i, r in truth.items() if r.attributes["updated_at"] >= cut}, cut
            assert set(_ids(both, "campaign_messages")) == expected_ids(sim.store, "campaign_messages")

    run_against_simulator(body, seed=3, sizes=SIZES, quirk_unsorted_archived=True)


def test_space_separated_datetimes_come_out_as_iso_8601_with_offset() -> None:
    async def body(sim: Simulator) -> None:
        sink = await _read(sim, ["events", "profile_subscriptions", "global_exclusions"])
        events = sink.records_of("events")
        assert len(events) == sim.store.event_count
        assert all(_iso(r["datetime"]) and r["attributes"]["datetime"] == r["datetime"] for r in events)
        consents = [r["consent_timestamp"] for r in sink.records_of("profile_subscriptions")]
        assert any(consents) and all(_iso(c) for c in consents if c)
        exclusions = sink.records_of("global_exclusions")
        suppressions = [
            s["timestamp"]
            for r in exclusions
            for s in r["attributes"]["subscriptions"]["email"]["marketing"]["suppressions"]
        ]
        assert suppressions and all(_iso(t) for t in suppressions)
        assert all(_iso(r["updated"]) for r in exclusions)  # its cursor: the suppression time

    run_against_simulator(body, seed=3, sizes=SIZES, quirk_space_datetimes=True)


def test_a_page_is_cut_at_its_window_lower_bound_sorted_or_not() -> None:
    """A split window [mid, hi) asks greater-than(mid - 1 µs); the quirky API also returns the
    records at mid - 1 s, which belong to the window before: they are cut here."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    times = [base + timedelta(seconds=s) for s in (9, 10, 10, 11, 12)]
    ids = ["a", "b", "c", "d", "e"]
    lo, hi = base + timedelta(seconds=10), base + timedelta(seconds=12)
    picked, cut = window_slice(times, ids.__getitem__, lo, hi, None, set())
    assert list(picked) == [1, 2, 3] and cut
    shuffled = [times[i] for i in (1, 0, 3, 2, 4)]
    picked, cut = window_slice(shuffled, ids.__getitem__, lo, hi, None, set(), in_order=False)
    assert sorted(shuffled[i] for i in picked) == times[1:4] and cut
    assert not times_in_order(shuffled) and times_in_order(times)


def test_cursor_strings_are_in_order_only_when_their_times_are() -> None:
    t = ["2026-01-01T10:00:00+00:00", "2026-01-01T10:00:01+00:00"]
    spaced = [c.replace("T", " ") for c in t]
    assert cursor_layout(t) == (True, False) and cursor_layout(t[::-1]) == (False, False)
    assert cursor_layout(spaced) == (True, True)
    assert cursor_layout([spaced[1], t[0]]) == (False, True)  # sorted as strings (" " < "T"), not in time
    assert cursor_layout(["2026-01-01T10:00:00.5+00:00", t[1]]) == (True, False)  # layouts differ: parsed
