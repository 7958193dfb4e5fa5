"""The account's webhooks (`/api/webhooks`: one page, no filter, no sort) and the topics they
subscribe to (`include=webhook-topics`). Webhooks made before Klaviyo kept timestamps have none
(`created_at`/`updated_at` null): no cursor to sync on. `advance` with `webhooks_updated` /
`webhooks_created`."""

from __future__ import annotations

from typing import Any

import orjson

from klaviyo_simulator.model import Change, Page, Row, World
from klaviyo_simulator.query import Query, iso_seconds
from klaviyo_simulator.render import Renderer
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.seeded import TWO_YEARS, between, frac, pick, ulid

TOPICS = [
    "event:klaviyo.sent_sms",
    "event:klaviyo.received_sms",
    "event:klaviyo.clicked_sms",
    "event:klaviyo.opened_email",
    "event:klaviyo.clicked_email",
    "event:klaviyo.bounced_email",
]
HOOKS = [
    ("SMS events to warehouse", "https://hooks.example.com/klaviyo/sms"),
    ("Email engagement", "https://etl.example.com/in/klaviyo"),
    ("Bounce alerts", "https://alerts.example.com/hooks/k"),
]
WEBHOOKS = 4  # an account has a handful


class Webhooks(RowKind):
    types = ("webhook",)
    cursors = {"webhooks": ("webhook", "updated_at", "created_at")}

    def build(self, world: World) -> list[Row]:
        seed, now, start = world.seed, world.now, world.now - TWO_YEARS
        rows = []
        for i in range(WEBHOOKS):
            name, url = HOOKS[i % len(HOOKS)]
            created = between(seed, 450, i, start, now - 3_600)
            legacy = i == WEBHOOKS - 1  # the oldest one predates timestamps
            topics = sorted({pick(TOPICS, seed, 451, i, k) for k in range(1 + i % 3)})
            rows.append(
                Row(
                    "webhook",
                    ulid(created, seed, 452, i),
                    {
                        "name": name if i < len(HOOKS) else f"{name} {i + 1}",
                        "description": f"Sends {', '.join(topics)}" if frac(seed, 453, i) < 0.7 else None,
                        "endpoint_url": url[:30],  # truncated for security, as the API does
                        "enabled": frac(seed, 454, i) < 0.8,
                        "created_at": None if legacy else iso_seconds(created),
                        "updated_at": None if legacy else iso_seconds(between(seed, 455, i, created, now)),
                    },
                    {"webhook-topics": ("webhook-topic", topics)},
                )
            )
        return rows

    def render(self, rtype: str, page: Page, view: Renderer, query: Query) -> list[Any] | orjson.Fragment:
        """Topics have no attributes: `included` carries their identifiers and links only."""
        data = [view.row(row) for row in page.rows]
        if "webhook-topics" in view.includes:
            for row in page.rows:
                for topic in row.related_ids("webhook-topics"):
                    view.include(
                        {
                            "type": "webhook-topic",
                            "id": topic,
                            "links": {"self": view.link("webhook-topic", topic)},
                        }
                    )
        return data

    def new_id(self, rtype: str, change: Change, k: int) -> str:
        return ulid(change.now, change.salt, 456, k)
