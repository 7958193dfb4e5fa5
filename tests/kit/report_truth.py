"""What the report streams must say, recomputed from the events and memberships a read returned.

Input: `events_detailed` records (attributions merged in, as the connector emits them) and
`segment_memberships` records, plus the metrics' names. Output: per local day of the account,
the counts the simulator's Reporting API derives (see klaviyo_simulator/resources/reports.py):
messages' recipients/opens/clicks/bounced and conversions/value, forms' views and submits,
segments' members added and totals, and one metric's daily count and value.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

Record = dict[str, Any]
COUNTED = {
    "Received Email": "recipients",
    "Received SMS": "recipients",
    "Opened Email": "opens",
    "Clicked Email": "clicks",
    "Clicked SMS": "clicks",
    "Bounced Email": "bounced",
}


def local_day(moment: str, zone: ZoneInfo) -> date:
    return datetime.fromisoformat(moment).astimezone(zone).date()


def _attributed(event: Record) -> dict[str, str]:
    """rel name -> id of the event's attributions (merged `included` or plain linkage)."""
    out: dict[str, str] = {}
    for attribution in (event.get("relationships", {}).get("attributions") or {}).get("data") or []:
        for name, rel in (attribution.get("relationships") or {}).items():
            data = rel.get("data") if isinstance(rel, dict) else None
            if isinstance(data, dict) and "id" in data:
                out[name] = data["id"]
    return out


def messages(
    events: list[Record], names: dict[str, str], zone: ZoneInfo, kind: str, conversion: str
) -> dict[tuple[str, date], Counter[str]]:
    """(message id, day) -> counts for campaign or flow messages; `conversion` is a metric name."""
    out: dict[tuple[str, date], Counter[str]] = defaultdict(Counter)
    for event in events:
        name = names[event["relationships"]["metric"]["data"]["id"]]
        props = event["attributes"]["event_properties"]
        day = local_day(event["attributes"]["datetime"], zone)
        if name in COUNTED and "$message" in props and ("$flow" in props) == (kind == "flow"):
            out[(props["$message"], day)][COUNTED[name]] += 1
        message = _attributed(event).get(f"{kind}-message")
        if name == conversion and message:
            out[(message, day)]["conversions"] += 1
            out[(message, day)]["conversion_value"] += props.get("$value", 0)
    return out


def forms(events: list[Record], names: dict[str, str], zone: ZoneInfo) -> Counter[tuple[str, str, date, str]]:
    out: Counter[tuple[str, str, date, str]] = Counter()
    for event in events:
        name = names[event["relationships"]["metric"]["data"]["id"]]
        if name in ("Viewed Form", "Submitted Form"):
            props = event["attributes"]["event_properties"]
            stat = "viewed_form" if name == "Viewed Form" else "submits"
            day = local_day(event["attributes"]["datetime"], zone)
            out[(props["form_id"], props["form_version_id"], day, stat)] += 1
    return out


def joined(memberships: list[Record], zone: ZoneInfo) -> dict[str, list[date]]:
    """segment id -> its members' local join days."""
    out: dict[str, list[date]] = defaultdict(list)
    for row in memberships:
        out[row["segment_id"]].append(local_day(row["joined_group_at"], zone))
    return out


def metric_days(events: list[Record], metric_id: str, zone: ZoneInfo) -> dict[date, tuple[int, float]]:
    out: dict[date, tuple[int, float]] = {}
    for event in events:
        if event["relationships"]["metric"]["data"]["id"] != metric_id:
            continue
        day = local_day(event["attributes"]["datetime"], zone)
        count, value = out.get(day, (0, 0.0))
        out[day] = (count + 1, value + float(event["attributes"]["event_properties"].get("$value", 0)))
    return out
