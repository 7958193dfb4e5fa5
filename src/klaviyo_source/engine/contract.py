"""The contract between the read engine and whatever consumes its output.

The engine calls a Sink from one consumer task, in order, so a consumer never needs locks:
records of a page arrive before any state that covers them, and a stream's final status comes
after its last state. Implementations: `airbyte.output.AirbyteSink` (JSON lines on stdout) and
the destination sinks in `destinations/` (rows and state committed in one transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

# A record is a dict; a sink that sets the class attribute `accepts_raw_records = True` may also
# receive `orjson.Fragment`s (pre-serialized records, the engine's events fast path).
Record = dict[str, Any]


class StreamStatus(StrEnum):
    STARTED = "STARTED"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    INCOMPLETE = "INCOMPLETE"


@dataclass(frozen=True)
class StreamSelection:
    """One stream the caller wants read."""

    name: str
    incremental: bool = True


@dataclass
class StreamStats:
    records: int = 0
    requests: int = 0
    throttled: int = 0  # 429s received
    retries: int = 0
    partitions_done: int = 0
    partitions_total: int = 0
    rate_limit_wait_seconds: float = 0.0  # wall-clock time (overlapping waits count once)


@dataclass
class StreamOutcome:
    name: str
    status: StreamStatus = StreamStatus.STARTED
    error: Exception | None = None
    stats: StreamStats = field(default_factory=StreamStats)


class Sink(Protocol):
    async def records(self, stream: str, records: Sequence[Record]) -> None:
        """A batch of records of one stream (usually one page)."""

    async def state(self, stream: str, state: dict[str, Any]) -> None:
        """A checkpoint: every record it covers has already been passed to `records`."""

    async def status(self, stream: str, status: StreamStatus, reason: str | None = None) -> None:
        """Stream lifecycle: STARTED, RUNNING (reason e.g. RATE_LIMITED), COMPLETE, INCOMPLETE."""

    async def log(self, level: str, message: str) -> None:
        """A human-readable log line (also the heartbeat during long waits)."""

    async def error(self, stream: str | None, error: Exception) -> None:
        """A stream (or the run, when stream is None) failed with this error."""
