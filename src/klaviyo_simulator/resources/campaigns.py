"""Campaigns with their campaign messages and recipient estimations.

Serves `/api/campaigns`, `/api/campaigns/{id}`, `/api/campaigns/{id}/campaign-messages`,
`/api/campaign-messages/{id}` and `/api/campaign-recipient-estimations/{id}`. Listing campaigns
needs a channel filter (the spec's rule); archived campaigns only show when the filter asks.
"""

from __future__ import annotations

from typing import Any

from klaviyo_simulator.model import Change, Relationship, Row, World
from klaviyo_simulator.query import Condition, Query, QueryError, iso_seconds
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.resources.tags import some_tags
from klaviyo_simulator.seeded import TWO_YEARS, between, frac, mix, pick, ulid

CAMPAIGN_NAMES = ["Spring Sale", "New Arrivals", "Weekly Digest", "Flash Deal", "Holiday"]
CAMPAIGN_STATUSES = ["Sent"] * 6 + ["Draft", "Scheduled", "Cancelled", "Sending"]
CHANNELS = ["email", "email", "email", "sms", "mobile_push"]


def tracking_options(channel: str) -> dict[str, Any] | None:
    if channel == "email":
        return {
            "add_tracking_params": True,
            "custom_tracking_params": None,
            "is_tracking_clicks": True,
            "is_tracking_opens": True,
        }
    if channel == "sms":
        return {"add_tracking_params": False, "custom_tracking_params": None}
    return None


def message_definition(channel: str, name: str, k: int) -> dict[str, Any]:
    """A campaign message's `definition` in the 2026-07-15 shape of its channel."""
    if channel == "email":
        return {
            "channel": "email",
            "label": f"{name} {'AB'[k]}",
            "content": {
                "subject": f"{name}: don't miss out",
                "preview_text": "Inside: something new",
                "from_email": "hello@shop.example.com",
                "from_label": "Example Shop",
                "reply_to_email": None,
                "cc_email": None,
                "bcc_email": None,
            },
        }
    if channel == "sms":
        return {
            "channel": "sms",
            "content": {"body": f"{name}: 20% off today only", "media_url": None},
            "render_options": {
                "shorten_links": True,
                "add_org_prefix": True,
                "add_info_link": True,
                "add_opt_out_language": False,
            },
        }
    return {
        "channel": "mobile_push",
        "notification_type": "standard",
        "content": {
            "title": name,
            "body": "Tap to see what's new",
            "dynamic_image": None,
            "action_buttons": None,
        },
        "kv_pairs": None,
        "options": None,
    }


class Campaigns(RowKind):
    types = ("campaign", "campaign-message", "campaign-recipient-estimation")
    requires = ("list", "segment", "template", "tag")
    cursors = {"campaigns": ("campaign", "updated_at", "created_at")}

    def build(self, world: World) -> list[Row]:
        seed, now, start = world.seed, world.now, world.now - TWO_YEARS
        store = self.store
        template_ids = [t.id for t in store.records_view("template")]
        audience_ids = [r.id for r in store.records_view("list") + store.records_view("segment")]
        campaigns, messages, estimations = [], [], []
        for i in range(world.sizes.campaigns):
            channel = pick(CHANNELS, seed, 90, i)
            created = between(seed, 91, i, start, now - 3600)
            status = pick(CAMPAIGN_STATUSES, seed, 92, i)
            sent = status in ("Sent", "Sending")
            send_at = between(seed, 93, i, created, now) if sent else None
            if sent:
                scheduled = send_at
            else:
                scheduled = now + 86_400 * (1 + mix(seed, 94, i) % 20) if status == "Scheduled" else None
            updated = max(created, min(now, (send_at or created) + int(3600 * frac(seed, 95, i))))
            cid = ulid(created, seed, 96, i)
            n_messages = 2 if channel == "email" and frac(seed, 97, i) < 0.1 else 1
            message_ids = [ulid(created, seed, 98, i, k) for k in range(n_messages)]
            strategy: dict[str, Any] = (
                {"method": "static", "datetime": iso_seconds(scheduled), "options": {"is_local": False}}
                if scheduled
                else {"method": "immediate"}
            )
            name = f"{pick(CAMPAIGN_NAMES, seed, 99, i)} #{i + 1}"
            attributes = {
                "name": name,
                "status": status,
                "archived": frac(seed, 100, i) < 0.15,
                "audiences": {
                    "included": [pick(audience_ids, seed, 101, i)] if audience_ids else [],
                    "excluded": [],
                },
                "send_options": {"use_smart_sending": frac(seed, 102, i) < 0.7},
                "tracking_options": tracking_options(channel),
                "send_strategy": strategy,
                "created_at": iso_seconds(created),
                "scheduled_at": iso_seconds(scheduled) if scheduled else None,
                "updated_at": iso_seconds(updated),
                "send_time": iso_seconds(send_at) if send_at else None,
            }
            relationships: dict[str, Relationship] = {
                "campaign-messages": ("campaign-message", message_ids),
                "tags": ("tag", some_tags(store, seed, 103, i)),
            }
            campaigns.append(Row("campaign", cid, attributes, relationships, {"messages.channel": channel}))
            send_moment = send_at if send_at is not None else scheduled
            for k, mid in enumerate(message_ids):
                rels: dict[str, Relationship] = {"campaign": ("campaign", cid)}
                if channel == "email" and template_ids:
                    rels["template"] = ("template", pick(template_ids, seed, 104, i, k))
                message = {
                    "definition": message_definition(channel, name, k),
                    "send_times": [{"datetime": iso_seconds(send_moment), "is_local": False}]
                    if send_moment is not None
                    else None,
                    "created_at": iso_seconds(created),
                    "updated_at": iso_seconds(updated),
                }
                messages.append(Row("campaign-message", mid, message, rels))
            if status != "Cancelled" and frac(seed, 105, i) < 0.8:
                count = 100 + mix(seed, 106, i) % max(1, world.sizes.profiles)
                estimations.append(
                    Row("campaign-recipient-estimation", cid, {"estimated_recipient_count": count})
                )
        return campaigns + messages + estimations

    def check(self, rtype: str, query: Query, collection: bool) -> None:
        if rtype != "campaign" or not collection:
            return
        if not any(c.field == "messages.channel" and c.op == "equals" for c in query.conditions):
            raise QueryError(
                "filter",
                "A channel filter is required: equals(messages.channel,'email'|'sms'|'mobile_push').",
            )

    def conditions(self, rtype: str, conditions: list[Condition]) -> list[Condition]:
        if rtype == "campaign" and not any(c.field == "archived" for c in conditions):
            return [*conditions, Condition("archived", "equals", False)]  # archived ones only when asked for
        return conditions

    def new_id(self, rtype: str, change: Change, k: int) -> str:
        return ulid(change.now, change.salt, 9, k)

    def clone_relationships(self, template: Row, new_id: str, change: Change, k: int) -> dict[str, Any]:
        """A cloned campaign gets copies of its template's messages."""
        relationships = dict(template.relationships)
        copies = []
        for index, mid in enumerate(template.related_ids("campaign-messages")):
            source = self.store.get("campaign-message", mid)
            assert source is not None
            copy = Row(
                "campaign-message",
                ulid(change.now, change.salt, 10, k, index),
                dict(source.attributes),
                {**source.relationships, "campaign": ("campaign", new_id)},
            )
            copy.attributes["created_at"] = copy.attributes["updated_at"] = iso_seconds(change.now)
            self.store.add_row(copy)
            copies.append(copy.id)
        relationships["campaign-messages"] = ("campaign-message", copies)
        return relationships
