"""Web feeds that templates pull content from (`/api/web-feeds`: 20 a page at most, filtered
and sorted on `updated`). `advance` with `web_feeds_updated` / `web_feeds_created`."""

from __future__ import annotations

from klaviyo_simulator.model import Change, Row, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.seeded import TWO_YEARS, between, mix, pick

# (name, url, request method, content type)
FEEDS = [
    ("Blog_posts", "https://shop.example.com/blogs/news.json", "get", "json"),
    ("New_arrivals", "https://shop.example.com/collections/new.json", "get", "json"),
    ("Store_events", "https://events.example.com/feed.xml", "get", "xml"),
    ("Loyalty_points", "https://loyalty.example.com/api/points", "post", "json"),
    ("Weather", "https://weather.example.com/today.xml", "get", "xml"),
]
STATUSES = ["ok", "ok", "ok", "refreshing", "warning_periodic_refresh_timeout", None]


class WebFeeds(RowKind):
    types = ("web-feed",)
    cursors = {"web_feeds": ("web-feed", "updated", "created")}

    def build(self, world: World) -> list[Row]:
        seed, now, start = world.seed, world.now, world.now - TWO_YEARS
        rows = []
        for i in range(world.sizes.web_feeds):
            name, url, method, content_type = FEEDS[i % len(FEEDS)]
            created = between(seed, 440, i, start, now - 3_600)
            rows.append(
                Row(
                    "web-feed",
                    f"{mix(seed, 441, i):016x}"[:12],
                    {
                        "name": name if i < len(FEEDS) else f"{name}_{i + 1}",
                        "url": url,
                        "request_method": method,
                        "content_type": content_type,
                        "created": iso_seconds(created),
                        "updated": iso_seconds(between(seed, 442, i, created, now)),
                        "status": pick(STATUSES, seed, 443, i),
                    },
                )
            )
        return rows

    def new_id(self, rtype: str, change: Change, k: int) -> str:
        return f"{mix(change.salt, 444, k):016x}"[:12]
