"""Time formats, in one place: cursors as Klaviyo and Airbyte write them, our state format, and
the datetime literals of Klaviyo filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_time(value: str) -> datetime:
    """Parse a Klaviyo/Airbyte datetime (`T` or space, `Z`, `+00:00`, `+0000`, fractions);
    naive values are UTC. Raises ValueError."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_cursor(value: Any) -> datetime:
    """A record's cursor value; ValueError unless it is a datetime string."""
    if not isinstance(value, str):
        raise ValueError(f"cursor {value!r} is not a string")
    return parse_time(value)


def maybe_time(value: Any) -> datetime | None:
    """A datetime string as a datetime; None when the value is missing or not a datetime."""
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def format_time(value: datetime) -> str:
    """Our state format: ISO-8601 in UTC with `+00:00`."""
    return value.astimezone(UTC).isoformat()


def filter_time(value: datetime) -> str:
    """A datetime literal for Klaviyo filters (bare, UTC, `Z`; fractions only when present)."""
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


def iso_datetime(value: Any) -> Any:
    """A datetime Klaviyo wrote with a space instead of `T` (2026) as ISO-8601 with offset
    (`2024-09-03 10:00:00` -> `2024-09-03T10:00:00+00:00`); anything else unchanged."""
    if not isinstance(value, str) or value[10:11] != " ":
        return value
    try:
        parsed = parse_time(value)
    except ValueError:
        return value
    return parsed.isoformat()


def normalize_datetimes(record: Any, path: tuple[str, ...]) -> None:
    """`iso_datetime` on the value(s) at `path` in a record, in place; `*` walks every key of an
    object or item of a list. Missing keys and other types are left alone."""
    if not path or record is None:
        return
    head, rest = path[0], path[1:]
    if head == "*":
        children = record.values() if isinstance(record, dict) else record if isinstance(record, list) else ()
        for child in children:
            normalize_datetimes(child, rest)
        return
    if not isinstance(record, dict) or head not in record:
        return
    if rest:
        normalize_datetimes(record[head], rest)
    else:
        record[head] = iso_datetime(record[head])
