"""Singer catalogs: the discovered one (`--discover`) and reading a selected one (`--catalog`).

Metadata follows the Singer spec: on the stream's breadcrumb `[]`, `table-key-properties`,
`valid-replication-keys`, `selected-by-default` (true but for the Reporting API streams: a
catalog passed on untouched reads what `sync` and the dlt face read by default, the report
streams being opt-in for their 2/min tier and daily quota; Meltano's `*.*` select picks them
too); on each top-level property, `inclusion` (`automatic` for the key and the cursor,
`available` otherwise). A selected catalog says `selected` and `replication-method` (INCREMENTAL
by default, or FULL_TABLE) per stream; the old `schema.selected` flag and the entry's
`replication_method` are read too. Properties set to `selected: false` are dropped from SCHEMA
and RECORD messages, except automatic ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from klaviyo_source.engine.contract import StreamSelection
from klaviyo_source.errors import ConfigError
from klaviyo_source.streams.schema import load_schema
from klaviyo_source.streams.table import STREAMS, Stream, catalog_row

INCREMENTAL = "INCREMENTAL"
FULL_TABLE = "FULL_TABLE"


@dataclass(frozen=True)
class SingerStream:
    """One selected stream: how to read it and which top-level properties to drop."""

    name: str
    incremental: bool
    dropped: frozenset[str] = frozenset()

    @property
    def selection(self) -> StreamSelection:
        return StreamSelection(name=self.name, incremental=self.incremental)


def stream_schema(name: str, dropped: frozenset[str] = frozenset()) -> dict[str, Any]:
    schema = dict(load_schema(name))
    schema.pop("$schema", None)
    if dropped:
        schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in dropped}
    return schema


def _cursor(row: Stream) -> list[str]:
    """The stream's replication key as a list (empty for streams without a cursor)."""
    return [row.cursor_field] if row.cursor_field is not None else []


def discovered_catalog() -> dict[str, Any]:
    """Every stream as a Singer catalog entry."""
    streams = []
    for row in STREAMS:
        schema = stream_schema(row.name)
        automatic = {*row.primary_key, *_cursor(row)}
        method = INCREMENTAL if row.cursor_field is not None else FULL_TABLE  # no cursor: read whole
        metadata: list[dict[str, Any]] = [
            {
                "breadcrumb": [],
                "metadata": {
                    "table-key-properties": list(row.primary_key),
                    "valid-replication-keys": _cursor(row),
                    "replication-method": method,
                    **({"replication-key": row.cursor_field} if row.cursor_field is not None else {}),
                    "selected-by-default": row.report is None,
                    "inclusion": "available",
                },
            }
        ]
        metadata += [
            {
                "breadcrumb": ["properties", prop],
                "metadata": {"inclusion": "automatic" if prop in automatic else "available"},
            }
            for prop in schema["properties"]
        ]
        streams.append(
            {
                "tap_stream_id": row.name,
                "stream": row.name,
                "schema": schema,
                "key_properties": list(row.primary_key),
                **({"replication_key": row.cursor_field} if row.cursor_field is not None else {}),
                "replication_method": method,
                "metadata": metadata,
            }
        )
    return {"streams": streams}


def _bad(detail: str) -> ConfigError:
    return ConfigError(f"Invalid Singer catalog: {detail}.")


def _metadata_by_breadcrumb(entry: dict[str, Any], where: str) -> dict[tuple[str, ...], dict[str, Any]]:
    raw = entry.get("metadata", [])
    if not isinstance(raw, list):
        raise _bad(f"{where}.metadata must be a list")
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("breadcrumb"), list):
            raise _bad(f"{where}.metadata entries need a 'breadcrumb' list")
        values = item.get("metadata", {})
        if not isinstance(values, dict):
            raise _bad(f"{where}.metadata 'metadata' must be an object")
        found[tuple(str(part) for part in item["breadcrumb"])] = values
    return found


def _is_selected(top: dict[str, Any], entry: dict[str, Any]) -> bool:
    if "selected" in top:
        return top["selected"] is True
    schema = entry.get("schema")
    if isinstance(schema, dict) and "selected" in schema:  # the pre-metadata convention
        return schema["selected"] is True
    return top.get("selected-by-default") is True


def _method(top: dict[str, Any], entry: dict[str, Any], where: str) -> str:
    method = top.get("replication-method", entry.get("replication_method", INCREMENTAL))
    if method not in (INCREMENTAL, FULL_TABLE):
        raise _bad(f"{where}: replication-method must be INCREMENTAL or FULL_TABLE, got {method!r}")
    return str(method)


def parse_catalog(raw: Any) -> tuple[list[SingerStream], list[str]]:
    """A selected Singer catalog -> (streams to read in catalog order, warnings)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("streams"), list):
        raise _bad("expected a JSON object with a 'streams' list")
    chosen: list[SingerStream] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw["streams"]):
        where = f"streams[{index}]"
        if not isinstance(entry, dict):
            raise _bad(f"{where} must be an object")
        name = entry.get("tap_stream_id", entry.get("stream"))
        if not isinstance(name, str):
            raise _bad(f"{where}.tap_stream_id is missing")
        try:
            row = catalog_row(name, seen)
        except LookupError as error:
            raise _bad(f"{where}: {error}") from None
        metadata = _metadata_by_breadcrumb(entry, where)
        top = metadata.get((), {})
        if not _is_selected(top, entry):
            continue
        method = _method(top, entry, where)
        key = top.get("replication-key", entry.get("replication_key"))
        if method == INCREMENTAL and key not in (None, row.cursor_field):
            warnings.append(
                f"Stream '{name}': replication-key {key!r} ignored; the cursor is '{row.cursor_field}'."
            )
        automatic = {*row.primary_key, *_cursor(row)}
        dropped = frozenset(
            crumb[1]
            for crumb, values in metadata.items()
            if len(crumb) == 2
            and crumb[0] == "properties"
            and values.get("selected") is False
            and crumb[1] not in automatic
        )
        chosen.append(SingerStream(name, method == INCREMENTAL, dropped))
    return chosen, warnings


def parse_singer_state(raw: Any) -> dict[str, Any]:
    """`{"bookmarks": {stream: our state}}` -> stream -> state (the engine validates each one)."""
    if raw is None or raw == {}:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError('Invalid Singer state: expected a JSON object such as {"bookmarks": {...}}.')
    bookmarks = raw.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        raise ConfigError("Invalid Singer state: 'bookmarks' must be an object of stream -> state.")
    for stream, state in bookmarks.items():
        if not isinstance(state, dict):
            raise ConfigError(f"Invalid Singer state: the bookmark of '{stream}' must be an object.")
    return dict(bookmarks)
