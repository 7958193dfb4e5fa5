"""What DuckDB and Postgres share: write modes, batches, the table bookkeeping and the SQL.

A `SqlDestination` owns one connection. Every method is blocking and is called from one thread at
a time (the sink runs them with `asyncio.to_thread`). Rows and the state that covers them are
written in one transaction, so a crash leaves either both or neither.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import orjson

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
from klaviyo_source.engine.contract import Record
from klaviyo_source.errors import ConfigError
from klaviyo_source.errors import DestinationBusyError as DestinationBusyError  # its old home
from klaviyo_source.streams.schema import load_schema
from klaviyo_source.streams.table import Stream
from klaviyo_source.times import maybe_time

STATE_TABLE = "_klaviyo_state"
STAGE_PREFIX = "_klaviyo_stage_"
DEFAULT_SCHEMA = "klaviyo"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OLDEST = datetime.min.replace(tzinfo=UTC)


class WriteMode(StrEnum):
    APPEND = "append"  # every version of every record
    DEDUP = "dedup"  # one row per primary key: newest cursor wins, ties -> latest extracted
    OVERWRITE = "overwrite"  # full refresh into a staging table, swapped in at the end


@dataclass
class Batch:
    """Records of one stream, and the state that covers them (None: rows only)."""

    stream: str
    records: list[Record]
    extracted_at: list[datetime]
    state: dict[str, Any] | None = None


@dataclass
class WriteResult:
    inserted: int = 0
    updated: int = 0
    rejected_values: int = 0  # non-null values that did not fit their column's type (stored as NULL)


@dataclass
class TableInfo:
    """One stream's table as the destination knows it during a sync."""

    row: Stream
    mode: WriteMode
    table: str  # where rows go now: the stream's table, or its staging table in overwrite mode
    columns: dict[str, Column] = field(default_factory=dict)  # name -> column (path () = not seen yet)


@dataclass(frozen=True)
class DestinationSpec:
    kind: str  # "duckdb" or "postgres"
    target: str  # file path or libpq connection string (may hold a password: never print it)
    schema: str
    display: str  # safe to print
    memory_limit: str = "256MB"  # DuckDB only: beyond it DuckDB spills to disk instead of growing


def quote(name: str) -> str:
    """A safely quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def parse_destination(url: str) -> DestinationSpec:
    """`duckdb:///relative.duckdb`, `duckdb:////absolute.duckdb`, a bare path, or `postgresql://...`;
    `?schema=name` picks the schema (default `klaviyo`); DuckDB also takes `?memory_limit=1GB`."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    schema = (query.pop("schema", [DEFAULT_SCHEMA]) or [DEFAULT_SCHEMA])[-1]
    if not _IDENTIFIER.match(schema):
        raise ConfigError(f"Invalid destination: schema {schema!r} must be letters, digits and underscores.")
    if parts.scheme in ("postgresql", "postgres"):
        target = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, doseq=True), ""))
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            raise ConfigError(
                "Invalid destination: the port in the postgresql:// URL is not a number."
            ) from None
        display = f"postgresql://{parts.hostname or 'localhost'}{port}{parts.path} (schema {schema})"
        return DestinationSpec("postgres", target, schema, display)
    if parts.scheme in ("duckdb", ""):
        path = url.split("://", 1)[1].split("?", 1)[0] if parts.scheme else parts.path
        if parts.scheme:
            path = path[1:] if path.startswith("/") else path  # duckdb:///x -> x ; duckdb:////x -> /x
        if not path:
            raise ConfigError("Invalid destination: duckdb:///path/to/file.duckdb needs a file path.")
        memory = (query.get("memory_limit") or ["256MB"])[-1]
        if not re.match(r"^\d+(\.\d+)?\s*[KMGT]i?B$", memory, re.IGNORECASE):
            raise ConfigError(f"Invalid destination: memory_limit {memory!r} must look like 512MB or 2GB.")
        return DestinationSpec("duckdb", path, schema, f"duckdb file {path} (schema {schema})", memory)
    raise ConfigError(
        f"Invalid destination {parts.scheme}://...: use duckdb:///path/to/file.duckdb or postgresql://..."
    )


def newest_versions(batch: Batch, row: Stream) -> tuple[list[Record], list[datetime]]:
    """One record per primary key: the newest cursor, ties broken by arrival (later wins)."""
    best: dict[tuple[Any, ...], tuple[datetime, int]] = {}
    for index, record in enumerate(batch.records):
        key = tuple(record.get(k) for k in row.primary_key)
        cursor = maybe_time(record.get(row.cursor_field)) or _OLDEST
        held = best.get(key)
        if held is None or cursor >= held[0]:
            best[key] = (cursor, index)
    keep = sorted(index for _, index in best.values())
    return [batch.records[i] for i in keep], [batch.extracted_at[i] for i in keep]


class SqlDestination(ABC):
    """Tables, state and write modes over a dialect's primitives (execute, query, load)."""

    dialect: str = ""
    placeholder: str = "?"

    def __init__(self, spec: DestinationSpec, sync_id: str) -> None:
        self.spec = spec
        self.schema = spec.schema
        self.sync_id = sync_id
        self.tables: dict[str, TableInfo] = {}

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

    @abstractmethod
    def load(
        self, target: str, columns: list[Column], values: dict[str, list[Any]], extracted: list[datetime]
    ) -> None:
        """Bulk-load a batch (typed column values) into a table (a quoted reference), in the current
        transaction."""

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
        return f"{quote(self.schema)}.{quote(table)}"

    def setup(self) -> None:
        """Create the schema and the state table."""
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}")
        types = SQL_TYPES[self.dialect]
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {self.qualified(STATE_TABLE)} (stream {types['text']} PRIMARY KEY, "
            f"state {types['json']}, updated_at {types['timestamp']}, sync_id {types['text']})"
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
        if mode is WriteMode.OVERWRITE:
            self.execute(f"DROP TABLE IF EXISTS {self.qualified(table)}")
        for name, kind in existing.items():  # nothing already loaded is dropped
            info.columns[name] = Column(name, kind, ())
        for column in schema_columns:
            held = info.columns.get(column.name)
            info.columns[column.name] = Column(column.name, held.kind if held else column.kind, column.path)
        if table != row.name or not existing:
            self._create(info)
        else:
            self._add_columns(info, [c for c in info.columns.values() if c.name not in existing])
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
                result.inserted, result.updated = self._upsert(info, columns, values, extracted)
            elif records:
                self.load(self.qualified(info.table), columns, values, extracted)
                result.inserted = len(records)
            if batch.state is not None:
                self._save_state(batch.stream, batch.state)
        return result

    def _upsert(
        self, info: TableInfo, columns: list[Column], values: dict[str, list[Any]], extracted: list[datetime]
    ) -> tuple[int, int]:
        """Replace rows whose stored version is not newer; insert the rest. (inserted, updated)."""
        target = self.qualified(info.table)
        cursor = quote(info.row.cursor_field)
        same_key = " AND ".join(f"t.{quote(k)} = b.{quote(k)}" for k in info.row.primary_key)
        names = ", ".join(quote(c.name) for c in columns) + f", {quote(EXTRACTED_AT)}, {quote(SYNC_ID)}"
        with self.staged(info, columns, values, extracted) as staged:
            replaced = self.execute(
                f"DELETE FROM {target} AS t USING {staged} AS b WHERE {same_key} "
                f"AND (t.{cursor} IS NULL OR b.{cursor} IS NULL OR b.{cursor} >= t.{cursor})"
            )
            written = self.execute(
                f"INSERT INTO {target} ({names}) SELECT {names} FROM {staged} AS b "
                f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {same_key})"
            )
        return written - replaced, replaced

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
