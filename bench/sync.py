"""Sync benchmark: `klaviyo-source sync` into DuckDB / Postgres against the same read to /dev/null.

    .venv/bin/python -m bench.sync [--events 100000,1000000] [--streams events|all] [--runs 1]
                                   [--postgres] [--conditions none|klaviyo]

The simulator (own process) serves N events; with `--conditions none` there is no latency and
there are no rate limits (the connector's own cost), with `klaviyo` Klaviyo's tiers and the
benchmarks' latency (bench/rate_bound.py). For each size, one run is: `source-klaviyo read` (full
refresh, stdout to /dev/null: the yardstick) then `klaviyo-source sync --full-refresh` into a
fresh destination (dedup, the default write mode), each measured alone with `os.wait4` (wall,
peak RSS of that process; the sync is one process). Prints a table of medians; asserts nothing.
Goals (issue 16): wall <= 1.2x the read's on DuckDB when CPU-bound (Postgres <= 2x), <= 1.05x
under Klaviyo's limits; rows/s flat with size; peak RSS < 200 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import ALL_STREAMS, _command, fresh_account, read_config, run_read, simulator
from bench.load import temporary_postgres
from bench.rate_bound import klaviyo_conditions
from bench.requests import Row


@dataclass(frozen=True)
class SyncUsage:
    wall: float
    peak_rss_mb: float
    exit_code: int
    stderr_tail: str
    cpu: float = 0.0  # user + sys of the sync process
    rss_curve: tuple[tuple[float, float], ...] = ()  # (seconds since start, RSS MB), every `every` s


class RssSampler:
    """VmRSS of one process every `every` seconds, from /proc (in a thread of the bench process)."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                text = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmRSS:"):
                    self.samples.append((time.monotonic() - self._started, int(line.split()[1]) / 1024))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def curve_text(curve: Sequence[tuple[float, float]], points: int = 6) -> str:
    """A few (time, RSS) points of a curve, evenly spaced in time: `10s:140 20s:150 ...`."""
    if not curve:
        return ""
    step = max(1, len(curve) // points)
    picked = list(curve[step - 1 :: step])[:points]
    return " ".join(f"{t:.0f}s:{mb:.0f}" for t, mb in picked) + " MB"


def run_sync(
    config: Mapping[str, Any], streams: Sequence[str], destination: str, *, timeout: float = 3600.0
) -> SyncUsage:
    """One `klaviyo-source sync --full-refresh --progress none` measured alone (os.wait4)."""
    with tempfile.TemporaryDirectory(prefix="klaviyo-bench-sync-") as tmp:
        config_path = Path(tmp, "config.json")
        config_path.write_text(json.dumps(config))
        command = [
            *_command("sync"),
            "--config",
            str(config_path),
            "--streams",
            ",".join(streams),
            "--destination",
            destination,
            "--full-refresh",
            "--progress",
            "none",
        ]
        env = {k: v for k, v in os.environ.items() if k != "KLAVIYO_API_KEY"}
        with open(os.devnull, "wb") as devnull, open(Path(tmp, "stderr"), "w+b") as errors:
            started = time.monotonic()
            process = subprocess.Popen(command, stdout=devnull, stderr=errors, env=env)
            killer = threading.Timer(timeout, process.kill)
            killer.start()
            with RssSampler(process.pid) as sampler:
                _, status, usage = os.wait4(process.pid, 0)
            wall = time.monotonic() - started
            killer.cancel()
            errors.seek(0)
            tail = errors.read()[-2000:].decode(errors="replace")
    return SyncUsage(
        wall,
        usage.ru_maxrss / 1024,
        os.waitstatus_to_exitcode(status),
        tail,
        usage.ru_utime + usage.ru_stime,
        tuple(sampler.samples),
    )


@contextmanager
def destination_urls(kind: str, workdir: Path) -> Iterator[Iterator[str]]:
    """Fresh destination URLs, one per run: a new DuckDB file, or a new schema on one server."""
    if kind == "duckdb":
        yield (f"duckdb:///{workdir / f'sync{n}.duckdb'}" for n in range(1_000_000))
        return
    with temporary_postgres() as url:
        yield (f"{url}?schema=bench{n}" for n in range(1_000_000))


def measure(
    *, events: int, streams: Sequence[str], kind: str, runs: int, seed: int, workers: int, conditions: str
) -> dict[str, float]:
    """Median over runs of the read's and the sync's wall and peak RSS, and their ratio."""
    flags = ["--seed", str(seed), "--scale", "small", "--events", str(events)]
    if conditions == "klaviyo":
        flags += klaviyo_conditions(0.0)
    workdir = Path(tempfile.mkdtemp(prefix="klaviyo-bench-sync-"))
    results: list[dict[str, float]] = []
    try:
        with simulator(*flags) as sim, destination_urls(kind, workdir) as urls:
            config = read_config(sim.base_url, workers=workers)
            for _ in range(runs):
                fresh_account(sim.base_url)
                read = run_read(config, streams)
                if read.exit_code != 0:
                    raise RuntimeError(f"read exited {read.exit_code}: {read.stderr_tail[-300:]}")
                fresh_account(sim.base_url)
                sync = run_sync(config, streams, next(urls))
                if sync.exit_code != 0:
                    raise RuntimeError(f"sync exited {sync.exit_code}: {sync.stderr_tail[-300:]}")
                results.append(
                    {
                        "read_wall": read.wall,
                        "read_rss": read.peak_rss_mb,
                        "read_cpu": read.cpu,
                        "sync_wall": sync.wall,
                        "sync_rss": sync.peak_rss_mb,
                        "sync_cpu": sync.cpu,
                        "ratio": sync.wall / read.wall,
                        "events_per_s": events / sync.wall,
                    }
                )
                print(f"    RSS curve of the sync: {curve_text(sync.rss_curve)}", flush=True)
                for path in workdir.glob("*.duckdb*"):
                    path.unlink()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def rows(
    results: Sequence[tuple[int, str, dict[str, float]]],
    *,
    streams: Sequence[str],
    runs: int,
    conditions: str,
) -> list[Row]:
    what = "events" if list(streams) == ["events"] else "full catalog"
    goal = {"duckdb": "<= 1.2x", "postgres": "<= 2x"}
    out: list[Row] = []
    for events, kind, r in results:
        label = f"sync {what} -> {kind} ({events:,} events, {conditions})"
        out.append(
            (
                label,
                "sync wall / read wall",
                f"{r['ratio']:.2f}x",
                "<= 1.05x" if conditions == "klaviyo" else goal[kind],
                f"sync {r['sync_wall']:.1f} s vs read {r['read_wall']:.1f} s; CPU {r['sync_cpu']:.1f} s vs "
                f"{r['read_cpu']:.1f} s; median of {runs}",
            )
        )
        out.append((label, "events / s (sync wall)", f"{r['events_per_s']:,.0f}", "flat with size", ""))
        out.append(
            (
                label,
                "sync peak RSS MB",
                f"{r['sync_rss']:.0f}",
                "< 200",
                f"read's peak RSS {r['read_rss']:.0f} MB",
            )
        )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", default="100000,1000000", help="comma list of event counts")
    parser.add_argument("--streams", default="events", help="'events' or 'all' (the full catalog)")
    parser.add_argument("--destinations", default="duckdb,postgres", help="comma list: duckdb, postgres")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=30)
    parser.add_argument("--conditions", choices=["none", "klaviyo"], default="none")
    args = parser.parse_args(argv)
    streams = list(ALL_STREAMS) if args.streams == "all" else args.streams.split(",")
    results = []
    for events in (int(n) for n in args.events.split(",")):
        for kind in args.destinations.split(","):
            result = measure(
                events=events,
                streams=streams,
                kind=kind,
                runs=args.runs,
                seed=args.seed,
                workers=args.workers,
                conditions=args.conditions,
            )
            results.append((events, kind, result))
            print(
                f"  {kind:<8} {events:>10,} events: sync {result['sync_wall']:.1f} s "
                f"({result['events_per_s']:,.0f}/s, {result['sync_rss']:.0f} MB, "
                f"CPU {result['sync_cpu']:.1f} s) vs read {result['read_wall']:.1f} s "
                f"({result['read_rss']:.0f} MB, CPU {result['read_cpu']:.1f} s): "
                f"{result['ratio']:.2f}x; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    print("| benchmark | figure | median | goal | notes |\n|---|---|---|---|---|")
    for row in rows(results, streams=streams, runs=args.runs, conditions=args.conditions):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
