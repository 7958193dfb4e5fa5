"""Tags and tag groups (`/api/tags`); `some_tags` gives other kinds their tag relationships."""

from __future__ import annotations

from typing import TYPE_CHECKING

from klaviyo_simulator.model import Row, World
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.seeded import frac, mix, pick, uuid_text

if TYPE_CHECKING:
    from klaviyo_simulator.store import Store

GROUP_NAMES = ["Default", "Season", "Team"]


def some_tags(store: Store, seed: int, salt: int, i: int) -> list[str]:
    """Half the records carry one or two tags."""
    tag_ids = [t.id for t in store.records_view("tag")]
    if not tag_ids or frac(seed, salt, i) < 0.5:
        return []
    return sorted({pick(tag_ids, seed, salt, i, k) for k in range(1 + mix(seed, salt, i, 9) % 2)})


class Tags(RowKind):
    types = ("tag", "tag-group")

    def build(self, world: World) -> list[Row]:
        seed = world.seed
        groups = [
            Row("tag-group", uuid_text(seed, 40, g), {"name": name, "exclusive": g == 1, "default": g == 0})
            for g, name in enumerate(GROUP_NAMES)
        ]
        tags = []
        for i in range(world.sizes.tags):
            group = groups[i % len(groups)]
            tag = Row("tag", uuid_text(seed, 41, i), {"name": f"{group.attributes['name']} tag {i + 1}"})
            tag.relationships["tag-group"] = ("tag-group", group.id)
            tags.append(tag)
        for group in groups:
            group.relationships["tags"] = (
                "tag",
                [t.id for t in tags if t.relationships["tag-group"][1] == group.id],
            )
        return groups + tags
