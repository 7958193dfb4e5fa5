"""A simulated account shared by the HTTP tests of one module (see http_sim.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from http_sim import GRANTED, SCOPED_KEY, SIZES

from klaviyo_simulator.server import DEFAULT_KEY, Simulator, SimulatorOptions, start_in_thread


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    options = SimulatorOptions(seed=5, sizes=SIZES, keys={DEFAULT_KEY: None, SCOPED_KEY: list(GRANTED)})
    with start_in_thread(options) as running:
        yield running
