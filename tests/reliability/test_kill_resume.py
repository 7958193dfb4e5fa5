"""kill -9 of the real `read` at random points, then a restart from the last STATE each stream
emitted: the union of every run's records is the simulator's ground truth, for every seed.

The CLI runs as a subprocess (as the platform runs it) against one simulator in this process;
latency on every response makes the kills land while streams are mid-way.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kit.cli import CLI_TIMEOUT, cli_argv, cli_env, config_key, parse_lines
from kit.documents import make_catalog, make_config, state_document
from kit.keys import assert_no_secret
from kit.sim import sim_fixture, simulator
from kit.truth import expected_ids
from klaviyo_simulator.server import Simulator

SEEDS = range(20)
CHAOS_SEEDS = range(100, 105)
ARRIVAL_SEEDS = range(200, 204)
# Every stream but the two whose detail endpoints are paced at 1 request/s (tens of seconds a run).
STREAMS = ["events", "events_detailed", "profiles", "global_exclusions", "email_templates", "campaigns",
           "flows", "metrics", "lists"]  # fmt: skip
ARRIVALS = {
    "events": 30, "profiles_created": 5, "profiles_updated": 10, "profiles_suppressed": 3, "boundary": True,
    "campaigns_updated": 2, "flows_updated": 2, "templates_updated": 3, "metrics_updated": 2,
    "lists_updated": 1,
}  # fmt: skip
MAX_KILLS = 3  # per seed; the run after the last kill must finish on its own


sim = sim_fixture(seed=21, latency_ms=15)


@dataclass
class Attempt:
    code: int
    killed: bool
    messages: list[dict[str, Any]]
    stdout: bytes
    stderr: bytes


@dataclass
class Resumed:
    """Everything the runs of one seed printed, and the state a restart would use."""

    ids: dict[str, set[str]] = field(default_factory=dict)
    states: dict[str, Any] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)

    def absorb(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        for message in attempt.messages:
            if message["type"] == "RECORD":
                record = message["record"]
                self.ids.setdefault(record["stream"], set()).add(record["data"]["id"])
            elif message["type"] == "STATE":
                stream = message["state"]["stream"]
                self.states[stream["stream_descriptor"]["name"]] = stream["stream_state"]


def run_read(
    folder: Path, config: dict[str, Any], states: dict[str, Any], kill_after_lines: int | None
) -> Attempt:
    """One `read`; SIGKILL once `kill_after_lines` lines are out (None: let it finish)."""
    documents: dict[str, Any] = {"config": config, "catalog": make_catalog(STREAMS)}
    if states:
        documents["state"] = state_document(states)
    stderr_path = folder / "stderr.txt"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            cli_argv(folder, "read", **documents), stdout=subprocess.PIPE, stderr=stderr, env=cli_env()
        )
        assert process.stdout is not None
        chunks: list[bytes] = []
        killed = False
        for line in process.stdout:
            chunks.append(line)
            if kill_after_lines is not None and len(chunks) >= kill_after_lines:
                os.kill(process.pid, signal.SIGKILL)
                killed = True
                break
        chunks.append(process.stdout.read())  # lines already in the pipe were printed before the kill
        code = process.wait(timeout=CLI_TIMEOUT)
    stdout = b"".join(chunks)
    assert_no_secret(stdout, stderr_path.read_bytes(), extra=config_key(documents))
    return Attempt(
        code, killed and code == -signal.SIGKILL, parse_lines(stdout), stdout, stderr_path.read_bytes()
    )


def full_run_lines(sim: Simulator, folder: Path) -> int:
    """Lines of an uninterrupted read (the range kills are drawn from), checked against the truth."""
    reference = run_read(folder, make_config(sim), {}, None)
    assert reference.code == 0
    whole = Resumed()
    whole.absorb(reference)
    for stream in STREAMS:
        assert whole.ids.get(stream, set()) == expected_ids(sim.store, stream), stream
    emitted = [m["record"]["data"]["id"] for m in reference.messages if m["type"] == "RECORD"]
    assert len(emitted) == sum(len(expected_ids(sim.store, s)) for s in STREAMS), (
        "an uninterrupted read repeats nothing"
    )
    return len(reference.messages)


@pytest.fixture(scope="module")
def total_lines(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> int:
    return full_run_lines(sim, tmp_path_factory.mktemp("reference"))


def kill_and_resume(
    sim: Simulator, total_lines: int, folder: Path, seed: int, between: Callable[[], None] | None = None
) -> Resumed:
    """Kill a read 1..MAX_KILLS times at random lines, then let one finish; all runs' output.
    `between` runs after the first kill (e.g. new data arriving while the source is down)."""
    rng = random.Random(seed)
    config = make_config(sim, max_retries=6)
    # Seeds share one simulator: empty its minute windows so that the RateLimit-Remaining headers
    # a fresh process paces itself by do not carry the previous seeds' requests.
    sim.controls.reset_rate_limits()
    resumed = Resumed()
    for number in range(rng.randint(1, MAX_KILLS)):
        attempt = run_read(folder, config, resumed.states, rng.randint(1, total_lines))
        resumed.absorb(attempt)
        if number == 0 and between is not None:
            between()
        if not attempt.killed:  # it finished before the chosen line
            break
    if resumed.attempts[-1].killed:
        resumed.absorb(run_read(folder, config, resumed.states, None))
    return resumed


def assert_complete(
    sim: Simulator, resumed: Resumed, seed: int, assert_no_secret: Callable[..., None]
) -> None:
    last = resumed.attempts[-1]
    assert last.code == 0, last.stderr[-2000:]
    for attempt in resumed.attempts:
        assert_no_secret(attempt.stdout, attempt.stderr, extra=(sim.api_key,))
    for stream in STREAMS:
        assert resumed.ids.get(stream, set()) == expected_ids(sim.store, stream), stream
    kills = sum(a.killed for a in resumed.attempts)
    records = sum(1 for a in resumed.attempts for m in a.messages if m["type"] == "RECORD")
    print(
        f"RELIABILITY kill seed={seed}: runs={len(resumed.attempts)} kills={kills} records_emitted={records}"
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_9_at_random_points_then_resume_loses_nothing(
    sim: Simulator, total_lines: int, tmp_path: Path, seed: int, assert_no_secret: Callable[..., None]
) -> None:
    assert_complete(sim, kill_and_resume(sim, total_lines, tmp_path, seed), seed, assert_no_secret)


@pytest.mark.parametrize("seed", CHAOS_SEEDS)
def test_kill_9_while_the_server_fails_randomly_then_resume_loses_nothing(
    sim: Simulator, total_lines: int, tmp_path: Path, seed: int, assert_no_secret: Callable[..., None]
) -> None:
    """The same, with a quarter of all requests answering 5xx: kills land inside retry loops too."""
    sim.controls.set_options(error_rate=0.25, seed=seed)
    sim.controls.reset_stats()
    try:
        assert_complete(sim, kill_and_resume(sim, total_lines, tmp_path, seed), seed, assert_no_secret)
        faults = sim.controls.stats()["faults_total"]
        assert faults > 0
        print(f"RELIABILITY chaos seed={seed}: 5xx served={faults}")
    finally:
        sim.controls.set_options(error_rate=0.0)


@pytest.mark.parametrize("seed", ARRIVAL_SEEDS)
def test_kill_9_with_new_and_updated_records_arriving_before_the_restart_loses_nothing(
    total_lines: int, tmp_path: Path, seed: int, assert_no_secret: Callable[..., None]
) -> None:
    """Records created and updated while the source is down (some at the last second already
    read: resumption is inclusive) are all in the union; the truth is taken after the changes."""
    with simulator(seed=23, latency_ms=15) as own:
        arrived: dict[str, Any] = {}

        def arrive() -> None:
            time.sleep(1.1)  # a read stops at its start second; let the new records be in the past
            arrived.update(own.advance(**ARRIVALS))
            time.sleep(1.1)

        resumed = kill_and_resume(own, total_lines, tmp_path, seed, between=arrive)
        assert arrived["events"] and arrived["profiles_created"]
        assert set(arrived["events"]) <= resumed.ids["events"]
        assert set(arrived["profiles_created"]) <= resumed.ids["profiles"]
        assert_complete(own, resumed, seed, assert_no_secret)
