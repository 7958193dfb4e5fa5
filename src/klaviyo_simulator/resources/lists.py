"""Lists (`/api/lists`, `/api/lists/{id}`; members are served by the profiles kind)."""

from __future__ import annotations

from klaviyo_simulator.model import Row, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources.base import GroupKind
from klaviyo_simulator.resources.tags import some_tags
from klaviyo_simulator.seeded import TWO_YEARS, between, frac, pick, short_id

LIST_NAMES = ["Newsletter", "VIP", "Preview", "Wholesale", "Sweepstakes"]


class Lists(GroupKind):
    types = ("list",)
    requires = ("tag",)
    cursors = {"lists": ("list", "updated", "created")}

    def build(self, world: World) -> list[Row]:
        seed, now, start = world.seed, world.now, world.now - TWO_YEARS
        rows = []
        for i in range(world.sizes.lists):
            created = between(seed, 60, i, start - 86_400 * 60, now - 86_400)
            attributes = {
                "name": f"{pick(LIST_NAMES, seed, 62, i)} {i + 1}",
                "created": iso_seconds(created),
                "updated": iso_seconds(between(seed, 63, i, created, now)),
                "opt_in_process": pick(["double_opt_in", "single_opt_in"], seed, 64, i),
            }
            rows.append(
                Row(
                    "list",
                    short_id(seed, 61, i),
                    attributes,
                    {"tags": ("tag", some_tags(self.store, seed, 65, i))},
                    {"member_share": 0.05 + 0.5 * frac(seed, 66, i)},
                )
            )
        return rows
