"""DuckDB destination: each batch goes in as columns of raw JSON, typed in SQL, merged by key,
in one transaction with the state the batch covers.

A batch is a spool file (destinations/spool.py). A parse in Python (msgspec, nothing kept) checks
that every record's keys have columns; DuckDB's `read_json` then reads the whole file in its own
threads, text and JSON columns typed by the reader, the others as their values' JSON text. A batch
that read cannot take (an `attributes` that is not an object, keys differing only in case, JSON
DuckDB refuses, a record over `MAX_OBJECT`) goes down the chunk path instead: msgspec splits each
record into raw values (destinations/rawbatch.py), handed over as tab-separated text that DuckDB's
CSV reader parses. Either way, a value that does not fit its column widens the column (`_widen`).
Dedup asks a Bloom filter of the table's key hashes (destinations/keyfilter.py) which rows may
repeat a stored or an earlier key: those few are staged and merged against the table (rowid
join), the rest are inserted at once, so a batch costs O(batch), not O(table). Memory stays
bounded: `memory_limit` (DuckDB spills beyond it) and `threads` are set explicitly, insertion order
is not preserved. Strings are stored zstd-compressed (cheaper to write than the default analysis).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from klaviyo_source.destinations.base import (
    DestinationBusyError,
    DestinationSpec,
    TableInfo,
    WriteMode,
    WriteResult,
    not_newer,
    quote,
)
from klaviyo_source.destinations.keyfilter import KeyFilter, build
from klaviyo_source.destinations.lock import FileLock
from klaviyo_source.destinations.rawbatch import EXTRACTED, ORD, RawChunk
from klaviyo_source.destinations.rawload import RAW, RawLoadDestination
from klaviyo_source.destinations.spool import SpoolFile
from klaviyo_source.destinations.typemap import (
    EXTRACTED_AT,
    SQL_TYPES,
    SYNC_ID,
    Column,
    Kind,
)

STAGE = "_klaviyo_batch"
HITS = "_klaviyo_hits"
SUSPECT = "_klaviyo_suspects"  # the _ord of its rows that may repeat a key
# Where a column goes when a value does not fit it (text and JSON hold anything).


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _string(value: str) -> str:
    """SQL: the content of a JSON string given as its JSON text (quotes sliced off when there is
    no escape to decode)."""
    return f"CASE WHEN NOT contains({value}, '\\') THEN {value}[2:-2] ELSE CAST({value} AS JSON) ->> '$' END"


def typed(kind: Kind, value: str) -> str:
    """SQL turning a JSON value into a column of `kind`: NULL for JSON null, and for a value that
    does not fit (`misfit` finds those first, so the column widens instead). `value` is the
    value's raw JSON text as VARCHAR."""
    match kind:
        case "text":  # a string's content; anything else as its JSON text
            return (
                f"CASE WHEN {value} = 'null' THEN NULL WHEN starts_with({value}, '\"') THEN "
                f"{_string(value)} ELSE CAST({value} AS JSON) ->> '$' END"
            )
        case "json":
            return f"CAST(CASE WHEN {value} <> 'null' THEN {value} END AS JSON)"
        case "timestamp":
            return f"CASE WHEN starts_with({value}, '\"') THEN TRY_CAST({_string(value)} AS TIMESTAMPTZ) END"
        case "bigint":  # an integer, or a number with an integral value (5.0, 1e3); quotes never cast
            number = f"TRY_CAST({value} AS DOUBLE)"
            return (
                f"coalesce(TRY_CAST({value} AS BIGINT), CASE WHEN NOT starts_with({value}, '\"') AND "
                f"{number} = floor({number}) AND abs({number}) < 9.2e18 "
                f"THEN TRY_CAST({number} AS BIGINT) END)"
            )
        case "double":
            return f"CASE WHEN NOT starts_with({value}, '\"') THEN TRY_CAST({value} AS DOUBLE) END"
        case "boolean":
            return f"CASE {value} WHEN 'true' THEN true WHEN 'false' THEN false END"
    raise ValueError(kind)


def misfit(kind: Kind, value: str) -> str:
    """SQL: a non-null value the column's type cannot hold exactly (a string in a number column,
    an integer beyond 64 bits, one a double would round, a date that is not one...)."""
    lost = f"({value} <> 'null' AND {typed(kind, value)} IS NULL)"
    if kind == "double":  # integers a double cannot hold exactly
        whole = f"TRY_CAST({value} AS HUGEINT)"
        return f"({lost} OR ({whole} IS NOT NULL AND abs({whole}) > 9007199254740992))"
    return lost


# Below DuckDB's default (122,880 rows) so that a batch (~14,000 events) spans full row groups:
# 17 % less wall time at 1,000,000 events for a file ~25 % larger (docs/performance.md).
ROW_GROUP_SIZE = 8192
_RESERVED_CATALOGS = frozenset({"memory", "temp", "system", "main"})

# The longest record the whole-spool read takes (DuckDB reserves twice this per reader thread);
# a longer one sends its batch down the chunk path.
MAX_OBJECT = 4 << 20
_FINAL = ("text", "json")  # kinds `read_json` types itself (a non-string as its JSON text for text)


class _Unreadable(Exception):
    """DuckDB's JSON reader refused the spool (the chunk path takes the batch instead)."""


def _value(index: int, column: Column, final: frozenset[int]) -> str:
    """SQL: the staged `_v<index>` as the column's type (already typed when in `final`)."""
    return f"_v{index}" if index in final else typed(column.kind, f"_v{index}")


class DuckDBDestination(RawLoadDestination):
    dialect = "duckdb"
    placeholder = "?"
    flush_bytes = 16 << 20  # the JSON of ~14,000 events (read in 8 MB chunks)
    idle_checkpoint_bytes = 1 << 20

    def __init__(self, spec: DestinationSpec, sync_id: str) -> None:
        super().__init__(spec, sync_id)
        self._filters: dict[str, KeyFilter] = {}  # table -> the keys it holds (dedup)
        path = Path(spec.target).expanduser()
        self._wal = path.with_name(path.name + ".wal")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(path.with_name(path.name + ".lock"))
        self._lock.acquire(spec.display)
        created = not path.exists()
        self.con = duckdb.connect()
        try:
            self._attach(path)
        except BaseException as error:
            self.con.close()
            self._lock.release()
            if isinstance(error, duckdb.IOException) and "lock" in str(error).lower():
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
            # Not at every commit: each checkpoint re-compresses the table's last row group (32MB
            # held less memory but cost twice the CPU at 1,000,000 events: docs/performance.md).
            self.con.execute("SET checkpoint_threshold = '256MB'")
            # zstd for every column it takes: a third of the checkpoint CPU of the default analysis
            # (dictionary/FSST) and a smaller file (docs/performance.md).
            self.con.execute("SET force_compression = 'zstd'")
            row = self.con.execute("SELECT current_database()").fetchone()
            self.catalog = str(row[0]) if row else "main"
            self.setup()
        except BaseException:
            self.con.close()
            self._lock.release()
            if created:  # a failed first open leaves nothing behind
                for leftover in (path, self._wal):
                    leftover.unlink(missing_ok=True)
            raise

    def _attach(self, path: Path) -> None:
        """The file as the connection's default catalog, named after it (`_db` added to a name
        DuckDB reserves), with row groups of ROW_GROUP_SIZE rows: a batch holds more than one, so
        DuckDB writes its rows to the file at commit instead of into the WAL first (and again at
        the checkpoint)."""
        name = path.stem if path.stem.lower() not in _RESERVED_CATALOGS else f"{path.stem}_db"
        self.con.execute(f"ATTACH {literal(str(path))} AS {quote(name)} (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
        self.con.execute(f"USE {quote(name)}")

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

    # --- the load path ---------------------------------------------------------------------------
    def _load_chunk(self, info: TableInfo, chunk: RawChunk) -> WriteResult:
        """One chunk of the batch (the path for records the whole-spool read cannot take)."""
        columns = self._columns(info)
        self._stage_raw(chunk.tsv([c.path for c in columns]), len(columns))
        return self._load_raw(info, chunk.rows, frozenset())

    def _write_whole(
        self, info: TableInfo, spool: SpoolFile, state: Mapping[str, Any] | None
    ) -> WriteResult | None:
        """The whole spool in one `read_json` (DuckDB's parser, in its threads, off the GIL), once
        a parse in Python has checked that every record's keys have columns. None (the chunk path
        instead) for records it cannot take: an `attributes` that is not an object, keys that
        differ only in case, JSON DuckDB refuses."""
        keys = self._known_keys(info, spool.path)
        if keys is None:
            return None
        if any(len({k.lower() for k in group}) < len(group) or "" in group for group in keys):
            return None
        top, attributes = keys
        known = {(k,) for k in top} | {("attributes", k) for k in attributes}
        columns = self._columns(info)
        staged = [(i, c) for i, c in enumerate(columns) if c.path in known]
        final = frozenset(i for i, c in staged if c.kind in _FINAL)
        try:
            with self.transaction():
                try:
                    self._stage_spool(spool.path, staged, final, len(columns))
                except duckdb.Error:
                    raise _Unreadable from None
                result = self._load_raw(info, spool.rows, final)
                if state is not None:
                    self._save_state(info.row.name, state)
        except _Unreadable:
            return None
        return result

    def _stage_spool(
        self, path: Path, staged: list[tuple[int, Column]], final: frozenset[int], count: int
    ) -> None:
        """The spool file as the raw table `_ord`, `_e`, `_v0`...: the `staged` columns (those the
        records have keys for; the other `_v<i>` of the `count` are NULL), text and JSON ones
        already typed by the reader (`final`), the others as their values' JSON text (typed in SQL
        after the misfit check)."""

        def field(column: Column) -> str:
            return f"{quote(column.path[-1])} {'VARCHAR' if column.kind == 'text' else 'JSON'}"

        fields = [field(c) for _, c in staged if len(c.path) == 1]
        inner = [field(c) for _, c in staged if len(c.path) == 2]
        if inner:
            fields.append(f"attributes STRUCT({', '.join(inner)})")
        record = f"STRUCT({', '.join(fields)})" if fields else "JSON"
        values: dict[int, str] = {}
        for index, column in staged:
            value = "r" if len(column.path) == 1 else "r.attributes"
            value = f"struct_extract({value}, {literal(column.path[-1])})"
            values[index] = value if index in final else f"CAST({value} AS VARCHAR)"
        selected = ", ".join(f"{values.get(i, 'NULL::VARCHAR')} AS _v{i}" for i in range(count))
        self.execute(
            f"CREATE OR REPLACE TEMP TABLE {RAW} AS SELECT o AS {ORD}, e AS {EXTRACTED}"
            f"{', ' if count else ''}{selected} FROM read_json({literal(str(path))}, "
            f"format = 'newline_delimited', maximum_object_size = {MAX_OBJECT}, "
            f"columns = {{o: 'BIGINT', e: 'BIGINT', r: {literal(record)}}})"
        )

    def _load_raw(self, info: TableInfo, rows: int, final: frozenset[int]) -> WriteResult:
        """The staged raw table's rows into the table: drifting values widen their columns, then
        the rows go in (dedup: the rows whose key the filter cannot clear are merged against the
        table). `final`: the columns the stage holds already typed."""
        columns = self._columns(info)
        try:
            if self._widen(info, columns):
                columns = self._columns(info)
            target = f"INSERT INTO {self.qualified(info.table)} ({self._names(info)})"
            suspects = self._suspects(info, columns, final) if info.mode is WriteMode.DEDUP else None
            if suspects is None:
                self.execute(f"{target} {self._typed(columns, final)}")
                return WriteResult(inserted=rows)
            self.execute(
                f"CREATE OR REPLACE TEMP TABLE {SUSPECT} AS SELECT unnest(?::BIGINT[]) AS o", [suspects]
            )
            clear = rows - len(suspects)
            if clear:
                self.execute(
                    f"{target} {self._typed(columns, final)} WHERE _ord NOT IN (SELECT o FROM {SUSPECT})"
                )
            staged = self._typed(columns, final, ordinal=True)
            self.execute(
                f"CREATE OR REPLACE TEMP TABLE {STAGE} AS {staged} WHERE _ord IN (SELECT o FROM {SUSPECT})"
            )
            self._newest_per_key(info)
            (merging,) = self.query(f"SELECT count(*) FROM {STAGE}")[0]
            result = WriteResult(inserted=clear)
            merged = WriteResult()
            self._merge(info, int(merging), merged)
            result.add(merged)
            self.execute(f"DROP TABLE IF EXISTS {STAGE}")
            self.execute(f"DROP TABLE IF EXISTS {SUSPECT}")
            return result
        finally:
            self.execute(f"DROP TABLE IF EXISTS {RAW}")

    def _stage_raw(self, data: bytes, values: int) -> None:
        """The chunk's tab-separated raw text as a temporary table (`_ord`, `_e`, `_v0`...)."""
        path = self.spool_directory() / "chunk.tsv"
        path.write_bytes(data)
        columns = ", ".join(
            [f"'{ORD}': 'BIGINT'", f"'{EXTRACTED}': 'BIGINT'"]
            + [f"'_v{i}': 'VARCHAR'" for i in range(values)]
        )
        self.execute(
            f"CREATE OR REPLACE TEMP TABLE {RAW} AS SELECT * FROM read_csv({literal(str(path))}, "
            "delim = '\t', quote = '', escape = '', header = false, auto_detect = false, "
            f"columns = {{{columns}}}, max_line_size = 1000000000, strict_mode = false)"
        )
        path.unlink()

    def _typed(self, columns: list[Column], final: frozenset[int], *, ordinal: bool = False) -> str:
        """SELECT of the raw chunk as the table's typed columns (+ `_ord` for staging)."""
        values = [f"{_value(i, c, final)} AS {quote(c.name)}" for i, c in enumerate(columns)]
        values += [
            f"make_timestamp({EXTRACTED})::TIMESTAMPTZ AS {quote(EXTRACTED_AT)}",
            f"{literal(self.sync_id)} AS {quote(SYNC_ID)}",
        ]
        return f"SELECT {'_ord, ' if ordinal else ''}{', '.join(values)} FROM {RAW}"

    def _misfit(self, kind: Kind, value: str) -> str:
        return misfit(kind, value)

    def _retype(self, table: str, column: str, wider: Kind) -> str:
        return f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {SQL_TYPES['duckdb'][wider]}"

    def _suspects(self, info: TableInfo, columns: list[Column], final: frozenset[int]) -> list[int] | None:
        """The `_ord`s of raw rows whose key the table may hold or the chunk repeats, or None when
        every key is certainly new; the filter learns the chunk's keys."""
        by_name = {c.name: i for i, c in enumerate(columns)}
        keys = ", ".join(_value(by_name[k], columns[by_name[k]], final) for k in info.row.primary_key)
        fetched = self.con.execute(f"SELECT _ord, hash({keys}) AS h FROM {RAW}").fetchnumpy()
        ords, hashes = fetched["_ord"], fetched["h"]
        known = self._filters[info.table]
        suspects = known.may_hold(hashes)
        unique, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
        if len(unique) < len(hashes):
            suspects |= counts[inverse] > 1
        known.add(hashes)
        return [int(o) for o in ords[suspects]] if suspects.any() else None

    def _before_batch(self, info: TableInfo, rows: int) -> None:
        """Dedup: make sure the key filter covers the table and has room for the batch's keys.
        It is (re)built from the committed table, outside the transaction: O(table) at each
        doubling of its capacity, so O(1) per key on the whole."""
        if info.mode is not WriteMode.DEDUP:
            return
        held = self._filters.get(info.table)
        if held is not None and held.count + rows <= held.capacity:
            return
        target = self.qualified(info.table)
        (count, last) = self.query(f"SELECT count(*), coalesce(max(rowid), -1) FROM {target}")[0]
        keys = ", ".join(quote(k) for k in info.row.primary_key)
        step = 1 << 20

        def chunks() -> Iterator[Any]:  # by rowid ranges: DuckDB skips the other row groups
            for start in range(0, int(last) + 1, step):
                sql = f"SELECT hash({keys}) AS h FROM {target} WHERE rowid >= ? AND rowid < ?"
                yield self.con.execute(sql, [start, start + step]).fetchnumpy()["h"]

        self._filters[info.table] = build(int(count) + rows, chunks)

    def _select(self, info: TableInfo) -> str:
        return f"SELECT {self._names(info)} FROM {STAGE}"

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

    def tidy(self) -> None:
        """A WAL of `idle_checkpoint_bytes` or more is checkpointed while the sink waits on the API,
        so that the final checkpoint at `close` (after the last page) has little left to write."""
        try:
            size = self._wal.stat().st_size
        except FileNotFoundError:
            return
        if size >= self.idle_checkpoint_bytes:
            self.con.execute("CHECKPOINT")

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            self.remove_spool_directory()
            self._lock.release()
