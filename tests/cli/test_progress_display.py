"""The live display: streams held by a rate limiter say so, plain lines stay short, --log-level filters."""

from __future__ import annotations

import io

from klaviyo_source.engine.contract import StreamStats, StreamStatus
from klaviyo_source.streams.table import STREAMS_BY_NAME
from klaviyo_source.sync.progress import SyncProgress
from klaviyo_source.sync.sink import StreamCounts


def progress(level: str = "INFO") -> tuple[SyncProgress, io.StringIO]:
    stats = {name: StreamStats(partitions_total=12, partitions_done=3) for name in STREAMS_BY_NAME}
    counts = {name: StreamCounts(status=StreamStatus.RUNNING) for name in STREAMS_BY_NAME}
    out = io.StringIO()
    return SyncProgress(lambda: stats, counts, "plain", stream=out, log_level=level), out


def test_a_stream_waiting_on_a_limiter_says_when_its_next_request_goes() -> None:
    shown, _ = progress()
    assert shown.status_of("lists") == "running"
    shown.log("INFO", "lists/lists_detailed: Pacing requests to Klaviyo's lists rate limit; 45s left")
    for name in ("lists", "lists_detailed"):
        status = shown.status_of(name)
        assert status.startswith("waiting on rate limit, next request in 4"), status
        assert status.endswith(" s")
    shown.log("WARN", "campaigns_detailed: Rate limited on /api/campaigns/{id}; waiting 7.0s")
    assert shown.status_of("campaigns_detailed").startswith("waiting on rate limit, next request in ")
    assert shown.status_of("events") == "running"


def test_plain_lines_are_one_stream_each_and_under_100_characters() -> None:
    shown, out = progress()
    for name in STREAMS_BY_NAME:
        shown.stats[name].records = 12_345_678
        shown.stats[name].rate_limit_wait_seconds = 1234
    shown.log(
        "INFO", "profiles/global_exclusions: Pacing requests to Klaviyo's profiles rate limit; 59s left"
    )
    lines = shown.plain_lines()
    assert len(lines) == 1 + len(STREAMS_BY_NAME)
    assert all(len(line) < 100 for line in lines), max(lines, key=len)
    shown._plain_line()
    logged = [line for line in out.getvalue().splitlines() if " rec, " in line or "streams done" in line]
    assert len(logged) == len(lines) and all(len(line) < 100 for line in logged)
    assert "profiles: waiting on rate limit, next request in 5" in out.getvalue()
    assert "events: running; 12,345,678 rec" in out.getvalue()


def test_log_level_filters_what_is_shown() -> None:
    shown, out = progress("WARN")
    shown.log("INFO", "an info line")
    shown.log("DEBUG", "a debug line")
    shown.log("WARN", "a warning")
    shown.log("ERROR", "an error")
    text = out.getvalue()
    assert "info line" not in text and "debug line" not in text
    assert "a warning" in text and "an error" in text
