"""The Sink the engine writes to during `sync`: buffers records per stream, writes them with the
state that covers them, and keeps per-stream counts for progress and the summary.

Writes run in order on one background task (each in a worker thread), so reading goes on while
the previous batch commits; a one-slot queue bounds memory (records as parsed JSON take ~5 KB
each: at most three batches of `flush_records` are held) and pushes back on the engine when the
database is slower than the API.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from klaviyo_source.destinations.base import Batch, SqlDestination, WriteMode, WriteResult
from klaviyo_source.engine.contract import Record, StreamStatus

LogCallback = Callable[[str, str], None]  # (level, message)


@dataclass
class StreamCounts:
    """What the destination saw of one stream (the engine's own counters live in StreamStats)."""

    received: int = 0
    inserted: int = 0
    updated: int = 0
    rejected_values: int = 0
    checkpoints: int = 0
    status: StreamStatus | None = None
    reason: str | None = None
    error: str | None = None


@dataclass
class _Job:
    stream: str
    run: Callable[[], WriteResult | None]
    checkpoint: bool = False


@dataclass
class _Buffer:
    records: list[Record] = field(default_factory=list)
    extracted_at: list[datetime] = field(default_factory=list)


class DestinationSink:
    """Use as `async with DestinationSink(dest, modes) as sink: await engine.read(..., sink)`."""

    def __init__(
        self,
        destination: SqlDestination,
        modes: Mapping[str, WriteMode],
        *,
        flush_records: int = 10_000,
        queue_size: int = 1,
        on_log: LogCallback | None = None,
    ) -> None:
        self.destination = destination
        self.modes = dict(modes)
        self.flush_records = flush_records
        self.counts: dict[str, StreamCounts] = {name: StreamCounts() for name in modes}
        self._on_log = on_log
        self._buffers: dict[str, _Buffer] = {name: _Buffer() for name in modes}
        self._held_states: dict[str, dict[str, Any]] = {}  # overwrite mode: saved at the swap
        self._finished: set[str] = set()
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=queue_size)
        self._writer: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    async def __aenter__(self) -> DestinationSink:
        self._writer = asyncio.create_task(self._write_loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- Sink protocol --------------------------------------------------------------------------
    async def records(self, stream: str, records: Sequence[Record]) -> None:
        buffer = self._buffers[stream]
        now = datetime.now(UTC)
        buffer.records.extend(records)
        buffer.extracted_at.extend([now] * len(records))
        self.counts[stream].received += len(records)
        if len(buffer.records) >= self.flush_records:  # bounded memory; rows only, state follows
            await self._submit_rows(stream, None)

    async def state(self, stream: str, state: dict[str, Any]) -> None:
        if self.modes[stream] is WriteMode.OVERWRITE:
            self._held_states[stream] = state  # rows land in staging; the state waits for the swap
            await self._submit_rows(stream, None)
        else:
            await self._submit_rows(stream, state, checkpoint=True)

    async def status(self, stream: str, status: StreamStatus, reason: str | None = None) -> None:
        counts = self.counts.setdefault(stream, StreamCounts())
        counts.status, counts.reason = status, reason
        if status is StreamStatus.COMPLETE and stream not in self._finished:
            self._finished.add(stream)
            await self._submit_rows(stream, None)
            held = self._held_states.pop(stream, None)
            await self._submit(_Job(stream, partial(self.destination.finish, stream, held)))
        elif status is StreamStatus.INCOMPLETE and stream not in self._finished:
            self._finished.add(stream)
            self._buffers[stream] = _Buffer()  # not covered by a state: the next run reads them again
            await self._submit(_Job(stream, partial(self._abandon, stream)))

    async def log(self, level: str, message: str) -> None:
        if self._on_log is not None:
            self._on_log(level, message)

    async def error(self, stream: str | None, error: Exception) -> None:
        message = getattr(error, "message", None) or str(error) or type(error).__name__
        if stream is not None:
            self.counts.setdefault(stream, StreamCounts()).error = message
        if self._on_log is not None:
            self._on_log("ERROR", f"{stream or 'sync'}: {message}")

    # --- writing --------------------------------------------------------------------------------
    async def close(self) -> None:
        """Wait for every queued write; drop staging tables of streams that never completed."""
        for stream in self.modes:
            if stream not in self._finished:
                self._finished.add(stream)
                self._buffers[stream] = _Buffer()
                with contextlib.suppress(BaseException):
                    await self._submit(_Job(stream, partial(self._abandon, stream)))
        if self._writer is not None:
            await self._queue.put(None)
            await self._writer
            self._writer = None
        if self._failure is not None:
            raise self._failure

    async def _submit_rows(
        self, stream: str, state: dict[str, Any] | None, *, checkpoint: bool = False
    ) -> None:
        buffer = self._buffers[stream]
        if not buffer.records and state is None:
            return
        self._buffers[stream] = _Buffer()
        batch = Batch(stream, buffer.records, buffer.extracted_at, state)
        await self._submit(_Job(stream, partial(self.destination.write, batch), checkpoint))

    async def _submit(self, job: _Job) -> None:
        if self._failure is not None:
            raise self._failure
        await self._queue.put(job)

    async def _write_loop(self) -> None:
        while (job := await self._queue.get()) is not None:
            if self._failure is not None:
                continue  # a write failed: nothing after it may be committed
            try:
                result = await asyncio.to_thread(job.run)
            except BaseException as error:  # surfaced to the engine on its next call, and by close()
                self._failure = error
                continue
            counts = self.counts[job.stream]
            if result is not None:
                counts.inserted += result.inserted
                counts.updated += result.updated
                counts.rejected_values += result.rejected_values
            if job.checkpoint:
                counts.checkpoints += 1

    def _abandon(self, stream: str) -> WriteResult | None:
        self.destination.abandon(stream)
        return None
