"""The `sync` command as users run it: write modes end to end, a second sync refused, failing
streams -> exit 1 while the others load, and the API key never printed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path

from kit.ground_truth import duplicates, expected, loaded, stored_states
from kit.sim import simulator as kit_simulator
from klaviyo_simulator import Simulator
from klaviyo_source.sync.command import main

SIZES = {"events": 1500, "profiles": 200, "lists": 2, "templates": 4, "campaigns": 8, "flows": 3}
KEY = "pk_secret_full_access_0123456789"
LIMITED = "pk_secret_limited_0123456789"
STREAMS = ["events", "metrics", "profiles", "campaigns"]


def simulator(**controls: float) -> AbstractContextManager[Simulator]:
    keys: dict[str, list[str] | None] = {KEY: None, LIMITED: ["events:read", "metrics:read"]}
    return kit_simulator(seed=5, sizes=SIZES, keys=keys, now=int(time.time()) - 60, **controls)


def config(tmp_path: Path, base_url: str, key: str = KEY) -> str:
    path = tmp_path / f"config-{key[-6:]}.json"
    path.write_text(json.dumps({"api_key": key, "base_url": base_url, "backoff_base": 0.01}))
    return str(path)


def test_append_then_overwrite(destination_url: str, tmp_path: Path) -> None:
    with simulator() as sim:
        base = ["sync", "--config", config(tmp_path, sim.base_url), "--destination", destination_url]
        base += ["--streams", ",".join(STREAMS), "--progress", "none"]
        assert main([*base, "--write", "append"]) == 0
        assert main([*base, "--write", "append", "--full-refresh"]) == 0
        assert set(duplicates(destination_url, STREAMS)) == set(STREAMS)  # append keeps both copies

        sim.advance(events=10, profiles_updated=4)
        time.sleep(1.1)
        assert main([*base, "--write", "overwrite"]) == 0
        assert duplicates(destination_url, STREAMS) == {}
        truth = expected(sim.store)
        assert loaded(destination_url, STREAMS) == {s: truth[s] for s in STREAMS}
        assert set(stored_states(destination_url)) == set(STREAMS)  # an incremental sync can follow


def test_a_concurrent_sync_is_refused_with_a_clear_message(destination_url: str, tmp_path: Path) -> None:
    # The first sync's one request takes 8 s: the second process (a cold Python start, seconds on a
    # loaded machine) tries the lock while the first holds it.
    with simulator(latency_ms=8000.0) as sim:
        command = [sys.executable, "-m", "klaviyo_source", "sync", "--config", config(tmp_path, sim.base_url)]
        command += ["--destination", destination_url, "--progress", "none", "--streams", "metrics"]
        first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            # the first sync holds the destination from before its first request until it ends
            while sim.controls.stats()["in_flight"] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            second = subprocess.run(command, capture_output=True, text=True, timeout=60)
            assert second.returncode == 1, second.stderr
            assert "Another sync" in second.stderr and "wait for it to finish" in second.stderr
            assert first.wait(timeout=120) == 0
        finally:
            first.kill()
            first.communicate()


def test_failing_streams_exit_1_while_the_others_load(
    destination_url: str, tmp_path: Path, capfd: object
) -> None:
    with simulator() as sim:
        args = ["sync", "--config", config(tmp_path, sim.base_url, LIMITED), "--destination", destination_url,
                "--streams", ",".join(STREAMS), "--progress", "plain"]  # fmt: skip
        assert main(args) == 1
        output = capfd.readouterr()  # type: ignore[attr-defined]
        assert LIMITED not in output.out + output.err
        assert "profiles" in output.out and "incomplete" in output.out
        truth = expected(sim.store)
        assert loaded(destination_url, ["events", "metrics"]) == {s: truth[s] for s in ("events", "metrics")}
        assert set(stored_states(destination_url)) == {"events", "metrics"}


def test_api_key_from_environment_is_never_printed(tmp_path: Path) -> None:
    with simulator() as sim:
        path = tmp_path / "config.json"
        path.write_text(json.dumps({"base_url": sim.base_url}))
        url = f"duckdb:///{tmp_path / 'env.duckdb'}"
        command = [
            sys.executable,
            "-m",
            "klaviyo_source",
            "sync",
            "--config",
            str(path),
            "--destination",
            url,
        ]
        command += ["--streams", "metrics,lists", "--progress", "plain"]
        run = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={"KLAVIYO_API_KEY": KEY, "PATH": "/usr/bin:/bin"},
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        assert KEY not in run.stdout + run.stderr
        assert "metrics" in run.stdout


def test_a_rejected_key_says_so_once_without_a_totals_line(tmp_path: Path, capfd: object) -> None:
    with simulator() as sim:
        url = f"duckdb:///{tmp_path / 'rejected.duckdb'}"
        args = ["sync", "--config", config(tmp_path, sim.base_url, "pk_unknown_key_0123456789"),
                "--destination", url, "--streams", "metrics,lists", "--progress", "plain"]  # fmt: skip
        assert main(args) == 1
        output = capfd.readouterr()  # type: ignore[attr-defined]
        text = output.out + output.err
        assert "pk_unknown_key_0123456789" not in text
        assert "streams done" not in text
        assert "Traceback" not in text
        assert "API key" in text
