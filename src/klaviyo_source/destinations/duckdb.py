"""DuckDB destination: DuckDB parses each batch's JSON lines itself and merges it by key, in one
transaction with the state the batch covers.

A batch is a spool file (destinations/spool.py). `read_json` reads it into typed columns in
DuckDB's own threads (no Python object per record, no GIL), into a temporary stage table; dedup
keeps the newest version per key within the batch (QUALIFY), finds the keys the table already
holds with one join on the key column, compares only those rows (fetched by rowid), deletes the
replaced ones by rowid and inserts the rest. Memory stays bounded: `memory_limit` (DuckDB spills
beyond it) and `threads` are set explicitly, insertion order is not preserved.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from klaviyo_source.destinations.base import (
    Batch,
    DestinationBusyError,
    DestinationSpec,
    SqlDestination,
    TableInfo,
    WriteMode,
    WriteResult,
    not_newer,
    quote,
)
from klaviyo_source.destinations.lock import FileLock
from klaviyo_source.destinations.spool import SpoolFile, write_spool
from klaviyo_source.destinations.typemap import EXTRACTED_AT, SYNC_ID, Column, Kind, column_name

STAGE = "_klaviyo_batch"
HITS = "_klaviyo_hits"
_NUMBER_TYPES = "('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT')"


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def typed(kind: Kind, value: str) -> str:
    """SQL turning a JSON value into a column of `kind`, as typemap.column_values does in Python:
    NULL when it does not fit (a string in a number column, a fraction in a bigint...). `value`
    is the value's JSON text as VARCHAR (minified by DuckDB's reader): most kinds need no parse."""
    match kind:
        case "text":  # a string's content; anything else as its JSON text
            return f"CAST({value} AS JSON) ->> '$'"
        case "json":
            return f"CAST(CASE WHEN {value} <> 'null' THEN {value} END AS JSON)"
        case "timestamp":
            text = f"CAST({value} AS JSON) ->> '$'"
            return f"CASE WHEN starts_with({value}, '\"') THEN TRY_CAST({text} AS TIMESTAMPTZ) END"
        case "bigint":  # an integer, or a number with an integral value (5.0, 1e3); quotes never cast
            number = f"TRY_CAST({value} AS DOUBLE)"
            return (
                f"coalesce(TRY_CAST({value} AS BIGINT), CASE WHEN {number} = floor({number}) "
                f"THEN TRY_CAST({number} AS BIGINT) END)"
            )
        case "double":
            return f"TRY_CAST({value} AS DOUBLE)"
        case "boolean":
            return f"CASE {value} WHEN 'true' THEN true WHEN 'false' THEN false END"
    raise ValueError(kind)


class DuckDBDestination(SqlDestination):
    dialect = "duckdb"
    placeholder = "?"
    flush_bytes = 16 << 20  # the JSON of ~12,000 events: its stage stays well inside memory_limit

    def __init__(self, spec: DestinationSpec, sync_id: str) -> None:
        super().__init__(spec, sync_id)
        path = Path(spec.target).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(path.with_name(path.name + ".lock"))
        self._lock.acquire(spec.display)
        created = not path.exists()
        try:
            self.con = duckdb.connect(str(path))
        except duckdb.IOException as error:
            self._lock.release()
            if "lock" in str(error).lower():
                raise DestinationBusyError(
                    f"{spec.display} is open in another process; close it and run again."
                ) from None
            raise
        try:
            # DuckDB's default cache is 80% of RAM and one thread per core; a sync stays small.
            self.con.execute("SET TimeZone = 'UTC'")
            self.con.execute(f"SET memory_limit = {literal(spec.memory_limit)}")
            self.con.execute(f"SET threads = {int(spec.threads)}")
            self.con.execute("SET preserve_insertion_order = false")
            # Not at every commit: each checkpoint re-compresses the table's last row group.
            self.con.execute("SET checkpoint_threshold = '256MB'")
            row = self.con.execute("SELECT current_database()").fetchone()
            self.catalog = str(row[0]) if row else "main"
            self.setup()
        except BaseException:
            self.con.close()
            self._lock.release()
            if created:  # a failed first open leaves nothing behind
                for leftover in (path, path.with_name(path.name + ".wal")):
                    leftover.unlink(missing_ok=True)
            raise

    @property
    def schema_ref(self) -> str:
        # The catalog is named after the file: klaviyo.duckdb + schema klaviyo is ambiguous without it.
        return f"{quote(self.catalog)}.{quote(self.schema)}"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        result = self.con.execute(sql, list(params)).fetchall()
        # DML returns one row holding the number of changed rows; DDL returns none.
        return int(result[0][0]) if result and isinstance(result[0][0], int) else 0

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(params)).fetchall()

    def table_columns(self, table: str) -> dict[str, Kind]:
        found = self.query(
            "SELECT 1 FROM information_schema.tables WHERE table_catalog = ? AND table_schema = ? "
            "AND table_name = ?",
            [self.catalog, self.schema, table],
        )
        return super().table_columns(table) if found else {}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.con.begin()
        try:
            yield
        except BaseException:
            self.con.rollback()
            raise
        self.con.commit()

    # --- the SQL load path ----------------------------------------------------------------------
    def write(self, batch: Batch) -> WriteResult:
        """Load the batch's spool file (or its records, spooled first) and its state, atomically."""
        info = self.tables[batch.stream]
        spool = batch.spool
        if spool is None:
            spool = write_spool(self.spool_directory(), batch.records, batch.extracted_at)
        try:
            with self.transaction():
                result = self._load_spool(info, spool) if spool.rows else WriteResult()
                if batch.state is not None:
                    self._save_state(batch.stream, batch.state)
        finally:
            spool.path.unlink(missing_ok=True)
        return result

    def _load_spool(self, info: TableInfo, spool: SpoolFile) -> WriteResult:
        self._learn_columns(info, top=spool.top_keys)
        self._stage(info, spool)
        (attribute_keys,) = self.query(f"SELECT list_distinct(flatten(list(_akeys))) FROM {STAGE}")[0]
        if self._learn_columns(info, attributes=attribute_keys or []):
            self._stage(info, spool)  # a key no column holds yet: read the batch again with it
        if info.mode is WriteMode.DEDUP:
            self._newest_per_key(info)
        (rows, rejected) = self.query(f"SELECT count(*), coalesce(sum(_rejected), 0) FROM {STAGE}")[0]
        result = WriteResult(rejected_values=int(rejected))
        if info.mode is WriteMode.DEDUP:
            self._merge(info, int(rows), result)
        else:
            self.execute(
                f"INSERT INTO {self.qualified(info.table)} ({self._names(info)}) {self._select(info)}"
            )
            result.inserted = int(rows)
        self.execute(f"DROP TABLE IF EXISTS {STAGE}")
        return result

    def _learn_columns(
        self, info: TableInfo, *, top: frozenset[str] = frozenset(), attributes: Sequence[str] = ()
    ) -> bool:
        """Give every key in the data a column (JSON when new); True when a column was added or
        learned its path (the stage lacks it)."""
        found: list[Column] = [Column(key, "json", (key,)) for key in sorted(top - {"attributes"})]
        for key in sorted(attributes):
            name = column_name(("attributes", key), info.row.cursor_field)
            if name is not None:
                found.append(Column(name, "json", ("attributes", key)))
        new: list[Column] = []
        learned = False
        for column in found:
            held = info.columns.get(column.name)
            if held is not None and held.path:
                continue
            learned = True
            if held is not None:  # a column from an earlier sync: keep its type, learn its path
                info.columns[column.name] = Column(column.name, held.kind, column.path)
            else:
                info.columns[column.name] = column
                new.append(column)
        if new:
            self._add_columns(info, new)
        return learned

    def _columns(self, info: TableInfo) -> list[Column]:
        return [c for c in info.columns.values() if c.path]

    def _names(self, info: TableInfo) -> str:
        names = [quote(c.name) for c in self._columns(info)] + [quote(EXTRACTED_AT), quote(SYNC_ID)]
        return ", ".join(names)

    def _select(self, info: TableInfo) -> str:
        return f"SELECT {self._names(info)} FROM {STAGE}"

    def _stage(self, info: TableInfo, spool: SpoolFile) -> None:
        """The batch as a temporary table of typed columns (+ _ord, _rejected, _akeys)."""
        columns = self._columns(info)
        top = sorted({c.path[0] for c in columns if len(c.path) == 1} - {"attributes"})
        fields = [f"{quote(key)} JSON" for key in top] + ['"attributes" MAP(VARCHAR, JSON)']
        spec = f"{{'o': 'BIGINT', 'e': 'BIGINT', 'r': {literal('STRUCT(' + ', '.join(fields) + ')')}}}"
        raw, values, checks = [], [], []
        for index, column in enumerate(columns):
            if len(column.path) == 1:
                source = f"r.{quote(column.path[0])}"
            else:
                source = f"r.attributes[{literal(column.path[1])}]"
            raw.append(f"CAST({source} AS VARCHAR) AS _v{index}")  # each map lookup once
            values.append(f"{typed(column.kind, f'_v{index}')} AS {quote(column.name)}")
            values.append(f"coalesce(_v{index} <> 'null', false) AS _p{index}")
            checks.append(f"(_p{index} AND {quote(column.name)} IS NULL)::INTEGER")
        names = ", ".join(quote(c.name) for c in columns)
        source = f"read_json({literal(str(spool.path))}, format = 'newline_delimited', columns = {spec})"
        self.execute(
            f"CREATE OR REPLACE TEMP TABLE {STAGE} AS SELECT _ord, {names}, "
            f"make_timestamp(e)::TIMESTAMPTZ AS {quote(EXTRACTED_AT)}, {literal(self.sync_id)} AS "
            f"{quote(SYNC_ID)}, {' + '.join(checks) or '0'} AS _rejected, _akeys FROM ("
            f"SELECT _ord, e, {', '.join(values)}, _akeys FROM ("
            f"SELECT o AS _ord, e, {', '.join(raw)}, map_keys(r.attributes) AS _akeys FROM {source}))"
        )

    def _newest_per_key(self, info: TableInfo) -> None:
        """Keep one version per key in the stage: the newest cursor, ties -> the later record. The
        window runs over repeated keys only (usually none), so memory stays small."""
        keys = ", ".join(quote(k) for k in info.row.primary_key)
        (repeated,) = self.query(f"SELECT count(*) - count(DISTINCT ({keys})) FROM {STAGE}")[0]
        if not repeated:
            return
        field = info.row.cursor_field  # none: the later record wins
        by_cursor = f"{quote(field)} DESC NULLS LAST, " if field is not None else ""
        self.execute(
            f"DELETE FROM {STAGE} WHERE _ord IN (SELECT _ord FROM (SELECT _ord, row_number() OVER ("
            f"PARTITION BY {keys} ORDER BY {by_cursor}_ord DESC) AS n "
            f"FROM {STAGE} WHERE ({keys}) IN "
            f"(SELECT {keys} FROM {STAGE} GROUP BY {keys} HAVING count(*) > 1)) "
            f"WHERE n > 1)"
        )

    def _merge(self, info: TableInfo, rows: int, result: WriteResult) -> None:
        """Dedup: replace stored versions that are not newer, insert new keys; count what happened."""
        target = self.qualified(info.table)
        same_key = " AND ".join(f"t.{quote(k)} = b.{quote(k)}" for k in info.row.primary_key)
        newer = not_newer(info.row)
        self.execute(
            f"CREATE OR REPLACE TEMP TABLE {HITS} AS SELECT t.rowid AS rid, b._ord AS ord, {newer} AS newer "
            f"FROM {target} AS t JOIN {STAGE} AS b ON {same_key}"
        )
        columns = self._columns(info)
        same = " AND ".join(f"o.{quote(c.name)} IS NOT DISTINCT FROM b.{quote(c.name)}" for c in columns)
        wanted = ", ".join(quote(c.name) for c in columns)
        (matched, changed) = self.query(
            f"SELECT count(*), count(*) FILTER (WHERE newer AND NOT same) FROM ("
            f"SELECT h.ord, bool_and(h.newer) AS newer, bool_and({same}) AS same FROM {HITS} AS h "
            f"JOIN (SELECT rowid AS rid, {wanted} FROM {target} "
            f"WHERE rowid IN (SELECT rid FROM {HITS})) AS o "
            f"ON o.rid = h.rid JOIN {STAGE} AS b ON b._ord = h.ord GROUP BY h.ord)"
        )[0]
        if matched:
            self.execute(f"DELETE FROM {target} WHERE rowid IN (SELECT rid FROM {HITS} WHERE newer)")
            self.execute(
                f"INSERT INTO {target} ({self._names(info)}) {self._select(info)} "
                f"WHERE _ord NOT IN (SELECT ord FROM {HITS} WHERE NOT newer)"
            )
        else:
            self.execute(f"INSERT INTO {target} ({self._names(info)}) {self._select(info)}")
        self.execute(f"DROP TABLE IF EXISTS {HITS}")
        result.inserted = rows - int(matched)
        result.changed = int(changed)
        result.unchanged = int(matched) - int(changed)

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            self.remove_spool_directory()
            self._lock.release()
