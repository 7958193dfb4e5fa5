"""The contract between the read engine and whatever consumes its output.

The engine calls a Sink from one consumer task, in order, so a consumer never needs locks:
records of a page arrive before any state that covers them, and a stream's final status comes
after its last state. Implementations: `airbyte/sink.py` (JSON lines on stdout) and `sync/sink.py`
(rows and state committed to a destination in one transaction).

A sink that also implements `RawRecordSink` may receive the records of passthrough and
raw-shaped streams (`Stream.raw_shape`) as `orjson.Fragment`s: pre-serialized JSON objects that
serialize byte for byte like the dict records (the engine's fast path: such records are never
parsed into Python objects). A raw sink that also implements `SerializedSink` receives the same
records as their JSON texts (bytes), which it can join into its output without a Fragment per
record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import orjson

from klaviyo_source.streams.records import Record as Record  # the one Record type, re-exported


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
    """Live counters of one stream. `requests` counts the requests that served the stream: a page
    shared by two streams (events and events_detailed) counts for both; the run's handle tells
    the requests actually sent."""

    records: int = 0
    requests: int = 0
    throttled: int = 0  # 429s received
    retries: int = 0
    deleted: int = 0  # deletion records (keys gone from Klaviyo since they were emitted)
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


@runtime_checkable
class RawRecordSink(Sink, Protocol):
    async def raw_records(self, stream: str, records: Sequence[orjson.Fragment]) -> None:
        """A batch of pre-serialized records of a passthrough stream (in place of `records`)."""


@runtime_checkable
class SerializedSink(RawRecordSink, Protocol):
    async def serialized_records(self, stream: str, texts: Sequence[bytes], *, breaks: bool = True) -> None:
        """The records `raw_records` would get, each as its JSON text (in place of `raw_records`);
        `breaks`: a text may hold a raw line break between tokens (False: none does)."""


@runtime_checkable
class DeletionSink(Sink, Protocol):
    async def deletions(self, stream: str, records: Sequence[Record]) -> None:
        """Keys gone from Klaviyo: each record holds the primary key, the cursor set to the deletion
        time and `_ab_cdc_deleted_at`. A sink without this method gets them through `records`."""
