"""Email templates (`/api/templates`) with their HTML."""

from __future__ import annotations

from klaviyo_simulator.model import Row, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.seeded import TWO_YEARS, between, frac, mix, pick, short_id

TEMPLATE_NAMES = ["Welcome", "Promo", "Abandoned Cart", "Newsletter", "Win-back"]
EDITORS = ["CODE", "SYSTEM_DRAGGABLE", "SIMPLE", "USER_DRAGGABLE"]


class Templates(RowKind):
    types = ("template",)
    cursors = {"templates": ("template", "updated", "created")}

    def build(self, world: World) -> list[Row]:
        seed, now, start = world.seed, world.now, world.now - TWO_YEARS
        rows = []
        for i in range(world.sizes.templates):
            created = between(seed, 80, i, start, now - 3600)
            name = f"{pick(TEMPLATE_NAMES, seed, 81, i)} template {i + 1}"
            html = (
                f"<!DOCTYPE html><html><head><title>{name}</title></head><body><h1>{name}</h1>"
                f"<p>Hello {{{{ first_name|default:'there' }}}},</p>"
                + "<p>Lorem ipsum dolor sit amet.</p>" * (3 + mix(seed, 82, i) % 20)
                + "<a href='{% unsubscribe_url %}'>Unsubscribe</a></body></html>"
            )
            attributes = {
                "name": name,
                "editor_type": pick(EDITORS, seed, 84, i),
                "html": html,
                "text": None if frac(seed, 85, i) < 0.5 else f"{name}\n\nHello there.",
                "amp": None,
                "created": iso_seconds(created),
                "updated": iso_seconds(between(seed, 86, i, created, now)),
            }
            rows.append(Row("template", short_id(seed, 83, i), attributes))
        return rows
