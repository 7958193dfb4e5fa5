"""Lazy, deterministic rendering of event and profile attributes from (seed, row) and the columns."""

from __future__ import annotations

from typing import Any

import orjson

from klaviyo_simulator.data import (
    CITIES,
    CROCKFORD,
    DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    PRODUCTS,
    Columns,
)
from klaviyo_simulator.query import iso_seconds

EVENT_ID_MODULUS = 62**10  # < 2**63: the arithmetic stays on machine-size ints
EVENT_ID_FACTOR = 521_457_124_689_104_637  # odd, not a multiple of 31: row -> id is a bijection
EVENT_ID_OFFSET = 0x2F1D
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# 62**3 three-char digits (~12 MB once): an id costs 3 divmods instead of 10 on the serving hot path.
TRIPLETS = [a + b + c for a in BASE62 for b in BASE62 for c in BASE62]
EMAIL_METRICS = frozenset(
    {"Received Email", "Opened Email", "Clicked Email", "Bounced Email", "Unsubscribed"}
)
ORDER_METRICS = frozenset({"Placed Order", "Ordered Product", "Checkout Started", "Added to Cart"})
MASK64 = (1 << 64) - 1


def event_id(row: int) -> str:
    """An 11-char alphanumeric id: a check character, then the row scrambled into 10 base-62 digits."""
    value = ((row + 1) * EVENT_ID_FACTOR + EVENT_ID_OFFSET) % EVENT_ID_MODULUS
    high, low = divmod(value, 238_328)
    high, middle = divmod(high, 238_328)
    top, upper = divmod(high, 238_328)
    return f"{BASE62[value % 61 + 1]}{BASE62[top]}{TRIPLETS[upper]}{TRIPLETS[middle]}{TRIPLETS[low]}"


def event_row(identifier: str) -> int | None:
    """Inverse of `event_id` (None for a string that is not an event id)."""
    if len(identifier) != 11 or any(c not in BASE62 for c in identifier):
        return None
    value = 0
    for char in identifier[1:]:
        value = value * 62 + BASE62.index(char)
    row = ((value - EVENT_ID_OFFSET) * pow(EVENT_ID_FACTOR, -1, EVENT_ID_MODULUS)) % EVENT_ID_MODULUS - 1
    return row if row >= 0 and event_id(row) == identifier else None


def event_uuid(h: int) -> str:
    """A version-4-shaped UUID from the event's random bits."""
    x = f"{(h << 64) | ((h * 0x9E3779B97F4A7C15) & MASK64):032x}"
    return f"{x[:8]}-{x[8:12]}-4{x[13:16]}-a{x[17:20]}-{x[20:]}"


def _json(text: str) -> str:
    return orjson.dumps(text).decode()


PRODUCTS_JSON = [(_json(name), price) for name, price in PRODUCTS]
DOMAINS_JSON = [_json(d) for d in DOMAINS]
PAGES = (
    '"https://shop.example.com/"',
    '"https://shop.example.com/collections/all"',
    '"https://shop.example.com/cart"',
)
OSES = ('"iOS"', '"Android"', '"Windows"', '"macOS"')


def event_properties_json(h: int, metric_name: str, campaign_names_json: list[str]) -> str:
    """Properties typical of the metric as JSON text, all drawn from the event's 64 random bits `h`.

    Built by templating (the serving hot path); `event_properties` parses it for the dict path,
    so both paths always agree.
    """
    head = f'{{"$event_id":"{h % 10**12}"'
    if metric_name == "Viewed Product":
        name, price = PRODUCTS_JSON[(h >> 44) % len(PRODUCTS_JSON)]
        product_id = (h >> 20) % 10**6
        return (
            f'{head},"$value":{price},"ProductName":{name},"ProductID":{product_id},"Price":{price},'
            f'"URL":"https://shop.example.com/products/{product_id}"}}'
        )
    if metric_name in ORDER_METRICS:
        items = [PRODUCTS_JSON[(h >> (44 + 4 * k)) % len(PRODUCTS_JSON)] for k in range(1 + (h >> 40) % 3)]
        value = round(sum(price for _, price in items), 2)
        names = ",".join(n for n, _ in items)
        lines = ",".join(f'{{"ProductName":{n},"ItemPrice":{p},"Quantity":1}}' for n, p in items)
        order = f',"OrderId":"#{(h >> 12) % 10**7}"' if metric_name == "Placed Order" else ""
        return f'{head},"$value":{value},"ItemNames":[{names}],"Items":[{lines}],"Currency":"USD"{order}}}'
    if metric_name in EMAIL_METRICS:
        names_json = campaign_names_json or ['"Newsletter"']
        url = ',"URL":"https://shop.example.com/collections/new"' if metric_name == "Clicked Email" else ""
        campaign = names_json[(h >> 16) % len(names_json)]
        domain = DOMAINS_JSON[(h >> 24) % len(DOMAINS_JSON)]
        return (
            f'{head},"Campaign Name":{campaign},"Subject":"Something new for you",'
            f'"Email Domain":{domain},"$message":"{(h >> 30) % 10**6:06d}"{url},"$value":0}}'
        )
    if "SMS" in metric_name:
        return (
            f'{head},"Message Name":"SMS promo","$message":"{(h >> 30) % 10**6:06d}",'
            '"Carrier Deliverability Status":"DELIVERED"}'
        )
    return f'{head},"page":{PAGES[(h >> 16) % 3]},"$is_session_activity":true,"os":{OSES[(h >> 20) % 4]}}}'


def event_properties(h: int, metric_name: str, campaign_names_json: list[str]) -> dict[str, Any]:
    props: dict[str, Any] = orjson.loads(event_properties_json(h, metric_name, campaign_names_json))
    return props


def event_attributes(
    cols: Columns, row: int, metric_name: str, campaign_names_json: list[str]
) -> dict[str, Any]:
    ts = cols.event_ts[row]
    h = cols.event_rand[row]
    return {
        "timestamp": ts,
        "event_properties": event_properties(h, metric_name, campaign_names_json),
        "datetime": iso_seconds(ts),
        "uuid": event_uuid(h),
    }


def profile_id(cols: Columns, row: int) -> str:
    """A ULID: creation time in milliseconds + 80 bits from the profile's random bits."""
    value = ((cols.profile_created[row] * 1000) << 80) | (cols.profile_rand[row] << 16) | (row & 0xFFFF)
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


# Profile attributes draw from three 64-bit words derived from the profile's random bits:
# cheap bit slices instead of a hash per attribute (profiles are rendered on every page).
K1, K2 = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F


def _words(cols: Columns, row: int) -> tuple[int, int, int]:
    h = cols.profile_rand[row]
    h2 = (h * K1) & MASK64
    return h, h2, (h2 * K2) & MASK64


def profile_email(cols: Columns, row: int) -> str:
    h = cols.profile_rand[row]
    first, last = FIRST_NAMES[h % len(FIRST_NAMES)], LAST_NAMES[(h >> 8) % len(LAST_NAMES)]
    return f"{first}.{last}{row}@{DOMAINS[(h >> 16) % len(DOMAINS)]}".lower()


def profile_phone(cols: Columns, row: int) -> str | None:
    h = cols.profile_rand[row]
    return f"+1555{((h * K1) & MASK64) % 10**7:07d}" if (h >> 20) % 100 < 40 else None


def profile_external_id(cols: Columns, row: int) -> str | None:
    h = cols.profile_rand[row]
    return f"cust_{(((h * K1) & MASK64) >> 24) % 10**8}" if (h >> 27) % 100 < 50 else None


def push_token(cols: Columns, row: int) -> str | None:
    return f"{_words(cols, row)[2]:016x}" if cols.push_enabled[row] else None


def profile_attributes(cols: Columns, row: int) -> dict[str, Any]:
    h, _, h3 = _words(cols, row)
    created, updated = cols.profile_created[row], cols.profile_updated[row]
    city = CITIES[(h >> 34) % len(CITIES)]
    last_event = None if (h >> 38) % 10 == 0 else created + ((updated - created) * (h3 & 0xFFFF) >> 16)
    return {
        "email": profile_email(cols, row),
        "phone_number": profile_phone(cols, row),
        "external_id": profile_external_id(cols, row),
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
            "Loyalty Points": cols.profile_version[row] * 10 + (h3 >> 34) % 500,
            "source": ("shopify", "popup", "import")[(h >> 53) % 3],
        },
    }


def subscriptions(cols: Columns, row: int) -> dict[str, Any]:
    h = cols.profile_rand[row]
    created = cols.profile_created[row]
    suppression = cols.suppression.get(row)
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
    if profile_phone(cols, row):
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
    if cols.push_enabled[row]:
        out["mobile_push"] = {
            "marketing": {
                "can_receive_push_marketing": True,
                "consent": "SUBSCRIBED",
                "consent_timestamp": iso_seconds(created),
            }
        }
    return out


def predictive_analytics(cols: Columns, row: int, now: int) -> dict[str, Any]:
    _, h2, h3 = _words(cols, row)
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
        "ranked_channel_affinity": ["email", "sms", "push"] if (h3 >> 60) & 1 else ["email", "push", "sms"],
    }
