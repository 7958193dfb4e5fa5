"""Simulators the CLI tests share (package scope: started once for tests/cli)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from klaviyo_simulator.controls import ControlOptions
from klaviyo_simulator.server import Simulator, SimulatorOptions, start_in_thread

SIZES = {"events": 600, "profiles": 150, "lists": 2, "campaigns": 6}


@pytest.fixture(scope="package")
def sim() -> Iterator[Simulator]:
    """A small simulated account, fast."""
    with start_in_thread(SimulatorOptions(seed=3, scale="small", sizes=SIZES)) as running:
        yield running


@pytest.fixture(scope="package")
def slow_sim() -> Iterator[Simulator]:
    """The same account answering each request after 1.2 s: a sync lasts long enough to interrupt."""
    options = SimulatorOptions(
        seed=3,
        scale="small",
        sizes=SIZES,
        controls=ControlOptions(latency_ms=1200),
    )
    with start_in_thread(options) as running:
        yield running
