"""Liveness: the Airbyte platform kills a source that prints nothing for 60 s, so during long
rate-limit waits and retries the source must print a message at least every 30 s.

The heartbeat period is a module constant (`klaviyo_source.http.client.HEARTBEAT_SECONDS`, 25 s),
not a config knob: one test runs the real CLI through a 61 s Retry-After (marked slow, still in
CI), the others shrink the constant in-process to check that every kind of long wait beats.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

import klaviyo_source.engine.run as engine_run
import klaviyo_source.http.client as http_client
from kit.cli import cli_argv, cli_env, read_in_process
from kit.documents import make_catalog, make_config
from kit.sim import simulator
from kit.truth import expected_ids

PLATFORM_SILENCE_LIMIT = 60.0
REQUIRED_PERIOD = 30.0


def heartbeats(logs: list[str]) -> list[str]:
    return [line for line in logs if "left" in line]


@pytest.mark.slow
def test_a_61_second_retry_after_keeps_the_cli_talking_at_least_every_30_seconds(
    tmp_path: Path, assert_no_secret: Callable[..., None]
) -> None:
    with simulator() as sim:
        sim.controls.script("/api/metrics", [{"status": 429, "retry_after": 61}])
        config = make_config(sim, max_rate_limit_wait=120)
        argv = cli_argv(tmp_path, "read", config=config, catalog=make_catalog(["metrics"]))
        started = time.monotonic()
        arrivals: list[tuple[float, bytes]] = []
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
        assert process.stdout is not None and process.stderr is not None
        for line in process.stdout:
            arrivals.append((time.monotonic(), line))
        stderr = process.stderr.read()
        code = process.wait(timeout=30)
        ended = time.monotonic()
    assert_no_secret(b"".join(line for _, line in arrivals), stderr)
    assert code == 0, stderr[-2000:]
    moments = [started] + [at for at, _ in arrivals] + [ended]
    gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
    messages = [orjson.loads(line) for _, line in arrivals]
    logs = [m["log"]["message"] for m in messages if m["type"] == "LOG"]
    ids = {m["record"]["data"]["id"] for m in messages if m["type"] == "RECORD"}
    assert ended - started > PLATFORM_SILENCE_LIMIT  # the wait really was longer than the kill limit
    assert max(gaps) < REQUIRED_PERIOD, f"silent for {max(gaps):.1f}s"
    assert heartbeats(logs), logs
    assert ids == expected_ids(sim.store, "metrics")
    beats = len(heartbeats(logs))
    print(f"RELIABILITY liveness: run={ended - started:.1f}s max_silence={max(gaps):.1f}s heartbeats={beats}")


@pytest.fixture
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(http_client, "HEARTBEAT_SECONDS", 0.3)
    return 0.3


@pytest.mark.parametrize(
    ("script", "overrides"),
    [
        ([{"status": 429, "retry_after": 2}], {}),
        ([503, 503], {"backoff_base": 1.5, "max_retries": 3}),
    ],
    ids=["rate-limit wait", "backoff wait"],
)
def test_every_long_wait_emits_heartbeats(
    tmp_path: Path, fast_heartbeat: float, script: list[Any], overrides: dict[str, Any]
) -> None:
    with simulator() as sim:
        sim.controls.script("/api/metrics", script)
        config = make_config(sim, **overrides)
        result = read_in_process(tmp_path, config=config, catalog=make_catalog(["metrics"]))
        assert result.code == 0, result.errors()
        assert result.ids("metrics") == expected_ids(sim.store, "metrics")
    beats = heartbeats(result.logs())
    assert len(beats) >= 2, result.logs()
    assert all("metrics" in line for line in beats)


def test_a_hung_request_still_lets_the_source_talk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that hangs until `request_timeout` is no sleep of ours: the consumer's idle log
    (`IDLE_LOG_SECONDS`, 25 s in production) is what keeps the platform from killing the source."""
    monkeypatch.setattr(engine_run, "IDLE_LOG_SECONDS", 0.3)
    with simulator() as sim:
        sim.controls.script("/api/metrics", [{"kind": "hang", "seconds": 30}])
        config = make_config(sim, request_timeout=2)
        result = read_in_process(tmp_path, config=config, catalog=make_catalog(["metrics"]))
        assert result.code == 0, result.errors()
        assert result.ids("metrics") == expected_ids(sim.store, "metrics")
    idle = [line for line in result.logs() if line.startswith("Still reading")]
    assert len(idle) >= 2, result.logs()
