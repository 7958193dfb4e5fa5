"""Klaviyo's profiles endpoint answers 503 under load when predictive analytics are requested.
The read retries with backoff and smaller pages for the failing window; when the 503s persist,
profiles fails with a transient_error that says what to do. No profile is ever emitted without
its `predictive_analytics` while the feature is on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kit.cli import read_in_process
from kit.documents import make_catalog, make_config
from kit.sim import simulator
from kit.truth import expected_ids

PROFILE_STREAMS = ["profiles", "global_exclusions"]


def assert_every_profile_has_predictive_analytics(records: list[dict[str, Any]]) -> None:
    missing = [r["id"] for r in records if not isinstance(r["attributes"].get("predictive_analytics"), dict)]
    assert not missing, f"{len(missing)} profiles without predictive_analytics"


@pytest.mark.parametrize(
    "controls",
    [
        {"predictive_503_rate": 0.6, "seed": 3},  # random, worse with bigger pages and concurrency
        {"predictive_503_max_page": 50},  # every page above 50 fails: only the smaller size works
    ],
    ids=["random 503 under load", "503 above 50 per page"],
)
def test_predictive_503_is_retried_with_smaller_pages_and_loses_nothing(
    tmp_path: Path, controls: dict[str, Any]
) -> None:
    with simulator(sizes={"profiles": 600, "events": 10}, **controls) as sim:
        config = make_config(sim, num_workers=6, max_retries=2)
        result = read_in_process(
            tmp_path,
            config=config,
            catalog=make_catalog([*PROFILE_STREAMS, "metrics"]),
        )
        stats = sim.controls.stats()
        assert result.code == 0, result.errors()
        for stream in (*PROFILE_STREAMS, "metrics"):
            assert result.ids(stream) == expected_ids(sim.store, stream), stream
        assert_every_profile_has_predictive_analytics(result.records("profiles"))
        smaller = [line for line in result.logs() if "retrying with page size" in line]
        assert smaller, "the failing window was retried with a smaller page size"
        backoffs = [line for line in result.logs() if "retrying /api/profiles" in line and "HTTP 503" in line]
        assert backoffs, "503s are first retried with backoff at the same page size"
        assert stats["statuses"].get("503", stats["statuses"].get(503, 0)) > 0
        print(
            f"RELIABILITY predictive {controls}: requests={stats['requests_total']} "
            f"503s={stats['faults_total']} smaller_page_retries={len(smaller)}"
        )


def test_persistent_predictive_503_fails_profiles_with_advice(tmp_path: Path) -> None:
    with simulator(sizes={"profiles": 300, "events": 10}, predictive_503_max_page=10) as sim:
        config = make_config(sim, max_retries=1)
        result = read_in_process(tmp_path, config=config, catalog=make_catalog(["profiles", "metrics"]))
        assert result.code == 1
        error = result.stream_error("profiles")
        assert error is not None and error["failure_type"] == "transient_error"
        assert "retry" in error["message"].lower()
        assert "disable_fetching_predictive_analytics" in error["message"]
        assert result.statuses("profiles")[-1] == "INCOMPLETE"
        assert_every_profile_has_predictive_analytics(result.records("profiles"))
        assert result.ids("metrics") == expected_ids(sim.store, "metrics")
        final = result.errors()[-1]
        assert "profiles" in final["message"] and final["failure_type"] == "transient_error"


def test_with_predictive_analytics_disabled_the_503s_stop(tmp_path: Path) -> None:
    with simulator(sizes={"profiles": 300, "events": 10}, predictive_503_max_page=10) as sim:
        config = make_config(sim, disable_fetching_predictive_analytics=True)
        result = read_in_process(tmp_path, config=config, catalog=make_catalog(PROFILE_STREAMS))
        assert result.code == 0, result.errors()
        for stream in PROFILE_STREAMS:
            assert result.ids(stream) == expected_ids(sim.store, stream), stream
        assert all("predictive_analytics" not in r["attributes"] for r in result.records("profiles"))
