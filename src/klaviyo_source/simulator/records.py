"""Lazy, deterministic rendering of event and profile attributes from (seed, row) and the columns."""

from __future__ import annotations

from typing import Any

from klaviyo_source.simulator.data import (
    CITIES,
    DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    METRICS,
    PRODUCTS,
    Columns,
    frac,
    mix,
    pick,
    ulid,
    uuid_text,
)
from klaviyo_source.simulator.query import iso_seconds

EVENT_ID_MODULUS = 62**11
EVENT_ID_FACTOR = 32_211_854_911_635_923_127  # odd, not a multiple of 31: row -> id is a bijection mod 62**11
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def event_id(row: int) -> str:
    value = ((row + 1) * EVENT_ID_FACTOR + 0x2F1D) % EVENT_ID_MODULUS
    chars = []
    for _ in range(11):
        value, rem = divmod(value, 62)
        chars.append(BASE62[rem])
    return "".join(reversed(chars))


def event_row(identifier: str) -> int | None:
    """Inverse of `event_id` (None for a string that is not an event id)."""
    if len(identifier) != 11 or any(c not in BASE62 for c in identifier):
        return None
    value = 0
    for char in identifier:
        value = value * 62 + BASE62.index(char)
    inverse = pow(EVENT_ID_FACTOR, -1, EVENT_ID_MODULUS)
    return ((value - 0x2F1D) * inverse) % EVENT_ID_MODULUS - 1


def event_properties(seed: int, row: int, metric: int, campaign_names: list[str]) -> dict[str, Any]:
    name = METRICS[metric][0]
    props: dict[str, Any] = {"$event_id": f"{mix(seed, 34, row) % 10**12:012d}"}
    if name in ("Placed Order", "Ordered Product", "Checkout Started", "Added to Cart", "Viewed Product"):
        count = 1 + mix(seed, 35, row) % 3 if name != "Viewed Product" else 1
        items = [pick(PRODUCTS, seed, 36, row, k) for k in range(count)]
        value = round(sum(price for _, price in items), 2)
        props["$value"] = value
        if name == "Viewed Product":
            props.update(
                {
                    "ProductName": items[0][0],
                    "ProductID": mix(seed, 37, row) % 10**6,
                    "Price": items[0][1],
                    "URL": f"https://shop.example.com/products/{mix(seed, 37, row) % 10**6}",
                }
            )
        else:
            props.update(
                {
                    "ItemNames": [n for n, _ in items],
                    "Items": [{"ProductName": n, "ItemPrice": p, "Quantity": 1} for n, p in items],
                    "Currency": "USD",
                    "OrderId": f"#{1000 + row}" if name == "Placed Order" else None,
                }
            )
    elif "Email" in name or name == "Unsubscribed":
        props.update(
            {
                "Campaign Name": pick(campaign_names, seed, 38, row) if campaign_names else "Newsletter",
                "Subject": "Something new for you",
                "Email Domain": pick(DOMAINS, seed, 39, row),
                "$message": f"{mix(seed, 40, row) % 10**6:06d}",
            }
        )
        if name == "Clicked Email":
            props["URL"] = "https://shop.example.com/collections/new"
        props["$value"] = 0
    elif "SMS" in name:
        props.update(
            {
                "Message Name": "SMS promo",
                "$message": f"{mix(seed, 41, row) % 10**6:06d}",
                "Carrier Deliverability Status": "DELIVERED",
            }
        )
    else:
        props.update(
            {
                "page": f"https://shop.example.com/{pick(['', 'collections/all', 'cart'], seed, 42, row)}",
                "$is_session_activity": True,
                "os": pick(["iOS", "Android", "Windows", "macOS"], seed, 43, row),
            }
        )
    return props


def event_attributes(seed: int, cols: Columns, row: int, campaign_names: list[str]) -> dict[str, Any]:
    ts = cols.event_ts[row]
    return {
        "timestamp": ts,
        "event_properties": event_properties(seed, row, cols.event_metric[row], campaign_names),
        "datetime": iso_seconds(ts),
        "uuid": uuid_text(seed, 33, row),
    }


def profile_id(seed: int, cols: Columns, row: int) -> str:
    return ulid(cols.profile_created[row], seed, 27, row)


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
