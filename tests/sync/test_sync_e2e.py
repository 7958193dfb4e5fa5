"""End to end: the simulator over 127.0.0.1 -> engine -> sync -> DuckDB / Postgres, then incremental."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from kit.ground_truth import duplicates, expected, loaded
from kit.sim import simulator
from klaviyo_source.streams.table import DEFAULT_STREAMS
from klaviyo_source.sync.command import parse_args, run_sync

SIZES = {"events": 2500, "profiles": 300, "lists": 3, "templates": 6, "campaigns": 12, "flows": 5}
ALL = list(DEFAULT_STREAMS)  # what `sync` reads by default


def write_config(path: Path, base_url: str, api_key: str) -> str:
    config = {"api_key": api_key, "base_url": base_url, "backoff_base": 0.01, "max_rate_limit_wait": 30}
    path.write_text(json.dumps(config))
    return str(path)


def test_sync_equals_ground_truth_then_incremental(destination_url: str, tmp_path: Path) -> None:
    with simulator(sizes=SIZES, now=int(time.time()) - 60) as sim:
        config = write_config(tmp_path / "config.json", sim.base_url, sim.api_key)
        args = ["--config", config, "--destination", destination_url, "--progress", "none"]

        first = asyncio.run(run_sync(parse_args(args, environ={})))
        assert first.exit_code == 0, (first.error, [(o.name, o.error) for o in first.outcomes])
        assert loaded(destination_url, ALL) == expected(sim.store)
        assert first.counts["events"].inserted == SIZES["events"]

        changes = sim.advance(events=40, profiles_created=5, profiles_updated=7, campaigns_updated=3)
        time.sleep(1.1)  # the sync reads up to its start second: let the advance's second pass
        second = asyncio.run(run_sync(parse_args(args, environ={})))
        assert second.exit_code == 0, second.error
        truth = expected(sim.store)
        assert loaded(destination_url, ALL) == truth
        assert duplicates(destination_url, ALL) == {}
        # incremental: only the changes (and boundary-second repeats) were read again
        assert second.counts["events"].inserted == len(changes["events"])
        assert second.counts["profiles"].inserted == len(changes["profiles_created"])
        assert second.counts["profiles"].received < len(truth["profiles"])
        assert second.counts["campaigns"].updated >= len(set(changes["campaigns_updated"]))
