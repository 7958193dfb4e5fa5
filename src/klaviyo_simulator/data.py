"""Deterministic, seeded data for the simulator.

Big collections (events, profiles) are compact columns (`array`) from which each record is
rendered lazily by `records.py`; everything else (metrics, lists, segments, templates,
campaigns, campaign messages, recipient estimations, flows, flow actions, flow messages, tags,
tag groups) is a small list of fully built JSON:API-shaped records (`Row`).
The same seed and sizes always give the same data; only the time origin (`now`) moves.
"""

from __future__ import annotations

import bisect
import math
import random
from array import array
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from operator import add, mul
from typing import Any

from klaviyo_simulator.query import iso_seconds

MASK64 = (1 << 64) - 1
TWO_YEARS = 2 * 365 * 86_400
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def mix(*parts: int) -> int:
    """A 64-bit hash of integers (splitmix64 rounds): the simulator's only source of randomness."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = ((x ^ (part & MASK64)) * 0xBF58476D1CE4E5B9) & MASK64
        x ^= x >> 31
        x = (x * 0x94D049BB133111EB) & MASK64
        x ^= x >> 29
    return x


def frac(*parts: int) -> float:
    """A uniform float in [0, 1) from a hash."""
    return mix(*parts) / 18446744073709551616.0


def pick(options: list[Any] | tuple[Any, ...], *parts: int) -> Any:
    return options[mix(*parts) % len(options)]


def short_id(*parts: int, length: int = 6) -> str:
    """Klaviyo-style short alphanumeric id (lists, metrics, flows, templates, segments)."""
    x = mix(*parts)
    chars = []
    for _ in range(length):
        x, rem = divmod(x, 62)
        chars.append(BASE62[rem])
    return "".join(chars)


def ulid(epoch_seconds: int, *parts: int) -> str:
    """A 26-char ULID: 48-bit millisecond time + 80 hashed bits (profiles, campaigns)."""
    value = ((epoch_seconds * 1000) << 80) | (mix(*parts) << 16) | (mix(*parts, 7) & 0xFFFF)
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def uuid_text(*parts: int) -> str:
    hexed = f"{mix(*parts):016x}{mix(*parts, 1):016x}"
    return f"{hexed[:8]}-{hexed[8:12]}-4{hexed[13:16]}-a{hexed[17:20]}-{hexed[20:32]}"


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
    },
}

# (name, share of events, integration (name, category) or None for API-created metrics)
METRICS: list[tuple[str, float, tuple[str, str] | None]] = [
    ("Received Email", 0.30, ("Klaviyo", "Internal")),
    ("Opened Email", 0.18, ("Klaviyo", "Internal")),
    ("Clicked Email", 0.06, ("Klaviyo", "Internal")),
    ("Bounced Email", 0.01, ("Klaviyo", "Internal")),
    ("Unsubscribed", 0.005, ("Klaviyo", "Internal")),
    ("Received SMS", 0.04, ("Klaviyo", "Internal")),
    ("Clicked SMS", 0.01, ("Klaviyo", "Internal")),
    ("Active on Site", 0.16, ("API", "API")),
    ("Viewed Product", 0.12, ("Shopify", "eCommerce")),
    ("Added to Cart", 0.05, ("Shopify", "eCommerce")),
    ("Checkout Started", 0.03, ("Shopify", "eCommerce")),
    ("Placed Order", 0.025, ("Shopify", "eCommerce")),
    ("Ordered Product", 0.01, ("Shopify", "eCommerce")),
    ("Fulfilled Order", 0.0, ("Shopify", "eCommerce")),
    ("Subscribed to List", 0.0, None),
]
METRIC_CUMULATIVE = [sum(m[1] for m in METRICS[: i + 1]) for i in range(len(METRICS))]

FIRST_NAMES = [
    "Ada",
    "Ben",
    "Chloe",
    "Diego",
    "Emma",
    "Farah",
    "Gus",
    "Hana",
    "Ivan",
    "Jade",
    "Kofi",
    "Lena",
    "Milo",
    "Nora",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Uma",
    "Viktor",
    "Wren",
    "Xiu",
    "Yara",
    "Zane",
]
LAST_NAMES = [
    "Smith",
    "Garcia",
    "Kim",
    "Novak",
    "Okafor",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Dubois",
    "Larsen",
    "Silva",
    "Cohen",
    "Nguyen",
    "Patel",
    "Walsh",
    "Ibrahim",
]
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
PRODUCTS = [
    ("Trail Runner Shoe", 129.0),
    ("Merino Beanie", 34.0),
    ("Canvas Tote", 48.5),
    ("Ceramic Mug", 22.0),
    ("Linen Shirt", 79.0),
    ("Water Bottle", 29.99),
    ("Rain Jacket", 189.0),
    ("Wool Socks", 18.0),
    ("Sunglasses", 95.0),
    ("Yoga Mat", 64.0),
]
SUPPRESSION_REASONS = ["HARD_BOUNCE", "INVALID_EMAIL", "SPAM_COMPLAINT", "UNSUBSCRIBE", "USER_SUPPRESSED"]
LIST_NAMES = ["Newsletter", "VIP", "Preview", "Wholesale", "Sweepstakes"]
SEGMENT_NAMES = ["Engaged 90d", "Big Spenders", "Lapsed", "New Subscribers"]
TEMPLATE_NAMES = ["Welcome", "Promo", "Abandoned Cart", "Newsletter", "Win-back"]
CAMPAIGN_NAMES = ["Spring Sale", "New Arrivals", "Weekly Digest", "Flash Deal", "Holiday"]
FLOW_NAMES = ["Welcome Series", "Abandoned Cart", "Browse Abandonment", "Win-back", "Post-purchase"]
CAMPAIGN_STATUSES = ["Sent"] * 6 + ["Draft", "Scheduled", "Cancelled", "Sending"]
CHANNELS = ["email", "email", "email", "sms", "mobile_push"]
TRIGGER_TYPES = ["Metric", "Added to List", "Date Based", "Price Drop", "Low Inventory", "Unconfigured"]
FLOW_STATUSES = ["live", "live", "live", "manual", "draft"]


@dataclass
class Row:
    """One record of a small collection, already in JSON:API shape (minus links)."""

    type: str
    id: str
    attributes: dict[str, Any]
    relationships: dict[str, tuple[str, str | list[str] | None]] = field(default_factory=dict)
    hidden: dict[str, Any] = field(default_factory=dict)  # filter-only fields (e.g. messages.channel)


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

    @classmethod
    def for_scale(cls, scale: str, overrides: dict[str, int] | None = None) -> Sizes:
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r} (choose from {', '.join(SCALES)})")
        values = dict(SCALES[scale])
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls(**values)


@dataclass
class Columns:
    """Events and profiles as compact columns. Rows are positions; events are sorted by time."""

    event_ts: array[int]  # epoch seconds, non-decreasing
    event_metric: array[int]  # index into metrics
    event_profile: array[int]  # profile row
    event_rand: array[int]  # 64 random bits per event: everything else about it derives from these
    profile_created: array[int]  # epoch seconds, non-decreasing
    profile_updated: array[int]
    profile_version: array[int]  # bumped by each update (changes rendered properties)
    profile_rand: array[int]  # 64 random bits per profile (its id)
    suppression: dict[int, tuple[str, int]]  # profile row -> (reason, epoch seconds)
    push_enabled: array[int]  # 1 if the profile has a push token


def _uniforms(rng: random.Random, count: int) -> list[float]:
    draw = rng.random
    return [draw() for _ in range(count)]


def generate_columns(seed: int, sizes: Sizes, now: int) -> Columns:
    """Columns from one seeded `random.Random` stream.

    Written with C-level `map`s over whole columns: a million events take about a second.
    """
    rng = random.Random(seed)
    start = now - TWO_YEARS
    n_profiles, n_events = sizes.profiles, sizes.events
    # Profiles: creation skewed towards the past (older accounts hold most profiles), up to now.
    first, span = start - 86_400 * 30, TWO_YEARS + 86_400 * 30
    skewed = map(pow, _uniforms(rng, n_profiles), repeat(1.3))
    created = sorted(map(int, map(add, repeat(float(first)), map(mul, repeat(float(span)), skewed))))
    updated = array(
        "q", [c + int((now - c) * u) for c, u in zip(created, _uniforms(rng, n_profiles), strict=True)]
    )
    suppression: dict[int, tuple[str, int]] = {}
    for i, c in enumerate(created):
        if rng.random() < 0.07:
            moment = c + int((updated[i] - c) * rng.random())
            suppression[i] = (rng.choice(SUPPRESSION_REASONS), moment)
    push = array("b", [1 if u < 0.1 else 0 for u in _uniforms(rng, n_profiles)])
    bits = rng.getrandbits
    profile_rand = array("Q", [bits(64) for _ in range(n_profiles)])

    # Events: density grows linearly towards now (sqrt of a uniform), sorted by time.
    # (sorting the uniforms first: sqrt and the affine map keep the order, ints keep it non-decreasing)
    offsets = map(mul, repeat(float(TWO_YEARS)), map(math.sqrt, sorted(_uniforms(rng, n_events))))
    times = array("q", map(int, map(add, repeat(float(start)), offsets)))
    scaled = map(mul, _uniforms(rng, n_events), repeat(METRIC_CUMULATIVE[-1]))
    metric_col = array("B", map(partial(bisect.bisect_right, METRIC_CUMULATIVE), scaled))
    # A few very active profiles, a long tail of quiet ones, among those created before the event.
    created_before = map(partial(bisect.bisect_right, created), times)
    skew = map(pow, _uniforms(rng, n_events), repeat(1.6))
    profile_col = array("i", map(int, map(mul, created_before, skew)))
    event_rand = array("Q", [bits(64) for _ in range(n_events)])
    return Columns(
        event_ts=times,
        event_metric=metric_col,
        event_profile=profile_col,
        event_rand=event_rand,
        profile_created=array("q", created),
        profile_updated=updated,
        profile_version=array("i", bytes(4 * n_profiles)),
        profile_rand=profile_rand,
        suppression=suppression,
        push_enabled=push,
    )


def _between(seed: int, salt: int, i: int, lo: int, hi: int) -> int:
    return lo + int((max(hi, lo) - lo) * frac(seed, salt, i))


def generate_small(seed: int, sizes: Sizes, now: int) -> dict[str, list[Row]]:
    """All small collections, keyed by resource type."""
    start = now - TWO_YEARS
    out: dict[str, list[Row]] = {}

    tag_groups = [
        Row("tag-group", uuid_text(seed, 40, g), {"name": name, "exclusive": g == 1, "default": g == 0})
        for g, name in enumerate(["Default", "Season", "Team"])
    ]
    tags = []
    for i in range(sizes.tags):
        group = tag_groups[i % len(tag_groups)]
        tag = Row("tag", uuid_text(seed, 41, i), {"name": f"{group.attributes['name']} tag {i + 1}"})
        tag.relationships["tag-group"] = ("tag-group", group.id)
        tags.append(tag)
    for group in tag_groups:
        group.relationships["tags"] = (
            "tag",
            [t.id for t in tags if t.relationships["tag-group"][1] == group.id],
        )
    out["tag-group"], out["tag"] = tag_groups, tags
    tag_ids = [t.id for t in tags]

    def some_tags(salt: int, i: int) -> list[str]:
        if not tag_ids or frac(seed, salt, i) < 0.5:
            return []
        return sorted({pick(tag_ids, seed, salt, i, k) for k in range(1 + mix(seed, salt, i, 9) % 2)})

    metrics = []
    for i, (name, _, integration) in enumerate(METRICS):
        created = _between(seed, 50, i, start - 86_400 * 200, start)
        integ = None
        if integration:
            integ = {
                "object": "integration",
                "id": short_id(seed, 51, i),
                "key": integration[0].lower(),
                "name": integration[0],
                "category": integration[1],
            }
        metrics.append(
            Row(
                "metric",
                short_id(seed, 52, i),
                {
                    "name": name,
                    "created": iso_seconds(created),
                    "updated": iso_seconds(_between(seed, 53, i, created, now)),
                    "integration": integ,
                },
            )
        )
    out["metric"] = metrics

    lists = []
    for i in range(sizes.lists):
        created = _between(seed, 60, i, start - 86_400 * 60, now - 86_400)
        lists.append(
            Row(
                "list",
                short_id(seed, 61, i),
                {
                    "name": f"{pick(LIST_NAMES, seed, 62, i)} {i + 1}",
                    "created": iso_seconds(created),
                    "updated": iso_seconds(_between(seed, 63, i, created, now)),
                    "opt_in_process": pick(["double_opt_in", "single_opt_in"], seed, 64, i),
                },
                {"tags": ("tag", some_tags(65, i))},
                {"member_share": 0.05 + 0.5 * frac(seed, 66, i)},
            )
        )
    out["list"] = lists

    segments = []
    for i in range(sizes.segments):
        created = _between(seed, 70, i, start, now - 86_400)
        segment_definition: dict[str, Any] = {
            "condition_groups": [
                {
                    "conditions": [
                        {
                            "type": "profile-marketing-consent",
                            "consent": {
                                "channel": "email",
                                "can_receive_marketing": True,
                                "consent_status": {"subscription": "any", "filters": None},
                            },
                        }
                    ]
                }
            ]
        }
        segments.append(
            Row(
                "segment",
                short_id(seed, 71, i),
                {
                    "name": f"{pick(SEGMENT_NAMES, seed, 72, i)} {i + 1}",
                    "definition": segment_definition,
                    "created": iso_seconds(created),
                    "updated": iso_seconds(_between(seed, 73, i, created, now)),
                    "is_active": frac(seed, 74, i) < 0.9,
                    "is_processing": False,
                    "is_starred": frac(seed, 75, i) < 0.2,
                },
                {"tags": ("tag", some_tags(76, i))},
                {"member_share": 0.02 + 0.3 * frac(seed, 77, i)},
            )
        )
    out["segment"] = segments

    templates = []
    for i in range(sizes.templates):
        created = _between(seed, 80, i, start, now - 3600)
        name = f"{pick(TEMPLATE_NAMES, seed, 81, i)} template {i + 1}"
        html = (
            f"<!DOCTYPE html><html><head><title>{name}</title></head><body><h1>{name}</h1>"
            f"<p>Hello {{{{ first_name|default:'there' }}}},</p>"
            + "<p>Lorem ipsum dolor sit amet.</p>" * (3 + mix(seed, 82, i) % 20)
            + "<a href='{% unsubscribe_url %}'>Unsubscribe</a></body></html>"
        )
        templates.append(
            Row(
                "template",
                short_id(seed, 83, i),
                {
                    "name": name,
                    "editor_type": pick(
                        ["CODE", "SYSTEM_DRAGGABLE", "SIMPLE", "USER_DRAGGABLE"], seed, 84, i
                    ),
                    "html": html,
                    "text": None if frac(seed, 85, i) < 0.5 else f"{name}\n\nHello there.",
                    "amp": None,
                    "created": iso_seconds(created),
                    "updated": iso_seconds(_between(seed, 86, i, created, now)),
                },
            )
        )
    out["template"] = templates

    campaigns, messages, estimations = [], [], []
    audience_ids = [r.id for r in lists + segments]
    for i in range(sizes.campaigns):
        channel = pick(CHANNELS, seed, 90, i)
        created = _between(seed, 91, i, start, now - 3600)
        status = pick(CAMPAIGN_STATUSES, seed, 92, i)
        sent = status in ("Sent", "Sending")
        send_at = _between(seed, 93, i, created, now) if sent else None
        scheduled = (
            send_at
            if sent
            else (now + 86_400 * (1 + mix(seed, 94, i) % 20) if status == "Scheduled" else None)
        )
        updated = max(created, min(now, (send_at or created) + int(3600 * frac(seed, 95, i))))
        cid = ulid(created, seed, 96, i)
        n_messages = 2 if channel == "email" and frac(seed, 97, i) < 0.1 else 1
        message_ids = [ulid(created, seed, 98, i, k) for k in range(n_messages)]
        strategy: dict[str, Any] = (
            {"method": "static", "datetime": iso_seconds(scheduled), "options": {"is_local": False}}
            if scheduled
            else {"method": "immediate"}
        )
        tracking: dict[str, Any] | None
        if channel == "email":
            tracking = {
                "add_tracking_params": True,
                "custom_tracking_params": None,
                "is_tracking_clicks": True,
                "is_tracking_opens": True,
            }
        elif channel == "sms":
            tracking = {"add_tracking_params": False, "custom_tracking_params": None}
        else:
            tracking = None
        name = f"{pick(CAMPAIGN_NAMES, seed, 99, i)} #{i + 1}"
        campaign = Row(
            "campaign",
            cid,
            {
                "name": name,
                "status": status,
                "archived": frac(seed, 100, i) < 0.15,
                "audiences": {
                    "included": [pick(audience_ids, seed, 101, i)] if audience_ids else [],
                    "excluded": [],
                },
                "send_options": {"use_smart_sending": frac(seed, 102, i) < 0.7},
                "tracking_options": tracking,
                "send_strategy": strategy,
                "created_at": iso_seconds(created),
                "scheduled_at": iso_seconds(scheduled) if scheduled else None,
                "updated_at": iso_seconds(updated),
                "send_time": iso_seconds(send_at) if send_at else None,
            },
            {"campaign-messages": ("campaign-message", message_ids), "tags": ("tag", some_tags(103, i))},
            {"messages.channel": channel},
        )
        campaigns.append(campaign)
        send_moment = send_at if send_at is not None else scheduled
        for k, mid in enumerate(message_ids):
            definition: dict[str, Any]
            if channel == "email":
                definition = {
                    "channel": "email",
                    "label": f"{name} {'AB'[k]}",
                    "content": {
                        "subject": f"{name}: don't miss out",
                        "preview_text": "Inside: something new",
                        "from_email": "hello@shop.example.com",
                        "from_label": "Example Shop",
                        "reply_to_email": None,
                        "cc_email": None,
                        "bcc_email": None,
                    },
                }
            elif channel == "sms":
                definition = {
                    "channel": "sms",
                    "content": {"body": f"{name}: 20% off today only", "media_url": None},
                    "render_options": {
                        "shorten_links": True,
                        "add_org_prefix": True,
                        "add_info_link": True,
                        "add_opt_out_language": False,
                    },
                }
            else:
                definition = {
                    "channel": "mobile_push",
                    "notification_type": "standard",
                    "content": {
                        "title": name,
                        "body": "Tap to see what's new",
                        "dynamic_image": None,
                        "action_buttons": None,
                    },
                    "kv_pairs": None,
                    "options": None,
                }
            rels: dict[str, tuple[str, str | list[str] | None]] = {"campaign": ("campaign", cid)}
            if channel == "email" and templates:
                rels["template"] = ("template", pick([t.id for t in templates], seed, 104, i, k))
            messages.append(
                Row(
                    "campaign-message",
                    mid,
                    {
                        "definition": definition,
                        "send_times": [{"datetime": iso_seconds(send_moment), "is_local": False}]
                        if send_moment is not None
                        else None,
                        "created_at": iso_seconds(created),
                        "updated_at": iso_seconds(updated),
                    },
                    rels,
                )
            )
        if status != "Cancelled" and frac(seed, 105, i) < 0.8:
            count = 100 + mix(seed, 106, i) % max(1, sizes.profiles)
            estimations.append(
                Row("campaign-recipient-estimation", cid, {"estimated_recipient_count": count})
            )
    out["campaign"], out["campaign-message"], out["campaign-recipient-estimation"] = (
        campaigns,
        messages,
        estimations,
    )

    flows, actions, flow_messages = [], [], []
    action_counter = 100_000
    for i in range(sizes.flows):
        created = _between(seed, 110, i, start, now - 3600)
        trigger = pick(TRIGGER_TYPES, seed, 111, i)
        fid = short_id(seed, 112, i)
        action_ids: list[str] = []
        flow_updated = _between(seed, 113, i, created, now)
        for a in range(2 + mix(seed, 114, i) % 5):
            action_counter += 1 + mix(seed, 115, i, a) % 50
            aid = str(action_counter)
            action_ids.append(aid)
            a_created = _between(seed, 116, i * 100 + a, created, flow_updated)
            a_updated = _between(seed, 117, i * 100 + a, a_created, flow_updated)
            kind = "time-delay" if a % 2 else pick(["send-email", "send-email", "send-sms"], seed, 118, i, a)
            status = pick(["live", "live", "manual", "draft", "disabled"], seed, 119, i, a)
            if kind == "time-delay":
                definition = {
                    "id": aid,
                    "type": kind,
                    "links": {"next": None},
                    "data": {"unit": "days", "value": 1 + a, "secondary_value": None, "timezone": "profile"},
                }
            else:
                mid = short_id(seed, 120, i, a)
                channel = "email" if kind == "send-email" else "sms"
                message_def: dict[str, Any]
                if channel == "email":
                    message_def = {
                        "id": mid,
                        "name": f"Email {a + 1}",
                        "subject_line": "We saved your cart",
                        "preview_text": "Come back",
                        "from_email": "hello@shop.example.com",
                        "from_label": "Example Shop",
                        "template_id": pick([t.id for t in templates], seed, 121, i, a)
                        if templates
                        else None,
                        "smart_sending_enabled": True,
                        "transactional": False,
                        "add_tracking_params": False,
                    }
                else:
                    message_def = {
                        "body": "Your cart misses you",
                        "smart_sending_enabled": True,
                        "transactional": False,
                        "add_tracking_params": False,
                    }
                definition = {
                    "id": aid,
                    "type": kind,
                    "links": {"next": None},
                    "data": {"message": message_def, "status": status},
                }
                m_rels: dict[str, tuple[str, str | list[str] | None]] = {"flow-action": ("flow-action", aid)}
                if channel == "email" and templates:
                    m_rels["template"] = ("template", message_def["template_id"])
                flow_messages.append(
                    Row(
                        "flow-message",
                        mid,
                        {
                            "channel": channel,
                            "created": iso_seconds(a_created),
                            "updated": iso_seconds(a_updated),
                            "definition": message_def,
                        },
                        m_rels,
                        {"name": message_def.get("name", f"SMS {a + 1}")},
                    )
                )
            msg_ids = [m.id for m in flow_messages if m.relationships["flow-action"][1] == aid]
            actions.append(
                Row(
                    "flow-action",
                    aid,
                    {
                        "created": iso_seconds(a_created),
                        "updated": iso_seconds(a_updated),
                        "definition": definition,
                    },
                    {"flow": ("flow", fid), "flow-messages": ("flow-message", msg_ids)},
                    {
                        "action_type": kind.upper().replace("-", "_"),
                        "status": definition.get("data", {}).get("status", "live"),
                    },
                )
            )
        flows.append(
            Row(
                "flow",
                fid,
                {
                    "name": f"{pick(FLOW_NAMES, seed, 122, i)} {i + 1}",
                    "status": pick(FLOW_STATUSES, seed, 123, i),
                    "archived": frac(seed, 124, i) < 0.15,
                    "created": iso_seconds(created),
                    "updated": iso_seconds(flow_updated),
                    "trigger_type": trigger,
                },
                {"flow-actions": ("flow-action", action_ids), "tags": ("tag", some_tags(125, i))},
                {
                    "trigger_source": pick(
                        [m.id for m in metrics] if trigger == "Metric" else [r.id for r in lists] or [""],
                        seed,
                        126,
                        i,
                    )
                },
            )
        )
    out["flow"], out["flow-action"], out["flow-message"] = flows, actions, flow_messages

    for group_type in ("list", "segment", "metric"):
        for row in out[group_type]:
            triggers = [f.id for f in flows if f.hidden["trigger_source"] == row.id]
            row.relationships["flow-triggers"] = ("flow", triggers)
    return out
