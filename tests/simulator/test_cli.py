"""`klaviyo-source simulate` in a subprocess: flags reach the server, keys and scopes apply."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from klaviyo_simulator import Simulator
from klaviyo_simulator.server import SimulatorOptions

from .client import fetch


@pytest.fixture
def served() -> Iterator[tuple[str, list[str]]]:
    command = [
        sys.executable,
        "-m",
        "klaviyo_source",
        "simulate",
        "--port",
        "0",
        "--seed",
        "5",
        "--events",
        "300",
        "--profiles",
        "40",
        "--key",
        "pk_cli_events:events:read",
        "--key",
        "pk_cli_all",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline(), process.stdout.readline()]
        found = re.search(r"http://127\.0\.0\.1:\d+", lines[0])
        assert found, lines
        yield found.group(0), lines
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_simulate_serves_with_the_given_sizes_and_keys(served: tuple[str, list[str]]) -> None:
    base_url, lines = served
    assert "300 events" in lines[0] and "40 profiles" in lines[0]
    # Simulator-shaped handle for the fetch helper (only base_url and api_key are used).
    sim = Simulator(base_url, "pk_cli_all", None, None)  # type: ignore[arg-type]
    assert len(fetch(sim, "/api/events", {"page[size]": "1000"}).body["data"]) == 300
    assert fetch(sim, "/api/events", key="pk_cli_events").status == 200
    assert fetch(sim, "/api/profiles", key="pk_cli_events").status == 403
    assert fetch(sim, "/api/profiles", key="pk_sim_full_access").status == 401  # only the given keys


def test_options_defaults() -> None:
    options = SimulatorOptions()
    assert options.keys == {"pk_sim_full_access": None}
    assert options.host == "127.0.0.1"
