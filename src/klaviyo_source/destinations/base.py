"""What DuckDB and Postgres share: write modes, batches, the table bookkeeping and the SQL.

A `SqlDestination` owns one connection. Every method is blocking and is called from one thread at
a time (the sink runs them with `asyncio.to_thread`). Rows and the state that covers them are
written in one transaction, so a crash leaves either both or neither.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from klaviyo_source.destinations.spool import (
    OWNER_FILE,
    SPOOL_PREFIX,
    SpoolFile,
    read_spool,
    remove_stale_spools,
)
from klaviyo_source.destinations.typemap import (
    EXTRACTED_AT,
    KIND_OF_SQL_TYPE,
    SQL_TYPES,
    SYNC_ID,
    Column,
    Kind,
    column_values,
    columns_from_schema,
    discover_columns,
)
from klaviyo_source.destinations.url import DEFAULT_SCHEMA as DEFAULT_SCHEMA
from klaviyo_source.destinations.url import DestinationSpec as DestinationSpec
from klaviyo_source.destinations.url import parse_destination as parse_destination
from klaviyo_source.engine.contract import Record
from klaviyo_source.errors import ConfigError
from klaviyo_source.errors import DestinationBusyError as DestinationBusyError  # its old home
from klaviyo_source.streams.schema import load_schema
from klaviyo_source.streams.table import Stream
from klaviyo_source.times import maybe_time

STATE_TABLE = "_klaviyo_state"
STREAMS_TABLE = "_klaviyo_streams"  # per stream table: the write mode its rows were written with
STAGE_PREFIX = "_klaviyo_stage_"
DELETED_COLUMN = "_deleted_at"  # set when the record disappeared from Klaviyo (soft delete)
DELETION_MARK = "_ab_cdc_deleted_at"  # what a deletion record carries (engine/known.py)
_OLDEST = datetime.min.replace(tzinfo=UTC)


class DeleteMode(StrEnum):
    SOFT = "soft"  # the row stays, `_deleted_at` set (cleared if the record comes back)
    HARD = "hard"  # the row is removed


class WriteMode(StrEnum):
    APPEND = "append"  # every version of every record
    DEDUP = "dedup"  # one row per primary key: newest cursor wins, ties -> latest extracted
    OVERWRITE = "overwrite"  # full refresh into a staging table, swapped in at the end


@dataclass
class Batch:
    """Records of one stream, and the state that covers them (None: rows only). The records are
    either in `records` (with their `extracted_at`) or in a spool file (the sink's way)."""

    stream: str
    records: list[Record]
    extracted_at: list[datetime]
    state: dict[str, Any] | None = None
    spool: SpoolFile | None = None

    def loaded(self) -> Batch:
        """The same batch with its records in memory (reads, then removes, the spool file if any)."""
        if self.spool is None:
            return self
        records, extracted = read_spool(self.spool)
        self.spool.path.unlink(missing_ok=True)
        return Batch(self.stream, records, extracted, self.state)


@dataclass
class WriteResult:
    """What a write did, per record kept from the batch (dedup keeps one per key)."""

    inserted: int = 0  # a key (dedup) or row (append, overwrite) the table did not have
    changed: int = 0  # an existing key, replaced by a version with different content
    unchanged: int = 0  # an existing key re-read identical, or older than the stored version
    rejected_values: int = 0  # non-null values that did not fit their column's type (stored as NULL)
    deleted: int = 0  # rows soft-deleted or removed (deletion records)

    @property
    def updated(self) -> int:
        """Rows whose content changed (the name the summary used to print)."""
        return self.changed

    def add(self, other: WriteResult) -> None:
        self.inserted += other.inserted
        self.changed += other.changed
        self.unchanged += other.unchanged
        self.rejected_values += other.rejected_values
        self.deleted += other.deleted


class WriteModeConflictError(ConfigError):
    """The table holds rows written with another write mode (append vs dedup)."""


@dataclass
class TableInfo:
    """One stream's table as the destination knows it during a sync."""

    row: Stream
    mode: WriteMode
    table: str  # where rows go now: the stream's table, or its staging table in overwrite mode
    columns: dict[str, Column] = field(default_factory=dict)  # name -> column (path () = not seen yet)


def quote(name: str) -> str:
    """A safely quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def not_newer(row: Stream, stored: str = "t", batch: str = "b") -> str:
    """SQL: the stored version may be replaced by the batch's (its cursor is not newer; a stream
    without a cursor: always, the last read wins)."""
    if row.cursor_field is None:
        return "TRUE"
    c = quote(row.cursor_field)
    return f"({stored}.{c} IS NULL OR {batch}.{c} IS NULL OR {batch}.{c} >= {stored}.{c})"


def newest_versions(batch: Batch, row: Stream) -> tuple[list[Record], list[datetime]]:
    """One record per primary key: the newest cursor, ties broken by arrival (later wins)."""
    best: dict[tuple[Any, ...], tuple[datetime, int]] = {}
    for index, record in enumerate(batch.records):
        key = tuple(record.get(k) for k in row.primary_key)
        cursor = (maybe_time(record.get(row.cursor_field)) if row.cursor_field else None) or _OLDEST
        held = best.get(key)
        if held is None or cursor >= held[0]:
            best[key] = (cursor, index)
    keep = sorted(index for _, index in best.values())
    return [batch.records[i] for i in keep], [batch.extracted_at[i] for i in keep]


class SqlDestination(ABC):
    """Tables, state and write modes over a dialect's primitives (execute, query, load)."""

    dialect: str = ""
    placeholder: str = "?"
    # The sink cuts a batch when its JSON reaches this size. The Python load path parses a batch
    # into dicts (~4x its JSON size), so it stays small; DuckDB's SQL path streams the file.
    flush_bytes: int = 8 << 20

    def __init__(self, spec: DestinationSpec, sync_id: str) -> None:
        self.spec = spec
        self.schema = spec.schema
        self.sync_id = sync_id
        self.tables: dict[str, TableInfo] = {}
        self.notices: list[str] = []  # widened columns etc.: the sink logs them after each write
        self._spool_dir: Path | None = None

    def notice(self, message: str) -> None:
        self.notices.append(message)

    def take_notices(self) -> list[str]:
        taken, self.notices = self.notices, []
        return taken

    def tidy(self) -> None:
        """Spare time: the sink has no batch waiting. Work that would otherwise fall on `close`
        can be done now (DuckDB checkpoints its WAL); by default nothing."""
        return None

    def spool_directory(self) -> Path:
        """A private temporary folder for the sink's batch files (removed by `close`; folders a
        killed sync left behind are removed when the next one creates its own)."""
        if self._spool_dir is None:
            remove_stale_spools()
            self._spool_dir = Path(tempfile.mkdtemp(prefix=SPOOL_PREFIX))
            (self._spool_dir / OWNER_FILE).write_text(str(os.getpid()))
        return self._spool_dir

    def remove_spool_directory(self) -> None:
        if self._spool_dir is not None:
            shutil.rmtree(self._spool_dir, ignore_errors=True)
            self._spool_dir = None

    # --- dialect primitives -------------------------------------------------------------------
    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one query; all its rows."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Commit on success, roll back on error."""

    def load(
        self, target: str, columns: list[Column], values: dict[str, list[Any]], extracted: list[datetime]
    ) -> None:
        """Bulk-load a batch (typed column values) into a table (a quoted reference), in the current
        transaction: the Python load path of `write` (a dialect that loads in SQL overrides `write`)."""
        raise NotImplementedError(f"{self.dialect} loads batches in SQL")

    def table_columns(self, table: str) -> dict[str, Kind]:
        """Existing columns of a table in our schema ({} when it does not exist)."""
        mark = self.placeholder
        rows = self.query(
            "SELECT column_name, lower(data_type) FROM information_schema.columns "
            f"WHERE table_schema = {mark} AND table_name = {mark} ORDER BY ordinal_position",
            [self.schema, table],
        )
        return {
            name: KIND_OF_SQL_TYPE.get(kind, "json")
            for name, kind in rows
            if name not in (EXTRACTED_AT, SYNC_ID)
        }

    @abstractmethod
    def close(self) -> None:
        """Release the lock and the connection."""

    def after_create(self, table: str, row: Stream) -> None:
        """Hook: indexes etc. for a freshly created table."""
        return None

    def rename_table_extras(self, stage: str, table: str) -> None:
        """Hook: rename what belongs to a staging table (indexes) when it becomes the table."""
        return None

    # --- shared behaviour ---------------------------------------------------------------------
    def qualified(self, table: str) -> str:
        return f"{self.schema_ref}.{quote(table)}"

    @property
    def schema_ref(self) -> str:
        """The schema, qualified enough to be unambiguous (DuckDB adds the catalog)."""
        return quote(self.schema)

    def setup(self) -> None:
        """Create the schema and the state table."""
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema_ref}")
        types = SQL_TYPES[self.dialect]
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {self.qualified(STATE_TABLE)} (stream {types['text']} PRIMARY KEY, "
            f"state {types['json']}, updated_at {types['timestamp']}, sync_id {types['text']})"
        )
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {self.qualified(STREAMS_TABLE)} "
            f"(stream {types['text']} PRIMARY KEY, "
            f"write_mode {types['text']}, updated_at {types['timestamp']}, sync_id {types['text']})"
        )

    def recorded_mode(self, stream: str) -> WriteMode | None:
        """The write mode the stream's table was last written with (None: not recorded)."""
        rows = self.query(
            f"SELECT write_mode FROM {self.qualified(STREAMS_TABLE)} WHERE stream = {self.placeholder}",
            [stream],
        )
        try:
            return WriteMode(rows[0][0]) if rows else None
        except ValueError:
            return None

    def _record_mode(self, stream: str, mode: WriteMode) -> None:
        p = self.placeholder
        self.execute(f"DELETE FROM {self.qualified(STREAMS_TABLE)} WHERE stream = {p}", [stream])
        self.execute(
            f"INSERT INTO {self.qualified(STREAMS_TABLE)} (stream, write_mode, updated_at, sync_id) "
            f"VALUES ({p}, {p}, {p}, {p})",
            [stream, mode.value, datetime.now(UTC), self.sync_id],
        )

    def _check_mode(self, stream: str, mode: WriteMode, table_exists: bool) -> None:
        """Refuse to mix append (every version) and dedup (one row per key) rows in one table."""
        if mode is WriteMode.OVERWRITE or not table_exists:
            return
        held = self.recorded_mode(stream) or mode
        if {held, mode} == {WriteMode.APPEND, WriteMode.DEDUP}:
            raise WriteModeConflictError(
                f"table {self.schema}.{stream} holds rows written with --write {held.value}; "
                f"--write {mode.value} would mix both kinds of rows. Run with --write {held.value}, "
                f"or --write overwrite to rebuild the table."
            )

    def stored_states(self) -> dict[str, dict[str, Any]]:
        rows = self.query(
            f"SELECT stream, CAST(state AS {SQL_TYPES[self.dialect]['text']}) FROM "
            f"{self.qualified(STATE_TABLE)}"
        )
        return {stream: orjson.loads(text) for stream, text in rows if text}

    def prepare(self, row: Stream, mode: WriteMode, schema: Mapping[str, Any] | None = None) -> None:
        """Create or evolve the stream's table (or a fresh staging table in overwrite mode); the
        columns come from `schema` (default: the stream's packaged JSON Schema)."""
        schema = load_schema(row.name) if schema is None else schema
        schema_columns = columns_from_schema(schema, row.cursor_field)
        table = STAGE_PREFIX + row.name if mode is WriteMode.OVERWRITE else row.name
        info = TableInfo(row, mode, table)
        existing = self.table_columns(row.name)
        self._check_mode(row.name, mode, bool(existing))
        if mode is WriteMode.OVERWRITE:
            self.execute(f"DROP TABLE IF EXISTS {self.qualified(table)}")
        for name, kind in existing.items():  # nothing already loaded is dropped
            info.columns[name] = Column(name, kind, ())
        for column in schema_columns:
            held = info.columns.get(column.name)
            info.columns[column.name] = Column(column.name, held.kind if held else column.kind, column.path)
        if (row.reconcile is not None or row.replaces) and DELETED_COLUMN not in info.columns:
            info.columns[DELETED_COLUMN] = Column(DELETED_COLUMN, "timestamp", ())  # never loaded: NULL
        if table != row.name or not existing:
            self._create(info)
        else:
            self._add_columns(info, [c for c in info.columns.values() if c.name not in existing])
        if mode is not WriteMode.OVERWRITE:  # overwrite records its mode when the table is swapped in
            self._record_mode(row.name, mode)
        self.tables[row.name] = info

    def _create(self, info: TableInfo) -> None:
        types = SQL_TYPES[self.dialect]
        defs = [f"{quote(c.name)} {types[c.kind]}" for c in info.columns.values()]
        defs += [f"{quote(EXTRACTED_AT)} {types['timestamp']}", f"{quote(SYNC_ID)} {types['text']}"]
        self.execute(f"CREATE TABLE IF NOT EXISTS {self.qualified(info.table)} ({', '.join(defs)})")
        self.after_create(info.table, info.row)

    def _add_columns(self, info: TableInfo, columns: list[Column]) -> None:
        types = SQL_TYPES[self.dialect]
        for column in columns:
            self.execute(
                f"ALTER TABLE {self.qualified(info.table)} ADD COLUMN IF NOT EXISTS "
                f"{quote(column.name)} {types[column.kind]}"
            )

    def _evolve(self, info: TableInfo, records: list[Record]) -> None:
        """Give every key in the data a column: resolve paths of known columns, add new ones (JSON)."""
        resolved = {name for name, column in info.columns.items() if column.path}
        new: list[Column] = []
        for column in discover_columns(records, resolved, info.row.cursor_field):
            held = info.columns.get(column.name)
            if held is not None:  # a column from an earlier sync: keep its type, learn its path
                info.columns[column.name] = Column(column.name, held.kind, column.path)
            else:
                info.columns[column.name] = column
                new.append(column)
        if new:
            self._add_columns(info, new)

    def write(self, batch: Batch) -> WriteResult:
        """Write a batch (and its state) in one transaction."""
        batch = batch.loaded()
        info = self.tables[batch.stream]
        self._evolve(info, batch.records)
        records, extracted = batch.records, batch.extracted_at
        if info.mode is WriteMode.DEDUP:
            records, extracted = newest_versions(batch, info.row)
        columns = [c for c in info.columns.values() if c.path]
        values: dict[str, list[Any]] = {}
        result = WriteResult()
        attributes = [record.get("attributes") or {} for record in records]
        for column in columns:
            values[column.name], rejected = column_values(records, column, attributes)
            result.rejected_values += rejected
        with self.transaction():
            if info.mode is WriteMode.DEDUP and records:
                result.inserted, result.changed, result.unchanged = self._upsert(
                    info, columns, values, extracted
                )
            elif records:
                self.load(self.qualified(info.table), columns, values, extracted)
                result.inserted = len(records)
            if batch.state is not None:
                self._save_state(batch.stream, batch.state)
        return result

    def _upsert(
        self, info: TableInfo, columns: list[Column], values: dict[str, list[Any]], extracted: list[datetime]
    ) -> tuple[int, int, int]:
        """Replace rows whose stored version is not newer; insert the rest.
        (inserted, changed, unchanged), each counted per key of the batch."""
        target = self.qualified(info.table)
        same_key = " AND ".join(f"t.{quote(k)} = b.{quote(k)}" for k in info.row.primary_key)
        newer = not_newer(info.row)
        same = " AND ".join(f"t.{quote(c.name)} IS NOT DISTINCT FROM b.{quote(c.name)}" for c in columns)
        names = ", ".join(quote(c.name) for c in columns) + f", {quote(EXTRACTED_AT)}, {quote(SYNC_ID)}"
        with self.staged(info, columns, values, extracted) as staged:
            key = f"b.{quote(info.row.primary_key[0])}"  # every stream's key is one column
            (matched, changed), *_ = self.query(
                f"SELECT count(DISTINCT {key}), "
                f"count(DISTINCT {key}) FILTER (WHERE {newer} AND NOT ({same})) "
                f"FROM {staged} AS b JOIN {target} AS t ON {same_key}"
            )
            self.execute(f"DELETE FROM {target} AS t USING {staged} AS b WHERE {same_key} AND {newer}")
            self.execute(
                f"INSERT INTO {target} ({names}) SELECT {names} FROM {staged} AS b "
                f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {same_key})"
            )
        matched, changed = int(matched), int(changed)
        return len(extracted) - matched, changed, matched - changed

    @contextmanager
    def staged(
        self, info: TableInfo, columns: list[Column], values: dict[str, list[Any]], extracted: list[datetime]
    ) -> Iterator[str]:
        """The batch as something SQL can join (default: a temporary table); yields its reference."""
        name = quote("_klaviyo_batch")
        self.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {self.qualified(info.table)} LIMIT 0")
        self.load(name, columns, values, extracted)
        yield name
        self.execute(f"DROP TABLE {name}")

    def _save_state(self, stream: str, state: Mapping[str, Any]) -> None:
        p = self.placeholder
        self.execute(f"DELETE FROM {self.qualified(STATE_TABLE)} WHERE stream = {p}", [stream])
        self.execute(
            f"INSERT INTO {self.qualified(STATE_TABLE)} (stream, state, updated_at, sync_id) "
            f"VALUES ({p}, {p}, {p}, {p})",
            [stream, orjson.dumps(state).decode(), datetime.now(UTC), self.sync_id],
        )

    def delete_rows(self, stream: str, records: Sequence[Record], mode: DeleteMode) -> WriteResult:
        """Deletion records (key + `_ab_cdc_deleted_at`): set `_deleted_at` on the rows of those keys
        (soft) or remove them (hard), in one transaction. Rows already soft-deleted keep their time."""
        info = self.tables[stream]
        if info.mode is WriteMode.OVERWRITE or not records:
            return WriteResult()  # a rebuilt table holds only live rows
        p = self.placeholder
        keys = info.row.primary_key
        match = " AND ".join(f"{quote(k)} = {p}" for k in keys)
        target = self.qualified(info.table)
        deleted = 0
        with self.transaction():
            for record in records:
                values = [record.get(k) for k in keys]
                if mode is DeleteMode.HARD:
                    deleted += self.execute(f"DELETE FROM {target} WHERE {match}", values)
                else:
                    at = maybe_time(record.get(DELETION_MARK)) or datetime.now(UTC)
                    deleted += self.execute(
                        f"UPDATE {target} SET {quote(DELETED_COLUMN)} = {p} WHERE {match} "
                        f"AND {quote(DELETED_COLUMN)} IS NULL",
                        [at, *values],
                    )
        return WriteResult(deleted=deleted)

    def finish(self, stream: str, state: dict[str, Any] | None) -> None:
        """A stream completed: in overwrite mode swap its staging table in, with its state, atomically."""
        info = self.tables[stream]
        if info.mode is not WriteMode.OVERWRITE:
            if state is not None:
                with self.transaction():
                    self._save_state(stream, state)
            return
        with self.transaction():
            self.execute(f"DROP TABLE IF EXISTS {self.qualified(stream)}")
            self.execute(f"ALTER TABLE {self.qualified(info.table)} RENAME TO {quote(stream)}")
            self.rename_table_extras(info.table, stream)
            self._record_mode(stream, WriteMode.OVERWRITE)
            if state is not None:
                self._save_state(stream, state)
            else:
                self.execute(
                    f"DELETE FROM {self.qualified(STATE_TABLE)} WHERE stream = {self.placeholder}", [stream]
                )
        info.table = stream

    def abandon(self, stream: str) -> None:
        """A stream failed: drop its staging table (overwrite); the old table and state stay."""
        info = self.tables.get(stream)
        if info is not None and info.mode is WriteMode.OVERWRITE and info.table != stream:
            self.execute(f"DROP TABLE IF EXISTS {self.qualified(info.table)}")
