"""Profiles (`/api/profiles`) and the members of lists and segments (`/api/{lists|segments}/{id}/profiles`).

A profile is a row of compact columns (created, updated, version, 64 random bits, suppression,
push flag); its id, attributes, subscriptions, predictive analytics and push token are derived
from them on demand. Sorts on `created` / `updated` walk maintained `(seconds << 32) | row`
keys; other sorts use lazily sorted keys.
"""

from __future__ import annotations

import bisect
import random
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import add, lshift, mul, or_
from typing import TYPE_CHECKING, Any

import orjson

from klaviyo_simulator.model import Change, Page, World
from klaviyo_simulator.paging import keyset_page, tuple_key
from klaviyo_simulator.query import Listing, Query, iso_seconds, matches, seconds_window
from klaviyo_simulator.render import Renderer
from klaviyo_simulator.resources.base import iso_us
from klaviyo_simulator.seeded import CROCKFORD, MASK64, TWO_YEARS, frac, mix

if TYPE_CHECKING:
    from klaviyo_simulator.store import Store

SHIFT = 32
ROW_MASK = (1 << SHIFT) - 1
FIRST_NAMES = [
    "Ada", "Ben", "Chloe", "Diego", "Emma", "Farah", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena", "Milo",
    "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Viktor", "Wren", "Xiu", "Yara", "Zane",
]  # fmt: skip
LAST_NAMES = [
    "Smith", "Garcia", "Kim", "Novak", "Okafor", "Rossi", "Schmidt", "Tanaka",
    "Dubois", "Larsen", "Silva", "Cohen", "Nguyen", "Patel", "Walsh", "Ibrahim",
]  # fmt: skip
DOMAINS = ["example.com", "mail.example.org", "inbox.example.net", "shop.example.io"]
# (city, region, country, zip, timezone, lat, lon)
CITIES = [
    ("Boston", "Massachusetts", "United States", "02110", "America/New_York", 42.36, -71.06),
    ("Austin", "Texas", "United States", "73301", "America/Chicago", 30.27, -97.74),
    ("Denver", "Colorado", "United States", "80202", "America/Denver", 39.74, -104.99),
    ("Seattle", "Washington", "United States", "98101", "America/Los_Angeles", 47.61, -122.33),
    ("Toronto", "Ontario", "Canada", "M5H 2N2", "America/Toronto", 43.65, -79.38),
    ("London", "England", "United Kingdom", "EC1A 1BB", "Europe/London", 51.51, -0.13),
    ("Berlin", "Berlin", "Germany", "10115", "Europe/Berlin", 52.52, 13.40),
    ("Sydney", "New South Wales", "Australia", "2000", "Australia/Sydney", -33.87, 151.21),
]
SUPPRESSION_REASONS = ["HARD_BOUNCE", "INVALID_EMAIL", "SPAM_COMPLAINT", "UNSUBSCRIBE", "USER_SUPPRESSED"]
MEMBER_CHANGES = {"list_members_added": "list", "segment_members_added": "segment"}
SUPPRESSION_SORT = "subscriptions.email.marketing.suppression.timestamp"
LIST_SUPPRESSION_REASONS = ["UNSUBSCRIBE", "USER_SUPPRESSED"]
LIST_SUPPRESSION_SHARE = 0.06  # profiles unsubscribed from one or two lists (not all email)
# Profile attributes draw from three 64-bit words derived from the profile's random bits:
# cheap bit slices instead of a hash per attribute (profiles are rendered on every page).
K1, K2 = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F


def uniforms(rng: random.Random, count: int) -> list[float]:
    draw = rng.random
    return [draw() for _ in range(count)]


def sorted_keys(seconds: Sequence[int]) -> Iterator[int]:
    """`(seconds << 32) | row` for every row (C-level maps: fast for a million rows)."""
    return map(or_, map(lshift, seconds, repeat(SHIFT)), range(len(seconds)))


@dataclass
class ProfileColumns:
    """Profiles as columns; rows are positions, sorted by creation."""

    created: array[int]  # epoch seconds, non-decreasing
    updated: array[int]
    version: array[int]  # bumped by each update (changes rendered properties)
    rand: array[int]  # 64 random bits per profile (its id and attributes)
    suppression: dict[int, tuple[str, int]]  # row -> (reason, epoch seconds)
    push_enabled: array[int]  # 1 if the profile has a push token

    def words(self, row: int) -> tuple[int, int, int]:
        h = self.rand[row]
        h2 = (h * K1) & MASK64
        return h, h2, (h2 * K2) & MASK64

    def id(self, row: int) -> str:
        """A ULID: creation time in milliseconds + 80 bits from the profile's random bits."""
        value = ((self.created[row] * 1000) << 80) | (self.rand[row] << 16) | (row & 0xFFFF)
        return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))

    def email(self, row: int) -> str:
        h = self.rand[row]
        first, last = FIRST_NAMES[h % len(FIRST_NAMES)], LAST_NAMES[(h >> 8) % len(LAST_NAMES)]
        return f"{first}.{last}{row}@{DOMAINS[(h >> 16) % len(DOMAINS)]}".lower()

    def phone(self, row: int) -> str | None:
        h = self.rand[row]
        return f"+1555{((h * K1) & MASK64) % 10**7:07d}" if (h >> 20) % 100 < 40 else None

    def external_id(self, row: int) -> str | None:
        h = self.rand[row]
        return f"cust_{(((h * K1) & MASK64) >> 24) % 10**8}" if (h >> 27) % 100 < 50 else None

    def push_token(self, row: int) -> str | None:
        return f"{self.words(row)[2]:016x}" if self.push_enabled[row] else None

    def attributes(self, row: int) -> dict[str, Any]:
        h, _, h3 = self.words(row)
        created, updated = self.created[row], self.updated[row]
        city = CITIES[(h >> 34) % len(CITIES)]
        last_event = None if (h >> 38) % 10 == 0 else created + ((updated - created) * (h3 & 0xFFFF) >> 16)
        return {
            "email": self.email(row),
            "phone_number": self.phone(row),
            "external_id": self.external_id(row),
            "first_name": FIRST_NAMES[h % len(FIRST_NAMES)],
            "last_name": LAST_NAMES[(h >> 8) % len(LAST_NAMES)],
            "organization": "Example Org" if (h >> 42) % 10 < 3 else None,
            "locale": ("en-US", "en-GB", "de-DE", "fr-FR")[(h >> 46) % 4],
            "title": None,
            "image": None,
            "created": iso_seconds(created),
            "updated": iso_seconds(updated),
            "last_event_date": iso_seconds(last_event) if last_event is not None else None,
            "location": {
                "address1": f"{1 + (h3 >> 16) % 999} Main St",
                "address2": None,
                "city": city[0],
                "country": city[2],
                "latitude": city[5],
                "longitude": city[6],
                "region": city[1],
                "zip": city[3],
                "timezone": city[4],
                "ip": f"203.0.113.{(h3 >> 26) % 254 + 1}",
            },
            "properties": {
                "Accepts Marketing": (h >> 49) % 10 < 6,
                "Loyalty Points": self.version[row] * 10 + (h3 >> 34) % 500,
                "source": ("shopify", "popup", "import")[(h >> 53) % 3],
            },
        }

    def subscriptions(self, row: int) -> dict[str, Any]:
        h = self.rand[row]
        created = self.created[row]
        suppression = self.suppression.get(row)
        consent = ("SUBSCRIBED", "SUBSCRIBED", "UNSUBSCRIBED", "NEVER_SUBSCRIBED")[(h >> 56) % 4]
        if suppression and suppression[0] == "UNSUBSCRIBE":
            consent = "UNSUBSCRIBED"
        email = {
            "can_receive_email_marketing": consent == "SUBSCRIBED" and suppression is None,
            "consent": consent,
            "consent_timestamp": iso_seconds(created) if consent != "NEVER_SUBSCRIBED" else None,
            "last_updated": iso_seconds(suppression[1] if suppression else created),
            "method": "FORM" if consent != "NEVER_SUBSCRIBED" else None,
            "method_detail": "",
            "custom_method_detail": None,
            "double_optin": (h >> 58) % 10 < 3,
            "suppression": [{"reason": suppression[0], "timestamp": iso_seconds(suppression[1])}]
            if suppression
            else [],
            "list_suppressions": [],
        }
        out: dict[str, Any] = {"email": {"marketing": email}}
        if self.phone(row):
            subscribed = (h >> 61) & 1 == 0
            channel = {
                "consent": "SUBSCRIBED" if subscribed else "NEVER_SUBSCRIBED",
                "consent_timestamp": iso_seconds(created) if subscribed else None,
                "method": "TEXT" if subscribed else None,
                "method_detail": "",
                "last_updated": iso_seconds(created),
            }
            out["sms"] = {
                "marketing": {"can_receive_sms_marketing": subscribed, **channel},
                "transactional": {"can_receive_sms_transactional": subscribed, **channel},
            }
        if self.push_enabled[row]:
            out["mobile_push"] = {
                "marketing": {
                    "can_receive_push_marketing": True,
                    "consent": "SUBSCRIBED",
                    "consent_timestamp": iso_seconds(created),
                }
            }
        return out

    def predictive_analytics(self, row: int, now: int) -> dict[str, Any]:
        _, h2, h3 = self.words(row)
        orders = (h2 >> 50) % 8
        aov = round(20 + 180 * ((h3 >> 40) & 0xFFFF) / 65536, 2)
        predicted = round(3 * ((h2 >> 8) & 0xFFFF) / 65536, 2)
        return {
            "historic_clv": round(orders * aov, 2),
            "predicted_clv": round(predicted * aov, 2),
            "total_clv": round((orders + predicted) * aov, 2),
            "historic_number_of_orders": orders,
            "predicted_number_of_orders": predicted,
            "average_days_between_orders": round(20 + 100 * ((h2 >> 24) & 0xFFFF) / 65536, 1)
            if orders > 1
            else None,
            "average_order_value": aov if orders else 0.0,
            "churn_probability": round(((h3 >> 8) & 0xFFFF) / 65536, 2),
            "expected_date_of_next_order": iso_seconds(now + 86_400 * 90 * ((h2 >> 40) & 0x3FF) // 1024)
            if orders
            else None,
            "ranked_channel_affinity": ["email", "sms", "push"]
            if (h3 >> 60) & 1
            else ["email", "push", "sms"],
        }


def generate_columns(world: World) -> tuple[ProfileColumns, list[int]]:
    """Creation skewed towards the past (older accounts hold most profiles), up to now.

    The first draws of the world's seeded stream (the events follow). Also returns the
    creation times as a list (bisecting a list is much faster than an array).
    """
    rng, now = world.rng, world.now
    n_profiles, start = world.sizes.profiles, now - TWO_YEARS
    first, span = start - 86_400 * 30, TWO_YEARS + 86_400 * 30
    skewed = map(pow, uniforms(rng, n_profiles), repeat(1.3))
    created = sorted(map(int, map(add, repeat(float(first)), map(mul, repeat(float(span)), skewed))))
    updated = array(
        "q", [c + int((now - c) * u) for c, u in zip(created, uniforms(rng, n_profiles), strict=True)]
    )
    suppression: dict[int, tuple[str, int]] = {}
    for i, c in enumerate(created):
        if rng.random() < 0.07:
            moment = c + int((updated[i] - c) * rng.random())
            suppression[i] = (rng.choice(SUPPRESSION_REASONS), moment)
    push = array("b", [1 if u < 0.1 else 0 for u in uniforms(rng, n_profiles)])
    bits = rng.getrandbits
    profile_rand = array("Q", [bits(64) for _ in range(n_profiles)])
    columns = ProfileColumns(
        created=array("q", created),
        updated=updated,
        version=array("i", bytes(4 * n_profiles)),
        rand=profile_rand,
        suppression=suppression,
        push_enabled=push,
    )
    return columns, created


class Profiles:
    """The profiles kind: columns, indices, pages (also of group members), rendering, `advance`."""

    types: tuple[str, ...] = ("profile",)
    requires: tuple[str, ...] = ()
    advance_keys = frozenset({"profiles_created", "profiles_updated", "profiles_suppressed", *MEMBER_CHANGES})

    def __init__(self, store: Store) -> None:
        self.store = store
        self.cols = ProfileColumns(array("q"), array("q"), array("i"), array("Q"), {}, array("b"))
        self.created_keys = array("q")
        self.updated_keys: list[int] = []
        self._ids: list[str] = []  # every id, filled on first use of `row_of` / `ids`
        self._rows: dict[str, int] = {}
        self._id_cache: dict[int, str] = {}
        self._sorted_cache: dict[str, list[Any]] = {}
        self._members: dict[tuple[str, str], list[int]] = {}
        self.created_at_generation: list[int] = []  # creation seconds, sorted (events draw from it)
        self._list_ids: list[str] | None = None  # the generated lists (list suppressions draw from them)
        self.deleted: set[int] = set()  # rows deleted through the admin API (gone from every listing)

    # ------------------------------------------------------------ generation and ids

    def generate(self, world: World) -> None:
        self.cols, self.created_at_generation = generate_columns(world)
        self.created_keys = array("q", sorted_keys(self.cols.created))
        self.updated_keys = sorted(sorted_keys(self.cols.updated))

    @property
    def count(self) -> int:
        return len(self.cols.created)

    def id(self, row: int) -> str:
        if row < len(self._ids):
            return self._ids[row]
        cached = self._id_cache.get(row)
        if cached is None:
            cached = self._id_cache[row] = self.cols.id(row)
        return cached

    def ids(self) -> list[str]:
        self._ensure_ids()
        return self._ids

    def row_of(self, identifier: str) -> int | None:
        self._ensure_ids()
        row = self._rows.get(identifier)
        return None if row in self.deleted else row

    def live_ids(self) -> list[str]:
        """Ids of the profiles not deleted."""
        return [pid for row, pid in enumerate(self.ids()) if row not in self.deleted]

    def _ensure_ids(self) -> None:
        for row in range(len(self._ids), self.count):
            pid = self.cols.id(row)
            self._ids.append(pid)
            self._rows[pid] = row

    def value(self, row: int, field: str) -> Any:
        """A profile's value for a filter or sort field (datetimes in epoch microseconds)."""
        cols = self.cols
        if field == "id":
            return self.id(row)
        if field == "email":
            return cols.email(row)
        if field == "phone_number":
            return cols.phone(row)
        if field == "external_id":
            return cols.external_id(row)
        if field in ("created", "updated"):
            column = cols.created if field == "created" else cols.updated
            return column[row] * 1_000_000
        if field.startswith("subscriptions.email.marketing.suppression."):
            supp = cols.suppression.get(row)
            if supp is None:
                return None
            return supp[0] if field.endswith(".reason") else supp[1] * 1_000_000
        if field.startswith("subscriptions.email.marketing.list_suppressions."):
            entries = self.list_suppressions(row)
            if not entries:
                return None
            if field.endswith(".reason"):
                return [entry["reason"] for entry in entries]
            return [iso_us(entry["timestamp"]) for entry in entries]
        if field == "push_token":
            return cols.push_token(row)
        if field == "profile_id":
            return self.id(row)
        return None  # `_kx` (tracking token) never matches a generated profile

    def list_suppressions(self, row: int) -> list[dict[str, Any]]:
        """`subscriptions.email.marketing.list_suppressions`: a few profiles unsubscribed from one
        or two of the generated lists, between their creation and their last update (hashed from
        the profile's bits: no draw from the seeded stream, so the rest of the data is unchanged)."""
        h = self.cols.rand[row]
        if frac(h, 57) >= LIST_SUPPRESSION_SHARE:
            return []
        if self._list_ids is None:
            self._list_ids = [r.id for r in self.store.records_view("list")[: self.store.sizes.lists]]
        list_ids = self._list_ids
        if not list_ids:
            return []
        created, updated = self.cols.created[row], self.cols.updated[row]
        picked = sorted({list_ids[mix(h, 58, k) % len(list_ids)] for k in range(1 + mix(h, 59) % 2)})
        return [
            {
                "list_id": list_id,
                "reason": LIST_SUPPRESSION_REASONS[mix(h, 60, k) % len(LIST_SUPPRESSION_REASONS)],
                "timestamp": iso_seconds(created + int((updated - created) * frac(h, 61, k))),
            }
            for k, list_id in enumerate(picked)
        ]

    # ------------------------------------------------------------ members of lists and segments

    def members(self, group_type: str, group_id: str) -> list[int]:
        """Sorted keys `(joined_group_at << 32) | profile row` of a list's or segment's members."""
        key = (group_type, group_id)
        cached = self._members.get(key)
        if cached is None:
            group = self.store.get(group_type, group_id)
            assert group is not None
            share = group.hidden["member_share"]
            store = self.store
            rng = random.Random(f"{store.seed}:{group_type}:{group_id}")  # str seeds are stable across runs
            draw, created, now = rng.random, self.cols.created, store.now
            rows = [r for r in range(min(store.sizes.profiles, self.count)) if draw() < share]
            position = next(i for i, g in enumerate(store.records_view(group_type)) if g.id == group_id)
            if group_type == "segment" and position < 2:
                rows = rows[:position]  # the first segment is empty, the second has one member
            # generated profiles only; each joined between its creation and "now" at generation
            cached = sorted(((created[r] + int((now - created[r]) * draw())) << SHIFT) | r for r in rows)
            if self.deleted:
                cached = [k for k in cached if k & ROW_MASK not in self.deleted]
            self._members[key] = cached
        return cached

    # ------------------------------------------------------------ serving

    def check(self, rtype: str, query: Query, collection: bool) -> None:
        return None

    def default_sort(self, rtype: str, nested: bool) -> str:
        return "joined_group_at" if nested else "id"

    def page(self, rtype: str, listing: Listing) -> Page:
        if listing.parent is not None:
            return self._member_page(listing)
        conds, sort, size = listing.conditions, listing.sort, listing.size or self.count + 1

        deleted = self.deleted

        def accept_row(row: int) -> bool:
            return row not in deleted and all(matches(c, self.value(row, c.field)) for c in conds)

        if sort in ("updated", "created"):
            keys_int: Sequence[int] = self.updated_keys if sort == "updated" else self.created_keys
            lo_s, hi_s = seconds_window(conds, sort)
            found, more = keyset_page(
                keys_int,
                after=listing.after,
                desc=listing.descending,
                size=size,
                accept=lambda k: accept_row(k & ROW_MASK),
                lo=None if lo_s == float("-inf") else int(lo_s) << SHIFT,
                hi=None if hi_s == float("inf") else int(hi_s) << SHIFT,
            )
            return Page([k & ROW_MASK for k in found], list(found), more)
        keys = self._sorted(sort)
        cursor = tuple(listing.after) if listing.after is not None else None
        found_t, more = keyset_page(
            keys, after=cursor, desc=listing.descending, size=size, accept=lambda k: accept_row(k[-1])
        )
        return Page([k[-1] for k in found_t], [list(k) for k in found_t], more)

    def _sorted(self, field: str) -> list[Any]:
        """Lazily sorted keys for profile sorts without a maintained int index."""
        cached = self._sorted_cache.get(field)
        if cached is None:
            if field == "email":
                cached = sorted((self.cols.email(r), r) for r in range(self.count))
            elif field == "id":
                self._ensure_ids()
                cached = sorted((pid, r) for r, pid in enumerate(self._ids))
            else:  # suppression timestamps: suppressed profiles first (ascending), then the rest
                cached = sorted(tuple_key(self.value(r, field), r) for r in range(self.count))
            self._sorted_cache[field] = cached
        return cached

    def _member_page(self, listing: Listing) -> Page:
        parent = listing.parent
        keys = self.members(parent.type, parent.id)
        lo_s, hi_s = seconds_window(listing.conditions, "joined_group_at")
        others = [c for c in listing.conditions if c.field != "joined_group_at"]

        def accept(key: int) -> bool:
            row = key & ROW_MASK
            return all(matches(c, self.value(row, c.field)) for c in others)

        found, more = keyset_page(
            keys,
            after=listing.after,
            desc=listing.descending,
            size=listing.size or len(keys) + 1,
            accept=accept if others else None,
            lo=None if lo_s == float("-inf") else int(lo_s) << SHIFT,
            hi=None if hi_s == float("inf") else int(hi_s) << SHIFT,
        )
        return Page([k & ROW_MASK for k in found], list(found), more, nested=True)

    def render(self, rtype: str, page: Page, view: Renderer, query: Query) -> list[Any] | orjson.Fragment:
        additional = query.additional.get("profile", frozenset())
        if page.nested:  # members: the keys carry joined_group_at in their high bits
            return [self.resource(key & ROW_MASK, view, additional, joined=key >> SHIFT) for key in page.keys]
        return [self.resource(row, view, additional) for row in page.rows]

    def subscriptions(self, row: int) -> dict[str, Any]:
        """A profile's `subscriptions` additional field as rendered (list suppressions included)."""
        subscriptions = self.cols.subscriptions(row)
        subscriptions["email"]["marketing"]["list_suppressions"] = self.list_suppressions(row)
        return subscriptions

    def find(self, rtype: str, rid: str) -> int | None:
        return self.row_of(rid)

    def render_one(self, rtype: str, item: Any, view: Renderer, query: Query) -> dict[str, Any]:
        return self.resource(item, view, query.additional.get("profile", frozenset()))

    def resource(
        self,
        row: int,
        view: Renderer,
        additional: frozenset[str] = frozenset(),
        joined: int | None = None,
        nested: bool = False,
    ) -> dict[str, Any]:
        cols = self.cols
        attributes = cols.attributes(row)
        if joined is not None:
            attributes["joined_group_at"] = iso_seconds(joined)
        if "subscriptions" in additional:
            attributes["subscriptions"] = self.subscriptions(row)
        if "predictive_analytics" in additional:
            attributes["predictive_analytics"] = cols.predictive_analytics(row, self.store.now)
        pid = self.id(row)
        token = cols.push_token(row)
        rels: dict[str, tuple[str, Any]] = {}
        if joined is None and not nested:
            rels = {
                "push-tokens": ("push-token", [token] if token else []),
                "conversations": ("conversation", []),
            }
        resource = view.resource("profile", pid, attributes, rels, with_data=frozenset(view.includes))
        if not nested and "push-tokens" in view.includes and token:
            view.include(self._push_token(row, pid, token, view))
        return resource

    def _push_token(self, row: int, pid: str, token: str, view: Renderer) -> dict[str, Any]:
        created = iso_seconds(self.cols.created[row])
        ios = mix(self.store.seed, 51, row) % 2 == 0
        attributes = {
            "created": created,
            "token": token,
            "enablement_status": "AUTHORIZED",
            "platform": "ios" if ios else "android",
            "vendor": "apns" if ios else "fcm",
            "background": "AVAILABLE",
            "recorded_date": created,
            "metadata": None,
        }
        return view.resource("push-token", token, attributes, {"profile": ("profile", pid)})

    # ------------------------------------------------------------ time moves

    def advance(self, change: Change) -> dict[str, Any]:
        """New profiles; updated ones (version bump, re-stamped); suppressed ones (a suppression + update);
        new members of lists and segments (joined now)."""
        result: dict[str, Any] = self._add_members(change)
        n_created = change.count("profiles_created")
        if n_created:
            result["profiles_created"] = [self._append(change.now, change.salt, k) for k in range(n_created)]
        n_updated, n_suppressed = change.count("profiles_updated"), change.count("profiles_suppressed")
        if not (n_updated or n_suppressed) or not self.count:
            return result
        max_updated = self.updated_keys[-1] >> SHIFT
        if change.at_boundary:
            change.boundary["profiles"] = iso_seconds(max_updated)
        touched: list[str] = []
        chosen: list[int] = []
        total = n_updated + n_suppressed
        for k in range(total):
            row = mix(change.salt, 2, k) % self.count
            attempts = 0
            while (row in chosen or row in self.deleted) and attempts < self.count:
                row = (row + 1) % self.count
                attempts += 1
            chosen.append(row)
            stamp = max_updated if change.at_boundary and k < max(1, total // 2) else change.now
            if k >= n_updated:
                self.cols.suppression[row] = (SUPPRESSION_REASONS[mix(change.salt, 3, k) % 5], change.now)
            self._touch(row, stamp)
            touched.append(self.id(row))
        result["profiles_updated"] = touched[:n_updated]
        if n_suppressed:
            result["profiles_suppressed"] = touched[n_updated:]
        self._sorted_cache.pop(SUPPRESSION_SORT, None)
        return result

    # ------------------------------------------------------------ admin changes (deterministic)

    def delete(self, ids: list[str]) -> list[str]:
        """Delete profiles (a GDPR deletion): gone from listings, groups and single GETs."""
        rows = [row for pid in ids if (row := self.row_of(pid)) is not None]
        if not rows:
            return []
        gone = set(rows)
        self.deleted |= gone
        self.updated_keys = [k for k in self.updated_keys if k & ROW_MASK not in gone]
        self.created_keys = array("q", (k for k in self.created_keys if k & ROW_MASK not in gone))
        for key, members in self._members.items():
            self._members[key] = [k for k in members if k & ROW_MASK not in gone]
        self._sorted_cache.clear()
        return [self.id(row) for row in rows]

    def unsuppress(self, ids: list[str], now: int) -> list[str]:
        """Lift the email suppression of profiles (the profile's `updated` moves to now)."""
        lifted = []
        for pid in ids:
            row = self.row_of(pid)
            if row is not None and self.cols.suppression.pop(row, None) is not None:
                self._touch(row, now)
                lifted.append(pid)
        self._sorted_cache.pop(SUPPRESSION_SORT, None)
        return lifted

    def remove_members(self, group_type: str, group_id: str, ids: list[str]) -> list[str]:
        """Remove profiles from a list or segment; returns the profile ids that were members."""
        rows = {row for pid in ids if (row := self.row_of(pid)) is not None}
        keys = self.members(group_type, group_id)
        removed = [self.id(k & ROW_MASK) for k in keys if k & ROW_MASK in rows]
        keys[:] = [k for k in keys if k & ROW_MASK not in rows]
        return removed

    def _add_members(self, change: Change) -> dict[str, Any]:
        """`<group>_members_added`: that many profiles join groups (cycling over the groups) now;
        returns "group id/profile id" pairs."""
        result: dict[str, Any] = {}
        for name, group_type in MEMBER_CHANGES.items():
            groups = self.store.records_view(group_type)
            n = change.count(name)
            if not n or not groups or not self.count:
                continue
            added = []
            for k in range(n):
                group = groups[(mix(change.salt, 13, k) + k) % len(groups)]
                keys = self.members(group_type, group.id)
                present = {key & ROW_MASK for key in keys}
                row = mix(change.salt, 14, k) % self.count
                for _ in range(self.count):
                    if row not in present and row not in self.deleted:
                        break
                    row = (row + 1) % self.count
                else:
                    continue  # every profile is a member already
                bisect.insort(keys, (change.now << SHIFT) | row)
                added.append(f"{group.id}/{self.id(row)}")
            result[name] = added
        return result

    def _append(self, now: int, salt: int, k: int) -> str:
        row = self.count
        cols = self.cols
        cols.created.append(now)
        cols.updated.append(now)
        cols.version.append(0)
        cols.rand.append(mix(salt, 12, k))
        cols.push_enabled.append(1 if frac(salt, 7, k) < 0.1 else 0)
        self.created_keys.append((now << SHIFT) | row)
        bisect.insort(self.updated_keys, (now << SHIFT) | row)
        self._sorted_cache.clear()
        return self.id(row)

    def _touch(self, row: int, stamp: int) -> None:
        old = (self.cols.updated[row] << SHIFT) | row
        position = bisect.bisect_left(self.updated_keys, old)
        if position < len(self.updated_keys) and self.updated_keys[position] == old:
            del self.updated_keys[position]
        stamp = max(stamp, self.cols.created[row])
        self.cols.updated[row] = stamp
        self.cols.version[row] += 1
        bisect.insort(self.updated_keys, (stamp << SHIFT) | row)
