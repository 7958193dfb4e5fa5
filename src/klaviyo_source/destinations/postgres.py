"""Postgres destination: COPY batches in one transaction with the state they cover.

A batch is read a chunk of raw JSON columns at a time (destinations/rawbatch.py) and COPied as
tab-separated text into a temporary table of text columns; the server types them
in SQL (casts that cannot fail: a value that does not fit widens its column first, see `_widen`)
and merges them by key with the table's b-tree index on the primary key (`<table>_pk`), so a
batch costs O(batch log table). A chunk of distinct keys the table does not hold (a backfill's
every chunk, found by one index probe per row) is inserted straight from the raw text, in one
pass. No Python object per row on our side.

Two syncs never write one schema at once: each holds a session advisory lock keyed on the schema
name for its whole run (the server releases it when the session ends, even after kill -9).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg

from klaviyo_source.destinations.base import (
    DestinationBusyError,
    DestinationSpec,
    TableInfo,
    WriteMode,
    WriteResult,
    not_newer,
    quote,
)
from klaviyo_source.destinations.rawbatch import EXTRACTED, ORD, RawChunk
from klaviyo_source.destinations.rawload import RAW, RawLoadDestination
from klaviyo_source.destinations.typemap import EXTRACTED_AT, SQL_TYPES, SYNC_ID, Column, Kind
from klaviyo_source.errors import ConfigError
from klaviyo_source.streams.table import Stream

_LOCK_KEY = "hashtext('klaviyo-source:' || %s)"


def literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings: backslashes are plain)."""
    return "'" + text.replace("'", "''") + "'"


def _without_nul(value: Any) -> Any:
    """Postgres text and jsonb cannot hold NUL characters; drop them."""
    if isinstance(value, str) and ("\x00" in value or "\\u0000" in value):
        return value.replace("\x00", "").replace("\\u0000", "")
    return value


_NUMBER = "'^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$'"
_INTEGER = "'^-?[0-9]+$'"
_STAMP = (  # a quoted ISO-8601 date or date-time ("T" or a space), with an optional offset
    "'^\"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]+)?)?)?"
    "(Z|[+-][0-9]{2}(:?[0-9]{2})?)?\"$'"
)


def _string(value: str) -> str:
    """SQL: the content of a JSON string given as its JSON text."""
    return (
        f"CASE WHEN strpos({value}, '\\') = 0 THEN substr({value}, 2, length({value}) - 2) "
        f"ELSE ({value}::jsonb #>> '{{}}') END"
    )


def typed(kind: Kind, value: str) -> str:
    """SQL turning a value's raw JSON text into a column of `kind` without ever raising: NULL for
    JSON null and for a value that does not fit (`misfit` finds those first)."""
    match kind:
        case "text":
            return (
                f"CASE WHEN {value} = 'null' THEN NULL WHEN left({value}, 1) = '\"' THEN {_string(value)} "
                f"ELSE {value} END"
            )
        case "json":
            return f"CASE WHEN {value} <> 'null' THEN {value}::jsonb END"
        case "timestamp":
            return f"CASE WHEN {value} ~ {_STAMP} THEN ({_string(value)})::timestamptz END"
        case "bigint":
            number = f"{value}::numeric"
            return (
                f"CASE WHEN {value} ~ {_NUMBER} AND {number} = trunc({number}) "
                f"AND abs({number}) <= 9223372036854775807 THEN {number}::bigint END"
            )
        case "double":
            return f"CASE WHEN {value} ~ {_NUMBER} THEN {value}::double precision END"
        case "boolean":
            return f"CASE {value} WHEN 'true' THEN true WHEN 'false' THEN false END"
    raise ValueError(kind)


def misfit(kind: Kind, value: str) -> str:
    """SQL: a non-null value the column's type cannot hold exactly."""
    lost = f"({value} <> 'null' AND {typed(kind, value)} IS NULL)"
    if kind == "double":  # integers a double would round
        return f"({lost} OR ({value} ~ {_INTEGER} AND abs({value}::numeric) > 9007199254740992))"
    return lost


STAGE = "_klaviyo_batch"


class PostgresDestination(RawLoadDestination):
    dialect = "postgres"
    placeholder = "%s"

    def __init__(self, spec: DestinationSpec, sync_id: str) -> None:
        super().__init__(spec, sync_id)
        try:
            self.con = psycopg.connect(spec.target, autocommit=True)
        except psycopg.OperationalError as error:
            # libpq messages name host and user, never the password.
            raise ConfigError(f"Cannot connect to {spec.display}: {str(error).strip()}") from None
        self.con.execute("SET TIME ZONE 'UTC'")
        locked = self.con.execute(f"SELECT pg_try_advisory_lock({_LOCK_KEY})", [spec.schema]).fetchone()
        if not locked or not locked[0]:
            holder = self.con.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = "
                f"({_LOCK_KEY})::oid LIMIT 1",
                [spec.schema],
            ).fetchone()
            self.con.close()
            who = f" (server pid {holder[0]})" if holder else ""
            raise DestinationBusyError(
                f"Another sync{who} is writing to {spec.display}; wait for it to finish, then run again."
            )
        self.setup()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = self.con.execute(sql.encode(), list(params) or None)
        return max(cursor.rowcount, 0)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.con.execute(sql.encode(), list(params) or None).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.con.transaction():
            yield

    def load(
        self, target: str, columns: list[Column], values: dict[str, list[Any]], extracted: list[datetime]
    ) -> None:
        names = [quote(c.name) for c in columns] + [quote(EXTRACTED_AT), quote(SYNC_ID)]
        lists = [
            [_without_nul(v) for v in values[c.name]] if c.kind in ("text", "json") else values[c.name]
            for c in columns
        ]
        sync_id = self.sync_id
        with (
            self.con.cursor() as cursor,
            cursor.copy(f"COPY {target} ({', '.join(names)}) FROM STDIN".encode()) as copy,
        ):
            for index, row in enumerate(zip(*lists, strict=True)):
                copy.write_row((*row, extracted[index], sync_id))

    @contextmanager
    def staged(
        self, info: TableInfo, columns: list[Column], values: dict[str, list[Any]], extracted: list[datetime]
    ) -> Iterator[str]:
        name = f"pg_temp.{quote('_klaviyo_batch')}"
        self.execute(
            f"CREATE TEMP TABLE {quote('_klaviyo_batch')} (LIKE {self.qualified(info.table)}) ON COMMIT DROP"
        )
        self.load(name, columns, values, extracted)
        yield name
        self.execute(f"DROP TABLE {name}")

    # --- the load path ---------------------------------------------------------------------------
    def _load_chunk(self, info: TableInfo, chunk: RawChunk) -> WriteResult:
        """COPY the chunk's raw columns into a temporary table, widen drifting columns, then insert
        (dedup: merge by key through the b-tree index)."""
        columns = self._columns(info)
        self._copy_raw(chunk.tsv([c.path for c in columns]), len(columns))
        try:
            if self._widen(info, columns):
                columns = self._columns(info)
            target = self.qualified(info.table)
            if info.mode is not WriteMode.DEDUP:
                self.execute(f"INSERT INTO {target} ({self._names(info)}) {self._typed(columns)}")
                return WriteResult(inserted=chunk.rows)
            return self._merge(info, columns)
        finally:
            self.execute(f"DROP TABLE IF EXISTS {RAW}")

    def _copy_raw(self, data: bytes, values: int) -> None:
        """The chunk's tab-separated raw text as a temporary table (`_ord`, `_e`, `_v0`...): CSV
        with a quote character JSON never holds, so nothing is unquoted or unescaped."""
        texts = "".join(f", _v{i} text" for i in range(values))
        self.execute(f"CREATE TEMP TABLE {RAW} ({ORD} bigint, {EXTRACTED} bigint{texts})")
        if b"\\u0000" in data:  # Postgres text and jsonb cannot hold NUL characters: drop them
            data = data.replace(b"\\u0000", b"")
        with (
            self.con.cursor() as cursor,
            cursor.copy(
                f"COPY {RAW} FROM STDIN WITH (FORMAT csv, DELIMITER E'\\t', QUOTE E'\\x01')".encode()
            ) as copy,
        ):
            copy.write(data)

    def _typed(self, columns: list[Column], *, ordinal: bool = False) -> str:
        values = [f"{typed(c.kind, f'_v{i}')} AS {quote(c.name)}" for i, c in enumerate(columns)]
        values += [
            f"timestamptz 'epoch' + {EXTRACTED} * interval '1 microsecond' AS {quote(EXTRACTED_AT)}",
            f"{literal(self.sync_id)} AS {quote(SYNC_ID)}",
        ]
        return f"SELECT {ORD + ', ' if ordinal else ''}{', '.join(values)} FROM {RAW}"

    def _misfit(self, kind: Kind, value: str) -> str:
        return misfit(kind, value)

    def _retype(self, table: str, column: str, wider: Kind) -> str:
        using = f"to_jsonb({column})" if wider == "json" else f"{column}::text"  # how stored values convert
        return f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {SQL_TYPES['postgres'][wider]} USING {using}"

    def _merge(self, info: TableInfo, columns: list[Column]) -> WriteResult:
        """Dedup: newest version per key within the chunk, then replace stored versions that are not
        newer and insert new keys; counts per key."""
        target = self.qualified(info.table)
        names = self._names(info)
        if self._all_new(info, columns):  # a backfill's usual chunk: one pass, straight in
            self.execute(f"INSERT INTO {target} ({names}) {self._typed(columns)}")
            (rows,) = self.query(f"SELECT count(*) FROM {RAW}")[0]
            return WriteResult(inserted=int(rows))
        self.execute(f"CREATE TEMP TABLE {STAGE} AS {self._typed(columns, ordinal=True)}")
        keys = ", ".join(quote(k) for k in info.row.primary_key)
        (repeated,) = self.query(f"SELECT count(*) - count(DISTINCT ({keys})) FROM {STAGE}")[0]
        if repeated:
            field = info.row.cursor_field
            by_cursor = f"{quote(field)} DESC NULLS LAST, " if field is not None else ""
            self.execute(
                f"DELETE FROM {STAGE} WHERE {ORD} IN (SELECT {ORD} FROM (SELECT {ORD}, row_number() OVER ("
                f"PARTITION BY {keys} ORDER BY {by_cursor}{ORD} DESC) AS n FROM {STAGE}) AS x WHERE n > 1)"
            )
        self.execute(f"ANALYZE {STAGE} ({keys})")  # the join's plan needs the keys' statistics only
        same_key = " AND ".join(f"t.{quote(k)} = b.{quote(k)}" for k in info.row.primary_key)
        newer = not_newer(info.row)
        same = " AND ".join(f"t.{quote(c.name)} IS NOT DISTINCT FROM b.{quote(c.name)}" for c in columns)
        (rows, matched, changed), *_ = self.query(
            f"SELECT (SELECT count(*) FROM {STAGE}), count(*), "
            f"count(*) FILTER (WHERE {newer} AND NOT ({same})) "
            f"FROM {STAGE} AS b JOIN {target} AS t ON {same_key}"
        )
        if matched:
            self.execute(f"DELETE FROM {target} AS t USING {STAGE} AS b WHERE {same_key} AND {newer}")
            self.execute(
                f"INSERT INTO {target} ({names}) SELECT {names} FROM {STAGE} AS b "
                f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {same_key})"
            )
        else:
            self.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM {STAGE}")
        self.execute(f"DROP TABLE {STAGE}")
        rows, matched, changed = int(rows), int(matched), int(changed)
        return WriteResult(inserted=rows - matched, changed=changed, unchanged=matched - changed)

    def _all_new(self, info: TableInfo, columns: list[Column]) -> bool:
        """Whether the chunk's keys are distinct and none is in the table, found from the raw text
        with one index probe per row (LIMIT 1 keeps the probe a nested loop: never a table scan)."""
        index = {c.name: i for i, c in enumerate(columns)}
        if any(k not in index for k in info.row.primary_key):
            return False
        keys = [(quote(k), typed(info.columns[k].kind, f"_v{index[k]}")) for k in info.row.primary_key]
        row_key = ", ".join(value for _, value in keys)
        same_key = " AND ".join(f"t.{name} = {value}" for name, value in keys)
        (repeated, stored), *_ = self.query(
            f"SELECT count(*) - count(DISTINCT ({row_key})), "
            f"count(*) FILTER (WHERE EXISTS (SELECT 1 FROM {self.qualified(info.table)} AS t "
            f"WHERE {same_key} LIMIT 1)) FROM {RAW}"
        )
        return not repeated and not stored

    def after_create(self, table: str, row: Stream) -> None:
        keys = ", ".join(quote(k) for k in row.primary_key)
        self.execute(f"CREATE INDEX IF NOT EXISTS {quote(table + '_pk')} ON {self.qualified(table)} ({keys})")

    def rename_table_extras(self, stage: str, table: str) -> None:
        self.execute(
            f"ALTER INDEX IF EXISTS {self.qualified(stage + '_pk')} RENAME TO {quote(table + '_pk')}"
        )

    def close(self) -> None:
        # Unlock explicitly: the server frees a session's locks only when its backend process
        # exits, a moment after the connection closes, so a sync started right after this one
        # could still find the lock taken. (A killed sync's session still releases it.)
        with contextlib.suppress(psycopg.Error):
            self.con.execute(f"SELECT pg_advisory_unlock({_LOCK_KEY})", [self.spec.schema])
        self.con.close()
