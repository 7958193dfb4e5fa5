"""The discovered catalog, and parsing/validation of a configured catalog.

A configured catalog is checked strictly: anything the connector cannot honour is a
`ConfigError` naming the stream and the field. Two fields are tolerated rather than rejected
because Airbyte itself ignores them for source-defined cursors and keys: a `cursor_field` or
`primary_key` that differs from ours (we always use the source-defined one; a warning is
returned so the caller can log it), and `destination_sync_mode` (the destination's business).
"""

from __future__ import annotations

from typing import Any

from klaviyo_source.engine.contract import StreamSelection
from klaviyo_source.engine.known import DELETED_AT
from klaviyo_source.errors import ConfigError
from klaviyo_source.streams.schema import load_schema
from klaviyo_source.streams.table import STREAMS, Stream, catalog_row

SYNC_MODES = ("full_refresh", "incremental")


def discovered_streams() -> list[dict[str, Any]]:
    """Every stream as an AirbyteStream dict, in Airbyte's discover order."""
    return [
        {
            "name": row.name,
            "json_schema": _with_deletions(row, load_schema(row.name)),
            "supported_sync_modes": list(SYNC_MODES),
            **_cursor_fields(row),
            "source_defined_primary_key": [[key] for key in row.primary_key],
            "is_resumable": True,
        }
        for row in STREAMS
    ]


def _with_deletions(row: Stream, schema: dict[str, Any]) -> dict[str, Any]:
    """Streams whose deleted records are detected declare Airbyte's `_ab_cdc_deleted_at` (set on
    deletion records, which carry only the primary key and the cursor; docs/airbyte.md)."""
    if row.reconcile is None and not row.replaces:
        return schema
    properties = {
        **schema.get("properties", {}),
        DELETED_AT: {"type": ["null", "string"], "format": "date-time"},
    }
    return {**schema, "properties": properties}


def _cursor_fields(row: Stream) -> dict[str, Any]:
    """A stream with a cursor declares it; one without has no source-defined cursor (its
    incremental mode re-reads every record)."""
    if row.cursor_field is None:
        return {"source_defined_cursor": False}
    return {"source_defined_cursor": True, "default_cursor_field": [row.cursor_field]}


def _catalog_error(detail: str) -> ConfigError:
    return ConfigError(f"Invalid configured catalog: {detail}.")


def parse_configured_catalog(raw: Any) -> tuple[list[StreamSelection], list[str]]:
    """Validate a ConfiguredAirbyteCatalog document -> (selections in catalog order, warnings)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("streams"), list):
        raise _catalog_error("expected a JSON object with a 'streams' list")
    selections: list[StreamSelection] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw["streams"]):
        where = f"streams[{index}]"
        if not isinstance(entry, dict):
            raise _catalog_error(f"{where} must be an object")
        stream = entry.get("stream")
        if not isinstance(stream, dict) or not isinstance(stream.get("name"), str):
            raise _catalog_error(f"{where}.stream.name is missing (expected the stream's name)")
        name = stream["name"]
        try:
            row = catalog_row(name, seen)
        except LookupError as error:
            raise _catalog_error(f"{where}: {error}") from None
        mode = entry.get("sync_mode")
        if mode not in SYNC_MODES:
            raise _catalog_error(
                f"{where} ({name}): sync_mode must be 'full_refresh' or 'incremental', got {mode!r}"
            )
        cursor = entry.get("cursor_field")
        if row.cursor_field is None and cursor not in (None, []):
            warnings.append(
                f"Stream '{name}': cursor_field {cursor!r} ignored; the stream has no cursor and "
                "incremental reads re-read every record."
            )
        elif cursor not in (None, [], [row.cursor_field]):
            warnings.append(
                f"Stream '{name}': cursor_field {cursor!r} ignored; the source-defined cursor "
                f"'{row.cursor_field}' is used."
            )
        primary_key = entry.get("primary_key")
        if primary_key not in (None, [], [list(row.primary_key)]):
            warnings.append(f"Stream '{name}': primary_key {primary_key!r} ignored; the key is 'id'.")
        selections.append(StreamSelection(name=name, incremental=mode == "incremental"))
    return selections, warnings
