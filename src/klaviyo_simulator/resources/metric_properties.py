"""The properties of each metric's events (`/api/metrics/{id}/metric-properties`: one page per
metric, no paging, no date to sync on). `advance` with `metric_properties_created` adds
properties to metrics (a new event property seen)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from klaviyo_simulator.model import Change, Page, Row, World
from klaviyo_simulator.query import Listing
from klaviyo_simulator.resources.base import RowKind, page_rows
from klaviyo_simulator.seeded import mix

if TYPE_CHECKING:
    from klaviyo_simulator.store import Store

# The properties the simulator's events carry (resources/events.py), per kind of metric.
_EVENT_ID = [("$event_id", "String")]
_EMAIL = [  # sends.py: flow messages add $flow
    ("Campaign Name", "String"),
    ("Subject", "String"),
    ("Email Domain", "String"),
    ("$message", "String"),
    ("$value", "Number"),
    ("$flow", "String"),
]
_ORDER = [("$value", "Number"), ("ItemNames", "List"), ("Items", "List"), ("Currency", "String")]
_PROPERTIES: dict[str, list[tuple[str, str]]] = {
    "Viewed Product": [
        ("$value", "Number"),
        ("ProductName", "String"),
        ("ProductID", "Number"),
        ("Price", "Number"),
        ("URL", "String"),
    ],
    "Placed Order": [*_ORDER, ("OrderId", "String")],
    "Ordered Product": _ORDER,
    "Checkout Started": _ORDER,
    "Added to Cart": _ORDER,
    "Clicked Email": [*_EMAIL, ("URL", "String")],
    "Received SMS": [
        ("Message Name", "String"),
        ("$message", "String"),
        ("Carrier Deliverability Status", "String"),
    ],
    "Clicked SMS": [("Message Name", "String"), ("$message", "String")],
    "Active on Site": [("page", "String"), ("$is_session_activity", "Boolean"), ("os", "String")],
    "Fulfilled Order": [],  # no events yet: no properties
    "Viewed Form": [("form_id", "String"), ("form_version_id", "String")],
    "Submitted Form": [("form_id", "String"), ("form_version_id", "String")],
}
NEW_PROPERTIES = [("Coupon Code", "String"), ("Discount", "Number"), ("Source", "String"), ("Tags", "List")]


def _label(name: str) -> str:
    return name.lstrip("$").replace("_", " ").title()


def property_id(*parts: int) -> str:
    return f"{mix(*parts):016x}{mix(*parts, 1):016x}"


class MetricProperties(RowKind):
    types = ("metric-property",)
    requires = ("metric",)

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.advance_keys = frozenset({"metric_properties_created"})

    def build(self, world: World) -> list[Row]:
        rows = []
        for i, metric in enumerate(self.store.records_view("metric")):
            name = metric.attributes["name"]
            default = _EMAIL if "Email" in name or name == "Unsubscribed" else []
            props = _PROPERTIES.get(name, default)
            if props or name not in _PROPERTIES:  # metrics without events have no properties
                props = _EVENT_ID + props
            for k, (prop, inferred) in enumerate(props):
                attributes = {"label": _label(prop), "property": prop, "inferred_type": inferred}
                rows.append(
                    Row(
                        "metric-property",
                        property_id(world.seed, 400, i, k),
                        attributes,
                        {"metric": ("metric", metric.id)},
                    )
                )
        return rows

    def page(self, rtype: str, listing: Listing) -> Page:
        rows = self.store.records_view(rtype)
        if listing.parent is not None:
            rows = [r for r in rows if r.related_ids("metric") == [listing.parent.id]]
        return page_rows(rows, listing, listing.conditions)

    def advance(self, change: Change) -> dict[str, Any]:
        n = change.count("metric_properties_created")
        metrics = self.store.records_view("metric")
        if not n or not metrics:
            return {}
        ids = []
        for k in range(n):
            metric = metrics[mix(change.salt, 401, k) % len(metrics)]
            prop, inferred = NEW_PROPERTIES[k % len(NEW_PROPERTIES)]
            label = f"{_label(prop)} {change.number}.{k}"
            new_id = property_id(change.salt, 402, k)
            attributes = {
                "label": label,
                "property": f"{prop} {change.number}.{k}",
                "inferred_type": inferred,
            }
            self.store.add_row(Row("metric-property", new_id, attributes, {"metric": ("metric", metric.id)}))
            ids.append(new_id)
        return {"metric_properties_created": ids}
