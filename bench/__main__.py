"""`python -m bench` (`make bench`): the connector's throughput benchmarks, one table of medians.

    .venv/bin/python -m bench                      # all: cpu, memory, rate, latency, requests
    .venv/bin/python -m bench --quick              # small sizes, 1 run: checks the harness works
    .venv/bin/python -m bench --only cpu,memory --runs 5

Benchmarks (docs/performance.md explains each figure and what limits it):
  cpu       (a) connector CPU per record, 1,000,000 events, no latency or limits  (bench/memory.py)
  memory    (d) peak RSS of the same read at 100,000 and 1,000,000 events         (bench/memory.py)
  catalog   (a/d) the full catalog without latency or limits: CPU per RECORD line and peak RSS at
            100,000 and 300,000 events (--catalog-events), 20,000 profiles  (bench/memory.py)
  rate      (b) full catalog, medium dataset, Klaviyo tiers + latency vs lower bound (bench/rate_bound.py)
  rate-noheaders  (b) again with the simulator's RateLimit-* headers stripped: pacing at the
            published tiers alone (the first minute of a run, a proxy that drops them): 429s?
  latency   (c) 1,000,000 events under tiers + latency: records/s, requests in flight (bench/latency_bound.py)
  requests  (e) requests per endpoint of a full sync vs the minimum (counted in the rate runs if both)
  sync      `klaviyo-source sync` of events into DuckDB and Postgres vs the same read, no latency or
            limits: wall ratio, events/s and peak RSS at 100,000 and 1,000,000 events (bench/sync.py)
  sync-catalog  the same for the full catalog (small dataset, 100,000 events)
  sync-limits   events under Klaviyo's tiers + latency: loading must hide behind fetching
  sync-peer     the 11 streams Airbyte's connector has (small dataset, 100,000 events), ours into
            DuckDB and Postgres beside the peer
  peer column   `sync` (at its smallest size) and `sync-peer` also run PyAirbyte with Airbyte's own
            connector (2.13.1) into its DuckDB cache on the same dataset (bench/peer.py; its venvs
            are built on first use; --no-peer skips it; if it cannot install, its row says why)
  (the sync benchmarks are opt-in: --only sync,sync-catalog,sync-limits,sync-peer)
  serving, load: the simulator's and destinations' own benchmarks (run as they are, output passed on)

Progress goes to stderr, the table (markdown) to stdout. Numbers only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial

from bench import latency_bound, memory, rate_bound, requests, sync
from bench.requests import Row

CONNECTOR = ("cpu", "memory", "catalog", "rate", "rate-noheaders", "latency", "requests")
SYNC = ("sync", "sync-catalog", "sync-limits", "sync-peer")
EXTRAS = ("serving", "load")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    p.add_argument("--quick", action="store_true", help="small sizes and 1 run (harness check)")
    p.add_argument(
        "--only", default=",".join(CONNECTOR), help=f"comma list of {', '.join(CONNECTOR + SYNC + EXTRAS)}"
    )
    p.add_argument("--runs", type=int, default=None, help="runs per figure; the median is shown (default 3)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--workers",
        type=int,
        default=30,
        help="num_workers for cpu, memory, rate, requests (the config default)",
    )
    p.add_argument(
        "--latency-workers", default="10,30,50", help="num_workers values for the latency benchmark"
    )
    p.add_argument("--cpu-events", type=int, default=None, help="events for cpu (default 1,000,000)")
    p.add_argument("--memory-events", default=None, help="comma list (default 100000,1000000)")
    p.add_argument("--latency-events", type=int, default=None, help="default 1,000,000")
    p.add_argument("--catalog-events", default=None, help="comma list for catalog (default 100000,300000)")
    p.add_argument("--catalog-profiles", type=int, default=None, help="profiles for catalog (default 20,000)")
    p.add_argument("--scale", default=None, help="dataset of rate and requests (default medium)")
    p.add_argument(
        "--latency-jitter", type=float, default=0.0, help="simulator latency jitter for rate, latency"
    )
    p.add_argument("--sync-events", default=None, help="comma list for sync (default 100000,1000000)")
    p.add_argument("--sync-destinations", default="duckdb,postgres", help="comma list: duckdb, postgres")
    p.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the peer column of sync and sync-peer (PyAirbyte + Airbyte's connector)",
    )
    args = p.parse_args(argv)
    quick = args.quick
    args.runs = args.runs or (1 if quick else 3)
    args.cpu_events = args.cpu_events or (100_000 if quick else 1_000_000)
    args.memory_events = [
        int(n) for n in (args.memory_events or ("20000,100000" if quick else "100000,1000000")).split(",")
    ]
    args.latency_events = args.latency_events or (100_000 if quick else 1_000_000)
    args.catalog_events = [
        int(n) for n in (args.catalog_events or ("20000" if quick else "100000,300000")).split(",")
    ]
    args.catalog_profiles = args.catalog_profiles or (2_000 if quick else 20_000)
    args.scale = args.scale or ("small" if quick else "medium")
    args.latency_workers = [int(n) for n in args.latency_workers.split(",")]
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    args.sync_events = [
        int(n) for n in (args.sync_events or ("20000" if quick else "100000,1000000")).split(",")
    ]
    args.sync_destinations = args.sync_destinations.split(",")
    unknown = set(args.only) - set(CONNECTOR + SYNC + EXTRAS)
    if unknown:
        p.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    return args


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cpu_and_memory(args: argparse.Namespace) -> list[Row]:
    """(a) and (d) share their runs: the 1,000,000-event read is both."""
    sizes = sorted(
        set(
            (args.memory_events if "memory" in args.only else [])
            + ([args.cpu_events] if "cpu" in args.only else [])
        )
    )
    results = {}
    for events in sizes:
        progress(f"events read, {events:,} events, {args.runs} run(s)")
        results[events] = memory.measure_events(
            events=events, seed=args.seed, workers=args.workers, runs=args.runs
        )
    rows: list[Row] = []
    if "cpu" in args.only:
        rows += memory.cpu_rows(results[args.cpu_events], workers=args.workers, runs=args.runs)
    if "memory" in args.only:
        rows += memory.memory_rows([results[n] for n in sorted(args.memory_events)], runs=args.runs)
    return rows


def run_extra(name: str, quick: bool) -> None:
    """The other owners' benchmarks, run as they are (their own output, not in the table)."""
    argv = {
        "serving": ["-m", "bench.simulator_serving"]
        + (["--scale", "medium", "--pages", "50"] if quick else []),
        "load": ["-m", "bench.load"]
        + (["--rows", "20000", "--runs", "1", "--skip-postgres"] if quick else []),
    }[name]
    progress(f"{name}: python {' '.join(argv)}")
    subprocess.run([sys.executable, *argv], check=False)


def sync_rows(name: str, args: argparse.Namespace) -> list[Row]:
    """The sync benchmarks: events (CPU-bound), the full catalog, events under Klaviyo's limits."""
    streams = {"sync-catalog": list(sync.ALL_STREAMS), "sync-peer": list(sync.PEER_STREAMS)}.get(
        name, ["events"]
    )
    conditions = "klaviyo" if name == "sync-limits" else "none"
    sizes = args.sync_events if name == "sync" else [min(args.sync_events)]
    results = []
    peers = {}
    if args.peer and name in ("sync", "sync-peer"):
        events = min(sizes)
        progress(f"{name}: peer (PyAirbyte + Airbyte's connector), {events:,} events, {args.runs} run(s)")
        peers[events] = sync.measure_peer(
            events=events,
            streams=sync.peer_streams(streams),
            runs=args.runs,
            seed=args.seed,
            workers=args.workers,
            conditions=conditions,
        )
        progress(f"{name}: peer: {sync.peer_summary(peers[events])}")
    for events in sizes:
        for kind in args.sync_destinations:
            progress(f"{name}: {events:,} events into {kind}, {args.runs} run(s)")
            measured = sync.measure(
                events=events,
                streams=streams,
                kind=kind,
                runs=args.runs,
                seed=args.seed,
                workers=args.workers,
                conditions=conditions,
            )
            results.append((events, kind, measured))
    table = sync.rows(results, streams=streams, runs=args.runs, conditions=conditions)
    return table + sync.peer_rows(peers, results, streams=streams, runs=args.runs, conditions=conditions)


def table(rows: list[Row]) -> str:
    header = ("benchmark", "figure", "median", "goal", "bound / limit / notes")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    started = time.monotonic()
    rows: list[Row] = []
    failures: list[str] = []

    def attempt(name: str, run: Callable[[], list[Row]]) -> None:
        try:
            done = run()
            rows.extend(done)
            for row in done:  # also now, on stderr: a run cut short keeps what it measured
                progress(" | ".join(row))
        except Exception as error:  # one broken benchmark must not hide the others' numbers
            failures.append(f"{name}: {error}")
            progress(f"{name} FAILED: {error}")

    if {"cpu", "memory"} & set(args.only):
        attempt("cpu/memory", lambda: cpu_and_memory(args))
    if "catalog" in args.only:

        def catalog() -> list[Row]:
            results = []
            for events in args.catalog_events:
                progress(
                    f"full catalog, {events:,} events, {args.catalog_profiles:,} profiles, {args.runs} run(s)"
                )
                results.append(
                    memory.measure_catalog(
                        events=events,
                        profiles=args.catalog_profiles,
                        seed=args.seed,
                        workers=args.workers,
                        runs=args.runs,
                    )
                )
            return memory.catalog_rows(results, workers=args.workers, runs=args.runs)

        attempt("catalog", catalog)
    if "rate" in args.only:
        progress(f"rate-bound, {args.scale} dataset, full catalog, {args.runs} run(s)")

        def rate_and_requests() -> list[Row]:
            rows, needs, counts = rate_bound.measure(
                scale=args.scale,
                seed=args.seed,
                workers=args.workers,
                runs=args.runs,
                jitter=args.latency_jitter,
            )
            if "requests" in args.only:  # (e) from the same full syncs: no need to sync again
                setup = f"the rate-bound runs: {args.scale} dataset, num_workers={args.workers}"
                rows += requests.request_rows(needs, counts, setup=setup)
            return rows

        attempt("rate", rate_and_requests)
    if "rate-noheaders" in args.only:
        progress(f"rate-bound without RateLimit headers, {args.scale} dataset, {args.runs} run(s)")
        attempt(
            "rate-noheaders",
            lambda: rate_bound.measure(
                scale=args.scale,
                seed=args.seed,
                workers=args.workers,
                runs=args.runs,
                jitter=args.latency_jitter,
                headers=False,
            )[0],
        )
    if "latency" in args.only:
        for workers in args.latency_workers:
            progress(
                f"latency-bound, {args.latency_events:,} events, num_workers={workers}, {args.runs} run(s)"
            )
            attempt(
                f"latency (num_workers={workers})",
                partial(
                    latency_bound.measure,
                    events=args.latency_events,
                    seed=args.seed,
                    workers=workers,
                    runs=args.runs,
                    jitter=args.latency_jitter,
                ),
            )
    if "requests" in args.only and "rate" not in args.only:
        progress(f"requests, {args.scale} dataset, full catalog, {args.runs} run(s)")
        attempt(
            "requests",
            lambda: requests.measure(scale=args.scale, seed=args.seed, workers=args.workers, runs=args.runs),
        )
    for name in SYNC:
        if name in args.only:
            attempt(name, partial(sync_rows, name, args))
    for name in EXTRAS:
        if name in args.only:
            run_extra(name, args.quick)
    print(table(rows))
    print(
        f"\n{'quick, ' if args.quick else ''}median of {args.runs} run(s) per figure; seed {args.seed}; "
        f"took {time.monotonic() - started:.0f} s; command: python -m bench {' '.join(sys.argv[1:])}"
    )
    for failure in failures:
        print(f"FAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
