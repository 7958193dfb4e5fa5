"""Slow refresh (engine/cadence.py, `Stream.slow_refresh`, `slow_refresh_hours`) against the
simulator over a socket: a cursorless per-parent stream (metric_properties) is re-read by
incremental reads at most every `slow_refresh_hours`; in between it sends no request and emits
nothing; after the interval, on a full refresh and after an interrupted read it reads every
metric again. Plus the slowest-tier-first order of the plans and of the client's slots."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kit.sim import simulator_in_loop
from kit.sink import CollectingSink
from kit.truth import expected
from klaviyo_simulator.server import Simulator
from klaviyo_source.config import Config, parse_config
from klaviyo_source.engine import read
from klaviyo_source.engine.cadence import REFRESHED_AT
from klaviyo_source.engine.contract import StreamOutcome, StreamSelection, StreamStatus
from klaviyo_source.engine.partitions import ListingPlan
from klaviyo_source.engine.run import _plan, slowest_rate
from klaviyo_source.errors import ConfigError
from klaviyo_source.http.ratelimit import Limits, RateLimiters
from klaviyo_source.http.slots import Slots
from klaviyo_source.streams.table import STREAMS, STREAMS_BY_NAME
from klaviyo_source.times import format_time, parse_time

STREAM = "metric_properties"
PROPERTIES = "get_properties_for_metric"


def config(sim: Simulator, **overrides: Any) -> Config:
    values: dict[str, Any] = dict(
        api_key=sim.api_key, base_url=sim.base_url, backoff_base=0.01, max_retries=1, num_workers=4
    )
    return Config(**(values | overrides))


def with_sim(body: Callable[[Simulator], Awaitable[None]]) -> None:
    async def go() -> None:
        async with simulator_in_loop(sizes={"events": 50, "profiles": 20}) as sim:
            await body(sim)

    asyncio.run(go())


async def sync(
    sim: Simulator,
    states: dict[str, Any] | None = None,
    *,
    incremental: bool = True,
    names: tuple[str, ...] = (STREAM,),
    **overrides: Any,
) -> tuple[CollectingSink, dict[str, StreamOutcome], dict[str, int]]:
    """One read; its sink, outcomes by stream, and the requests it cost per bucket."""
    before = dict(sim.controls.stats()["requests"])
    sink = CollectingSink()
    fast = RateLimiters(override=Limits(1000, 100_000))  # pacing is tested elsewhere
    selections = [StreamSelection(n, incremental=incremental) for n in names]
    outcomes = await read(config(sim, **overrides), selections, states or {}, sink, limiters=fast)
    after = dict(sim.controls.stats()["requests"])
    spent = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    return sink, {o.name: o for o in outcomes}, spent


def ids(sink: CollectingSink) -> set[str]:
    return {str(r["id"]) for r in sink.records_of(STREAM)}


def logs(sink: CollectingSink) -> list[str]:
    return [message for kind, _, (level, message) in (c for c in sink.calls if c[0] == "log")]


def test_within_the_interval_no_request_and_nothing_emitted_after_it_every_metric() -> None:
    async def body(sim: Simulator) -> None:
        metrics = len(sim.store.records("metric"))
        first, outcomes, spent = await sync(sim)
        assert outcomes[STREAM].status is StreamStatus.COMPLETE, outcomes[STREAM].error
        assert ids(first) == set(expected(sim.store)[STREAM])
        assert spent[PROPERTIES] == metrics
        state = first.states_of(STREAM)[-1]
        stamp = parse_time(state[REFRESHED_AT])  # the read's start: nothing later taken as read
        assert datetime.now(UTC) - timedelta(minutes=1) < stamp <= datetime.now(UTC)

        second, outcomes, spent = await sync(sim, {STREAM: state})
        assert outcomes[STREAM].status is StreamStatus.COMPLETE
        assert spent == {}  # not even the pre-flight: nothing to read at all
        assert second.records_of(STREAM) == []
        assert second.states_of(STREAM) == [state]  # given back as it came
        assert [s for s, _ in second.statuses_of(STREAM)] == [StreamStatus.STARTED, StreamStatus.COMPLETE]
        due = format_time(stamp + timedelta(hours=24))
        assert any(STREAM in m and f"next due at {due}" in m for m in logs(second)), logs(second)

        # with another stream selected the run sends requests, but none for the resting stream
        third, outcomes, spent = await sync(sim, {STREAM: state}, names=(STREAM, "metrics"))
        assert all(o.status is StreamStatus.COMPLETE for o in outcomes.values())
        assert PROPERTIES not in spent and spent.get("get_metrics") == 1
        assert third.records_of(STREAM) == [] and third.records_of("metrics")

        old = {**state, REFRESHED_AT: format_time(stamp - timedelta(hours=24, seconds=1))}
        fourth, outcomes, spent = await sync(sim, {STREAM: old})
        assert outcomes[STREAM].status is StreamStatus.COMPLETE
        assert spent[PROPERTIES] == metrics
        assert ids(fourth) == set(expected(sim.store)[STREAM])
        assert parse_time(fourth.states_of(STREAM)[-1][REFRESHED_AT]) >= stamp

    with_sim(body)


def test_a_full_refresh_or_a_zero_interval_always_reads_and_an_old_empty_state_is_due() -> None:
    async def body(sim: Simulator) -> None:
        metrics = len(sim.store.records("metric"))
        fresh = {REFRESHED_AT: format_time(datetime.now(UTC) - timedelta(minutes=5))}
        for states, kwargs in (
            ({STREAM: fresh}, {"incremental": False}),  # a full refresh ignores the state
            ({STREAM: fresh}, {"slow_refresh_hours": 0}),  # 0 = every sync
            ({STREAM: {}}, {}),  # a state written before the cadence existed
            ({}, {}),
        ):
            sink, outcomes, spent = await sync(sim, states, **kwargs)
            assert outcomes[STREAM].status is StreamStatus.COMPLETE, (states, kwargs)
            assert spent[PROPERTIES] == metrics, (states, kwargs)
            assert ids(sink) == set(expected(sim.store)[STREAM])
            assert REFRESHED_AT in sink.states_of(STREAM)[-1]

    with_sim(body)


def test_an_interrupted_refresh_does_not_count_and_is_read_again() -> None:
    async def body(sim: Simulator) -> None:
        metrics = sorted(m.id for m in sim.store.records("metric"))
        sim.controls.script(f"/api/metrics/{metrics[-1]}/metric-properties", [500] * 10)
        old = {REFRESHED_AT: format_time(datetime.now(UTC) - timedelta(hours=30))}
        broken, outcomes, _ = await sync(sim, {STREAM: old})
        assert outcomes[STREAM].status is StreamStatus.INCOMPLETE
        states = broken.states_of(STREAM)
        assert all(REFRESHED_AT not in s for s in states)  # no state says it was read
        sim.controls.clear_faults()
        last = states[-1] if states else old
        again, outcomes, spent = await sync(sim, {STREAM: last})
        assert outcomes[STREAM].status is StreamStatus.COMPLETE
        assert spent[PROPERTIES] == len(metrics)
        assert ids(again) == set(expected(sim.store)[STREAM])
        assert REFRESHED_AT in again.states_of(STREAM)[-1]

    with_sim(body)


def test_an_unreadable_refresh_time_fails_only_its_stream_with_a_clear_message() -> None:
    async def body(sim: Simulator) -> None:
        _, outcomes, _ = await sync(sim, {STREAM: {REFRESHED_AT: "yesterday"}}, names=(STREAM, "metrics"))
        assert outcomes["metrics"].status is StreamStatus.COMPLETE
        assert outcomes[STREAM].status is StreamStatus.INCOMPLETE
        error = outcomes[STREAM].error
        assert isinstance(error, ConfigError) and "'yesterday' is not a datetime" in str(error)

    with_sim(body)


def test_the_setting_is_in_the_spec_with_its_bounds() -> None:
    assert parse_config({"api_key": "k"}).slow_refresh_hours == 24
    assert parse_config({"api_key": "k", "slow_refresh_hours": 0}).slow_refresh_hours == 0
    try:
        parse_config({"api_key": "k", "slow_refresh_hours": -1})
    except ConfigError as error:
        assert "slow_refresh_hours" in str(error)
    else:
        raise AssertionError("a negative interval was accepted")


def test_only_cursorless_streams_rest_between_refreshes() -> None:
    """A stream with a cursor resumes from it and never needs a cadence."""
    resting = [s.name for s in STREAMS if s.slow_refresh]
    assert resting == [STREAM]
    assert all(STREAMS_BY_NAME[n].cursor_field is None for n in resting)


def test_plans_with_slow_tier_requests_start_first() -> None:
    """Streams with per-record requests on the XS/S tiers are spawned before the big scans."""
    selections = [
        StreamSelection(n) for n in ("events", "profiles", STREAM, "flow_messages", "lists_detailed")
    ]
    plans, failed, rested = _plan(Config(api_key="k"), selections, {}, datetime.now(UTC))
    assert not failed and not rested
    order = [p.name for p in sorted(plans, key=slowest_rate)]
    by_name = {p.name: p for p in plans}
    assert order[-2:] == ["events", "profiles"]  # no per-record requests: catalog order, last
    assert slowest_rate(by_name["metrics"]) == 15 and slowest_rate(by_name["lists"]) == 15  # XS
    assert slowest_rate(by_name["flows"]) == 60  # S
    assert isinstance(by_name["events"], ListingPlan)


def test_slots_go_to_the_slowest_tier_first_then_in_order() -> None:
    async def go() -> list[str]:
        slots = Slots(1)
        got: list[str] = []
        await slots.acquire(0)  # the one slot is held

        async def one(name: str, priority: float) -> None:
            async with slots.hold(priority):
                got.append(name)
                await asyncio.sleep(0)

        waiters = [asyncio.create_task(one(n, p)) for n, p in (("fast1", 750), ("fast2", 750), ("xs", 15))]
        cancelled = asyncio.create_task(one("gone", 1))
        await asyncio.sleep(0.01)
        assert slots.free() == 0
        cancelled.cancel()
        await asyncio.sleep(0.01)
        slots.release()
        await asyncio.gather(*waiters)
        assert slots.free() == 1
        return got

    assert asyncio.run(go()) == ["xs", "fast1", "fast2"]
