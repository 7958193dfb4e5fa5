"""429s: a storm on a third of the requests, Retry-After from 1 s upwards, and a Retry-After the
configured `max_rate_limit_wait` cannot cover, which must end the stream quickly with a
transient_error instead of sleeping for an hour."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kit.cli import read_in_process
from kit.documents import ALL_STREAMS, make_catalog, make_config
from kit.sim import simulator
from kit.truth import expected_ids


def throttle(seconds: int) -> dict[str, Any]:
    return {"status": 429, "retry_after": seconds}


def rate_limited_statuses(messages: list[dict[str, Any]]) -> int:
    return sum(
        1
        for m in messages
        if m["type"] == "TRACE"
        and m["trace"]["type"] == "STREAM_STATUS"
        and {"type": "RATE_LIMITED"} in (m["trace"]["stream_status"].get("reasons") or [])
    )


def test_429_storm_on_a_third_of_all_requests_loses_nothing(tmp_path: Path) -> None:
    # "/api" prefixes every endpoint: every third request of the run's first 45 is throttled.
    with simulator() as sim:
        sim.controls.script("/api", ["ok", "ok", throttle(1)] * 15)
        result = read_in_process(
            tmp_path,
            config=make_config(sim, num_workers=6),
            catalog=make_catalog(ALL_STREAMS),
        )
        stats = sim.controls.stats()
        assert result.code == 0, result.errors()
        for stream in ALL_STREAMS:
            assert result.ids(stream) == expected_ids(sim.store, stream), stream
        throttled = stats["statuses"].get("429", stats["statuses"].get(429, 0))
        assert throttled >= 10
        assert rate_limited_statuses(result.messages) >= 1
        print(f"RELIABILITY 429 storm: requests={stats['requests_total']} throttled={throttled}")


@pytest.mark.parametrize("retry_after", [1, 2, 4])
def test_retry_after_within_the_limit_is_waited_out(tmp_path: Path, retry_after: int) -> None:
    with simulator() as sim:
        sim.controls.script("/api/profiles", ["ok", throttle(retry_after), throttle(retry_after)])
        config = make_config(sim, max_rate_limit_wait=3 * retry_after)
        result = read_in_process(tmp_path, config=config, catalog=make_catalog(["profiles", "metrics"]))
        assert result.code == 0, result.errors()
        assert result.ids("profiles") == expected_ids(sim.store, "profiles")
        assert sim.controls.faults.describe() == []
        assert any("Rate limited" in line for line in result.logs())


@pytest.mark.parametrize("retry_after", [11, 3600, 30 * 86400])
def test_retry_after_beyond_max_rate_limit_wait_fails_the_stream_as_transient(
    tmp_path: Path, retry_after: int
) -> None:
    with simulator() as sim:
        sim.controls.script("/api/profiles", ["ok", throttle(retry_after)])
        config = make_config(sim, max_rate_limit_wait=10)
        result = read_in_process(tmp_path, config=config, catalog=make_catalog(["profiles", "metrics"]))
        assert result.code == 1
        error = result.stream_error("profiles")
        assert error is not None and error["failure_type"] == "transient_error"
        assert "max_rate_limit_wait" in error["message"] and "429" in error["message"]
        assert result.statuses("profiles")[-1] == "INCOMPLETE"
        assert result.ids("metrics") == expected_ids(sim.store, "metrics")
        final = result.errors()[-1]
        assert "profiles" in final["message"] and final["failure_type"] == "transient_error"


def test_retry_afters_that_add_up_beyond_the_limit_fail_after_the_allowed_wait(tmp_path: Path) -> None:
    with simulator() as sim:
        sim.controls.script("/api/metrics", [throttle(2), throttle(2), throttle(2)])
        config = make_config(sim, max_rate_limit_wait=5)
        result = read_in_process(tmp_path, config=config, catalog=make_catalog(["metrics", "flows"]))
        assert result.code == 1
        error = result.stream_error("metrics")
        assert error is not None and error["failure_type"] == "transient_error"
        assert "max_rate_limit_wait" in error["message"]
        assert result.ids("flows") == expected_ids(sim.store, "flows")
