"""The Airbyte face of slow refresh (docs/airbyte.md, "Slow refresh"): an incremental `read`
with the state of a complete metric_properties read sends it no request and no record, gives
the state back and logs when it is next due; a full-refresh read reads every metric."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.cli import read_in_process
from kit.documents import make_catalog, make_config
from kit.sim import simulator
from kit.truth import expected
from klaviyo_simulator.server import Simulator

STREAM = "metric_properties"
PROPERTIES = "get_properties_for_metric"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with simulator(sizes={"events": 50, "profiles": 20}) as running:
        yield running


def spent(sim: Simulator) -> int:
    return int(sim.controls.stats()["requests"].get(PROPERTIES, 0))


def test_a_read_within_the_interval_rests_and_a_full_refresh_reads(sim: Simulator, tmp_path: Path) -> None:
    metrics = len(sim.store.records("metric"))
    config = make_config(sim)
    first = read_in_process(tmp_path, config=config, catalog=make_catalog([STREAM]))
    assert first.code == 0, first.errors()
    assert first.ids(STREAM) == set(expected(sim.store)[STREAM]) and spent(sim) == metrics
    state = first.final_states()
    assert "_refreshed_at" in state[STREAM]

    rested = read_in_process(tmp_path, config=config, catalog=make_catalog([STREAM]), state=state)
    assert rested.code == 0, rested.errors()
    assert rested.records(STREAM) == [] and spent(sim) == metrics
    assert rested.final_states() == state
    assert rested.statuses(STREAM) == ["STARTED", "COMPLETE"]
    assert any(
        line.startswith(f"{STREAM}: not refreshed this sync") and "next due at" in line
        for line in rested.logs()
    )

    full = read_in_process(
        tmp_path, config=config, catalog=make_catalog([STREAM], "full_refresh"), state=state
    )
    assert full.code == 0, full.errors()
    assert full.ids(STREAM) == set(expected(sim.store)[STREAM]) and spent(sim) == 2 * metrics
