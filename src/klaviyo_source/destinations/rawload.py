"""What DuckDB and Postgres share on the load path: a batch's spool file, read a chunk of raw
columns at a time (destinations/rawbatch.py), loaded in one transaction with its state.

Each dialect implements `_load_chunk` (type the raw text in SQL, widen drifting columns, merge by
key). Here: the transaction, the chunks, and the table's columns as the data reveals them (a new
key gets a JSON column; a key a table already has a column for keeps that column's type).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from abc import abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from klaviyo_source.destinations.base import (
    Batch,
    DestinationSpec,
    SqlDestination,
    TableInfo,
    WriteResult,
    quote,
)
from klaviyo_source.destinations.rawbatch import RawChunk, Shape, blocks, decode_any
from klaviyo_source.destinations.spool import SpoolFile, write_spool
from klaviyo_source.destinations.typemap import EXTRACTED_AT, SQL_TYPES, SYNC_ID, Column, Kind, column_name

RAW = "_klaviyo_raw"  # the chunk's raw text, one VARCHAR column `_v<i>` per table column
WIDER: dict[Kind, Kind] = {"bigint": "json", "double": "json", "boolean": "json", "timestamp": "text"}


def _malloc_trim() -> Callable[[], object] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)  # glibc only
    return None if trim is None else functools.partial(trim, 0)


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Hand the heap a batch used back to the system (glibc keeps freed memory of the writer
    thread's arena otherwise: the sync's resident memory crept up batch after batch)."""
    if _TRIM is not None:
        _TRIM()


class RawLoadDestination(SqlDestination):
    """A destination that loads spooled batches as chunks of raw JSON columns."""

    def __init__(self, spec: DestinationSpec, sync_id: str) -> None:
        super().__init__(spec, sync_id)
        self._shapes: dict[str, Shape] = {}  # table -> a decoder for records with its known keys

    def write(self, batch: Batch) -> WriteResult:
        """Load the batch's spool file (or its records, spooled first) and its state, atomically."""
        info = self.tables[batch.stream]
        spool = batch.spool
        if spool is None:
            spool = write_spool(self.spool_directory(), batch.records, batch.extracted_at)
        try:
            self._before_batch(info, spool.rows)
            whole = self._write_whole(info, spool, batch.state) if spool.rows else None
            if whole is not None:
                return whole
            with self.transaction():
                result = WriteResult()
                if spool.rows:
                    for block in blocks(spool.path):
                        chunk = self._decode(info, block)
                        self._learn_columns(info, chunk)
                        result.add(self._load_chunk(info, chunk))
                if batch.state is not None:
                    self._save_state(batch.stream, batch.state)
        finally:
            spool.path.unlink(missing_ok=True)
            release_memory()
        return result

    def _before_batch(self, info: TableInfo, rows: int) -> None:
        """Hook: run before the batch's transaction opens (it will add up to `rows` rows)."""
        return None

    def _write_whole(
        self, info: TableInfo, spool: SpoolFile, state: Mapping[str, Any] | None
    ) -> WriteResult | None:
        """Hook: load the whole spool file (and its state) at once, or None to take the chunk path."""
        return None

    def _known_keys(self, info: TableInfo, path: Path) -> tuple[list[str], list[str]] | None:
        """The top-level and attribute keys the spool's records have, every one of them with a
        column (new keys get theirs now, outside the batch's transaction), checked block by block
        against the keys seen so far; None when some record's `attributes` is not an object."""
        for block in blocks(path):
            shape = self._shapes.get(info.table)
            if shape is not None and shape.fits(block):
                continue
            chunk = decode_any(block)
            if chunk.nonobject_attributes:
                return None
            self._learn_columns(info, chunk)
            self._learn_shape(info, chunk)
        shape = self._shapes[info.table]
        return shape.top, shape.attribute_keys

    def _learn_shape(self, info: TableInfo, chunk: RawChunk) -> None:
        """Remember the chunk's keys; the table's decoder knows every key seen so far."""
        held = self._shapes.get(info.table)
        top, attributes = (held.top, held.attribute_keys) if held is not None else ((), ())
        self._shapes[info.table] = Shape(chunk.top.union(top), chunk.attributes.union(attributes))

    @abstractmethod
    def _load_chunk(self, info: TableInfo, chunk: RawChunk) -> WriteResult:
        """Put one chunk's rows in the table (its columns exist)."""

    @abstractmethod
    def _misfit(self, kind: Kind, value: str) -> str:
        """SQL: a non-null raw value (`value`, its JSON text) a column of `kind` cannot hold exactly."""

    @abstractmethod
    def _retype(self, table: str, column: str, wider: Kind) -> str:
        """SQL: ALTER the quoted `column` of the qualified `table` to `wider`, keeping its values."""

    def _widen(self, info: TableInfo, columns: list[Column]) -> bool:
        """A value that does not fit its column's type widens the column (never NULL, never
        truncated): bigint/double/boolean -> JSON, timestamp -> text; logged. True if any did."""
        checks = [(i, c) for i, c in enumerate(columns) if c.kind in WIDER]
        if not checks:
            return False
        counts = self.query(
            "SELECT "
            + ", ".join(f"count(*) FILTER (WHERE {self._misfit(c.kind, f'_v{i}')})" for i, c in checks)
            + f" FROM {RAW}"
        )[0]
        widened = False
        for (index, column), count in zip(checks, counts, strict=True):
            if not count:
                continue
            wider = WIDER[column.kind]
            (example,) = self.query(
                f"SELECT _v{index} FROM {RAW} WHERE {self._misfit(column.kind, f'_v{index}')} LIMIT 1"
            )[0]
            self.execute(self._retype(self.qualified(info.table), quote(column.name), wider))
            info.columns[column.name] = Column(column.name, wider, column.path)
            self.notice(
                f"{info.row.name}.{column.name}: {count} value(s) do not fit {column.kind} "
                f"(e.g. {str(example)[:60]}); the column is now {SQL_TYPES[self.dialect][wider]}"
            )
            widened = True
        return widened

    def _decode(self, info: TableInfo, block: bytes) -> RawChunk:
        """Spool lines as raw columns: with the table's known keys (fast), or learning new ones."""
        shape = self._shapes.get(info.table)
        chunk = shape.decode(block) if shape is not None else None
        if chunk is None:
            chunk = decode_any(block)
            if not chunk.nonobject_attributes:
                self._learn_columns(info, chunk)
                self._learn_shape(info, chunk)
        return chunk

    def _learn_columns(self, info: TableInfo, chunk: RawChunk) -> None:
        """Give every key in the data a column (JSON when new; an earlier sync's column keeps its
        type and learns its path)."""
        if chunk.nonobject_attributes:
            self.notice(
                f"{info.row.name}: {chunk.nonobject_attributes} record(s) have an `attributes` that is "
                "not an object; it is not stored"
            )
        found = [Column(key, "json", (key,)) for key in sorted(chunk.top - {"attributes"})]
        for key in sorted(chunk.attributes):
            name = column_name(("attributes", key), info.row.cursor_field)
            if name is not None:
                found.append(Column(name, "json", ("attributes", key)))
        new: list[Column] = []
        for column in found:
            held = info.columns.get(column.name)
            if held is not None and held.path:
                continue
            if held is not None:
                info.columns[column.name] = Column(column.name, held.kind, column.path)
            else:
                info.columns[column.name] = column
                new.append(column)
        if new:
            self._add_columns(info, new)

    def _columns(self, info: TableInfo) -> list[Column]:
        return [c for c in info.columns.values() if c.path]

    def _names(self, info: TableInfo) -> str:
        names = [quote(c.name) for c in self._columns(info)] + [quote(EXTRACTED_AT), quote(SYNC_ID)]
        return ", ".join(names)
