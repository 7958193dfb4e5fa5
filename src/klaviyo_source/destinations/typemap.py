"""From a stream's JSON Schema to typed table columns, and from record values to column values.

A table has `id`, the cursor, one column per top-level attribute (`attributes.*`), one per other
top-level key (`type`, `links`, `relationships`, ...), and the bookkeeping columns. Scalars get a
real type; objects, arrays and anything ambiguous are stored as JSON. Names are deterministic so
that a key seen for the first time in the data always lands in the same column.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from klaviyo_source.times import maybe_time

Kind = Literal["text", "timestamp", "double", "bigint", "boolean", "json"]

SQL_TYPES: dict[str, dict[Kind, str]] = {
    "duckdb": {
        "text": "VARCHAR",
        "timestamp": "TIMESTAMPTZ",
        "double": "DOUBLE",
        "bigint": "BIGINT",
        "boolean": "BOOLEAN",
        "json": "JSON",
    },
    "postgres": {
        "text": "text",
        "timestamp": "timestamp with time zone",
        "double": "double precision",
        "bigint": "bigint",
        "boolean": "boolean",
        "json": "jsonb",
    },
}

# Database type names (lower case, as information_schema reports them) back to kinds.
KIND_OF_SQL_TYPE: dict[str, Kind] = {
    "varchar": "text",
    "text": "text",
    "character varying": "text",
    "timestamp with time zone": "timestamp",
    "timestamptz": "timestamp",
    "double": "double",
    "double precision": "double",
    "bigint": "bigint",
    "boolean": "boolean",
    "json": "json",
    "jsonb": "json",
}

EXTRACTED_AT = "_extracted_at"
SYNC_ID = "_sync_id"
BOOKKEEPING = (EXTRACTED_AT, SYNC_ID)
# Top-level keys an attribute may not shadow; such attributes get an `attributes_` prefix.
_TOP_LEVEL_NAMES = frozenset({"id", "type", "links", "relationships", "attributes", *BOOKKEEPING})
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Column:
    """One table column: where its value lives in a record, and its kind."""

    name: str
    kind: Kind
    path: tuple[str, ...]  # ("id",) or ("attributes", "email")


def kind_of(node: Mapping[str, Any] | None) -> Kind:
    """The column kind for one JSON Schema property."""
    if not node or "anyOf" in node or "oneOf" in node:
        return "json"
    declared = node.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    non_null = [t for t in types if t != "null"]
    if len(non_null) != 1:
        return "json"
    match non_null[0]:
        case "string":
            return "timestamp" if node.get("format") == "date-time" else "text"
        case "integer":
            return "bigint"
        case "number":
            return "double"
        case "boolean":
            return "boolean"
        case _:
            return "json"


def column_name(path: tuple[str, ...], cursor_field: str | None) -> str | None:
    """The column a record path lands in; None when it duplicates another column."""
    if len(path) == 1:
        return path[0]
    key = path[1]
    if key == cursor_field:
        return None  # the record's top-level cursor is a copy of this attribute
    return f"attributes_{key}" if key in _TOP_LEVEL_NAMES else key


def columns_from_schema(schema: Mapping[str, Any], cursor_field: str | None) -> list[Column]:
    """Columns for a stream, in schema order: id, cursor (if any), attributes, other top-level keys."""
    properties: Mapping[str, Any] = schema.get("properties") or {}
    columns = [Column("id", "text", ("id",))]
    if cursor_field is not None:
        columns.append(Column(cursor_field, "timestamp", (cursor_field,)))
    attributes: Mapping[str, Any] = (properties.get("attributes") or {}).get("properties") or {}
    for key, node in attributes.items():
        name = column_name(("attributes", key), cursor_field)
        if name is not None:
            columns.append(Column(name, kind_of(node), ("attributes", key)))
    for key, node in properties.items():
        if key not in ("id", cursor_field, "attributes"):
            columns.append(Column(key, kind_of(node), (key,)))
    return _unique(columns)


def discover_columns(
    records: Iterable[Mapping[str, Any]], known: set[str], cursor_field: str | None
) -> list[Column]:
    """Keys present in the data that have no column yet; they become JSON columns."""
    records = list(records)
    top_keys: set[str] = set().union(*(record.keys() for record in records))
    attributes = [record.get("attributes") for record in records]
    attribute_keys: set[str] = set().union(*(a.keys() for a in attributes if isinstance(a, Mapping)))
    found: dict[str, Column] = {}
    for attribute in sorted(attribute_keys):
        name = column_name(("attributes", attribute), cursor_field)
        if name is not None and name not in known and name not in found:
            found[name] = Column(name, "json", ("attributes", attribute))
    for key in sorted(top_keys - {"attributes"}):
        if key not in known and key not in found:
            found[key] = Column(key, "json", (key,))
    return list(found.values())


def _unique(columns: list[Column]) -> list[Column]:
    seen: set[str] = set()
    out = []
    for column in columns:
        if column.name not in seen and column.name not in BOOKKEEPING:
            seen.add(column.name)
            out.append(column)
    return out


def _json(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits
        return json.dumps(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) or value is None else _json(value)


def _timestamp(value: Any) -> datetime | None:
    return maybe_time(value)


def _bigint(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
        return value
    return None


def _double(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _boolean(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


COERCE: dict[Kind, Any] = {
    "text": _text,
    "timestamp": _timestamp,
    "double": _double,
    "bigint": _bigint,
    "boolean": _boolean,
    "json": _json,
}


def column_values(
    records: Sequence[Mapping[str, Any]],
    column: Column,
    attributes: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[list[Any], int]:
    """One column's values for a batch, and how many non-null values did not fit its kind.
    `attributes`: each record's `attributes` object (or {}), when the caller already has them."""
    if len(column.path) == 1:
        key = column.path[0]
        raw = [record.get(key) for record in records]
    elif attributes is not None and column.path[0] == "attributes":
        inner = column.path[1]
        raw = [a.get(inner) for a in attributes]
    else:
        outer, inner = column.path
        raw = [(record.get(outer) or {}).get(inner) for record in records]
    # The common case (the value already has the right Python type) skips the function call.
    match column.kind:
        case "text":
            return [v if v.__class__ is str or v is None else _json(v) for v in raw], 0
        case "json":
            dumps = orjson.dumps
            try:
                return [None if v is None else dumps(v).decode() for v in raw], 0
            except TypeError:  # an integer beyond 64 bits somewhere: take the careful path
                return [None if v is None else _json(v) for v in raw], 0
        case "bigint":
            low, high = _INT64
            values = [
                v if v is None or (v.__class__ is int and low <= v <= high) else _bigint(v) for v in raw
            ]
        case "boolean":
            values = [v if v.__class__ is bool or v is None else None for v in raw]
        case _:
            coerce = COERCE[column.kind]
            values = [None if v is None else coerce(v) for v in raw]
    rejected = sum(
        1 for before, after in zip(raw, values, strict=True) if after is None and before is not None
    )
    return values, rejected
