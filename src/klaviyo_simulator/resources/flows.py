"""Flows with their flow actions and flow messages.

Serves `/api/flows`, `/api/flows/{id}/flow-actions` and `/api/flow-actions/{id}/flow-messages`;
also gives lists, segments and metrics their `flow-triggers` relationship.
"""

from __future__ import annotations

from typing import Any

from klaviyo_simulator.model import Change, Relationship, Row, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.resources.tags import some_tags
from klaviyo_simulator.seeded import TWO_YEARS, between, frac, mix, pick, short_id

FLOW_NAMES = ["Welcome Series", "Abandoned Cart", "Browse Abandonment", "Win-back", "Post-purchase"]
TRIGGER_TYPES = ["Metric", "Added to List", "Date Based", "Price Drop", "Low Inventory", "Unconfigured"]
FLOW_STATUSES = ["live", "live", "live", "manual", "draft"]
ACTION_STATUSES = ["live", "live", "manual", "draft", "disabled"]
TRIGGERED_TYPES = ("list", "segment", "metric")  # rows that get a `flow-triggers` relationship


def message_definition(seed: int, i: int, a: int, channel: str, template_ids: list[str]) -> dict[str, Any]:
    """A flow message's definition (email or SMS)."""
    if channel == "email":
        return {
            "id": short_id(seed, 120, i, a),
            "name": f"Email {a + 1}",
            "subject_line": "We saved your cart",
            "preview_text": "Come back",
            "from_email": "hello@shop.example.com",
            "from_label": "Example Shop",
            "template_id": pick(template_ids, seed, 121, i, a) if template_ids else None,
            "smart_sending_enabled": True,
            "transactional": False,
            "add_tracking_params": False,
        }
    return {
        "body": "Your cart misses you",
        "smart_sending_enabled": True,
        "transactional": False,
        "add_tracking_params": False,
    }


class Flows(RowKind):
    types = ("flow", "flow-action", "flow-message")
    requires = ("template", "metric", "list", "segment", "tag")
    cursors = {"flows": ("flow", "updated", "created")}

    def build(self, world: World) -> list[Row]:
        seed, now, start = world.seed, world.now, world.now - TWO_YEARS
        store = self.store
        template_ids = [t.id for t in store.records_view("template")]
        metric_ids = [m.id for m in store.records_view("metric")]
        list_ids = [r.id for r in store.records_view("list")]
        flows: list[Row] = []
        actions: list[Row] = []
        messages: list[Row] = []
        action_counter = 100_000
        for i in range(world.sizes.flows):
            created = between(seed, 110, i, start, now - 3600)
            trigger = pick(TRIGGER_TYPES, seed, 111, i)
            fid = short_id(seed, 112, i)
            action_ids: list[str] = []
            flow_updated = between(seed, 113, i, created, now)
            for a in range(2 + mix(seed, 114, i) % 5):
                action_counter += 1 + mix(seed, 115, i, a) % 50
                aid = str(action_counter)
                action_ids.append(aid)
                a_created = between(seed, 116, i * 100 + a, created, flow_updated)
                a_updated = between(seed, 117, i * 100 + a, a_created, flow_updated)
                kind = (
                    "time-delay" if a % 2 else pick(["send-email", "send-email", "send-sms"], seed, 118, i, a)
                )
                status = pick(ACTION_STATUSES, seed, 119, i, a)
                message_ids: list[str] = []
                if kind == "time-delay":
                    data: dict[str, Any] = {
                        "unit": "days",
                        "value": 1 + a,
                        "secondary_value": None,
                        "timezone": "profile",
                    }
                else:
                    channel = "email" if kind == "send-email" else "sms"
                    message_def = message_definition(seed, i, a, channel, template_ids)
                    data = {"message": message_def, "status": status}
                    m_rels: dict[str, Relationship] = {"flow-action": ("flow-action", aid)}
                    if channel == "email" and template_ids:
                        m_rels["template"] = ("template", message_def["template_id"])
                    mid = short_id(seed, 120, i, a)
                    message_ids.append(mid)
                    message_attributes = {
                        "channel": channel,
                        "created": iso_seconds(a_created),
                        "updated": iso_seconds(a_updated),
                        "definition": message_def,
                    }
                    hidden = {"name": message_def.get("name", f"SMS {a + 1}")}
                    messages.append(Row("flow-message", mid, message_attributes, m_rels, hidden))
                definition = {"id": aid, "type": kind, "links": {"next": None}, "data": data}
                actions.append(
                    Row(
                        "flow-action",
                        aid,
                        {
                            "created": iso_seconds(a_created),
                            "updated": iso_seconds(a_updated),
                            "definition": definition,
                        },
                        {"flow": ("flow", fid), "flow-messages": ("flow-message", message_ids)},
                        {"action_type": kind.upper().replace("-", "_"), "status": data.get("status", "live")},
                    )
                )
            attributes: dict[str, Any] = {
                "name": f"{pick(FLOW_NAMES, seed, 122, i)} {i + 1}",
                "status": pick(FLOW_STATUSES, seed, 123, i),
                "archived": frac(seed, 124, i) < 0.15,
                "created": iso_seconds(created),
                "updated": iso_seconds(flow_updated),
                "trigger_type": trigger,
            }
            sources = metric_ids if trigger == "Metric" else list_ids or [""]
            flows.append(
                Row(
                    "flow",
                    fid,
                    attributes,
                    {
                        "flow-actions": ("flow-action", action_ids),
                        "tags": ("tag", some_tags(store, seed, 125, i)),
                    },
                    {"trigger_source": pick(sources, seed, 126, i)},
                )
            )
        for rtype in TRIGGERED_TYPES:
            for row in store.records_view(rtype):
                triggers = [f.id for f in flows if f.hidden["trigger_source"] == row.id]
                row.relationships["flow-triggers"] = ("flow", triggers)
        return flows + actions + messages

    def clone_relationships(self, template: Row, new_id: str, change: Change, k: int) -> dict[str, Any]:
        """A cloned flow starts without actions."""
        return {**template.relationships, "flow-actions": ("flow-action", [])}
