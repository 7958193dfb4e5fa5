"""The cost of the trailing re-scan of late events (late_events_hours): extra requests per
incremental sync for a given event rate, measured against the simulator.

For each rate, the simulator holds `days` of events at that rate (one batch per hour, oldest
first), a first sync reads them all, one more hour of events arrives, and an incremental sync
runs from the saved state once per re-scan setting. The extra requests are that sync's requests
minus those of the same sync without a re-scan (late_events_hours 0); the prediction is
ceil(rate x hours / 24 / 1000) (1000 events per page). Numbers only; nothing is asserted.

    .venv/bin/python -m bench.rescan [--quick] [--rates 1000,10000,50000] [--hours 0,24,168]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import orjson

from klaviyo_simulator.controls import ControlOptions
from klaviyo_simulator.server import Simulator, SimulatorOptions, start_in_thread
from klaviyo_source.config import Config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamSelection, StreamStatus

HOUR = 3600


class Sink:
    """Counts records and keeps the last state; a RawRecordSink (the events fast path, as the
    Airbyte face's)."""

    def __init__(self) -> None:
        self.count = 0
        self.saved: dict[str, Any] = {}

    async def records(self, stream: str, records: Sequence[Any]) -> None:
        self.count += len(records)

    async def raw_records(self, stream: str, records: Sequence[orjson.Fragment]) -> None:
        self.count += len(records)

    async def state(self, stream: str, state: dict[str, Any]) -> None:
        self.saved = state

    async def status(self, stream: str, status: StreamStatus, reason: str | None = None) -> None:
        return None

    async def log(self, level: str, message: str) -> None:
        return None

    async def error(self, stream: str | None, error: Exception) -> None:
        print(f"error on {stream}: {error}", file=sys.stderr)


def _fill(sim: Simulator, per_hour: int, days: int) -> None:
    """`days` of events at `per_hour`, oldest first (each batch after the last: appended)."""
    for age in range(days * 24, 0, -1):
        sim.advance(late_events=per_hour, late_events_age=age * HOUR)


async def _sync(config: Config, states: dict[str, Any]) -> tuple[int, int, dict[str, Any], float]:
    sink = Sink()
    started = time.perf_counter()
    run = read(config, [StreamSelection("events")], states, sink)
    outcomes = await run
    assert outcomes[0].status is StreamStatus.COMPLETE, outcomes[0].error
    return run.requests_sent, sink.count, sink.saved, time.perf_counter() - started


def measure(rate: int, hours: Sequence[int], days: int) -> list[dict[str, Any]]:
    per_hour = max(1, rate // 24)
    options = SimulatorOptions(seed=7, sizes={"events": 0, "profiles": 50}, controls=ControlOptions())
    with start_in_thread(options) as sim:
        _fill(sim, per_hour, days)
        base: dict[str, Any] = {
            "api_key": sim.api_key,
            "base_url": sim.base_url,
            "num_workers": 8,
            "backoff_base": 0.01,
        }
        _, _, state, _ = asyncio.run(_sync(Config(**base, late_events_hours=0), {}))
        sim.advance(events=per_hour)  # the hour since the last sync
        time.sleep(1.1)  # a sync reads up to its start second
        rows = []
        for h in hours:
            sent, records, _, wall = asyncio.run(
                _sync(Config(**base, late_events_hours=h), {"events": state})
            )
            rows.append(
                {"rate": per_hour * 24, "hours": h, "requests": sent, "records": records, "wall": wall}
            )
        zero = next((r for r in rows if r["hours"] == 0), rows[0])
        for row in rows:
            row["extra"] = row["requests"] - zero["requests"]
            row["predicted"] = math.ceil(row["rate"] * row["hours"] / 24 / 1000)
        return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small rate (checks the harness)")
    parser.add_argument("--rates", default="1000,10000,50000", help="events per day, comma-separated")
    parser.add_argument("--hours", default="0,24,72,168", help="late_events_hours values")
    args = parser.parse_args(argv)
    rates = [1000] if args.quick else [int(r) for r in args.rates.split(",")]
    hours = [0, 24] if args.quick else [int(h) for h in args.hours.split(",")]
    days = math.ceil(max(hours) / 24) + 1
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; history {days} days", file=sys.stderr)
    print(
        "| events/day | late_events_hours | requests per sync | extra requests | predicted "
        "| records re-read + new | wall s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for rate in rates:
        for row in measure(rate, hours, days):
            print(
                f"| {row['rate']:,} | {row['hours']} | {row['requests']} | {row['extra']} | "
                f"{row['predicted']} | {row['records']:,} | {row['wall']:.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
