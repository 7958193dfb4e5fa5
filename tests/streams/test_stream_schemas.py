"""The committed stream schemas: generated from the vendored OpenAPI spec, valid, Airbyte-friendly."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

from klaviyo_source.streams.schema import load_schema
from klaviyo_source.streams.table import STREAMS

ROOT = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_schemas", ROOT / "tools" / "gen_schemas.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_schemas_equal_the_generator_output() -> None:
    outputs = generator().build_all()
    assert sorted(outputs) == sorted(row.name for row in STREAMS)
    for name, text in outputs.items():
        committed = (ROOT / "src" / "klaviyo_source" / "streams" / "schemas" / f"{name}.json").read_text()
        assert committed == text, f"{name}.json is stale: run python tools/gen_schemas.py"


def walk(node: dict[str, Any], path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for name, child in node.get("properties", {}).items():
        found += walk(child, f"{path}.{name}")
    if "items" in node:
        found += walk(node["items"], f"{path}[]")
    return found


@pytest.mark.parametrize("row", STREAMS, ids=lambda row: row.name)
def test_schema_is_draft7_and_airbyte_friendly(row: Any) -> None:
    schema = load_schema(row.name)
    jsonschema.Draft7Validator.check_schema(schema)
    text = json.dumps(schema)
    for keyword in ('"$ref"', '"allOf"', '"oneOf"', '"anyOf"', '"not"'):
        assert keyword not in text
    if row.cursor_field is not None:
        assert row.cursor_field in schema["properties"]
    else:  # Airbyte shows the description: incremental re-reads everything
        assert "incremental re-reads every record" in schema["description"]
    assert schema["required"] == list(row.primary_key)
    for key in row.primary_key:
        assert schema["properties"][key]["type"] == "string"
    for path, node in walk(schema):
        kinds = node.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "object" in kinds:
            assert node.get("additionalProperties") is True, path


EXTRAS = {
    "events_detailed": ["relationships", "metric", "data", "name"],
    "lists_detailed": ["attributes", "profile_count"],
    "campaigns": ["attributes", "channel"],
    "campaigns_detailed": ["campaign_messages"],
    "global_exclusions": ["attributes", "subscriptions", "email", "marketing", "suppressions"],
    "profiles": ["attributes", "predictive_analytics"],
}


@pytest.mark.parametrize(("stream", "path"), EXTRAS.items())
def test_stream_extras_are_declared(stream: str, path: list[str]) -> None:
    node = load_schema(stream)
    for key in path:
        node = node["properties"][key]
    assert node.get("type")


def test_schemas_accept_real_world_variations() -> None:
    validator = jsonschema.Draft7Validator(load_schema("profiles"))
    record = {
        "type": "profile",
        "id": "01J",
        "updated": "2024-01-01T00:00:00+00:00",
        "attributes": {
            "location": {"region": 10, "latitude": "40.7", "longitude": -74.0},
            "unknown": {"x": 1},
        },
        "segments": None,
    }
    assert list(validator.iter_errors(record)) == []
    assert list(jsonschema.Draft7Validator(load_schema("events")).iter_errors({"type": "event"})) != []
