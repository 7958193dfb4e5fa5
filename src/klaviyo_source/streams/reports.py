"""Report queries and records: the request bodies and row builders of the Reporting API streams.

Every record carries `date`: the midnight that starts its day in the account's timezone, with
that timezone's offset (Klaviyo reads a timeframe in the account's timezone and ignores offsets).
Values reports are asked one day at a time, so each aggregate is one day's; series reports give
one record per day and group (Airbyte 3.x's flow_series_reports shape: `groupings`, scalar
`statistics`, the grouping fields copied to the top level and the conversion metric).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from klaviyo_source.streams.records import Record

NO_VALUES_DATA = "does not support querying for values data"


@dataclass(frozen=True)
class ReportQuery:
    """One request of a report stream: whole days [first, last] of one partition."""

    first: date
    last: date
    zone: ZoneInfo
    statistics: tuple[str, ...]  # what the stream's schema lists (the spec's enum)
    metric_id: str = ""  # the partition's conversion metric (or aggregated metric)
    interval: str | None = None  # a series' interval ("daily"), None for values reports
    measurements: tuple[str, ...] = ()
    by: tuple[str, ...] = ()

    def midnight(self, day: date) -> str:
        """The record's `date`: local midnight with its offset."""
        return datetime.combine(day, time(), self.zone).isoformat()

    def timeframe(self) -> dict[str, str]:
        return {"start": f"{self.first.isoformat()}T00:00:00", "end": f"{self.last.isoformat()}T23:59:59"}


def message_query(query: ReportQuery) -> dict[str, Any]:
    """Campaign and flow reports: every statistic, one conversion metric (series: daily)."""
    attributes: dict[str, Any] = {
        "statistics": list(query.statistics),
        "timeframe": query.timeframe(),
        "conversion_metric_id": query.metric_id,
    }
    if query.interval:
        attributes["interval"] = query.interval
    return attributes


def series_query(group_by: tuple[str, ...]) -> Callable[[ReportQuery], dict[str, Any]]:
    def body(query: ReportQuery) -> dict[str, Any]:
        attributes: dict[str, Any] = {"statistics": list(query.statistics), "timeframe": query.timeframe()}
        if query.interval:
            attributes["interval"] = query.interval
        if group_by:
            attributes["group_by"] = list(group_by)
        return attributes

    return body


def aggregate_query(query: ReportQuery) -> dict[str, Any]:
    """Metric aggregates: a datetime range in the account's timezone, daily."""
    after = query.last + timedelta(days=1)
    attributes: dict[str, Any] = {
        "metric_id": query.metric_id,
        "measurements": list(query.measurements),
        "interval": "day",
        "filter": [
            f"greater-or-equal(datetime,{query.first.isoformat()}T00:00:00)",
            f"less-than(datetime,{after.isoformat()}T00:00:00)",
        ],
        "timezone": query.zone.key,
        "page_size": 500,
    }
    if query.by:
        attributes["by"] = list(query.by)
    return attributes


def _results(document: Record) -> list[Record]:
    attributes = (document.get("data") or {}).get("attributes") or {}
    results = attributes.get("results") or []
    return [r for r in results if isinstance(r, dict)]


def values_rows(fields: tuple[str, ...]) -> Callable[[Record, ReportQuery], list[Record]]:
    """One record per group of a one-day values report."""

    def rows(document: Record, query: ReportQuery) -> list[Record]:
        out = []
        for result in _results(document):
            groupings = result.get("groupings") or {}
            record: Record = {"groupings": groupings, "statistics": result.get("statistics") or {}}
            record.update({name: groupings.get(name) for name in fields})
            record["conversion_metric_id"] = query.metric_id
            record["date"] = query.midnight(query.first)
            out.append(record)
        return out

    return rows


def _days(stamps: list[Any], query: ReportQuery) -> list[date | None]:
    """The local day of each `date_times` entry (None outside the requested days)."""
    out: list[date | None] = []
    for stamp in stamps:
        try:
            day = datetime.fromisoformat(str(stamp)).date()
        except ValueError:
            day = None
        out.append(day if day is not None and query.first <= day <= query.last else None)
    return out


def series_rows(fields: tuple[str, ...]) -> Callable[[Record, ReportQuery], list[Record]]:
    """One record per day and group: each statistic's value at the day's index (null past the end)."""

    def rows(document: Record, query: ReportQuery) -> list[Record]:
        attributes = (document.get("data") or {}).get("attributes") or {}
        days = _days(list(attributes.get("date_times") or []), query)
        out = []
        for result in _results(document):
            groupings = result.get("groupings") or {}
            series = result.get("statistics") or {}
            for index, day in enumerate(days):
                if day is None:
                    continue
                stats = {
                    name: values[index] if isinstance(values, list) and index < len(values) else None
                    for name, values in series.items()
                }
                record: Record = {"groupings": groupings, "statistics": stats, "date": query.midnight(day)}
                record.update({name: groupings.get(name) for name in fields})
                if query.metric_id:
                    record["conversion_metric_id"] = query.metric_id
                out.append(record)
        return out

    return rows


def aggregate_rows(document: Record, query: ReportQuery) -> list[Record]:
    """One record per day, measurement and dimension values."""
    attributes = (document.get("data") or {}).get("attributes") or {}
    days = _days(list(attributes.get("dates") or []), query)
    out = []
    for row in attributes.get("data") or []:
        dimensions = [str(d) for d in row.get("dimensions") or []]
        for measurement, values in (row.get("measurements") or {}).items():
            for index, day in enumerate(days):
                if day is None or not isinstance(values, list) or index >= len(values):
                    continue
                out.append(
                    {
                        "date": query.midnight(day),
                        "metric_id": query.metric_id,
                        "measurement": measurement,
                        "dimensions": dimensions,
                        "dimension_key": "|".join(dimensions),
                        "value": values[index],
                    }
                )
    return out
