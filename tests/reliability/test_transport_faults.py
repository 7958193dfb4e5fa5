"""Server errors, broken connections, bad bodies, hung requests and an unreachable host: a read
either retries its way to the complete ground truth or fails the affected stream with a clear,
typed error while the other streams finish."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from kit.cli import read_in_process
from kit.documents import make_catalog, make_config
from kit.sim import simulator
from kit.truth import expected_ids

# (fault label, script on /api/profiles). "ok" first so the faults hit page 2 of a running stream.
RECOVERABLE: list[tuple[str, list[Any]]] = [
    ("5xx burst", ["ok", 503, 500, {"status": 502}, 504]),
    ("connection resets", ["ok", "reset", "reset", "reset", "reset"]),
    ("truncated body", ["ok", "truncated", "truncated"]),
    ("invalid JSON body", ["ok", "invalid_json", "invalid_json"]),
    ("body cut short", ["ok", "cut_body"]),
    ("hung request", ["ok", {"kind": "hang", "seconds": 30}]),
    ("slow body", ["ok", {"kind": "slow_body", "seconds": 20}]),
]


@pytest.mark.parametrize(("label", "script"), RECOVERABLE, ids=[label for label, _ in RECOVERABLE])
def test_recoverable_fault_mid_stream_loses_nothing(tmp_path: Path, label: str, script: list[Any]) -> None:
    streams = ["profiles", "metrics", "email_templates"]
    with simulator() as sim:
        sim.controls.script("/api/profiles", script)
        # request_timeout=1 turns a hang or a trickled body into a timeout that is retried.
        config = make_config(sim, max_retries=4, request_timeout=1, num_workers=2)
        result = read_in_process(tmp_path, config=config, catalog=make_catalog(streams))
        stats = sim.controls.stats()
        assert result.code == 0, result.errors()
        for stream in streams:
            records = result.records(stream)
            assert {r["id"] for r in records} == expected_ids(sim.store, stream), (label, stream)
            assert result.statuses(stream)[-1] == "COMPLETE"
        assert sim.controls.faults.describe() == [], "every scripted fault was served"
        retries = [line for line in result.logs() if "retrying" in line]
        assert retries, label
        print(
            f"RELIABILITY {label}: records={len(result.records('profiles'))} faults={stats['faults']} "
            f"retries={len(retries)}"
        )


def test_random_5xx_on_every_endpoint_loses_nothing(tmp_path: Path) -> None:
    """About a third of all requests, on every stream, answer 500/502/503/504."""
    with simulator(error_rate=0.35, seed=5) as sim:
        config = make_config(sim, max_retries=10, num_workers=4)
        streams = ["profiles", "global_exclusions", "events", "events_detailed", "email_templates", "metrics",
                   "lists", "lists_detailed", "campaigns", "campaigns_detailed", "flows"]  # fmt: skip
        result = read_in_process(tmp_path, config=config, catalog=make_catalog(streams))
        stats = sim.controls.stats()
        assert result.code == 0, result.errors()
        for stream in streams:
            assert result.ids(stream) == expected_ids(sim.store, stream), stream
        assert stats["faults_total"] > 0
        print(f"RELIABILITY random 5xx: requests={stats['requests_total']} faults={stats['faults_total']}")


def test_5xx_that_never_stops_fails_that_stream_as_transient_others_finish(tmp_path: Path) -> None:
    with simulator() as sim:
        sim.controls.script("/api/templates", [503] * 50)
        config = make_config(sim, max_retries=2)
        result = read_in_process(
            tmp_path,
            config=config,
            catalog=make_catalog(["email_templates", "metrics", "flows"]),
        )
        assert result.code == 1
        error = result.stream_error("email_templates")
        assert error is not None and error["failure_type"] == "transient_error"
        assert "/api/templates" in error["message"] and "retry" in error["message"].lower()
        assert result.statuses("email_templates")[-1] == "INCOMPLETE"
        for stream in ("metrics", "flows"):
            assert result.ids(stream) == expected_ids(sim.store, stream)
            assert result.statuses(stream)[-1] == "COMPLETE" and result.states(stream)
        final = result.errors()[-1]
        assert "email_templates" in final["message"] and final["failure_type"] == "transient_error"


def test_garbage_bodies_that_never_stop_fail_with_a_system_error_naming_the_url(tmp_path: Path) -> None:
    with simulator() as sim:
        sim.controls.script("/api/metrics", ["invalid_json"] * 10)
        config = make_config(sim, max_retries=2)
        result = read_in_process(tmp_path, config=config, catalog=make_catalog(["metrics", "flows"]))
        assert result.code == 1
        error = result.stream_error("metrics")
        assert error is not None and error["failure_type"] == "system_error"
        assert "/api/metrics" in error["message"] and "Malformed" in error["message"]
        assert result.ids("flows") == expected_ids(sim.store, "flows")


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_unreachable_host_is_one_config_error_at_once(tmp_path: Path) -> None:
    """A refused connection on the first request to the configured host is a wrong base_url: one
    config_error for the run, said at once (no retries, no per-stream failures)."""
    config = make_config(None, base_url=f"http://127.0.0.1:{closed_port()}", max_retries=2)
    result = read_in_process(tmp_path, config=config, catalog=make_catalog(["metrics", "flows"]))
    assert result.code == 1
    assert [error.get("stream_descriptor") for error in result.errors()] == [None]
    error = result.errors()[0]
    assert error["failure_type"] == "config_error"
    assert (
        "Could not reach Klaviyo at http://127.0.0.1:" in error["message"] and "base_url" in error["message"]
    )
    assert not result.records("metrics") and not result.logs()


def test_faults_on_a_detail_endpoint_fail_only_the_detailed_stream(tmp_path: Path) -> None:
    """lists_detailed fetches GET /api/lists/{id} per list; when those keep failing, lists (same
    listing, no detail) still completes, and a transient detail fault is retried away."""
    with simulator() as sim:
        sim.controls.script("/api/lists/", [503] * 30)
        config = make_config(sim, max_retries=1)
        result = read_in_process(
            tmp_path,
            config=config,
            catalog=make_catalog(["lists", "lists_detailed"]),
        )
        assert result.code == 1
        error = result.stream_error("lists_detailed")
        assert error is not None and error["failure_type"] == "transient_error", error
        assert result.statuses("lists_detailed")[-1] == "INCOMPLETE"
        assert (
            result.ids("lists") == expected_ids(sim.store, "lists")
            and result.statuses("lists")[-1] == "COMPLETE"
        )

        sim.controls.clear_faults()
        sim.controls.reset_rate_limits()
        sim.controls.script("/api/lists/", [503, "reset", "reset", 500])
        again = read_in_process(
            tmp_path,
            config=make_config(sim),
            catalog=make_catalog(["lists", "lists_detailed"]),
        )
        assert again.code == 0, again.errors()
        for stream in ("lists", "lists_detailed"):
            assert again.ids(stream) == expected_ids(sim.store, stream), stream
