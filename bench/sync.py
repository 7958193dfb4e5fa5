"""Sync benchmark: `klaviyo-source sync` into DuckDB / Postgres against the same read to /dev/null.

    .venv/bin/python -m bench.sync [--events 100000,1000000] [--streams events|all|airbyte] [--runs 1]
                                   [--destinations duckdb,postgres] [--conditions none|klaviyo]
                                   [--peer | --no-peer]

The simulator (own process) serves N events; with `--conditions none` there is no latency and
there are no rate limits (the connector's own cost), with `klaviyo` Klaviyo's tiers and the
benchmarks' latency (bench/rate_bound.py). For each size, one run is: `source-klaviyo read` (full
refresh, stdout to /dev/null: the yardstick) then `klaviyo-source sync --full-refresh` into a
fresh destination (dedup, the default write mode), each measured alone with `os.wait4` (wall,
peak RSS of that process; the sync is one process). Prints a table of medians; asserts nothing.
Goals (issue 16): wall <= 1.2x the read's on DuckDB when CPU-bound (Postgres <= 2x), <= 1.05x
under Klaviyo's limits; rows/s flat with size; peak RSS < 200 MB.

The peer column (`--peer`, the default; issue 15 goal 5): PyAirbyte running Airbyte's own
connector (airbyte-source-klaviyo 2.13.1) into its DuckDB cache, on a simulator started with the
same flags and seed (the same dataset), measured as a process tree (bench/peer.py). It reads the
streams of the run that it has (`--streams airbyte` = exactly its 11, for a like-for-like full
catalog). Rows landed are counted in each destination after the run. If the peer's venvs cannot be
built, its rows say why and the bench goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from bench.harness import (
    ALL_STREAMS,
    Sampler,
    _command,
    fresh_account,
    read_config,
    run_child,
    run_read,
    simulator,
    stats,
)
from bench.load import temporary_postgres
from bench.peer import PEER_STREAMS, PeerUnavailable, connector_versions, ensure_peer, run_peer
from bench.rate_bound import klaviyo_conditions
from bench.requests import Row
from klaviyo_simulator.server import DEFAULT_KEY

__all__ = ["ALL_STREAMS", "PEER_STREAMS", "main", "measure"]


@dataclass(frozen=True)
class SyncUsage:
    wall: float
    peak_rss_mb: float
    exit_code: int
    stderr_tail: str
    cpu: float = 0.0  # user + sys of the sync process
    rss_curve: tuple[tuple[float, float], ...] = ()  # (seconds since start, RSS MB), every `every` s


class RssSampler(Sampler):
    """VmRSS of one process every `every` seconds, from /proc."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(every)
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._started = time.monotonic()

    def sample(self) -> bool:
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return False
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                self.samples.append((time.monotonic() - self._started, int(line.split()[1]) / 1024))
        return True


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
        samplers: list[RssSampler] = []

        def sample(process: subprocess.Popen[bytes]) -> RssSampler:
            samplers.append(RssSampler(process.pid))
            return samplers[0]

        run = run_child(command, Path(tmp), timeout=timeout, watch=sample)
    sampler = samplers[0]
    return SyncUsage(
        run.wall,
        run.usage.ru_maxrss / 1024,
        run.exit_code,
        run.stderr_tail,
        run.usage.ru_utime + run.usage.ru_stime,
        tuple(sampler.samples),
    )


def landed_rows(destination: str) -> dict[str, int]:
    """Rows per stream table of a sync's destination (its `_klaviyo_*` bookkeeping tables left out)."""
    url = urlsplit(destination)
    schema = parse_qs(url.query).get("schema", ["klaviyo"])[0]
    if url.scheme == "duckdb":
        import duckdb

        with duckdb.connect(url.path[1:], read_only=True) as con:
            return _table_counts(con, "SELECT table_name FROM duckdb_tables() WHERE schema_name = ?", schema)
    import psycopg

    with psycopg.connect(urlunsplit(url._replace(query=""))) as con:
        tables = "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
        return _table_counts(con, tables, schema)


def _table_counts(con: Any, tables: str, schema: str) -> dict[str, int]:
    """Rows per table that `tables` (a query taking the schema) lists, but `_klaviyo_*`."""
    counts: dict[str, int] = {}
    for (name,) in con.execute(tables, [schema]).fetchall():
        if not str(name).startswith("_klaviyo"):
            row = con.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()
            counts[str(name)] = int(row[0]) if row else 0
    return counts


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
                url = next(urls)
                sync = run_sync(config, streams, url)
                if sync.exit_code != 0:
                    raise RuntimeError(f"sync exited {sync.exit_code}: {sync.stderr_tail[-300:]}")
                landed = landed_rows(url)
                print(f"    rows landed: {json.dumps(landed, sort_keys=True)}", flush=True)
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
                        "rows": sum(landed.values()),
                        "rows_per_s": sum(landed.values()) / sync.wall,
                    }
                )
                print(f"    RSS curve of the sync: {curve_text(sync.rss_curve)}", flush=True)
                for path in workdir.glob("*.duckdb*"):
                    path.unlink()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def peer_streams(streams: Sequence[str]) -> list[str]:
    """The streams of a run that Airbyte's connector also has."""
    return [name for name in streams if name in PEER_STREAMS]


def measure_peer(
    *, events: int, streams: Sequence[str], runs: int, seed: int, workers: int, conditions: str
) -> dict[str, Any]:
    """Median over runs of the peer's wall, tree CPU, RSS and rows landed, on the same dataset as
    `measure` (a simulator with the same flags and seed). `unavailable`: why it could not run."""
    try:
        pythons = ensure_peer()
        versions = connector_versions(pythons[1])
    except (PeerUnavailable, OSError, subprocess.SubprocessError) as error:
        return {"unavailable": str(error)}
    flags = ["--seed", str(seed), "--scale", "small", "--events", str(events)]
    if conditions == "klaviyo":
        flags += klaviyo_conditions(0.0)
    results: list[dict[str, float]] = []
    counts: dict[str, int] = {}
    with simulator(*flags) as sim:
        for _ in range(runs):
            fresh_account(sim.base_url)
            try:
                usage = run_peer(sim.base_url, DEFAULT_KEY, streams, workers=workers, pythons=pythons)
            except (PeerUnavailable, OSError, subprocess.SubprocessError) as error:
                return {"unavailable": str(error)}
            if usage.exit_code != 0:
                tail = usage.stderr_tail.strip()[-300:]
                return {"unavailable": f"PyAirbyte exited {usage.exit_code}: {tail}"}
            served = stats(sim.base_url)
            counts = usage.counts
            print(f"    peer rows landed: {json.dumps(counts, sort_keys=True)}", flush=True)
            print(f"    peer requests: {json.dumps(served.get('requests', {}), sort_keys=True)}", flush=True)
            results.append(
                {
                    "wall": usage.wall,
                    "cpu": usage.cpu,
                    "rss": usage.peak_rss_mb,
                    "tree_rss": usage.tree_rss_mb,
                    "rows": usage.rows,
                    "rows_per_s": usage.rows / usage.wall,
                    "requests": int(served.get("requests_total", 0)),
                    "throttled": int(served.get("throttled_total", 0)),
                }
            )
    medians: dict[str, Any] = {k: statistics.median(r[k] for r in results) for k in results[0]}
    return medians | {"versions": versions, "streams": len(streams)}


def peer_rows(
    peers: Mapping[int, Mapping[str, Any]],
    results: Sequence[tuple[int, str, dict[str, float]]],
    *,
    streams: Sequence[str],
    runs: int,
    conditions: str,
) -> list[Row]:
    """The peer's figures per size, and each of our destinations' rows/s and CPU against them."""
    what = "events" if list(streams) == ["events"] else f"{len(peer_streams(streams))} streams"
    out: list[Row] = []
    for events, peer in sorted(peers.items()):
        label = f"peer: PyAirbyte + Airbyte's connector -> DuckDB, {what} ({events:,} events, {conditions})"
        if "unavailable" in peer:
            out.append((label, "not measured", "-", "", str(peer["unavailable"]).replace("\n", " ")[:300]))
            continue
        out.append(
            (
                label,
                "rows landed / s",
                f"{peer['rows_per_s']:,.0f}",
                "",
                f"{peer['rows']:,.0f} rows in {peer['wall']:.1f} s; {peer['requests']:,.0f} requests, "
                f"{peer['throttled']:,.0f} 429s; {peer['versions']}; median of {runs}",
            )
        )
        per_row = f"{peer['cpu'] * 1e6 / max(peer['rows'], 1):,.0f} us per row"
        out.append((label, "CPU s (process tree)", f"{peer['cpu']:.1f}", "", per_row))
        out.append(
            (
                label,
                "peak RSS MB (process tree)",
                f"{peer['tree_rss']:.0f}",
                "",
                f"max of the tree's sampled VmRSS sum and its largest process ({peer['rss']:.0f} MB)",
            )
        )
        for size, kind, ours in results:
            if size != events or ours.get("rows", 0) <= 0:
                continue
            ratio = ours["rows_per_s"] / peer["rows_per_s"]
            goal = ">= 10x" if conditions == "none" else "read-bound"
            out.append(
                (
                    f"sync -> {kind} vs peer, {what} ({events:,} events, {conditions})",
                    "rows/s: ours / peer's",
                    f"{ratio:.1f}x",
                    goal,
                    f"ours {ours['rows_per_s']:,.0f}/s ({ours['rows']:,.0f} rows, {ours['sync_wall']:.1f} s, "
                    f"CPU {ours['sync_cpu']:.1f} s: {peer['cpu'] / ours['sync_cpu']:.1f}x less than peer)",
                )
            )
    return out


def rows(
    results: Sequence[tuple[int, str, dict[str, float]]],
    *,
    streams: Sequence[str],
    runs: int,
    conditions: str,
) -> list[Row]:
    what = "events" if list(streams) == ["events"] else "full catalog"
    if list(streams) == list(PEER_STREAMS):
        what = f"Airbyte's catalog ({len(streams)} streams)"
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
        if "rows" in r:
            out.append(
                (label, "rows landed / s", f"{r['rows_per_s']:,.0f}", "", f"{r['rows']:,.0f} rows landed")
            )
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
    parser.add_argument(
        "--streams",
        default="events",
        help="'events', 'all' (full catalog), 'airbyte' (the 11 streams Airbyte's connector has) or a list",
    )
    parser.add_argument("--destinations", default="duckdb,postgres", help="comma list: duckdb, postgres")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=30)
    parser.add_argument("--conditions", choices=["none", "klaviyo"], default="none")
    parser.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run PyAirbyte with Airbyte's connector on the same dataset (bench/peer.py)",
    )
    args = parser.parse_args(argv)
    streams = choose_streams(args.streams)
    results = []
    peers: dict[int, dict[str, Any]] = {}
    for events in (int(n) for n in args.events.split(",")):
        if args.peer:
            peers[events] = measure_peer(
                events=events,
                streams=peer_streams(streams),
                runs=args.runs,
                seed=args.seed,
                workers=args.workers,
                conditions=args.conditions,
            )
            print(f"  peer     {events:>10,} events: {peer_summary(peers[events])}", flush=True)
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
                f"({result['rows_per_s']:,.0f} rows/s, {result['sync_rss']:.0f} MB, "
                f"CPU {result['sync_cpu']:.1f} s) vs read {result['read_wall']:.1f} s "
                f"({result['read_rss']:.0f} MB, CPU {result['read_cpu']:.1f} s): "
                f"{result['ratio']:.2f}x; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    print("| benchmark | figure | median | goal | notes |\n|---|---|---|---|---|")
    table = rows(results, streams=streams, runs=args.runs, conditions=args.conditions)
    table += peer_rows(peers, results, streams=streams, runs=args.runs, conditions=args.conditions)
    for row in table:
        print("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")


def choose_streams(spec: str) -> list[str]:
    """`events`, `all` (our full catalog), `airbyte` (Airbyte's connector's 11 streams) or a list."""
    return {"all": list(ALL_STREAMS), "airbyte": list(PEER_STREAMS)}.get(spec, spec.split(","))


def peer_summary(peer: Mapping[str, Any]) -> str:
    if "unavailable" in peer:
        return f"not measured: {peer['unavailable']}"
    return (
        f"{peer['rows']:,.0f} rows in {peer['wall']:.1f} s ({peer['rows_per_s']:,.0f}/s), "
        f"CPU {peer['cpu']:.1f} s, "
        f"tree RSS {peer['tree_rss']:.0f} MB, {peer['requests']:,.0f} requests; load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
