"""The catalog: items, their variants and categories (`/api/catalog-items`, `-variants`,
`-categories`). None of them filters or sorts on `updated` (the spec's rule), so readers scan
them whole. `advance` with `catalog_items_*`, `catalog_variants_*` and `catalog_categories_*`
(`_updated`, `_created`) touches and creates them; a new variant joins its item."""

from __future__ import annotations

from typing import Any

from klaviyo_simulator.model import Change, Row, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.seeded import TWO_YEARS, between, frac, mix, pick

PREFIX = "$custom:::$default:::"  # Klaviyo's catalog ids: integration type, catalog, external id
CATEGORIES = ["Apparel", "Shoes", "Accessories", "Home", "Beauty", "Sale"]
PRODUCTS = ["Tee", "Hoodie", "Sneaker", "Cap", "Mug", "Candle", "Serum", "Tote"]
SIZES = ["S", "M", "L"]
SHOP = "https://shop.example.com"


def _media(external_id: str) -> dict[str, Any]:
    full = f"{SHOP}/images/{external_id}.jpg"
    return {
        "image_full_url": full,
        "image_thumbnail_url": f"{SHOP}/images/{external_id}-thumb.jpg",
        "images": [full],
    }


class Catalogs(RowKind):
    types = ("catalog-item", "catalog-variant", "catalog-category")
    cursors = {
        "catalog_items": ("catalog-item", "updated", "created"),
        "catalog_variants": ("catalog-variant", "updated", "created"),
        "catalog_categories": ("catalog-category", "updated", "updated"),
    }

    def build(self, world: World) -> list[Row]:
        seed, now, start = world.seed, world.now, world.now - TWO_YEARS
        categories = [
            Row(
                "catalog-category",
                f"{PREFIX}CAT-{name.upper()}",
                {
                    "external_id": f"CAT-{name.upper()}",
                    "name": name,
                    "updated": iso_seconds(between(seed, 370, c, start, now)),
                },
                {"items": ("catalog-item", [])},
            )
            for c, name in enumerate(CATEGORIES)
        ]
        items: list[Row] = []
        variants: list[Row] = []
        for i in range(world.sizes.catalog_items):
            product = pick(PRODUCTS, seed, 371, i)
            external_id = f"SKU-{i + 1:05d}"
            created = between(seed, 372, i, start, now - 86_400)
            price = round(5 + (mix(seed, 373, i) % 19_500) / 100, 2)
            item_id = f"{PREFIX}{external_id}"
            variant_ids = []
            for k in range(1 + mix(seed, 374, i) % 3):
                n = i * 4 + k
                v_created = between(seed, 375, n, created, now - 3_600)
                variant_id = f"{item_id}-{SIZES[k]}"
                variant_ids.append(variant_id)
                variants.append(
                    Row(
                        "catalog-variant",
                        variant_id,
                        {
                            "external_id": f"{external_id}-{SIZES[k]}",
                            "title": f"{product} {i + 1} ({SIZES[k]})",
                            "description": f"The {product.lower()} in size {SIZES[k]}.",
                            "sku": f"{external_id}-{SIZES[k]}",
                            "inventory_policy": mix(seed, 376, n) % 3,
                            "inventory_quantity": float(mix(seed, 377, n) % 500),
                            "price": price,
                            "url": f"{SHOP}/products/{external_id.lower()}?size={SIZES[k]}",
                            **_media(f"{external_id}-{SIZES[k]}"),
                            "custom_metadata": {"color": pick(["black", "white", "navy"], seed, 378, n)},
                            "published": frac(seed, 379, n) < 0.9,
                            "created": iso_seconds(v_created),
                            "updated": iso_seconds(between(seed, 380, n, v_created, now)),
                        },
                        {"item": ("catalog-item", item_id)},
                        {"item.id": item_id},
                    )
                )
            items.append(
                Row(
                    "catalog-item",
                    item_id,
                    {
                        "external_id": external_id,
                        "title": f"{product} {i + 1}",
                        "description": f"Our {product.lower()}, made to last.",
                        "price": price,
                        "url": f"{SHOP}/products/{external_id.lower()}",
                        **_media(external_id),
                        "custom_metadata": {"brand": "Example"},
                        "published": frac(seed, 381, i) < 0.9,
                        "created": iso_seconds(created),
                        "updated": iso_seconds(between(seed, 382, i, created, now)),
                    },
                    {"variants": ("catalog-variant", variant_ids)},
                )
            )
            for c in {mix(seed, 383, i) % len(CATEGORIES), mix(seed, 384, i) % len(CATEGORIES)}:
                members = categories[c].relationships["items"]
                categories[c].relationships["items"] = (
                    "catalog-item",
                    [*categories[c].related_ids("items"), item_id],
                )
                del members
        return categories + items + variants

    def new_id(self, rtype: str, change: Change, k: int) -> str:
        return f"{PREFIX}NEW-{change.number}-{rtype.split('-')[1].upper()}-{k}"

    def clone_relationships(self, template: Row, new_id: str, change: Change, k: int) -> dict[str, Any]:
        if template.type == "catalog-item":
            return {"variants": ("catalog-variant", [])}
        if template.type == "catalog-variant":
            item = self.store.get("catalog-item", template.related_ids("item")[0])
            assert item is not None
            item.relationships["variants"] = ("catalog-variant", [*item.related_ids("variants"), new_id])
        return dict(template.relationships)
