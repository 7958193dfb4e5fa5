"""Shared data shapes: sizes per scale, small-collection rows, pages, generation and change contexts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

SCALES: dict[str, dict[str, int]] = {
    "small": {
        "events": 5_000,
        "profiles": 1_000,
        "lists": 12,
        "segments": 8,
        "templates": 30,
        "campaigns": 60,
        "flows": 15,
        "tags": 10,
        "coupons": 6,
        "forms": 8,
        "images": 40,
        "push_tokens": 60,
        "catalog_items": 30,
        "reviews": 60,
        "universal_content": 12,
        "web_feeds": 5,
    },
    "medium": {
        "events": 200_000,
        "profiles": 20_000,
        "lists": 25,
        "segments": 15,
        "templates": 120,
        "campaigns": 300,
        "flows": 40,
        "tags": 20,
        "coupons": 20,
        "forms": 25,
        "images": 300,
        "push_tokens": 2_000,
        "catalog_items": 250,
        "reviews": 1500,
        "universal_content": 40,
        "web_feeds": 12,
    },
    "large": {
        "events": 1_000_000,
        "profiles": 100_000,
        "lists": 40,
        "segments": 25,
        "templates": 300,
        "campaigns": 1_000,
        "flows": 80,
        "tags": 30,
        "coupons": 40,
        "forms": 50,
        "images": 1_000,
        "push_tokens": 10_000,
        "catalog_items": 1_000,
        "reviews": 8000,
        "universal_content": 100,
        "web_feeds": 25,
    },
}

Relationship = tuple[str, str | list[str] | None]  # (target type, id | ids | None)


@dataclass
class Row:
    """One record of a small collection, already in JSON:API shape (minus links)."""

    type: str
    id: str
    attributes: dict[str, Any]
    relationships: dict[str, Relationship] = field(default_factory=dict)
    hidden: dict[str, Any] = field(default_factory=dict)  # filter-only fields (e.g. messages.channel)

    def related_ids(self, name: str) -> list[str]:
        """The ids of one relationship (none when absent)."""
        value = self.relationships.get(name, ("", None))[1]
        return [value] if isinstance(value, str) else list(value or [])


@dataclass
class Sizes:
    events: int
    profiles: int
    lists: int
    segments: int
    templates: int
    campaigns: int
    flows: int
    tags: int
    coupons: int
    forms: int
    images: int
    push_tokens: int
    catalog_items: int  # variants: 1-3 per item; categories: a few
    reviews: int
    universal_content: int
    web_feeds: int

    @classmethod
    def for_scale(cls, scale: str, overrides: dict[str, int] | None = None) -> Sizes:
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r} (choose from {', '.join(SCALES)})")
        values = dict(SCALES[scale])
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls(**values)


@dataclass(frozen=True)
class World:
    """What generation draws from: one seeded stream (big columns) and the hash seed (everything else)."""

    seed: int
    sizes: Sizes
    now: int
    rng: random.Random


@dataclass
class Page:
    """Rows of one page (int rows for events/profiles, `Row` for small collections)."""

    rows: list[Any]
    keys: list[Any]  # JSON-able keyset key of each row (what a cursor encodes)
    more: bool  # rows follow in the direction of the page
    nested: bool = False  # rows of a collection under a parent (e.g. a list's members)


@dataclass
class Change:
    """One `advance`: the validated counts, the stamp, and the per-advance salt."""

    counts: dict[str, int]
    now: int
    salt: int
    number: int  # how many advances so far (1-based): names carry it
    at_boundary: bool
    boundary: dict[str, str] = field(default_factory=dict)  # collection -> the reused second

    def count(self, name: str) -> int:
        return int(self.counts.get(name, 0))
