"""Segments (`/api/segments`, `/api/segments/{id}`; members are served by the profiles kind).

Filters (`name`, `id`, `created`, `updated`, `is_active`, `is_starred`), sorts, page size,
`fields[segment]`, `include=tags` and `additional-fields[segment]=profile_count` (with its own
rate tier) all come from the vendored spec; this module only supplies the data.
"""

from __future__ import annotations

from typing import Any

from klaviyo_simulator.model import Row, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources.base import GroupKind
from klaviyo_simulator.resources.tags import some_tags
from klaviyo_simulator.seeded import TWO_YEARS, between, frac, pick, short_id

SEGMENT_NAMES = ["Engaged 90d", "Big Spenders", "Lapsed", "New Subscribers"]


def definition() -> dict[str, Any]:
    """A segment definition in the 2026-07-15 shape: email-marketing consent."""
    consent = {
        "channel": "email",
        "can_receive_marketing": True,
        "consent_status": {"subscription": "any", "filters": None},
    }
    return {"condition_groups": [{"conditions": [{"type": "profile-marketing-consent", "consent": consent}]}]}


class Segments(GroupKind):
    types = ("segment",)
    requires = ("tag",)
    cursors = {"segments": ("segment", "updated", "created")}

    def build(self, world: World) -> list[Row]:
        seed, now, start = world.seed, world.now, world.now - TWO_YEARS
        rows = []
        for i in range(world.sizes.segments):
            created = between(seed, 70, i, start, now - 86_400)
            attributes = {
                "name": f"{pick(SEGMENT_NAMES, seed, 72, i)} {i + 1}",
                "definition": definition(),
                "created": iso_seconds(created),
                "updated": iso_seconds(between(seed, 73, i, created, now)),
                "is_active": frac(seed, 74, i) < 0.9,
                "is_processing": False,
                "is_starred": frac(seed, 75, i) < 0.2,
            }
            rows.append(
                Row(
                    "segment",
                    short_id(seed, 71, i),
                    attributes,
                    {"tags": ("tag", some_tags(self.store, seed, 76, i))},
                    {"member_share": 0.02 + 0.3 * frac(seed, 77, i)},
                )
            )
        return rows
