"""Product and store reviews (`/api/reviews`). The API filters them on `created` only (updates
are invisible to a date filter) and sorts on `created`, `rating` or `updated`. Reviews, questions
and ratings of catalog items, store reviews without one. `advance` with `reviews_updated`
(moderated, replied to) and `reviews_created`."""

from __future__ import annotations

from typing import Any

from klaviyo_simulator.model import Change, Row, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.seeded import TWO_YEARS, between, frac, mix, pick

AUTHORS = ["Sam K.", "Alex P.", "Jordan M.", "Riley T.", "Casey L.", "Morgan B.", None]
TITLES = ["Love it", "Runs small", "Great value", "Not for me", "Would buy again", None]
CONTENTS = [
    "Great quality, arrived quickly.",
    "Fits as expected and looks great.",
    "The color is a little different from the photo.",
    "Stopped working after a month.",
]
QUESTIONS = ["Does this run true to size?", "Is it machine washable?", "Do you ship to Canada?"]
# (review_type, share): reviews of items, questions, ratings without text, store reviews.
TYPES = ["review"] * 7 + ["question", "rating", "store"]
STATUSES = ["published"] * 6 + ["featured", "pending", "pending", "unpublished", "rejected"]
REJECTIONS = ["fake", "profanity_or_inappropriate", "unrelated", "private_information"]


def status_of(value: str, n: int, seed: int) -> dict[str, Any]:
    if value == "rejected":
        return {"value": value, "rejection_reason": {"reason": pick(REJECTIONS, seed, 427, n)}}
    return {"value": value}


class Reviews(RowKind):
    types = ("review",)
    requires = ("catalog-item", "profile")
    cursors = {"reviews": ("review", "updated", "created")}

    def build(self, world: World) -> list[Row]:
        seed, now, start = world.seed, world.now, world.now - TWO_YEARS
        items = self.store.records_view("catalog-item")
        profiles = self.store.profiles
        rows = []
        for i in range(world.sizes.reviews):
            created = between(seed, 420, i, start, now - 3_600)
            updated = between(seed, 421, i, created, now) if frac(seed, 422, i) < 0.4 else created
            review_type = pick(TYPES, seed, 423, i)
            item = pick(items, seed, 424, i) if items and review_type != "store" else None
            status = pick(STATUSES, seed, 425, i)
            email = profiles.cols.email(mix(seed, 426, i) % profiles.count) if profiles.count else None
            product = None
            if item is not None:
                product = {
                    "url": item.attributes["url"],
                    "name": item.attributes["title"],
                    "image_url": item.attributes["image_full_url"],
                    "external_id": item.attributes["external_id"],
                }
            reply = None
            if review_type != "rating" and frac(seed, 428, i) < 0.25:
                reply = {
                    "content": "Thanks for the review!",
                    "author": "Example Shop",
                    "updated": iso_seconds(updated),
                }
            text_review = review_type in ("review", "store")
            rows.append(
                Row(
                    "review",
                    f"{mix(seed, 429, i):016x}{mix(seed, 430, i):016x}",
                    {
                        "email": email,
                        "status": status_of(status, i, seed),
                        "verified": item is not None and frac(seed, 431, i) < 0.8,
                        "review_type": review_type,
                        "created": iso_seconds(created),
                        "updated": iso_seconds(updated),
                        "images": [f"https://shop.example.com/reviews/{i}.jpg"]
                        if frac(seed, 432, i) < 0.15
                        else [],
                        "product": product,
                        "rating": None if review_type == "question" else 1 + mix(seed, 433, i) % 5,
                        "author": pick(AUTHORS, seed, 434, i),
                        "content": pick(QUESTIONS if review_type == "question" else CONTENTS, seed, 435, i)
                        if review_type != "rating"
                        else None,
                        "title": pick(TITLES, seed, 436, i) if text_review else None,
                        "smart_quote": None,
                        "public_reply": reply,
                    },
                    {"events": ("event", []), "item": ("catalog-item", item.id if item else None)},
                    {"status": status, "item.id": item.id if item else None},
                )
            )
        return rows

    def new_id(self, rtype: str, change: Change, k: int) -> str:
        return f"{mix(change.salt, 437, k):016x}{mix(change.salt, 438, k):016x}"
