"""Flows with their flow actions and flow messages.

Serves `/api/flows`, `/api/flows/{id}/flow-actions` and `/api/flow-actions/{id}/flow-messages`;
also gives lists, segments and metrics their `flow-triggers` relationship. A change below a flow
moves its parents' `updated` (a message's action and flow; an action's flow), as generation
keeps them (a child's `updated` is never after its parent's): `advance` takes
`flow_actions_created` (a new send-email action with its message), `flow_actions_updated` and
`flow_messages_updated`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from klaviyo_simulator.model import Change, Relationship, Row, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources.base import RowKind, iso_us
from klaviyo_simulator.resources.tags import some_tags
from klaviyo_simulator.seeded import TWO_YEARS, between, frac, mix, pick, short_id

if TYPE_CHECKING:
    from klaviyo_simulator.store import Store

FLOW_NAMES = ["Welcome Series", "Abandoned Cart", "Browse Abandonment", "Win-back", "Post-purchase"]
TRIGGER_TYPES = ["Metric", "Added to List", "Date Based", "Price Drop", "Low Inventory", "Unconfigured"]
FLOW_STATUSES = ["live", "live", "live", "manual", "draft"]
ACTION_STATUSES = ["live", "live", "manual", "draft", "disabled"]
TRIGGERED_TYPES = ("list", "segment", "metric")  # rows that get a `flow-triggers` relationship
CHILD_CHANGES = ("flow_actions_created", "flow_actions_updated", "flow_messages_updated")


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

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.advance_keys = self.advance_keys | frozenset(CHILD_CHANGES)

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

    # ------------------------------------------------------------ changes below the flows

    def advance(self, change: Change) -> dict[str, Any]:
        flows = self.store.records_view("flow")
        # At the boundary half the children are stamped at the flows' newest second (before this
        # advance): the second a state that follows the flows listing stopped at.
        newest = max((iso_us(f.attributes["updated"]) or 0 for f in flows), default=0) // 1_000_000
        result = super().advance(change)
        if not flows:
            return result
        for name, rtype in (
            ("flow_actions_updated", "flow-action"),
            ("flow_messages_updated", "flow-message"),
        ):
            rows = self.store.records_view(rtype)
            n = min(change.count(name), len(rows))
            if not n:
                continue
            if change.at_boundary:
                change.boundary["flows"] = iso_seconds(newest)
            chosen = (rows[(mix(change.salt, 5, len(name), k) + k) % len(rows)] for k in range(n))
            picked = list({r.id: r for r in chosen}.values())
            for k, row in enumerate(picked):
                at_boundary = change.at_boundary and k < max(1, len(picked) // 2)
                self._touch(row, newest if at_boundary else change.now)
            result[name] = [r.id for r in picked]
        n_new = change.count("flow_actions_created")
        if n_new:
            result["flow_actions_created"] = [self._new_action(change, k) for k in range(n_new)]
        return result

    def _touch(self, row: Row, stamp: int) -> None:
        """Stamp a flow action or message, and move its parents' `updated` up to the stamp."""
        row.attributes["updated"] = iso_seconds(stamp)
        parent_type = "flow-action" if row.type == "flow-message" else "flow"
        parents = row.related_ids(parent_type)
        parent = self.store.get(parent_type, parents[0]) if parents else None
        if parent is None or (iso_us(parent.attributes["updated"]) or 0) >= stamp * 1_000_000:
            return
        if parent.type == "flow":
            parent.attributes["updated"] = iso_seconds(stamp)
        else:
            self._touch(parent, stamp)

    def _new_action(self, change: Change, k: int) -> str:
        """A send-email action (and its message) added to an existing flow, stamped now."""
        store = self.store
        flows = store.records_view("flow")
        flow = flows[mix(change.salt, 6, k) % len(flows)]
        aid = str(max(int(a.id) for a in store.records_view("flow-action")) + 1)
        mid = short_id(change.salt, 7, k)
        template_ids = [t.id for t in store.records_view("template")]
        message_def = message_definition(change.salt, k, 0, "email", template_ids)
        message_def["id"] = mid
        stamp = iso_seconds(change.now)
        m_rels: dict[str, Relationship] = {"flow-action": ("flow-action", aid)}
        if template_ids:
            m_rels["template"] = ("template", message_def["template_id"])
        message = {"channel": "email", "created": stamp, "updated": stamp, "definition": message_def}
        store.add_row(Row("flow-message", mid, message, m_rels, {"name": message_def["name"]}))
        definition = {
            "id": aid,
            "type": "send-email",
            "links": {"next": None},
            "data": {"message": message_def, "status": "live"},
        }
        store.add_row(
            Row(
                "flow-action",
                aid,
                {"created": stamp, "updated": stamp, "definition": definition},
                {"flow": ("flow", flow.id), "flow-messages": ("flow-message", [mid])},
                {"action_type": "SEND_EMAIL", "status": "live"},
            )
        )
        flow.relationships["flow-actions"] = ("flow-action", [*flow.related_ids("flow-actions"), aid])
        flow.attributes["updated"] = stamp
        return aid
