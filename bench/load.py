"""Load benchmark: rows per second into DuckDB and Postgres for synthetic `events` records.

    .venv/bin/python -m bench.load [--rows 200000] [--batch 10000] [--runs 3] [--postgres URL]

Records are shaped like the simulator's events (JSON:API resource, nested event_properties,
relationships). Each run loads all rows through the same path `sync` uses (`SqlDestination.write`,
one transaction per batch with its state) into a fresh table; the table shows the median of the
runs. Without --postgres a throw-away server is started from initdb/pg_ctl (as in the tests).
Prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from klaviyo_source.destinations import open_destination
from klaviyo_source.destinations.base import Batch, WriteMode
from klaviyo_source.streams.schema import load_schema
from klaviyo_source.streams.table import STREAMS_BY_NAME

METRICS = [
    "Placed Order",
    "Opened Email",
    "Clicked Email",
    "Viewed Product",
    "Active on Site",
    "Received SMS",
]
START = datetime(2025, 1, 1, tzinfo=UTC)


def synthetic_event(number: int) -> dict[str, Any]:
    moment = (START + timedelta(seconds=number * 7)).isoformat()
    metric = number % len(METRICS)
    return {
        "type": "event",
        "id": f"4{number:025d}",
        "datetime": moment,
        "attributes": {
            "timestamp": int(START.timestamp()) + number * 7,
            "datetime": moment,
            "uuid": f"{number:08x}-0000-11ef-8000-000000000000",
            "event_properties": {
                "$event_id": f"{number:012d}",
                "$value": round(number % 500 * 1.37, 2),
                "ItemNames": ["Blue Mug", "Red Scarf"],
                "Items": [{"ProductName": "Blue Mug", "ItemPrice": 12.5, "Quantity": 1}],
                "Currency": "USD",
                "Campaign Name": "Autumn launch",
            },
        },
        "relationships": {
            "metric": {"data": {"type": "metric", "id": f"M{metric:05d}"}},
            "profile": {"data": {"type": "profile", "id": f"01J{number % 50_000:023d}"}},
        },
        "links": {"self": f"https://a.klaviyo.com/api/events/4{number:025d}/"},
    }


@contextmanager
def temporary_postgres() -> Iterator[str]:
    """initdb + pg_ctl on a free port on 127.0.0.1 (as user postgres when run as root)."""

    def binary(name: str) -> str:
        return shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1]

    def as_postgres(argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    base = Path(tempfile.mkdtemp(prefix="klaviyo-bench-pg-"))
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
        shutil.chown(base, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = base / "data"
    initdb = [binary("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
    subprocess.run(as_postgres(initdb), check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base}"
    start = [binary("pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-o", options, "-w", "start"]
    subprocess.run(as_postgres(start), check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        stop = [binary("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
        subprocess.run(as_postgres(stop), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def load_once(url: str, mode: WriteMode, records: list[dict[str, Any]], batch_size: int) -> float:
    """Seconds to load all records into a fresh table, one transaction (rows + state) per batch."""
    destination = open_destination(url, "bench")
    try:
        destination.execute(f"DROP TABLE IF EXISTS {destination.qualified('events')}")
        row = STREAMS_BY_NAME["events"]
        destination.prepare(row, mode, load_schema("events"))
        started = time.perf_counter()
        for offset in range(0, len(records), batch_size):
            chunk = records[offset : offset + batch_size]
            now = datetime.now(UTC)
            state = {"datetime": chunk[-1]["datetime"]}
            destination.write(Batch("events", chunk, [now] * len(chunk), state))
        return time.perf_counter() - started
    finally:
        destination.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", help="postgresql:// URL (default: start a throw-away server)")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    records = [synthetic_event(n) for n in range(args.rows)]
    workdir = Path(tempfile.mkdtemp(prefix="klaviyo-bench-"))
    results: list[tuple[str, str, float]] = []

    def measure(name: str, url: str) -> None:
        for mode in (WriteMode.APPEND, WriteMode.DEDUP):
            seconds = statistics.median(load_once(url, mode, records, args.batch) for _ in range(args.runs))
            results.append((name, mode.value, seconds))
            print(f"  {name:<9} {mode.value:<7} {args.rows / seconds:>12,.0f} rows/s", flush=True)

    try:
        measure("duckdb", f"duckdb:///{workdir / 'bench.duckdb'}")
        if not args.skip_postgres:
            if args.postgres:
                measure("postgres", args.postgres)
            else:
                with temporary_postgres() as url:
                    measure("postgres", url)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nevents load, {args.rows:,} rows, {args.batch:,} per transaction, median of {args.runs} runs")
    print(f"{'destination':<12} {'mode':<8} {'seconds':>8} {'rows/s':>12}")
    for name, mode, seconds in results:
        print(f"{name:<12} {mode:<8} {seconds:>8.2f} {args.rows / seconds:>12,.0f}")


if __name__ == "__main__":
    main()
