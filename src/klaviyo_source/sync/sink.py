"""The Sink the engine writes to during `sync`: spools records per stream, commits them with the
state that covers them, and keeps per-stream counts for progress and the summary.

Records go straight to a per-stream spool file (JSON lines, destinations/spool.py) as they
arrive, so memory does not grow with a batch. A batch is cut when its spool reaches the
destination's `flush_bytes` (rows only, plus the latest state if one is held), or at a checkpoint
once the spool holds a quarter of that or the state has waited `max_delay` seconds: many small
checkpoints make one transaction, yet no state waits long. A state is only ever committed with
the rows it covers; when a stream stops early (failure, Ctrl-C) the rows its last state covers
are committed with it and the rest are dropped (the next run reads them again).

Writes run in order on one background task (each in a worker thread), so reading goes on while
the previous batch commits; a one-slot queue pushes back on the engine when the database is
slower than the API. The sink implements `RawRecordSink` and `SerializedSink`: pre-serialized records (the
engine's fast path, Fragments or JSON texts) are spooled as they are; nothing here looks inside a
record.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson

from klaviyo_source.destinations.base import Batch, DeleteMode, SqlDestination, WriteMode, WriteResult
from klaviyo_source.destinations.spool import Spool, SpoolFile
from klaviyo_source.engine.contract import Record, StreamStatus

LogCallback = Callable[[str, str], None]  # (level, message)


@dataclass
class StreamCounts:
    """What the destination saw of one stream (the engine's own counters live in StreamStats).

    inserted: keys (dedup) or rows (append, overwrite) the table did not have; changed: existing
    keys replaced by a version with different content; unchanged: existing keys re-read identical
    (or older than the stored version)."""

    received: int = 0
    inserted: int = 0
    changed: int = 0
    unchanged: int = 0
    rejected_values: int = 0
    deleted: int = 0  # rows soft-deleted (or removed) because the record is gone from Klaviyo
    checkpoints: int = 0
    status: StreamStatus | None = None
    reason: str | None = None
    error: str | None = None

    @property
    def updated(self) -> int:
        """Rows whose content changed (the summary's former "updated" column)."""
        return self.changed


@dataclass
class _Job:
    stream: str
    run: Callable[[], WriteResult | None]
    checkpoint: bool = False


@dataclass
class _Pending:
    """A stream's spool, and the newest state not yet committed with the rows it covers."""

    spool: Spool
    state: dict[str, Any] | None = None
    covers: tuple[int, int] = (0, 0)  # the spool's (rows, bytes) when that state arrived
    since: float = 0.0  # monotonic time the state started waiting
    held: dict[str, Any] | None = field(default=None)  # overwrite mode: saved at the swap


class DestinationSink:
    """Use as `async with DestinationSink(dest, modes) as sink: await engine.read(..., sink)`."""

    def __init__(
        self,
        destination: SqlDestination,
        modes: Mapping[str, WriteMode],
        *,
        flush_bytes: int | None = None,
        max_delay: float = 2.0,
        queue_size: int = 1,
        on_log: LogCallback | None = None,
        deletes: DeleteMode = DeleteMode.SOFT,
    ) -> None:
        self.destination = destination
        self.deletes = deletes
        self.modes = dict(modes)
        self.flush_bytes = flush_bytes or destination.flush_bytes
        self.max_delay = max_delay
        self.counts: dict[str, StreamCounts] = {name: StreamCounts() for name in modes}
        self._on_log = on_log
        self._pending: dict[str, _Pending] = {}
        self._finished: set[str] = set()
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=queue_size)
        self._writer: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    async def __aenter__(self) -> DestinationSink:
        self._writer = asyncio.create_task(self._write_loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _of(self, stream: str) -> _Pending:
        pending = self._pending.get(stream)
        if pending is None:
            pending = self._pending[stream] = _Pending(Spool(self.destination.spool_directory()))
        return pending

    # --- Sink protocol --------------------------------------------------------------------------
    async def records(self, stream: str, records: Sequence[Record]) -> None:
        self._spool_of(stream).add(records, datetime.now(UTC))
        await self._spooled(stream, len(records))

    async def raw_records(self, stream: str, records: Sequence[orjson.Fragment]) -> None:
        """RawRecordSink: pre-serialized records go to the spool as they are."""
        self._spool_of(stream).add(records, datetime.now(UTC))
        await self._spooled(stream, len(records))

    async def serialized_records(self, stream: str, texts: Sequence[bytes], *, breaks: bool = True) -> None:
        """SerializedSink: the records' JSON texts go to the spool as they are."""
        self._spool_of(stream).add_serialized(texts, datetime.now(UTC), breaks=breaks)
        await self._spooled(stream, len(texts))

    def _spool_of(self, stream: str) -> Spool:
        """The stream's open spool (after a failed write: that error, and nothing is spooled)."""
        if self._failure is not None:
            raise self._failure
        return self._of(stream).spool

    async def _spooled(self, stream: str, count: int) -> None:
        """`count` records were spooled: cut a batch if the spool is full or its state waited."""
        self.counts[stream].received += count
        pending = self._of(stream)
        if pending.spool.bytes >= self.flush_bytes or self._overdue(pending):
            await self._flush(stream)

    async def deletions(self, stream: str, records: Sequence[Record]) -> None:
        """DeletionSink: after the rows spooled so far (and their state), mark or remove the keys."""
        await self._flush(stream)
        delete = partial(self.destination.delete_rows, stream, list(records), self.deletes)
        await self._submit(_Job(stream, delete))

    async def state(self, stream: str, state: dict[str, Any]) -> None:
        pending = self._of(stream)
        if self.modes[stream] is WriteMode.OVERWRITE:
            pending.held = state  # rows land in staging; the state waits for the swap
            return
        if pending.state is None:
            pending.since = time.monotonic()
        pending.state, pending.covers = state, pending.spool.mark()
        if pending.spool.bytes >= self.flush_bytes // 4 or self._overdue(pending):
            await self._flush(stream)

    async def status(self, stream: str, status: StreamStatus, reason: str | None = None) -> None:
        counts = self.counts.setdefault(stream, StreamCounts())
        counts.status, counts.reason = status, reason
        if status is StreamStatus.COMPLETE and stream not in self._finished:
            self._finished.add(stream)
            await self._flush(stream)
            held = self._of(stream).held
            await self._submit(_Job(stream, partial(self.destination.finish, stream, held)))
        elif status is StreamStatus.INCOMPLETE and stream not in self._finished:
            self._finished.add(stream)
            await self._stop(stream)

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
        """Commit what the streams' last states cover, wait for every queued write, drop staging
        tables of streams that never completed."""
        for stream in self.modes:
            if stream not in self._finished:
                self._finished.add(stream)
                with contextlib.suppress(BaseException):
                    await self._stop(stream)
        if self._writer is not None:
            await self._queue.put(None)
            await self._writer
            self._writer = None
        for pending in self._pending.values():
            pending.spool.discard()
        if self._failure is not None:
            raise self._failure

    def _overdue(self, pending: _Pending) -> bool:
        return pending.state is not None and time.monotonic() - pending.since >= self.max_delay

    async def _flush(self, stream: str) -> None:
        """Everything spooled, with the newest state (all of it arrived before that state's rows'
        successors, so the state covers a prefix of the batch)."""
        pending = self._of(stream)
        spool, state = pending.spool.take(), pending.state
        pending.state = None
        await self._submit_batch(stream, spool, state)

    async def _stop(self, stream: str) -> None:
        """The stream will not complete: commit the rows its last state covers, drop the rest."""
        pending = self._of(stream)
        spool = pending.spool.take(upto=pending.covers if pending.state is not None else (0, 0))
        state, pending.state = pending.state, None
        await self._submit_batch(stream, spool, state)
        await self._submit(_Job(stream, partial(self._abandon, stream)))

    async def _submit_batch(self, stream: str, spool: SpoolFile | None, state: dict[str, Any] | None) -> None:
        if spool is None and state is None:
            return
        batch = Batch(stream, [], [], state, spool)
        await self._submit(_Job(stream, partial(self.destination.write, batch), state is not None))

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
                if self._queue.empty():  # nothing waiting: the destination may tidy up meanwhile
                    await asyncio.to_thread(self.destination.tidy)
            except BaseException as error:  # surfaced to the engine on its next call, and by close()
                self._failure = error
                continue
            if self._on_log is not None:
                for message in self.destination.take_notices():
                    self._on_log("WARN", message)
            counts = self.counts[job.stream]
            if result is not None:
                counts.inserted += result.inserted
                counts.changed += result.changed
                counts.unchanged += result.unchanged
                counts.rejected_values += result.rejected_values
                counts.deleted += result.deleted
            if job.checkpoint:
                counts.checkpoints += 1

    def _abandon(self, stream: str) -> WriteResult | None:
        self.destination.abandon(stream)
        return None
