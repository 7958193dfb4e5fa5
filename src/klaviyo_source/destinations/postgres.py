"""Postgres destination: COPY batches in one transaction with the state they cover.

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
    SqlDestination,
    TableInfo,
    quote,
)
from klaviyo_source.destinations.typemap import EXTRACTED_AT, SYNC_ID, Column
from klaviyo_source.errors import ConfigError
from klaviyo_source.streams.table import Stream

_LOCK_KEY = "hashtext('klaviyo-source:' || %s)"


def _without_nul(value: Any) -> Any:
    """Postgres text and jsonb cannot hold NUL characters; drop them."""
    if isinstance(value, str) and ("\x00" in value or "\\u0000" in value):
        return value.replace("\x00", "").replace("\\u0000", "")
    return value


class PostgresDestination(SqlDestination):
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
