"""Universal content blocks of the template editor (`/api/template-universal-content`), filtered
and sorted on `updated`. `advance` with `universal_content_updated` / `_created` edits and saves
blocks."""

from __future__ import annotations

from typing import Any

from klaviyo_simulator.model import Change, Row, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.seeded import TWO_YEARS, between, frac, pick, ulid

NAMES = ["Footer", "Header logo", "Shop now button", "Free shipping banner", "Divider", "Social links"]
SCREENSHOTS = ["completed", "completed", "completed", "stale", "generating", "never_generated"]
_DISPLAY: dict[str, Any] = {"show_on": "all", "visible_check": None, "content_repeat": None}


def definition(kind: int, name: str) -> dict[str, Any] | None:
    """A block of one of a few types (the spec's TextBlockV0, HTMLBlockV0, SpacerBlockV0), or
    None (a section the API does not describe)."""
    if kind == 0:
        styles = {"color": "#222222", "font_size": 14}
        data = {"content": f"<p>{name}</p>", "display_options": _DISPLAY, "styles": styles}
        return {"content_type": "block", "type": "text", "data": data}
    if kind == 1:
        html = f'<div class="{name.lower().replace(" ", "-")}"><a href="https://shop.example.com">{name}</a></div>'
        return {
            "content_type": "block",
            "type": "html",
            "data": {"content": html, "display_options": _DISPLAY},
        }
    if kind == 2:
        return {"content_type": "block", "type": "spacer", "data": None}
    return None


class UniversalContent(RowKind):
    types = ("template-universal-content",)
    cursors = {"universal_content": ("template-universal-content", "updated", "created")}

    def build(self, world: World) -> list[Row]:
        seed, now, start = world.seed, world.now, world.now - TWO_YEARS
        rows = []
        for i in range(world.sizes.universal_content):
            created = between(seed, 410, i, start, now - 3_600)
            name = f"{pick(NAMES, seed, 411, i)} {i + 1}"
            kind = 3 if frac(seed, 412, i) < 0.1 else i % 3
            block_id = ulid(created, seed, 413, i)
            rows.append(
                Row(
                    "template-universal-content",
                    block_id,
                    {
                        "name": name,
                        "definition": definition(kind, name),
                        "created": iso_seconds(created),
                        "updated": iso_seconds(between(seed, 414, i, created, now)),
                        "screenshot_status": pick(SCREENSHOTS, seed, 415, i),
                        "screenshot_url": f"https://d3k81ch9hvuctc.cloudfront.net/screenshots/{block_id}.png",
                    },
                )
            )
        return rows

    def new_id(self, rtype: str, change: Change, k: int) -> str:
        return ulid(change.now, change.salt, 416, k)
