"""Before/after on the full catalog: `read` of every catalog stream by two (or more) source trees,
alternated against one simulator, CPU per RECORD line and peak RSS of each read.

Each tree is a directory holding `src/` (a frozen copy, e.g. `git archive <commit> src | tar -x
-C /tmp/before`); its read runs as `python -m klaviyo_source read` with `PYTHONPATH=<tree>/src`.
The simulator serves the catalog figure's dataset (medium, N events, 20,000 profiles, no latency,
no limits). CPU is the read child's user+sys (`os.wait4`), RSS its ru_maxrss. Prints each run and
the medians; asserts nothing.

    .venv/bin/python -m bench.catalog_ab --trees /tmp/before,/tmp/after [--rounds 5]
        [--events 300000] [--streams events,profiles]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import (
    ALL_STREAMS,
    catalog,
    counting_records,
    fresh_account,
    read_config,
    run_child,
    simulator,
)


def read(tree: str, base_url: str, streams: list[str]) -> tuple[int, float, float, float]:
    """(RECORD lines, CPU s, system CPU s, peak RSS MB) of one read by `tree`."""
    with tempfile.TemporaryDirectory(prefix="klaviyo-ab-") as tmp:
        config_path, catalog_path = Path(tmp, "config.json"), Path(tmp, "catalog.json")
        config_path.write_text(json.dumps(read_config(base_url, workers=30)))
        catalog_path.write_text(json.dumps(catalog(streams)))
        env = {k: v for k, v in os.environ.items() if k != "KLAVIYO_API_KEY"}
        env["PYTHONPATH"] = str(Path(tree, "src"))
        command = [sys.executable, "-m", "klaviyo_source", "read"]
        command += ["--config", str(config_path), "--catalog", str(catalog_path)]
        counted: list[int] = []
        run = run_child(
            command,
            Path(tmp),
            timeout=3600,
            env=env,
            stdout=subprocess.PIPE,
            watch=lambda process: counting_records(process, counted),
        )
    if run.exit_code != 0:
        raise RuntimeError(f"{tree}: read exited {run.exit_code}: {run.stderr_tail[-300:]}")
    usage = run.usage
    return counted[0], usage.ru_utime + usage.ru_stime, usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trees", required=True, help="comma list of directories holding src/")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--streams", default=None, help="comma list (default: every catalog stream)")
    args = parser.parse_args()
    trees = args.trees.split(",")
    streams = args.streams.split(",") if args.streams else list(ALL_STREAMS)
    flags: tuple[str, ...] = ("--seed", str(args.seed), "--scale", "medium", "--events", str(args.events))
    flags += ("--profiles", str(args.profiles))
    results: dict[str, list[tuple[float, float]]] = {tree: [] for tree in trees}
    with simulator(*flags) as sim:
        for _ in range(args.rounds):
            for tree in trees:
                fresh_account(sim.base_url)
                load = os.getloadavg()[0]
                records, cpu, system, rss = read(tree, sim.base_url, streams)
                per = cpu / max(1, records) * 1e6
                results[tree].append((per, rss))
                print(
                    f"{time.strftime('%H:%M:%S')} load {load:.2f} {tree}: {records:,} records, "
                    f"CPU {cpu:.2f} s (system {system:.2f}), {per:.2f} us/record, RSS {rss:.0f} MB",
                    flush=True,
                )
    for tree, runs in results.items():
        per = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        print(f"{tree}: median {per:.2f} us/record, median RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
