"""Custom metrics: metrics combined from others, with filters on their properties
(`/api/custom-metrics`: one page, no filter, no sort). `advance` with `custom_metrics_updated` /
`custom_metrics_created`."""

from __future__ import annotations

from typing import Any

from klaviyo_simulator.model import Change, Row, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.seeded import TWO_YEARS, between, mix

# (name, aggregation, [(metric name, property filter or None, value property or None)])
CUSTOM: list[tuple[str, str, list[tuple[str, dict[str, Any] | None, str | None]]]] = [
    ("All revenue", "value", [("Placed Order", None, "$value"), ("Ordered Product", None, None)]),
    ("Email engagement", "count", [("Opened Email", None, None), ("Clicked Email", None, None)]),
    (
        "Big orders",
        "value",
        [("Placed Order", {"type": "numeric", "operator": "greater-than", "value": 100}, "$value")],
    ),
]


class CustomMetrics(RowKind):
    types = ("custom-metric",)
    requires = ("metric",)
    cursors = {"custom_metrics": ("custom-metric", "updated", "created")}

    def build(self, world: World) -> list[Row]:
        seed, now, start = world.seed, world.now, world.now - TWO_YEARS
        by_name = {m.attributes["name"]: m.id for m in self.store.records_view("metric")}
        rows = []
        for i, (name, aggregation, groups) in enumerate(CUSTOM):
            created = between(seed, 460, i, start, now - 3_600)
            metric_groups: list[dict[str, Any]] = []
            for metric, condition, value_property in groups:
                if metric not in by_name:
                    continue
                filters = [{"property": "$value", "filter": condition}] if condition else None
                metric_groups.append(
                    {
                        "metric_id": by_name[metric],
                        "metric_filters": filters,
                        "value_property": value_property,
                    }
                )
            rows.append(
                Row(
                    "custom-metric",
                    f"{mix(seed, 461, i):016x}{mix(seed, 462, i):016x}",
                    {
                        "name": name,
                        "created": iso_seconds(created),
                        "updated": iso_seconds(between(seed, 463, i, created, now)),
                        "definition": {"aggregation_method": aggregation, "metric_groups": metric_groups},
                    },
                    {"metrics": ("metric", sorted({g["metric_id"] for g in metric_groups}))},
                )
            )
        return rows

    def new_id(self, rtype: str, change: Change, k: int) -> str:
        return f"{mix(change.salt, 464, k):016x}{mix(change.salt, 465, k):016x}"
