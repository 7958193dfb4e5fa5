"""Discovered catalog and configured-catalog validation."""

from __future__ import annotations

from typing import Any

import pytest

from klaviyo_source.airbyte.catalog import discovered_streams, parse_configured_catalog
from klaviyo_source.errors import ConfigError
from klaviyo_source.streams.table import STREAMS


def configured(name: str, mode: str = "incremental", **extra: Any) -> dict[str, Any]:
    return {
        "stream": {"name": name, "json_schema": {}},
        "sync_mode": mode,
        "destination_sync_mode": "append",
    } | extra


def test_discover_lists_the_eleven_streams_in_airbyte_order() -> None:
    streams = discovered_streams()
    assert [s["name"] for s in streams] == [row.name for row in STREAMS]
    assert len({s["name"] for s in streams}) == 11
    for stream, row in zip(streams, STREAMS, strict=True):
        assert stream["supported_sync_modes"] == ["full_refresh", "incremental"]
        assert stream["source_defined_cursor"] is True
        assert stream["default_cursor_field"] == [row.cursor_field]
        assert stream["source_defined_primary_key"] == [["id"]]
        assert stream["is_resumable"] is True
        props = stream["json_schema"]["properties"]
        assert "id" in props and row.cursor_field in props


def test_selections_keep_catalog_order_and_modes() -> None:
    selections, warnings = parse_configured_catalog(
        {"streams": [configured("metrics", "full_refresh"), configured("profiles")]}
    )
    assert [(s.name, s.incremental) for s in selections] == [("metrics", False), ("profiles", True)]
    assert warnings == []


def test_foreign_cursor_field_is_ignored_with_a_warning() -> None:
    selections, warnings = parse_configured_catalog(
        {"streams": [configured("events", cursor_field=["attributes", "timestamp"])]}
    )
    assert selections[0].name == "events"
    assert "datetime" in warnings[0]


def test_empty_catalog_selects_nothing() -> None:
    assert parse_configured_catalog({"streams": []}) == ([], [])


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], "'streams' list"),
        ({"streams": "profiles"}, "'streams' list"),
        ({"streams": [1]}, "streams[0] must be an object"),
        ({"streams": [{"sync_mode": "incremental"}]}, "streams[0].stream.name"),
        ({"streams": [configured("segments")]}, "unknown stream 'segments'"),
        ({"streams": [configured("flows", "cdc")]}, "sync_mode must be"),
        ({"streams": [{"stream": {"name": "flows"}}]}, "sync_mode must be"),
        ({"streams": [configured("flows"), configured("flows")]}, "listed twice"),
    ],
)
def test_bad_catalogs_are_config_errors(document: Any, expected: str) -> None:
    with pytest.raises(ConfigError, match="Invalid configured catalog") as raised:
        parse_configured_catalog(document)
    assert expected in raised.value.message
