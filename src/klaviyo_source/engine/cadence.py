"""Slow refresh: streams without a cursor whose read costs one slow-tier request per parent
(`Stream.slow_refresh`) are re-read by incremental reads at most every `slow_refresh_hours`.

The time of the stream's last complete read (the read's start, so nothing changed after it is
taken as read) travels in its state under `_refreshed_at`; only the state emitted with the
stream's COMPLETE carries a new one, so an interrupted read leaves the old time and the next
read is still due. A state without it (`{}`, written before this existed) is due. A full-refresh
read always reads. A stream that is not due sends no request: it gets its saved state back
unchanged (whatever else it holds) and ends COMPLETE, with a log line naming when it is due.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from klaviyo_source.config import Config
from klaviyo_source.engine.contract import StreamOutcome, StreamStatus
from klaviyo_source.errors import ConfigError
from klaviyo_source.streams.table import Stream
from klaviyo_source.times import format_time, parse_time

REFRESHED_AT = "_refreshed_at"


@dataclass(frozen=True)
class Resting:
    """A stream this read does not refresh: its saved state goes out again as it came."""

    outcome: StreamOutcome
    state: dict[str, Any]
    last: datetime
    due: datetime

    def note(self, hours: int) -> str:
        return (
            f"{self.outcome.name}: not refreshed this sync (last complete read "
            f"{format_time(self.last)}, slow_refresh_hours={hours}); next due at "
            f"{format_time(self.due)}. No request; its rows stay as last read (a full refresh reads it now)."
        )


def last_refresh(row: Stream, raw: Any) -> datetime | None:
    """When the stream was last read completely, from its saved state (None: never, or unknown)."""
    value = raw.get(REFRESHED_AT) if isinstance(raw, Mapping) else None
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return parse_time(value)
    except ValueError:
        raise ConfigError(
            f"Invalid state for stream '{row.name}': '{REFRESHED_AT}' {value!r} is not a datetime. "
            f"Remove the key (the stream is then read at once), or reset the stream."
        ) from None


def resting(row: Stream, config: Config, raw: Any, *, incremental: bool, now: datetime) -> Resting | None:
    """The stream rests this read (a Resting), or None when it reads: not a slow-refresh row, a
    full refresh, no complete read in the state, or the interval has passed."""
    if not row.slow_refresh or not incremental or config.slow_refresh_hours <= 0:
        return None
    last = last_refresh(row, raw)
    if last is None:
        return None
    due = last + timedelta(hours=config.slow_refresh_hours)
    if now >= due or last > now:  # a refresh time in the future is not to be trusted: read
        return None
    assert isinstance(raw, Mapping)
    return Resting(StreamOutcome(row.name, StreamStatus.STARTED), dict(raw), last, due)


def stamped(row: Stream, state: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The state a complete read of the stream emits: with the read's start when the row rests
    between refreshes (else unchanged)."""
    return {**state, REFRESHED_AT: format_time(at)} if row.slow_refresh else state
