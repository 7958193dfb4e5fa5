"""Synthetic records and a stream schema shaped like Klaviyo's (for destination tests and the bench)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from klaviyo_source.destinations.base import SqlDestination
from klaviyo_source.streams.table import STREAMS_BY_NAME

OpenDestination = Callable[..., SqlDestination]  # the `open_destination` fixture

EVENTS = STREAMS_BY_NAME["events"]

EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": True,
    "properties": {
        "type": {"type": ["null", "string"]},
        "id": {"type": "string"},
        "datetime": {"type": ["null", "string"], "format": "date-time"},
        "attributes": {
            "type": ["null", "object"],
            "additionalProperties": True,
            "properties": {
                "timestamp": {"type": ["null", "integer"]},
                "datetime": {"type": ["null", "string"], "format": "date-time"},
                "uuid": {"type": ["null", "string"]},
                "value": {"type": ["null", "number"]},
                "is_test": {"type": ["null", "boolean"]},
                "event_properties": {"type": ["null", "object"], "additionalProperties": True},
            },
        },
        "relationships": {"type": ["null", "object"], "additionalProperties": True},
        "links": {"type": ["null", "object"], "additionalProperties": True},
    },
}

BASE_TIME = datetime(2024, 9, 3, 10, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def event(number: int, at: datetime | None = None, **attributes: Any) -> dict[str, Any]:
    """An event record as the engine hands it over (JSON:API resource + top-level cursor copy)."""
    moment = at or BASE_TIME + timedelta(seconds=number)
    return {
        "type": "event",
        "id": f"EV{number:08d}",
        "datetime": iso(moment),
        "attributes": {
            "timestamp": int(moment.timestamp()),
            "datetime": iso(moment),
            "uuid": f"uuid-{number}",
            "value": number * 1.5,
            "is_test": number % 2 == 0,
            "event_properties": {"$value": number, "items": ["a", "b"], "$event_id": str(number)},
            **attributes,
        },
        "relationships": {
            "metric": {"data": {"type": "metric", "id": f"M{number % 7}"}},
            "profile": {"data": {"type": "profile", "id": f"P{number % 100}"}},
        },
        "links": {"self": f"https://a.klaviyo.com/api/events/EV{number:08d}/"},
    }
