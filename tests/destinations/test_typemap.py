"""JSON Schema -> column kinds, column naming, and value coercion."""

from __future__ import annotations

from datetime import UTC, datetime

from kit.dest_records import EVENT_SCHEMA, event
from klaviyo_source.destinations.typemap import (
    Column,
    column_values,
    columns_from_schema,
    discover_columns,
    kind_of,
)


def test_scalar_kinds() -> None:
    assert kind_of({"type": ["null", "string"]}) == "text"
    assert kind_of({"type": "string", "format": "date-time"}) == "timestamp"
    assert kind_of({"type": ["null", "string"], "format": "date"}) == "text"
    assert kind_of({"type": ["null", "integer"]}) == "bigint"
    assert kind_of({"type": ["null", "number"]}) == "double"
    assert kind_of({"type": ["boolean", "null"]}) == "boolean"


def test_nested_and_ambiguous_kinds_are_json() -> None:
    assert kind_of({"type": ["null", "object"], "properties": {}}) == "json"
    assert kind_of({"type": ["null", "array"], "items": {"type": "string"}}) == "json"
    assert kind_of({"type": ["null", "string", "integer"]}) == "json"
    assert kind_of({"anyOf": [{"type": "string"}, {"type": "integer"}]}) == "json"
    assert kind_of({}) == "json"


def test_columns_from_schema_order_and_names() -> None:
    columns = columns_from_schema(EVENT_SCHEMA, "datetime")
    names = [c.name for c in columns]
    assert names[:2] == ["id", "datetime"]
    # attributes.datetime is the cursor: one column, not two
    assert names.count("datetime") == 1
    assert {
        "timestamp",
        "uuid",
        "value",
        "is_test",
        "event_properties",
        "type",
        "relationships",
        "links",
    } <= set(names)
    kinds = {c.name: c.kind for c in columns}
    assert kinds["datetime"] == "timestamp"
    assert kinds["timestamp"] == "bigint"
    assert kinds["value"] == "double"
    assert kinds["is_test"] == "boolean"
    assert kinds["event_properties"] == "json"
    assert kinds["relationships"] == "json"


def test_attribute_shadowing_a_top_level_name_gets_a_prefix() -> None:
    schema = {
        "properties": {"id": {"type": "string"}, "attributes": {"properties": {"id": {"type": "string"}}}}
    }
    names = [c.name for c in columns_from_schema(schema, "updated")]
    assert "attributes_id" in names


def test_coercion_and_rejected_values() -> None:
    records = [
        {"attributes": {"n": 5, "t": "2024-01-02T03:04:05+00:00", "b": True}},
        {"attributes": {"n": "five", "t": "yesterday", "b": "yes"}},
        {"attributes": {"n": 7.0, "t": "2024-01-02T03:04:05Z", "b": None}},
    ]
    bigints, rejected = column_values(records, Column("n", "bigint", ("attributes", "n")))
    assert bigints == [5, None, 7] and rejected == 1
    stamps, rejected = column_values(records, Column("t", "timestamp", ("attributes", "t")))
    assert stamps == [
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        None,
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    ]
    assert rejected == 1
    booleans, rejected = column_values(records, Column("b", "boolean", ("attributes", "b")))
    assert booleans == [True, None, None] and rejected == 1
    texts, _ = column_values(records, Column("n", "text", ("attributes", "n")))
    assert texts == ["5", "five", "7.0"]
    as_json, _ = column_values([{"x": {"a": [1, 2**70]}}], Column("x", "json", ("x",)))
    assert as_json == ['{"a": [1, 1180591620717411303424]}']


def test_discover_columns_finds_new_keys_once() -> None:
    records = [event(1, brand_new=1), event(2, brand_new=2), {**event(3), "extra_top": {"k": 1}}]
    known = {c.name for c in columns_from_schema(EVENT_SCHEMA, "datetime")}
    found = discover_columns(records, known, "datetime")
    assert [(c.name, c.kind, c.path) for c in found] == [
        ("brand_new", "json", ("attributes", "brand_new")),
        ("extra_top", "json", ("extra_top",)),
    ]


def test_bigint_out_of_range_is_rejected_not_wrapped() -> None:
    values, rejected = column_values(
        [{"n": 2**63}, {"n": -(2**63)}, {"n": True}], Column("n", "bigint", ("n",))
    )
    assert values == [None, -(2**63), None] and rejected == 2
