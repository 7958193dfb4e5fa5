"""Progress output: plain log lines off a terminal, and the summary table."""

from __future__ import annotations

import asyncio
import io

from klaviyo_source.engine.contract import StreamStats, StreamStatus
from klaviyo_source.sync.progress import SyncProgress, print_summary, summary_rows
from klaviyo_source.sync.sink import StreamCounts


def test_plain_lines_every_few_seconds_and_summary() -> None:
    stats = {
        "events": StreamStats(records=1200, requests=3, partitions_done=1, partitions_total=4),
        "lists": StreamStats(records=10, requests=2, throttled=1, retries=1, rate_limit_wait_seconds=2.0),
    }
    counts = {
        "events": StreamCounts(received=1200, inserted=1000, changed=200, status=StreamStatus.RUNNING),
        "lists": StreamCounts(received=10, inserted=10, status=StreamStatus.COMPLETE),
    }
    out = io.StringIO()

    async def watch() -> None:
        async with SyncProgress(
            lambda: stats, counts, "auto", stream=out, plain_every=0.05
        ):  # StringIO: not a tty
            await asyncio.sleep(0.2)

    asyncio.run(watch())
    lines = [line for line in out.getvalue().splitlines() if line]
    assert len(lines) >= 3
    assert all(len(line) < 100 for line in lines)
    assert any("1,210 records, 1/2 streams done" in line for line in lines)
    assert "events: running; 1,200 rec" in lines[-1] and "1/4 parts" in lines[-1]

    table = io.StringIO()
    print_summary(summary_rows(stats, counts), 12.5, stream=table, title="sync x")
    text = table.getvalue()
    assert "sync x (12.5s)" in text
    events_row = next(line for line in text.splitlines() if "events" in line)
    assert "1,000" in events_row and "200" in events_row
    total_row = next(line for line in text.splitlines() if "total" in line)
    assert "1,010" in total_row  # inserted across streams


def test_rich_bars_show_partitions_records_and_status() -> None:
    stats = {
        "profiles": StreamStats(
            records=2500, partitions_done=3, partitions_total=4, rate_limit_wait_seconds=7
        )
    }
    counts = {"profiles": StreamCounts(received=2500, status=StreamStatus.RUNNING, reason="RATE_LIMITED")}
    out = io.StringIO()

    async def watch() -> None:
        async with SyncProgress(lambda: stats, counts, "rich", stream=out):
            await asyncio.sleep(0.3)

    asyncio.run(watch())
    final = out.getvalue().splitlines()[-1]
    assert "profiles" in final and "3/4" in final and "2,500 rec" in final
    assert "429-wait 7s" in final and "rate limited" in final
