"""Three months of syncs (kit/timeline.py): creates, updates, deletions, lifted suppressions,
removed members, events visible late (found by the trailing re-scan) and Klaviyo breaking its own
contract (the simulator's quirks), each followed by an incremental sync; after every sync the
destination equals the simulator's current truth on every face.

- standalone sync, DuckDB and Postgres: live rows (`_deleted_at` NULL) = the truth, key by key
  with equal cursors; with the default soft deletes every vanished key keeps its row with
  `_deleted_at` set; with `--deletes hard` the table holds exactly the truth;
- Airbyte face: `read` with the previous sync's state, its records applied as a dedup destination
  applies them (a record with `_ab_cdc_deleted_at` removes its key) = the truth.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from kit.cli import read_in_process
from kit.documents import make_catalog, make_config, state_document
from kit.ground_truth import duplicates, soft_deleted
from kit.sim import simulator
from kit.timeline import SIZES, STREAMS, TIMELINE, apply
from kit.truth import epoch_us, expected, record_key
from klaviyo_simulator.server import Simulator
from klaviyo_source.engine.known import DELETED_AT
from klaviyo_source.streams.table import STREAMS_BY_NAME
from klaviyo_source.sync.command import parse_args, run_sync

# every sync checks every stream for deletions, and re-reads 48 h of events (late ones)
CONFIG = {"deletion_check_days": 0, "start_date": None, "late_events_hours": 48}


def truth(sim: Simulator) -> dict[str, dict[str, int | None]]:
    everything = expected(sim.store)
    return {stream: everything[stream] for stream in STREAMS}


def seasons(sim: Simulator, sync: Any) -> None:
    """The first sync, then each step of the timeline and a sync after it."""
    sync("first sync")
    for step in TIMELINE:
        apply(sim, step)  # stamped at or after the last sync's start second: the next one reads them
        time.sleep(1.05)  # a sync reads up to its start second: start after the changes' second
        sync(step.label)


# Hard deletes run the same SQL on both destinations: DuckDB alone keeps the suite quick.
@pytest.mark.parametrize(
    ("destination_url", "deletes"),
    [("duckdb", "soft"), ("postgres", "soft"), ("duckdb", "hard")],
    indirect=["destination_url"],
)
def test_the_standalone_sync_follows_three_months_of_changes(
    destination_url: str, tmp_path: Path, deletes: str
) -> None:
    with simulator(sizes=SIZES, seed=5, now=int(time.time()) - 60) as sim:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({**make_config(sim), **CONFIG}))
        args = ["--config", str(config), "--destination", destination_url, "--progress", "none",
                "--streams", ",".join(STREAMS), "--deletes", deletes]  # fmt: skip
        gone: dict[str, set[str]] = {stream: set() for stream in STREAMS}
        seen: dict[str, set[str]] = {stream: set() for stream in STREAMS}

        def sync(label: str) -> None:
            report = asyncio.run(run_sync(parse_args(args, environ={})))
            assert report.exit_code == 0, (label, report.error, [(o.name, o.error) for o in report.outcomes])
            want = truth(sim)
            live, deleted = soft_deleted(destination_url, STREAMS)
            for stream in STREAMS:
                assert live[stream] == want[stream], (label, stream)
                gone[stream] |= seen[stream] - set(want[stream])
                seen[stream] |= set(want[stream])
                if deletes == "soft":  # every vanished key is still there, marked
                    assert deleted[stream] == gone[stream], (label, stream)
                else:
                    assert deleted[stream] == set(), (label, stream)
            assert duplicates(destination_url, STREAMS) == {}, label

        seasons(sim, sync)
        assert all(
            gone[stream] for stream in ("campaigns", "profiles", "list_memberships", "global_exclusions")
        )


def test_the_airbyte_face_follows_three_months_of_changes(tmp_path: Path) -> None:
    with simulator(sizes=SIZES, seed=5, now=int(time.time()) - 60) as sim:
        config = {**make_config(sim), **CONFIG}
        catalog = make_catalog(STREAMS)
        states: dict[str, Any] = {}
        table: dict[str, dict[str, int | None]] = {stream: {} for stream in STREAMS}
        marked: dict[str, int] = dict.fromkeys(STREAMS, 0)

        def sync(label: str) -> None:
            out = read_in_process(tmp_path, config=config, catalog=catalog, state=state_document(states))
            assert out.code == 0, (label, out.errors())
            for stream in STREAMS:
                cursor = STREAMS_BY_NAME[stream].cursor_field
                for record in out.records(stream):
                    key = record_key(stream, record)
                    if record.get(DELETED_AT):
                        table[stream].pop(key, None)
                        marked[stream] += 1
                    else:
                        table[stream][key] = epoch_us(record[cursor]) if cursor else None
            states.update(out.final_states())
            want = truth(sim)
            for stream in STREAMS:
                assert table[stream] == want[stream], (label, stream)

        seasons(sim, sync)
        assert all(
            marked[stream] for stream in ("campaigns", "profiles", "list_memberships", "global_exclusions")
        )
