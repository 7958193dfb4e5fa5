"""Shared fixture: one small simulator per module, served on 127.0.0.1 from its own thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from klaviyo_simulator import Simulator, SimulatorOptions, start_in_thread


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    options = SimulatorOptions(
        seed=7,
        scale="small",
        sizes={"events": 3000, "profiles": 600},
        keys={"pk_full": None, "pk_events_only": ["events:read"]},
    )
    with start_in_thread(options) as running:
        yield running
