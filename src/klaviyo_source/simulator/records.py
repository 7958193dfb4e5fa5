"""Lazy, deterministic rendering of event and profile attributes from (seed, row) and the columns."""

from __future__ import annotations

from typing import Any

import orjson

from klaviyo_source.simulator.data import (
    CITIES,
    CROCKFORD,
    DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    PRODUCTS,
    Columns,
    frac,
    mix,
    pick,
)
from klaviyo_source.simulator.query import iso_seconds

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


def profile_email(seed: int, row: int) -> str:
    first, last = pick(FIRST_NAMES, seed, 1, row), pick(LAST_NAMES, seed, 2, row)
    return f"{first}.{last}{row}@{pick(DOMAINS, seed, 3, row)}".lower()


def profile_phone(seed: int, row: int) -> str | None:
    return f"+1555{mix(seed, 4, row) % 10**7:07d}" if frac(seed, 5, row) < 0.4 else None


def profile_external_id(seed: int, row: int) -> str | None:
    return f"cust_{mix(seed, 6, row) % 10**8}" if frac(seed, 7, row) < 0.5 else None


def profile_attributes(seed: int, cols: Columns, row: int, now: int) -> dict[str, Any]:
    created, updated = cols.profile_created[row], cols.profile_updated[row]
    city = pick(CITIES, seed, 8, row)
    last_event = (
        None if frac(seed, 9, row) < 0.1 else created + int((updated - created) * frac(seed, 10, row))
    )
    version = cols.profile_version[row]
    return {
        "email": profile_email(seed, row),
        "phone_number": profile_phone(seed, row),
        "external_id": profile_external_id(seed, row),
        "first_name": pick(FIRST_NAMES, seed, 1, row),
        "last_name": pick(LAST_NAMES, seed, 2, row),
        "organization": None if frac(seed, 11, row) < 0.7 else "Example Org",
        "locale": pick(["en-US", "en-GB", "de-DE", "fr-FR"], seed, 12, row),
        "title": None,
        "image": None,
        "created": iso_seconds(created),
        "updated": iso_seconds(updated),
        "last_event_date": iso_seconds(last_event) if last_event is not None else None,
        "location": {
            "address1": f"{1 + mix(seed, 13, row) % 999} Main St",
            "address2": None,
            "city": city[0],
            "country": city[2],
            "latitude": city[5],
            "longitude": city[6],
            "region": city[1],
            "zip": city[3],
            "timezone": city[4],
            "ip": f"203.0.113.{mix(seed, 14, row) % 254 + 1}",
        },
        "properties": {
            "Accepts Marketing": frac(seed, 15, row) < 0.6,
            "Loyalty Points": version * 10 + mix(seed, 16, row) % 500,
            "source": pick(["shopify", "popup", "import"], seed, 17, row),
        },
    }


def subscriptions(seed: int, cols: Columns, row: int) -> dict[str, Any]:
    created = cols.profile_created[row]
    suppression = cols.suppression.get(row)
    consent = pick(["SUBSCRIBED", "SUBSCRIBED", "UNSUBSCRIBED", "NEVER_SUBSCRIBED"], seed, 18, row)
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
        "double_optin": frac(seed, 19, row) < 0.3,
        "suppression": [{"reason": suppression[0], "timestamp": iso_seconds(suppression[1])}]
        if suppression
        else [],
        "list_suppressions": [],
    }
    out: dict[str, Any] = {"email": {"marketing": email}}
    if profile_phone(seed, row):
        sms_consent = "SUBSCRIBED" if frac(seed, 20, row) < 0.5 else "NEVER_SUBSCRIBED"
        channel = {
            "consent": sms_consent,
            "consent_timestamp": iso_seconds(created) if sms_consent == "SUBSCRIBED" else None,
            "method": "TEXT" if sms_consent == "SUBSCRIBED" else None,
            "method_detail": "",
            "last_updated": iso_seconds(created),
        }
        out["sms"] = {
            "marketing": {"can_receive_sms_marketing": sms_consent == "SUBSCRIBED", **channel},
            "transactional": {"can_receive_sms_transactional": sms_consent == "SUBSCRIBED", **channel},
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


def predictive_analytics(seed: int, row: int, now: int) -> dict[str, Any]:
    orders = mix(seed, 28, row) % 8
    aov = round(20 + 180 * frac(seed, 29, row), 2)
    predicted = round(3 * frac(seed, 30, row), 2)
    return {
        "historic_clv": round(orders * aov, 2),
        "predicted_clv": round(predicted * aov, 2),
        "total_clv": round((orders + predicted) * aov, 2),
        "historic_number_of_orders": orders,
        "predicted_number_of_orders": predicted,
        "average_days_between_orders": round(20 + 100 * frac(seed, 44, row), 1) if orders > 1 else None,
        "average_order_value": aov if orders else 0.0,
        "churn_probability": round(frac(seed, 45, row), 2),
        "expected_date_of_next_order": iso_seconds(now + int(86_400 * 90 * frac(seed, 46, row)))
        if orders
        else None,
        "ranked_channel_affinity": ["email", "sms", "push"]
        if frac(seed, 47, row) < 0.5
        else ["email", "push", "sms"],
    }
