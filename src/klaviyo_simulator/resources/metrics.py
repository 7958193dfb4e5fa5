"""Metrics (`/api/metrics`): the 17 event types of the account with their integrations."""

from __future__ import annotations

from klaviyo_simulator.model import Row, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.seeded import TWO_YEARS, between, short_id

# (name, share of events, integration (name, category) or None for API-created metrics)
METRICS: list[tuple[str, float, tuple[str, str] | None]] = [
    ("Received Email", 0.30, ("Klaviyo", "Internal")),
    ("Opened Email", 0.18, ("Klaviyo", "Internal")),
    ("Clicked Email", 0.06, ("Klaviyo", "Internal")),
    ("Bounced Email", 0.01, ("Klaviyo", "Internal")),
    ("Unsubscribed", 0.005, ("Klaviyo", "Internal")),
    ("Received SMS", 0.04, ("Klaviyo", "Internal")),
    ("Clicked SMS", 0.01, ("Klaviyo", "Internal")),
    ("Active on Site", 0.16, ("API", "API")),
    ("Viewed Product", 0.12, ("Shopify", "eCommerce")),
    ("Added to Cart", 0.05, ("Shopify", "eCommerce")),
    ("Checkout Started", 0.03, ("Shopify", "eCommerce")),
    ("Placed Order", 0.025, ("Shopify", "eCommerce")),
    ("Ordered Product", 0.01, ("Shopify", "eCommerce")),
    ("Fulfilled Order", 0.0, ("Shopify", "eCommerce")),
    ("Subscribed to List", 0.0, None),
    ("Viewed Form", 0.02, ("Klaviyo", "Internal")),
    ("Submitted Form", 0.006, ("Klaviyo", "Internal")),
]
# Running share of events: an event's metric is `bisect_right(METRIC_CUMULATIVE, u * total)`.
METRIC_CUMULATIVE = [sum(m[1] for m in METRICS[: i + 1]) for i in range(len(METRICS))]


class Metrics(RowKind):
    types = ("metric",)
    cursors = {"metrics": ("metric", "updated", "created")}

    def build(self, world: World) -> list[Row]:
        seed, now, start = world.seed, world.now, world.now - TWO_YEARS
        rows = []
        for i, (name, _, integration) in enumerate(METRICS):
            created = between(seed, 50, i, start - 86_400 * 200, start)
            integ = None
            if integration:
                integ = {
                    "object": "integration",
                    "id": short_id(seed, 51, i),
                    "key": integration[0].lower(),
                    "name": integration[0],
                    "category": integration[1],
                }
            attributes = {
                "name": name,
                "created": iso_seconds(created),
                "updated": iso_seconds(between(seed, 53, i, created, now)),
                "integration": integ,
            }
            rows.append(Row("metric", short_id(seed, 52, i), attributes))
        return rows
