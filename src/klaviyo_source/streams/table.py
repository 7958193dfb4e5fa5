"""Every stream as one row of data.

Seeded with what the Airbyte catalog needs (name, cursor, primary key) in Airbyte's discover
order; the engine's fields (paths, params, partitioning, rate buckets, detail fetches) are added
to the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamRow:
    name: str
    cursor_field: str
    primary_key: tuple[str, ...] = ("id",)


STREAMS: tuple[StreamRow, ...] = (
    StreamRow("profiles", "updated"),
    StreamRow("global_exclusions", "updated"),
    StreamRow("events", "datetime"),
    StreamRow("events_detailed", "datetime"),
    StreamRow("email_templates", "updated"),
    StreamRow("metrics", "updated"),
    StreamRow("lists", "updated"),
    StreamRow("lists_detailed", "updated"),
    StreamRow("campaigns", "updated_at"),
    StreamRow("campaigns_detailed", "updated_at"),
    StreamRow("flows", "updated"),
)

STREAMS_BY_NAME: dict[str, StreamRow] = {row.name: row for row in STREAMS}
