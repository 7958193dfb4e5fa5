"""Conformance fixtures: one simulator on 127.0.0.1 for the session, with scoped keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cli_harness import scoped_keys

from klaviyo_simulator.server import SimulatorOptions, start_in_thread


@pytest.fixture(scope="session")
def sim() -> Iterator[Any]:
    options = SimulatorOptions(
        seed=7,
        scale="small",
        sizes={"events": 1500, "profiles": 300, "campaigns": 24, "flows": 8, "lists": 6, "templates": 8},
        keys=scoped_keys(),
    )
    with start_in_thread(options) as simulator:
        yield simulator
