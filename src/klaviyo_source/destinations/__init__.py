"""Destinations for the standalone sync: DuckDB (default) and Postgres.

`open_destination(url, sync_id)` parses a destination URL, takes the destination's lock and
returns a `SqlDestination`; `DestinationSink` adapts it to the engine's Sink.
"""

from __future__ import annotations

from klaviyo_source.destinations.base import DestinationSpec, SqlDestination, parse_destination


def open_destination(url_or_spec: str | DestinationSpec, sync_id: str) -> SqlDestination:
    """Connect, lock (DestinationBusyError when another sync holds it) and create the schema."""
    spec = parse_destination(url_or_spec) if isinstance(url_or_spec, str) else url_or_spec
    if spec.kind == "postgres":
        from klaviyo_source.destinations.postgres import PostgresDestination

        return PostgresDestination(spec, sync_id)
    from klaviyo_source.destinations.duckdb import DuckDBDestination

    return DuckDBDestination(spec, sync_id)
