"""Crash safety: kill -9 the sync subprocess at random moments, rerun, and every table must equal the
simulator's ground truth (nothing lost, no duplicates in dedup mode)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.ground_truth import duplicates, expected, loaded
from kit.sim import simulator
from klaviyo_source.streams.table import DEFAULT_STREAMS

SIZES = {"events": 3000, "profiles": 400, "lists": 2, "templates": 5, "campaigns": 10, "flows": 4}
ALL = list(DEFAULT_STREAMS)  # what `sync` reads by default


def sync_command(config: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "klaviyo_source", "sync", "--config", str(config), "--destination", url,
            "--progress", "none"]  # fmt: skip


def run_and_kill(command: list[str], delay: float) -> int | None:
    """Start a sync and kill -9 it after `delay` seconds; None when it finished first."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        process.wait(timeout=delay)
        return process.returncode
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        return None
    finally:
        if process.stderr is not None:
            process.stderr.close()


def crash_then_complete(seed: int, url: str, tmp_path: Path) -> None:
    rng = random.Random(seed)
    latency = rng.choice([5.0, 15.0])
    now = int(time.time()) - 60
    with simulator(seed=seed, sizes=SIZES, latency_ms=latency, fault_seed=seed, now=now) as sim:
        config = tmp_path / "config.json"
        config.write_text(
            json.dumps({"api_key": sim.api_key, "base_url": sim.base_url, "backoff_base": 0.01})
        )
        command = sync_command(config, url)
        kills = 0
        for attempt in range(rng.choice([1, 2, 3])):
            if run_and_kill(command, rng.uniform(0.5, 2.6)) is None:
                kills += 1
            if attempt == 0 and seed % 2:  # half of the seeds also change the account between runs
                sim.advance(
                    events=25, profiles_created=3, profiles_updated=5, campaigns_updated=2, boundary=True
                )
                time.sleep(1.1)
        final = subprocess.run(command, capture_output=True, text=True, timeout=240)
        assert final.returncode == 0, final.stderr[-2000:]
        assert duplicates(url, ALL) == {}
        got, truth = loaded(url, ALL), expected(sim.store)
        for stream in ALL:
            missing = set(truth[stream]) - set(got[stream])
            assert not missing, f"seed {seed}: {stream} lost {len(missing)} rows after {kills} kill(s)"
            assert got[stream] == truth[stream], f"seed {seed}: {stream} differs after {kills} kill(s)"


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 11))
def test_kill_9_then_rerun_duckdb(seed: int, tmp_path: Path) -> None:
    crash_then_complete(seed, f"duckdb:///{tmp_path / 'crash.duckdb'}", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(101, 104))
def test_kill_9_then_rerun_postgres(seed: int, tmp_path: Path, pg_schema_url: str) -> None:
    crash_then_complete(seed, pg_schema_url, tmp_path)
