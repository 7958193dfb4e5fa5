"""Adaptive splitting over a real socket: a long scan is cut into parallel windows only where a
split pays (many pages left, the bucket has spare rate), so the records stay exact and the
requests stay near ceil(records / page size)."""

from __future__ import annotations

import math
from typing import Any

from kit.sim import run_against_simulator
from kit.sink import CollectingSink
from kit.truth import expected_ids
from klaviyo_simulator.server import Simulator
from klaviyo_source.config import Config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamOutcome, StreamSelection, StreamStatus


async def full_refresh(sim: Simulator, name: str, **overrides: Any) -> tuple[CollectingSink, StreamOutcome]:
    config = Config(api_key=sim.api_key, base_url=sim.base_url, backoff_base=0.01, **overrides)
    sink = CollectingSink()
    (outcome,) = await read(config, [StreamSelection(name, incremental=False)], {}, sink)
    assert outcome.status is StreamStatus.COMPLETE, outcome.error
    return sink, outcome


def test_a_long_scan_splits_and_stays_near_the_minimum_of_requests() -> None:
    events = 60_500  # 61 pages of 1,000

    async def body(sim: Simulator) -> None:
        sink, outcome = await full_refresh(sim, "events", num_workers=8)
        ids = [r["id"] for r in sink.records_of("events")]
        assert len(ids) == len(set(ids)) and set(ids) == expected_ids(sim.store, "events")
        splits = outcome.stats.partitions_total - 1
        assert 0 < splits <= 61 // 8  # it did split, and only windows of 16 pages or more
        least = math.ceil(events / 1000)
        assert outcome.stats.requests <= least + splits  # a split costs at most one part-used page

    run_against_simulator(body, seed=7, sizes={"events": events, "profiles": 50}, latency_ms=20)


def test_a_bucket_at_its_rate_is_not_split_beyond_what_holds_its_burst() -> None:
    """Predictive profiles (M tier, 10/s): at ~60 ms a request, two or three requests in flight
    keep the bucket at its rate; more windows would only wait for it and cost requests, so the
    scan stays within two requests of ceil(records / 100)."""
    profiles = 6_000  # 60 pages of 100

    async def body(sim: Simulator) -> None:
        sink, outcome = await full_refresh(sim, "profiles", num_workers=16)
        ids = [r["id"] for r in sink.records_of("profiles")]
        assert len(ids) == len(set(ids)) and set(ids) == expected_ids(sim.store, "profiles")
        assert outcome.stats.partitions_total <= 6  # a few windows over the run, never many
        assert outcome.stats.requests <= profiles // 100 + 2
        assert outcome.stats.throttled == 0

    run_against_simulator(
        body, seed=7, sizes={"events": 50, "profiles": profiles}, latency_ms=50, rate_limits=True
    )
