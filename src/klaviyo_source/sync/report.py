"""What `sync` says when it ends: the summary (a table, or one JSON document), and after Ctrl-C or
SIGTERM how many rows of each stream were committed and what the next run does.

The JSON run summary (`--report json` on stdout, `--report-file FILE`, and one row per run in the
destination's `_klaviyo_sync_runs` table) holds the run's id, start,
duration, destination, write mode, exit code, interruption, error, and per stream: status,
records, rows inserted / changed / unchanged / deleted, requests, 429s, retries, rate-limit wait, error;
and the totals, with the requests actually sent (a page two streams share counts once).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from klaviyo_source.destinations.base import SqlDestination, WriteMode
from klaviyo_source.destinations.typemap import SQL_TYPES
from klaviyo_source.engine.contract import StreamStatus
from klaviyo_source.sync.progress import committed_rows, print_summary
from klaviyo_source.sync.sink import StreamCounts
from klaviyo_source.times import format_time

if TYPE_CHECKING:
    from klaviyo_source.sync.command import SyncOptions, SyncReport

RUNS_TABLE = "_klaviyo_sync_runs"


def interrupted_lines(report: SyncReport, write: WriteMode, signal_name: str) -> list[str]:
    """What was kept of an interrupted sync, stream by stream, and what the next run does."""
    lines = [
        f"klaviyo-source sync: interrupted by {signal_name}; stopped reading and kept what was committed."
    ]
    for name in report.stats:
        counts = report.counts.get(name, StreamCounts())
        complete = counts.status is StreamStatus.COMPLETE
        if write is WriteMode.OVERWRITE:
            if complete:
                lines.append(f"  {name}: complete, table replaced ({committed_rows(counts):,} rows)")
            else:
                lines.append(f"  {name}: not replaced (the table is as before); the next run starts over")
            continue
        state = "complete" if complete else "the next run continues from its last saved state"
        lines.append(f"  {name}: {committed_rows(counts):,} rows committed; {state}")
    if write is WriteMode.OVERWRITE:
        lines.append(
            "--write overwrite replaces a table only when its stream completes: run it again to start over."
        )
    else:
        lines.append("Run the same command again to resume.")
    return lines


def report_document(report: SyncReport, options: SyncOptions) -> dict[str, Any]:
    streams = {row.stream: dataclasses.asdict(row) for row in report.rows}
    for values in streams.values():
        values.pop("stream")
    numeric = ("records", "inserted", "changed", "unchanged", "deleted", "requests", "throttled", "retries")
    totals = {key: sum(v[key] or 0 for v in streams.values()) for key in numeric}
    totals["rate_limit_wait"] = round(sum(v["rate_limit_wait"] for v in streams.values()), 3)
    totals["requests_sent"] = report.requests_sent  # a page two streams share counts once here
    return {
        "sync_id": report.sync_id,
        "started_at": report.started_at.isoformat(),
        "duration_seconds": round(report.duration, 3),
        "destination": options.destination.display,
        "write": options.write.value,
        "full_refresh": options.full_refresh,
        "start_date": format_time(options.config.start_date) if options.config.start_date else None,
        "exit_code": report.exit_code,
        "interrupted_by": report.interrupted_by,
        "error": report.error,
        "streams": streams,
        "totals": totals,
    }


def record_run(destination: SqlDestination, report: SyncReport, options: SyncOptions) -> None:
    """One row per sync in the destination's `_klaviyo_sync_runs` table (the JSON summary in `report`)."""
    types = SQL_TYPES[destination.dialect]
    table = destination.qualified(RUNS_TABLE)
    mark = ", ".join([destination.placeholder] * 7)
    document = report_document(report, options)
    with destination.transaction():
        destination.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (sync_id {types['text']} PRIMARY KEY, "
            f"started_at {types['timestamp']}, duration_seconds {types['double']}, "
            f"exit_code {types['bigint']}, interrupted_by {types['text']}, error {types['text']}, "
            f"report {types['json']})"
        )
        destination.execute(
            f"INSERT INTO {table} (sync_id, started_at, duration_seconds, exit_code, interrupted_by, "
            f"error, report) VALUES ({mark})",
            [
                report.sync_id,
                report.started_at,
                document["duration_seconds"],
                report.exit_code,
                report.interrupted_by,
                report.error,
                orjson.dumps(document).decode(),
            ],
        )


def write_report(report: SyncReport, options: SyncOptions) -> bool:
    """The summary table (or JSON) on stdout, and the JSON in --report-file; False if that failed."""
    document = report_document(report, options)
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
    written = True
    if options.report_file:
        try:
            Path(options.report_file).write_bytes(data)
        except OSError as error:
            print(
                f"klaviyo-source sync: cannot write --report-file {options.report_file}: "
                f"{error.strerror or error}",
                file=sys.stderr,
            )
            written = False
    if options.report == "json":
        sys.stdout.write(data.decode())
        sys.stdout.flush()
    elif report.rows and (report.outcomes or report.interrupted_by is not None):
        title = f"sync {report.sync_id} into {options.destination.display}"
        print_summary(report.rows, report.duration, title=title, requests_sent=report.requests_sent)
    return written
