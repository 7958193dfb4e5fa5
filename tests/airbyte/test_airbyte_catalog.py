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


AIRBYTE_2X = [
    "profiles", "global_exclusions", "events", "events_detailed", "email_templates", "metrics",
    "lists", "lists_detailed", "campaigns", "campaigns_detailed", "flows",
]  # fmt: skip


def test_discover_lists_airbyte_2x_streams_first_in_their_order_then_ours() -> None:
    streams = discovered_streams()
    assert [s["name"] for s in streams] == [row.name for row in STREAMS]
    assert [s["name"] for s in streams][: len(AIRBYTE_2X)] == AIRBYTE_2X
    assert len({s["name"] for s in streams}) == len(STREAMS)
    for stream, row in zip(streams, STREAMS, strict=True):
        assert stream["supported_sync_modes"] == ["full_refresh", "incremental"]
        if row.cursor_field is None:  # no cursor: both modes, incremental re-reads everything
            assert stream["source_defined_cursor"] is False and "default_cursor_field" not in stream
        else:
            assert stream["source_defined_cursor"] is True
            assert stream["default_cursor_field"] == [row.cursor_field]
        assert stream["source_defined_primary_key"] == [[key] for key in row.primary_key]
        assert stream["is_resumable"] is True
        props = stream["json_schema"]["properties"]
        assert set(row.primary_key) <= set(props) and (row.cursor_field is None or row.cursor_field in props)


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
        ({"streams": [configured("charges")]}, "unknown stream 'charges'"),
        ({"streams": [configured("flows", "cdc")]}, "sync_mode must be"),
        ({"streams": [{"stream": {"name": "flows"}}]}, "sync_mode must be"),
        ({"streams": [configured("flows"), configured("flows")]}, "listed twice"),
    ],
)
def test_bad_catalogs_are_config_errors(document: Any, expected: str) -> None:
    with pytest.raises(ConfigError, match="Invalid configured catalog") as raised:
        parse_configured_catalog(document)
    assert expected in raised.value.message
