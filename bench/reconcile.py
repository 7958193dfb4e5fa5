"""The request cost of deletion checks (id reconciliation) per incremental sync, medium dataset.

A first sync reads every reconciled stream (events and events_detailed are not reconciled and
are left out: their cost does not change). Then, with nothing changed in between, three
incremental syncs from the saved states: without deletion checks (`detect_deletions: false`),
with the default cadence the day after a check (`deletion_check_days: 7`: small collections
only), and with every scan due (`deletion_check_days: 0`: profiles, memberships, flow messages
and form versions too). The difference in requests is the checks' cost; the table also gives the
size of each stream's `_reconcile` state entry. No rate limits or latency in the simulator; the
client paces each rate tier as against Klaviyo, so wall times include the tiers' pacing.
Numbers only; nothing is asserted.

    .venv/bin/python -m bench.reconcile [--quick] [--scale medium]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import orjson

from klaviyo_simulator.server import SimulatorOptions, start_in_thread
from klaviyo_source.config import Config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamOutcome, StreamSelection, StreamStatus
from klaviyo_source.engine.known import STATE_KEY
from klaviyo_source.streams.table import STREAMS

RECONCILED = [row.name for row in STREAMS if row.reconcile is not None]


class Sink:
    """Keeps the last state of each stream; counts records (and deletion records)."""

    def __init__(self) -> None:
        self.count = 0
        self.states: dict[str, Any] = {}

    async def records(self, stream: str, records: Sequence[Any]) -> None:
        self.count += len(records)

    async def raw_records(self, stream: str, records: Sequence[orjson.Fragment]) -> None:
        self.count += len(records)

    async def state(self, stream: str, state: dict[str, Any]) -> None:
        self.states[stream] = state

    async def status(self, stream: str, status: StreamStatus, reason: str | None = None) -> None:
        return None

    async def log(self, level: str, message: str) -> None:
        if level in ("WARN", "ERROR"):
            print(f"{level} {message}", file=sys.stderr)

    async def error(self, stream: str | None, error: Exception) -> None:
        print(f"error on {stream}: {error}", file=sys.stderr)


async def one_sync(
    config: Config, streams: list[str], states: dict[str, Any]
) -> tuple[list[StreamOutcome], Sink, int, float]:
    sink = Sink()
    started = time.monotonic()
    run = read(config, [StreamSelection(n) for n in streams], states, sink)
    outcomes = await run
    return outcomes, sink, run.requests_sent, time.monotonic() - started


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reconcile", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small dataset (harness check)")
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    scale = "small" if args.quick else args.scale
    sizes = {"events": 10}  # events are not reconciled: keep their (unchanged) cost out
    options = SimulatorOptions(seed=args.seed, scale=scale, sizes=sizes, now=int(time.time()) - 120)
    with start_in_thread(options) as sim:
        base: dict[str, Any] = {"api_key": sim.api_key, "base_url": sim.base_url, "backoff_base": 0.05}
        print(f"# deletion checks, {scale} dataset, load {os.getloadavg()[0]:.2f}", file=sys.stderr)
        states: dict[str, Any] = {}
        _, sink, sent, wall = asyncio.run(one_sync(Config(**base), RECONCILED, states))
        states.update(sink.states)
        print(f"first sync: {sent} requests, {sink.count} records, {wall:.1f} s", file=sys.stderr)
        time.sleep(1.1)
        runs = {}
        for label, extra in (
            ("off", {"detect_deletions": False}),
            ("small (days=7)", {"deletion_check_days": 7}),
            ("all (days=0)", {"deletion_check_days": 0}),
        ):
            outs, s, sent, wall = asyncio.run(one_sync(Config(**base, **extra), RECONCILED, dict(states)))
            runs[label] = ({o.name: o.stats.requests for o in outs}, sent, wall, s.count)
            print(f"{label}: {sent} requests, {wall:.1f} s", file=sys.stderr)
    labels = list(runs)
    print(f"Deletion checks per incremental sync, {scale} dataset (load {os.getloadavg()[0]:.2f})\n")
    heads = " | ".join(f"requests, checks {label}" for label in labels)
    print(f"| stream | {heads} | `_reconcile` bytes |")
    print("|---|" + "---:|" * (len(labels) + 1))
    for name in RECONCILED:
        entry = states.get(name, {}).get(STATE_KEY)
        size = len(orjson.dumps(entry)) if entry else 0
        cells = " | ".join(str(runs[label][0].get(name, 0)) for label in labels)
        print(f"| {name} | {cells} | {size:,} |")
    totals = " | ".join(f"**{runs[label][1]}** ({runs[label][2]:.1f} s)" for label in labels)
    print(f"| requests sent (wall) | {totals} | |")
    print(
        "\nPer-stream figures count the requests that served the stream: a listing page shared by "
        "several streams counts for each; an id scan shared by several streams counts for the one "
        "that started it. `requests sent` counts every request once."
    )


if __name__ == "__main__":
    main()
