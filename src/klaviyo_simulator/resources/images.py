"""Images of the account's library (`/api/images`); `advance` with `images_updated` and
`images_created` touches and uploads them (images have no `created` attribute)."""

from __future__ import annotations

from klaviyo_simulator.model import Change, Row, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.seeded import TWO_YEARS, between, frac, mix, pick, uuid_text

SUBJECTS = ["hero", "product", "banner", "logo", "lifestyle", "icon"]
FORMATS = ["png", "jpeg", "jpeg", "gif", "png"]


class Images(RowKind):
    types = ("image",)
    cursors = {"images": ("image", "updated_at", "updated_at")}

    def build(self, world: World) -> list[Row]:
        seed, now, start = world.seed, world.now, world.now - TWO_YEARS
        rows = []
        for i in range(world.sizes.images):
            image_format = pick(FORMATS, seed, 340, i)
            uuid = uuid_text(seed, 341, i)
            rows.append(
                Row(
                    "image",
                    str(100_000_000 + mix(seed, 342, i) % 900_000_000),
                    {
                        "name": f"{pick(SUBJECTS, seed, 343, i)}-{i + 1}.{image_format}",
                        "image_url": f"https://d3k81ch9hvuctc.cloudfront.net/company/AbC123/images/{uuid}.{image_format}",
                        "format": image_format,
                        "size": 2_000 + mix(seed, 344, i) % 2_000_000,
                        "hidden": frac(seed, 345, i) < 0.1,
                        "updated_at": iso_seconds(between(seed, 346, i, start, now)),
                    },
                )
            )
        return list({r.id: r for r in rows}.values())

    def new_id(self, rtype: str, change: Change, k: int) -> str:
        return str(1_000_000_000 + mix(change.salt, 347, k) % 900_000_000)
