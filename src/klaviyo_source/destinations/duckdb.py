"""DuckDB destination: Arrow batches inserted in one transaction with the state they cover."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from klaviyo_source.destinations.base import (
    DestinationBusyError,
    DestinationSpec,
    SqlDestination,
    TableInfo,
    quote,
)
from klaviyo_source.destinations.lock import FileLock
from klaviyo_source.destinations.typemap import EXTRACTED_AT, SYNC_ID, Column, Kind

ARROW_TYPES: dict[Kind, pa.DataType] = {
    "text": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "double": pa.float64(),
    "bigint": pa.int64(),
    "boolean": pa.bool_(),
    "json": pa.string(),
}
_ARROW_VIEW = "_klaviyo_arrow"


class DuckDBDestination(SqlDestination):
    dialect = "duckdb"
    placeholder = "?"

    def __init__(self, spec: DestinationSpec, sync_id: str) -> None:
        super().__init__(spec, sync_id)
        path = Path(spec.target).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(path.with_name(path.name + ".lock"))
        self._lock.acquire(spec.display)
        try:
            self.con = duckdb.connect(str(path))
        except duckdb.IOException as error:
            self._lock.release()
            if "lock" in str(error).lower():
                raise DestinationBusyError(
                    f"{spec.display} is open in another process; close it and run again."
                ) from None
            raise
        self.con.execute("SET TimeZone = 'UTC'")
        # DuckDB's default cache is 80% of RAM; a sync should stay small next to other programs.
        self.con.execute(f"SET memory_limit = '{spec.memory_limit}'")
        self.setup()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        result = self.con.execute(sql, list(params)).fetchall()
        # DML returns one row holding the number of changed rows; DDL returns none.
        return int(result[0][0]) if result and isinstance(result[0][0], int) else 0

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(params)).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.con.begin()
        try:
            yield
        except BaseException:
            self.con.rollback()
            raise
        self.con.commit()

    def _arrow(
        self, columns: list[Column], values: dict[str, list[Any]], extracted: list[datetime]
    ) -> pa.Table:
        arrays = [pa.array(values[c.name], type=ARROW_TYPES[c.kind]) for c in columns]
        arrays.append(pa.array(extracted, type=ARROW_TYPES["timestamp"]))
        arrays.append(pa.array([self.sync_id] * len(extracted), type=pa.string()))
        return pa.Table.from_arrays(arrays, names=[c.name for c in columns] + [EXTRACTED_AT, SYNC_ID])

    def load(
        self, target: str, columns: list[Column], values: dict[str, list[Any]], extracted: list[datetime]
    ) -> None:
        names = ", ".join([quote(c.name) for c in columns] + [quote(EXTRACTED_AT), quote(SYNC_ID)])
        self.con.register(_ARROW_VIEW, self._arrow(columns, values, extracted))
        try:
            self.con.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM {_ARROW_VIEW}")
        finally:
            self.con.unregister(_ARROW_VIEW)

    @contextmanager
    def staged(
        self, info: TableInfo, columns: list[Column], values: dict[str, list[Any]], extracted: list[datetime]
    ) -> Iterator[str]:
        """The Arrow batch itself, registered as a view: DuckDB joins it without copying it first."""
        self.con.register(_ARROW_VIEW, self._arrow(columns, values, extracted))
        try:
            yield _ARROW_VIEW
        finally:
            self.con.unregister(_ARROW_VIEW)

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            self._lock.release()
