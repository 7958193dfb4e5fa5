"""Benchmarks (a) CPU and (d) memory: an unthrottled events read, CPU per record and peak RSS.

The simulator (own process) serves N events with no latency and no rate limits; the connector
reads the `events` stream (full refresh) to /dev/null. Its user+sys CPU and peak RSS are those
of the `source-klaviyo read` process alone (`os.wait4`). Records = the events the simulator holds (a
full-refresh read emits each once; stdout goes to /dev/null); `served / record` shows events
fetched and thrown away (pages cut at a split window's end).
Goals: <= 10 us of CPU per record (>= 100,000 records/s on one core); peak RSS under 250 MB and
flat from 100,000 to 1,000,000 events.
"""

from __future__ import annotations

import gc
import time
import urllib.request

import orjson

from bench.harness import (
    ALL_STREAMS,
    fresh_account,
    median_of,
    process_cpu,
    read_config,
    run_read,
    served_records,
    simulator,
    stats,
)
from bench.requests import Row
from klaviyo_simulator.server import DEFAULT_KEY
from klaviyo_source.revision import REVISION

# The connector's events query (engine/params.py): includes as for events_detailed, always.
REFERENCE_QUERY = "/api/events?page[size]=1000&sort=datetime&include=metric,attributions&fields[metric]=name"
REFERENCE_REPEATS = 20
REFERENCE_BATCHES = 5


def dict_round_trip(base_url: str) -> float:
    """CPU us per record of the straightforward way, measured here on this machine now: parse one
    page of 1,000 events (the connector's query) into dicts, dump each record as an Airbyte RECORD
    line, free the page; the fastest of 5 batches of 20 pages, GC off. A machine-relative yardstick:
    a connector that avoids building dicts (the events fast path) can go below it."""
    request = urllib.request.Request(base_url + REFERENCE_QUERY)
    request.add_header("Authorization", f"Klaviyo-API-Key {DEFAULT_KEY}")
    request.add_header("revision", REVISION)
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read()
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    best = float("inf")
    gc.disable()
    try:
        # The least disturbed of a few batches: other processes only ever add time.
        for _ in range(REFERENCE_BATCHES):
            records = 0
            started = time.process_time()
            for _ in range(REFERENCE_REPEATS):
                document = orjson.loads(raw)
                envelope = {"stream": "events", "data": None, "emitted_at": 0}
                wrapper = {"type": "RECORD", "record": envelope}
                for record in document["data"]:
                    envelope["data"] = record
                    dumps(wrapper, option=newline)
                records += len(document["data"])
                del document
            best = min(best, (time.process_time() - started) / records * 1e6)
        return best
    finally:
        gc.enable()


def measure_events(*, events: int, seed: int, workers: int, runs: int) -> dict[str, float]:
    """Median over runs of wall, cpu, us per record, records/s (CPU and wall) and peak RSS."""
    results = []
    with simulator("--seed", str(seed), "--scale", "small", "--events", str(events)) as sim:
        for _ in range(runs):
            reference = dict_round_trip(sim.base_url)
            fresh_account(sim.base_url)
            served_cpu = process_cpu(sim.pid)
            usage = run_read(read_config(sim.base_url, workers=workers), ["events"])
            served_cpu = process_cpu(sim.pid) - served_cpu
            if usage.exit_code != 0:
                raise RuntimeError(f"events read exited {usage.exit_code}: {usage.stderr_tail}")
            records = sim.events
            served = served_records(stats(sim.base_url), "get_events")
            results.append(
                {
                    "records": float(records),
                    "wall": usage.wall,
                    "cpu": usage.cpu,
                    "user": usage.user,
                    "system": usage.system,
                    "us_per_record": usage.cpu / records * 1e6,
                    "cpu_records_per_s": records / usage.cpu,
                    "wall_records_per_s": records / usage.wall,
                    "peak_rss_mb": usage.peak_rss_mb,
                    "served_per_record": served / records,
                    "simulator_busy": served_cpu / usage.wall,
                    "reference_us_per_record": reference,
                    "over_reference": usage.cpu / records * 1e6 / reference,
                }
            )
    return median_of(results)


def measure_catalog(*, events: int, profiles: int, seed: int, workers: int, runs: int) -> dict[str, float]:
    """The full catalog (every stream), medium dataset with `events` and `profiles`, no latency
    or limits: CPU per RECORD line written (all streams, derived rows included) and peak RSS."""
    results = []
    flags = ("--seed", str(seed), "--scale", "medium", "--events", str(events), "--profiles", str(profiles))
    with simulator(*flags) as sim:
        for _ in range(runs):
            reference = dict_round_trip(sim.base_url)
            fresh_account(sim.base_url)
            usage = run_read(read_config(sim.base_url, workers=workers), ALL_STREAMS, count=True)
            if usage.exit_code != 0:
                raise RuntimeError(f"full-catalog read exited {usage.exit_code}: {usage.stderr_tail}")
            records = max(1, usage.records)
            results.append(
                {
                    "events": float(sim.events),
                    "profiles": float(sim.profiles),
                    "records": float(records),
                    "wall": usage.wall,
                    "cpu": usage.cpu,
                    "us_per_record": usage.cpu / records * 1e6,
                    "peak_rss_mb": usage.peak_rss_mb,
                    "reference_us_per_record": reference,
                    "over_reference": usage.cpu / records * 1e6 / reference,
                }
            )
    return median_of(results)


def catalog_rows(results: list[dict[str, float]], *, workers: int, runs: int) -> list[Row]:
    """(a') CPU per record and (d') peak RSS of full-catalog reads, one pair per size."""
    rows: list[Row] = []
    for result in results:
        label = f"a/d full catalog ({result['events']:,.0f} events, {result['profiles']:,.0f} profiles)"
        rows.append(
            (
                label,
                "connector CPU us / record",
                f"{result['us_per_record']:.2f}",
                "<= 10",
                f"{result['records']:,.0f} RECORD lines of {len(ALL_STREAMS)} streams; "
                f"CPU {result['cpu']:.1f} s, wall {result['wall']:.1f} s; "
                f"{result['over_reference']:.2f}x the dict round trip "
                f"({result['reference_us_per_record']:.2f} us); num_workers={workers}; median of {runs}",
            )
        )
        rows.append((label, "peak RSS MB", f"{result['peak_rss_mb']:.0f}", "< 150, flat", "ru_maxrss"))
    return rows


def cpu_rows(result: dict[str, float], *, workers: int, runs: int) -> list[Row]:
    label = f"a CPU ({result['records']:,.0f} events)"
    return [
        (
            label,
            "connector CPU us / record",
            f"{result['us_per_record']:.2f}",
            "<= 10",
            f"user {result['user']:.1f} s + sys {result['system']:.1f} s; median of {runs}",
        ),
        (label, "records / CPU-second", f"{result['cpu_records_per_s']:,.0f}", ">= 100,000", "connector CPU"),
        (
            label,
            "connector CPU / dict round trip",
            f"{result['over_reference']:.2f}x",
            "",
            f"dict round trip {result['reference_us_per_record']:.2f} us/record on this machine now (orjson "
            "loads of the page + one RECORD dumps per record, GC off): a machine-relative yardstick",
        ),
        (
            label,
            "records / s (wall)",
            f"{result['wall_records_per_s']:,.0f}",
            "",
            f"wall {result['wall']:.1f} s incl. start-up; num_workers={workers}; events fetched per "
            f"record emitted {result['served_per_record']:.3f}; simulator busy "
            f"{result['simulator_busy']:.0%} of the wall time (100 % = it is the limit)",
        ),
    ]


def memory_rows(results: list[dict[str, float]], *, runs: int) -> list[Row]:
    rows: list[Row] = []
    for result in results:
        rows.append(
            (
                f"d memory ({result['records']:,.0f} events)",
                "peak RSS MB",
                f"{result['peak_rss_mb']:.0f}",
                "< 250, flat",
                f"ru_maxrss of the read process; median of {runs}",
            )
        )
    if len(results) >= 2:
        small, large = results[0], results[-1]
        rows.append(
            (
                "d memory",
                f"RSS ratio {large['records']:,.0f} / {small['records']:,.0f} events",
                f"{large['peak_rss_mb'] / small['peak_rss_mb']:.2f}x",
                "~1.0x (flat)",
                f"for {large['records'] / small['records']:.0f}x the records",
            )
        )
    return rows
