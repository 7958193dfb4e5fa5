"""What a person watching `sync` sees: live progress per stream, log lines, and the final summary.

On a terminal: rich progress bars (records, records/s, partitions done of total, time waited on
rate limits, status). Otherwise, every few seconds: one short totals line and one line per running
stream (each under 100 characters). A stream whose requests wait on a rate limiter says "waiting
on rate limit, next request in N s" (learnt from the engine's pacing and 429 heartbeats) instead
of sitting at 0. Live numbers come from the engine's StreamStats and the destination sink's counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from klaviyo_source.engine.contract import StreamStats, StreamStatus
from klaviyo_source.sync.sink import StreamCounts

ProgressMode = Literal["auto", "rich", "plain", "none"]
PLAIN_EVERY_SECONDS = 5.0
RICH_REFRESH_SECONDS = 0.25
REPEAT_SECONDS = 30.0  # an identical log line is shown at most once per this many seconds
MAX_LINE = 99  # plain-mode lines stay inside a terminal's width
STAMP_WIDTH = 15  # "HH:MM:SS LEVEL " before every logged line
LOG_LEVELS: dict[str, int] = {"DEBUG": 10, "INFO": 20, "WARN": 30, "ERROR": 40}
_LEVEL_ALIASES = {"TRACE": "DEBUG", "WARNING": "WARN", "FATAL": "ERROR", "CRITICAL": "ERROR"}
# "<stream>[/<stream>...]: Pacing requests ...; 45s left" and "<stream>: Rate limited on ...; waiting 5.0s"
_WAIT_NOTE = re.compile(
    r"^(?P<names>[a-z_]+(?:/[a-z_]+)*): .*?(?:(?P<left>\d+)s left|waiting (?P<wait>[\d.]+)s)$"
)


def level_rank(level: str) -> int:
    name = level.upper()
    return LOG_LEVELS.get(_LEVEL_ALIASES.get(name, name), LOG_LEVELS["INFO"])


def committed_rows(counts: StreamCounts) -> int:
    """Rows of a stream written in committed transactions: inserted, changed and unchanged."""
    return counts.inserted + changed_of(counts) + (unchanged_of(counts) or 0)


def changed_of(counts: StreamCounts) -> int:
    value: int = getattr(counts, "changed", counts.updated)
    return value


def unchanged_of(counts: StreamCounts) -> int | None:
    value: int | None = getattr(counts, "unchanged", None)
    return value


COUNTS_KNOW_UNCHANGED = unchanged_of(StreamCounts()) is not None


@dataclass
class SummaryRow:
    stream: str
    status: str
    records: int
    inserted: int
    changed: int  # rows that existed and differ (until the sink tells them apart: rows re-written)
    unchanged: int | None  # rows re-read without change (None: the sink does not count them)
    requests: int
    throttled: int
    retries: int
    rate_limit_wait: float
    error: str | None = None
    deleted: int = 0  # rows marked `_deleted_at` (or removed): records gone from Klaviyo


def _status_text(counts: StreamCounts, next_request_in: float | None = None) -> str:
    if counts.status in (StreamStatus.COMPLETE, StreamStatus.INCOMPLETE):
        return counts.status.value.lower()
    if next_request_in is not None:
        return f"waiting on rate limit, next request in {next_request_in:.0f} s"
    if counts.status is None:
        return "waiting"
    if counts.status is StreamStatus.RUNNING and counts.reason:
        return counts.reason.lower().replace("_", " ")
    return counts.status.value.lower()


def _fit(line: str, width: int = MAX_LINE) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


class SyncProgress:
    """`async with SyncProgress(run.snapshot, counts, mode) as progress:` around the engine's
    run; `snapshot` returns the live per-stream stats (copies) each time it is called."""

    def __init__(
        self,
        snapshot: Callable[[], Mapping[str, StreamStats]],
        counts: Mapping[str, StreamCounts],
        mode: ProgressMode = "auto",
        *,
        stream: TextIO | None = None,
        plain_every: float = PLAIN_EVERY_SECONDS,
        log_level: str = "INFO",
    ) -> None:
        self.snapshot = snapshot
        self.counts = counts
        self.out = stream or sys.stderr
        if mode == "auto":
            mode = "rich" if self.out.isatty() else "plain"
        self.mode = mode
        self.plain_every = plain_every
        self.started = time.monotonic()
        self.console = Console(file=self.out, highlight=False)
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._ended: dict[str, float] = {}
        self._last_said: dict[str, float] = {}
        self._threshold = level_rank(log_level)
        self._waiting_until: dict[str, float] = {}  # stream -> when its next request may go

    @property
    def stats(self) -> Mapping[str, StreamStats]:
        return self.snapshot()

    async def __aenter__(self) -> SyncProgress:
        self.started = time.monotonic()
        if self.mode == "rich":
            self._progress = Progress(
                TextColumn("{task.description:<18}"),
                BarColumn(bar_width=12),
                TextColumn("{task.fields[partitions]:>7}"),
                TextColumn("{task.fields[records]:>9,} rec"),
                TextColumn("{task.fields[rate]:>7,.0f}/s"),
                TextColumn("{task.fields[wait]}"),
                TextColumn("{task.fields[status]}"),
                console=self.console,
                refresh_per_second=4,
            )
            for name in self.stats:
                self._tasks[name] = self._progress.add_task(
                    name, total=None, partitions="", records=0, rate=0.0, wait="", status="waiting"
                )
            self._progress.start()
        if self.mode in ("rich", "plain"):
            self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._progress is not None:
            self._update_bars()
            self._progress.stop()
        elif self.mode == "plain" and any(counts.status is not None for counts in self.counts.values()):
            self._plain_line()  # a run that failed before any stream began has no totals to tell

    def log(self, level: str, message: str) -> None:
        """A log line from the engine or the sink (debug and info lines only in plain mode)."""
        now = time.monotonic()
        self._note_wait(message, now)
        if self.mode == "none" or level_rank(level) < self._threshold:
            return
        if self.mode == "rich" and level_rank(level) < LOG_LEVELS["WARN"]:
            return
        if now - self._last_said.get(message, -REPEAT_SECONDS) < REPEAT_SECONDS:
            return  # heartbeats of many waiting requests say the same thing: once is enough
        self._last_said[message] = now
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        self.console.print(f"{stamp} {level.upper():<5} {message}", markup=False, soft_wrap=True)

    def _note_wait(self, message: str, now: float) -> None:
        match = _WAIT_NOTE.match(message)
        if match is None:
            return
        seconds = float(match.group("left") or match.group("wait") or 0)
        for name in match.group("names").split("/"):
            if name in self.stats:
                self._waiting_until[name] = max(self._waiting_until.get(name, 0.0), now + seconds)

    def next_request_in(self, name: str) -> float | None:
        """Seconds until a stream waiting on a rate limiter sends its next request (None: not waiting)."""
        left = self._waiting_until.get(name, 0.0) - time.monotonic()
        return left if left > 0.5 else None

    def status_of(self, name: str) -> str:
        counts = self.counts.get(name)
        if counts is None:
            return "waiting"
        return _status_text(counts, self.next_request_in(name))

    async def _tick(self) -> None:
        every = RICH_REFRESH_SECONDS if self.mode == "rich" else self.plain_every
        while True:
            await asyncio.sleep(every)
            if self.mode == "rich":
                self._update_bars()
            else:
                self._plain_line()

    def _live(self, name: str) -> tuple[int, float]:
        """Records so far and records/s (over the stream's run: the clock stops when it ends)."""
        counts = self.counts.get(name)
        records = max(self.stats[name].records, counts.received if counts else 0)
        if counts is not None and counts.status in (StreamStatus.COMPLETE, StreamStatus.INCOMPLETE):
            ended = self._ended.setdefault(name, time.monotonic())
        else:
            ended = time.monotonic()
        return records, records / max(ended - self.started, 1e-6)

    def _update_bars(self) -> None:
        assert self._progress is not None
        for name, task in self._tasks.items():
            stats = self.stats[name]
            records, rate = self._live(name)
            total = stats.partitions_total or None
            self._progress.update(
                task,
                total=total,
                completed=stats.partitions_done,
                partitions=f"{stats.partitions_done}/{stats.partitions_total}" if total else "",
                records=records,
                rate=rate,
                wait=f"429-wait {stats.rate_limit_wait_seconds:.0f}s"
                if stats.rate_limit_wait_seconds
                else "",
                status=self.status_of(name) if name in self.counts else "",
            )

    def plain_lines(self) -> list[str]:
        """A totals line, then one line per stream still running (each under 100 characters)."""
        total = done = 0
        running = []
        for name, stats in self.stats.items():
            records, rate = self._live(name)
            total += records
            counts = self.counts.get(name)
            if counts is not None and counts.status in (StreamStatus.COMPLETE, StreamStatus.INCOMPLETE):
                done += 1
                continue
            parts = (
                f", {stats.partitions_done}/{stats.partitions_total} parts" if stats.partitions_total else ""
            )
            waited = f", waited {stats.rate_limit_wait_seconds:.0f}s" if stats.rate_limit_wait_seconds else ""
            line = f"  {name}: {self.status_of(name)}; {records:,} rec, {rate:,.0f}/s{parts}{waited}"
            running.append(_fit(line, MAX_LINE - STAMP_WIDTH))
        elapsed = time.monotonic() - self.started
        head = f"{elapsed:.0f}s: {total:,} records, {done}/{len(self.stats)} streams done"
        return [head, *running]

    def _plain_line(self) -> None:
        for line in self.plain_lines():
            self.log("INFO", line)


def summary_rows(stats: Mapping[str, StreamStats], counts: Mapping[str, StreamCounts]) -> list[SummaryRow]:
    rows = []
    for name, stream_stats in stats.items():
        stream_counts = counts.get(name, StreamCounts())
        rows.append(
            SummaryRow(
                stream=name,
                status=_status_text(stream_counts),
                records=max(stream_stats.records, stream_counts.received),
                inserted=stream_counts.inserted,
                changed=changed_of(stream_counts),
                unchanged=unchanged_of(stream_counts),
                requests=stream_stats.requests,
                throttled=stream_stats.throttled,
                retries=stream_stats.retries,
                rate_limit_wait=stream_stats.rate_limit_wait_seconds,
                error=stream_counts.error,
                deleted=stream_counts.deleted,
            )
        )
    return rows


def summary_table(
    rows: list[SummaryRow], duration: float, title: str = "sync summary", requests_sent: int | None = None
) -> Table:
    """The end-of-sync table: per stream rows inserted / changed (/ unchanged), requests, 429s, retries.

    A request for a page two streams share counts in both streams' rows; the total shows the
    requests actually sent when `requests_sent` is given. Until the sink tells changed rows from
    unchanged re-reads, the column is "updated" and there is no unchanged column."""
    table = Table(title=f"{title} ({duration:.1f}s)", title_justify="left")
    written = ["inserted", "changed", "unchanged"] if COUNTS_KNOW_UNCHANGED else ["inserted", "updated"]
    headers = ["stream", "status", "records", *written, "requests", "429s", "retries", "rate wait"]
    for header in headers:
        table.add_column(header, justify="left" if header in ("stream", "status") else "right")
    totals = [0] * (len(written) + 4)
    for row in rows:
        numbers = [row.records, row.inserted, row.changed]
        if COUNTS_KNOW_UNCHANGED:
            numbers.append(row.unchanged or 0)
        numbers += [row.requests, row.throttled, row.retries]
        totals = [a + b for a, b in zip(totals, numbers, strict=True)]
        status = row.status if row.error is None else f"{row.status} (*)"
        table.add_row(row.stream, status, *(f"{n:,}" for n in numbers), f"{row.rate_limit_wait:.0f}s")
    if requests_sent is not None:
        totals[-3] = requests_sent
    table.add_section()
    table.add_row("total", "", *(f"{n:,}" for n in totals), "")
    return table


def print_summary(
    rows: list[SummaryRow],
    duration: float,
    *,
    stream: TextIO | None = None,
    title: str = "",
    requests_sent: int | None = None,
) -> None:
    console = Console(file=stream or sys.stdout, highlight=False, width=160)
    console.print(summary_table(rows, duration, title or "sync summary", requests_sent))
    for row in rows:
        if row.error is not None:
            console.print(f"(*) {row.stream}: {row.error}", markup=False, soft_wrap=True)
