"""`klaviyo-source sync`: read streams with the engine and load them into DuckDB or Postgres.

    klaviyo-source sync --config config.json [--streams a,b] [--destination duckdb:///klaviyo.duckdb |
                        postgresql://...] [--full-refresh] [--write append|dedup|overwrite]
                        [--deletes soft|hard]
                        [--report table|json] [--report-file run.json] [--log-level LEVEL]

State lives in the destination and is committed with the rows it covers, so a sync killed at any
moment resumes where it stopped; Ctrl-C and SIGTERM say what was kept. A stream whose saved state
is unreadable fails alone (the engine's message names `klaviyo-source state reset`).
`run_sync()` is the programmatic entry (the demo uses it). Exit codes: 0 every stream completed;
1 a stream or the destination failed; 2 invalid arguments; 130 / 143 interrupted (SIGINT / SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from klaviyo_source.config import API_KEY_ENV, Config, load_config, read_config_file
from klaviyo_source.destinations import open_destination
from klaviyo_source.destinations.base import (
    DeleteMode,
    DestinationSpec,
    SqlDestination,
    WriteMode,
    parse_destination,
)
from klaviyo_source.engine.contract import StreamOutcome, StreamSelection, StreamStats, StreamStatus
from klaviyo_source.errors import ConfigError, KlaviyoSourceError, UsageError
from klaviyo_source.interrupt import Interrupted, received_signal, run_interruptible
from klaviyo_source.streams.table import DEFAULT_STREAMS, STREAMS_BY_NAME
from klaviyo_source.sync.guards import sync_warnings
from klaviyo_source.sync.progress import (
    LOG_LEVELS,
    ProgressMode,
    SummaryRow,
    SyncProgress,
    summary_rows,
)
from klaviyo_source.sync.report import interrupted_lines, record_run, write_report
from klaviyo_source.sync.sink import DestinationSink, StreamCounts

DEFAULT_DESTINATION = "duckdb:///klaviyo.duckdb"


@dataclass
class SyncOptions:
    config: Config
    destination: DestinationSpec
    streams: list[str]
    write: WriteMode = WriteMode.DEDUP
    full_refresh: bool = False
    progress: ProgressMode = "auto"
    warnings: list[str] = field(default_factory=list)  # from the config loader, shown at the start
    report: str = "table"  # the end-of-sync summary on stdout: "table" or "json"
    report_file: str | None = None  # also write the JSON summary here
    log_level: str = "INFO"
    deletes: DeleteMode = DeleteMode.SOFT  # records gone from Klaviyo: _deleted_at set, or the row removed


@dataclass
class SyncReport:
    """What a sync did: per-stream outcomes and counts, how long it took, its exit code."""

    sync_id: str
    outcomes: list[StreamOutcome]
    counts: dict[str, StreamCounts]
    stats: dict[str, StreamStats]
    duration: float
    requests_sent: int = 0  # requests actually sent (a page shared by two streams counts once)
    error: str | None = None  # a failure of the whole sync (destination, config)
    rows: list[SummaryRow] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    interrupted_by: str | None = None  # "SIGINT" / "SIGTERM": stopped; what was committed is kept

    @property
    def exit_code(self) -> int:
        if self.interrupted_by is not None:
            return 128 + signal.Signals[self.interrupted_by].value
        complete = all(o.status is StreamStatus.COMPLETE for o in self.outcomes)
        return 0 if self.error is None and complete and self.outcomes else 1


def new_sync_id() -> str:
    """Sortable and unique: UTC start time plus a random suffix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # raise instead of exiting, so main() decides the output
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="klaviyo-source sync",
        description="Load Klaviyo streams into DuckDB (default) or Postgres, incrementally.",
    )
    parser.add_argument("--config", help="config JSON file (api_key may come from $KLAVIYO_API_KEY instead)")
    parser.add_argument(
        "--streams",
        help="comma-separated streams (default: all but the Reporting API's, which are opt-in). "
        + ", ".join(STREAMS_BY_NAME),
    )
    parser.add_argument(
        "--destination",
        default=DEFAULT_DESTINATION,
        help="duckdb:///relative/file.duckdb, duckdb:////absolute/file.duckdb or postgresql://user@host/db; "
        "add ?schema=name to choose the schema (default klaviyo). Default: %(default)s",
    )
    parser.add_argument("--full-refresh", action="store_true", help="ignore saved state and read everything")
    parser.add_argument(
        "--write",
        choices=[m.value for m in WriteMode],
        default=WriteMode.DEDUP.value,
        help="dedup: one row per id (default); append: every version; overwrite: replace each table "
        "atomically at the end (implies --full-refresh)",
    )
    parser.add_argument(
        "--deletes",
        choices=[m.value for m in DeleteMode],
        default=DeleteMode.SOFT.value,
        help="records gone from Klaviyo: soft sets the row's _deleted_at (default); hard removes the row",
    )
    parser.add_argument(
        "--progress",
        choices=["auto", "rich", "plain", "none"],
        default="auto",
        help="progress display: rich bars on a terminal, plain lines otherwise (default: %(default)s)",
    )
    parser.add_argument(
        "--report",
        choices=["table", "json"],
        default="table",
        help="the end-of-sync summary on stdout: a table, or one JSON document (default: %(default)s)",
    )
    parser.add_argument("--report-file", metavar="FILE", help="also write the JSON summary to FILE")
    parser.add_argument(
        "--log-level",
        choices=list(LOG_LEVELS),
        default="INFO",
        type=str.upper,
        help="least severe log line shown on stderr (default: %(default)s)",
    )
    return parser


def parse_streams(text: str | None) -> list[str]:
    """`--streams a,b` -> names in order, without repeats; when the option is absent, every stream
    but the report streams (their daily quota makes them opt-in)."""
    if text is None:
        return list(DEFAULT_STREAMS)
    streams = list(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    known = ", ".join(STREAMS_BY_NAME)
    if not streams:
        raise UsageError(f"--streams {text!r} names no stream; give one or more of: {known}")
    unknown = [s for s in streams if s not in STREAMS_BY_NAME]
    if unknown:
        raise UsageError(f"unknown stream(s): {', '.join(unknown)}; known: {known}")
    return streams


def parse_args(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> SyncOptions:
    """argv without the verb -> SyncOptions; UsageError or ConfigError on bad input."""
    args = _parser().parse_args(list(argv))
    env = os.environ if environ is None else environ
    raw: Any = {}
    if args.config:
        raw = read_config_file(args.config)
    elif not env.get(API_KEY_ENV, "").strip():
        raise UsageError(f"give --config config.json, or set {API_KEY_ENV}")
    config, warnings = load_config(raw, environ=env)
    streams = parse_streams(args.streams)
    write = WriteMode(args.write)
    return SyncOptions(
        config=config,
        destination=parse_destination(args.destination),
        streams=streams,
        write=write,
        full_refresh=args.full_refresh or write is WriteMode.OVERWRITE,
        progress=args.progress,
        warnings=warnings,
        report=args.report,
        report_file=args.report_file,
        log_level=args.log_level,
        deletes=DeleteMode(args.deletes),
    )


async def run_sync(options: SyncOptions, *, out: TextIO | None = None) -> SyncReport:
    """Open and lock the destination, read its states, run the engine into it, close it.

    Cancelled (Ctrl-C, SIGTERM), it stops reading, commits what is covered by a state, and returns
    the report with `interrupted_by` set."""
    from klaviyo_source.engine import read  # the engine pulls in aiohttp; argument errors stay fast

    sync_id = new_sync_id()
    started = time.monotonic()
    stats = {name: StreamStats() for name in options.streams}
    modes = {name: options.write for name in options.streams}
    report = SyncReport(sync_id, [], {}, stats, 0.0)
    try:
        destination: SqlDestination = await asyncio.to_thread(open_destination, options.destination, sync_id)
    except KlaviyoSourceError as error:
        report.error = error.message
        return report
    except Exception as error:  # e.g. the DuckDB file is unreadable
        report.error = f"cannot open {options.destination.display}: {error}"
        return report
    try:
        try:
            states = {} if options.full_refresh else await asyncio.to_thread(destination.stored_states)
            for warning in await asyncio.to_thread(sync_warnings, destination, options, states):
                print(f"klaviyo-source sync: warning: {warning}", file=sys.stderr)
            for name in options.streams:
                await asyncio.to_thread(destination.prepare, STREAMS_BY_NAME[name], options.write)
        except KlaviyoSourceError as error:  # e.g. the table was written with another write mode
            report.error = error.message
            return report
        except Exception as error:  # a database error while reading state or creating tables
            report.error = f"preparing {options.destination.display} failed: {type(error).__name__}: {error}"
            return report
        selections = [StreamSelection(name, incremental=not options.full_refresh) for name in options.streams]
        sink = DestinationSink(
            destination, modes, on_log=lambda level, text: progress.log(level, text), deletes=options.deletes
        )
        run = read(options.config, selections, {k: v for k, v in states.items() if k in modes}, sink)
        progress = SyncProgress(
            run.snapshot, sink.counts, options.progress, stream=out, log_level=options.log_level
        )
        async with progress:
            try:
                async with sink:
                    report.outcomes = await run
            except asyncio.CancelledError:
                report.interrupted_by = received_signal() or "SIGINT"
            except KlaviyoSourceError as error:
                report.error = error.message
            except Exception as error:  # a write failed (database error, disk full, ...)
                report.error = (
                    f"writing to {options.destination.display} failed: {type(error).__name__}: {error}"
                )
        report.counts = sink.counts
        report.stats = stats = run.snapshot()
        report.requests_sent = run.requests_sent
        _finish(report, stats, started)
        try:
            await asyncio.to_thread(record_run, destination, report, options)
        except Exception as error:  # the run's rows and states are committed; only its record is lost
            progress.log("WARN", f"could not record the run in {options.destination.display}: {error}")
    finally:
        await asyncio.to_thread(destination.close)
    return report


def _finish(report: SyncReport, stats: dict[str, StreamStats], started: float) -> None:
    for outcome in report.outcomes:
        if outcome.error is not None and not report.counts.get(outcome.name, StreamCounts()).error:
            report.counts.setdefault(outcome.name, StreamCounts()).error = str(outcome.error)
    report.duration = time.monotonic() - started
    report.rows = summary_rows(stats, report.counts)


def main(argv: list[str]) -> int:
    """argv[0] == "sync"."""
    try:
        options = parse_args(argv[1:])
    except UsageError as error:
        print(f"klaviyo-source sync: {error}\n\n{_parser().format_usage()}", file=sys.stderr)
        return 2
    except ConfigError as error:
        print(f"klaviyo-source sync: {error.message}", file=sys.stderr)
        return 2
    for warning in options.warnings:
        print(f"klaviyo-source sync: warning: {warning}", file=sys.stderr)
    try:
        report = asyncio.run(run_interruptible(run_sync(options)))
    except Interrupted as interrupted:
        if not isinstance(interrupted.result, SyncReport):  # stopped before reading began
            print(
                f"\nklaviyo-source sync: interrupted by {interrupted.name}; nothing was read.",
                file=sys.stderr,
            )
            return interrupted.exit_code
        report = interrupted.result
    if report.interrupted_by is not None:
        for line in interrupted_lines(report, options.write, report.interrupted_by):
            print(line, file=sys.stderr)
    if report.error is not None:
        print(f"klaviyo-source sync: {report.error}", file=sys.stderr)
    code = report.exit_code
    if not write_report(report, options) and code == 0:
        return 1
    return code
