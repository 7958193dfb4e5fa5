"""The Reporting API and metric aggregates: POST queries answered from the simulator's events.

Served: POST /api/campaign-values-reports, /api/flow-values-reports, /api/flow-series-reports,
/api/form-series-reports, /api/segment-series-reports and /api/metric-aggregates. The body is
checked against the spec's request schema (types, required attributes, the statistics,
interval, group-by and measurement enums) and the rules its descriptions state (timeframe at
most one year; hourly <= 7 days, daily <= 60 days, monthly <= 52 weeks; segment data starts
2023-06-01; metric aggregates need a datetime range); a violation is Klaviyo's 400 document.

Numbers come from the events and their links (`resources/sends.py`): per campaign or flow
message, `recipients` = Received Email/SMS, `opens`/`clicks`/`bounced`/`unsubscribes` their
events (uniques = distinct profiles), `conversions`/`conversion_value` = events of the
conversion metric attributed to the message (only Placed Order events carry attributions) and
their `$value`. Rates divide by `delivered` (= recipients - bounced) and are capped at 1 (the
simulator's events are independent draws). Spam complaints, failures and SMS spend are 0.
Segments: `members_added` per bucket = members whose `joined_group_at` falls in it,
`total_members` = members joined by the bucket's end; nobody leaves a simulated segment, so
`members_removed` is 0. Forms: `viewed_form`/`submits` = Viewed Form / Submitted Form events of
the form (version); closes, qualifications and steps are 0. Timeframes are read in the
account's timezone (offsets ignored, as Klaviyo does); both ends are inclusive to the second.
A conversion metric without values (email, SMS, site and form metrics) is refused with
"Passed in conversion metric does not support querying for values data".
"""

from __future__ import annotations

import bisect
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from klaviyo_simulator.errors import ApiError
from klaviyo_simulator.resources.profiles import SHIFT
from klaviyo_simulator.resources.sends import Target
from klaviyo_simulator.spec import load_spec
from klaviyo_source.endpoints import Endpoint, query_endpoints

if TYPE_CHECKING:
    from klaviyo_simulator.store import Store

SERVED = (
    "/api/campaign-values-reports",
    "/api/flow-values-reports",
    "/api/flow-series-reports",
    "/api/form-series-reports",
    "/api/segment-series-reports",
    "/api/metric-aggregates",
)
VALUE_METRICS = frozenset(
    {
        "Viewed Product",
        "Added to Cart",
        "Checkout Started",
        "Placed Order",
        "Ordered Product",
        "Fulfilled Order",
    }
)
NO_VALUES = "Passed in conversion metric does not support querying for values data"
SEGMENT_DATA_START = datetime(2023, 6, 1)
INTERVAL_LIMITS = {"hourly": timedelta(days=7), "daily": timedelta(days=60), "monthly": timedelta(weeks=52)}
AGGREGATE_INTERVALS = {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly"}
CHANNELS = {"email": "email", "sms": "sms", "mobile_push": "push-notification"}
_FILTER = re.compile(r'^(equals|any|contains-any)\((\w+),\s*(\[.*\]|".*?"|\'.*?\')\)$')
_AGG_FILTER = re.compile(r"^(greater-or-equal|greater-than|less-than|less-or-equal|equals)\((\w+),(.+)\)$")


def report_paths() -> dict[str, Endpoint]:
    """The POST query endpoints served, with their spec facts (rates, daily quota, scopes)."""
    queries = query_endpoints()
    return {path: queries[path] for path in SERVED}


def invalid(detail: str, pointer: str = "/data/attributes") -> ApiError:
    return ApiError(400, "invalid", detail, title="Invalid input.", pointer=pointer)


# ------------------------------------------------------------------ the spec's request schema


@cache
def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = load_spec()["components"]["schemas"]
    return schemas


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = _schemas()[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def check_schema(schema: dict[str, Any], value: Any, pointer: str) -> None:
    """The subset of OpenAPI the request DTOs use: type, enum, required, properties, items,
    oneOf, nullable. Unknown attributes are refused."""
    schema = _resolve(schema)
    if value is None:
        if schema.get("nullable"):
            return
        raise invalid(f"'{pointer}' may not be null.", pointer)
    if "oneOf" in schema:
        failures = []
        for option in schema["oneOf"]:
            try:
                check_schema(option, value, pointer)
                return
            except ApiError as error:
                failures.append(error.detail)
        raise invalid(f"'{pointer}' matches none of the allowed forms ({'; '.join(failures)}).", pointer)
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise invalid(f"'{pointer}' must be an object.", pointer)
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                raise invalid(f"'{name}' is a required field.", f"{pointer}/{name}")
        for name, item in value.items():
            if properties and name not in properties:
                raise invalid(f"'{name}' is not a valid field for this endpoint.", f"{pointer}/{name}")
            if name in properties:
                check_schema(properties[name], item, f"{pointer}/{name}")
    elif kind == "array":
        if not isinstance(value, list):
            raise invalid(f"'{pointer}' must be a list.", pointer)
        for index, item in enumerate(value):
            check_schema(schema.get("items", {}), item, f"{pointer}/{index}")
    elif kind == "string":
        if not isinstance(value, str):
            raise invalid(f"'{pointer}' must be a string.", pointer)
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(schema["enum"])
            raise invalid(
                f"'{value}' is not a valid choice for '{pointer}' (choose from {allowed}).", pointer
            )
    elif kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        raise invalid(f"'{pointer}' must be an integer.", pointer)


# ------------------------------------------------------------------ time


@dataclass(frozen=True)
class Span:
    """A timeframe in the account's local time: [start, end], both inclusive to the second."""

    start: datetime  # naive local
    end: datetime  # naive local
    zone: ZoneInfo

    def epoch(self, moment: datetime) -> int:
        return int(moment.replace(tzinfo=self.zone).timestamp())

    def local(self, ts: int) -> datetime:
        return datetime.fromtimestamp(ts, self.zone).replace(tzinfo=None)


def _naive(text: str, pointer: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(f"'{text}' is not a valid datetime.", pointer) from None
    return moment.replace(tzinfo=None)  # Klaviyo ignores the offset: the company timezone is used


def _key_span(key: str, today: date) -> tuple[datetime, datetime]:
    """A pre-defined timeframe key -> [start, end) in local days."""
    day = timedelta(days=1)
    midnight = datetime(today.year, today.month, today.day)
    month_start = midnight.replace(day=1)
    week_start = midnight - timedelta(days=midnight.weekday())
    previous_month = (month_start - day).replace(day=1)
    spans = {
        "today": (midnight, midnight + day),
        "yesterday": (midnight - day, midnight),
        "last_7_days": (midnight - 7 * day, midnight),
        "last_30_days": (midnight - 30 * day, midnight),
        "last_90_days": (midnight - 90 * day, midnight),
        "last_365_days": (midnight - 365 * day, midnight),
        "last_3_months": (midnight - 91 * day, midnight),
        "last_12_months": (midnight - 365 * day, midnight),
        "this_week": (week_start, midnight + day),
        "last_week": (week_start - 7 * day, week_start),
        "this_month": (month_start, midnight + day),
        "last_month": (previous_month, month_start),
        "this_year": (midnight.replace(month=1, day=1), midnight + day),
        "last_year": (
            midnight.replace(year=midnight.year - 1, month=1, day=1),
            midnight.replace(month=1, day=1),
        ),
    }
    return spans[key]


def timeframe(attributes: dict[str, Any], zone: ZoneInfo, now: int) -> Span:
    frame = attributes["timeframe"]
    pointer = "/data/attributes/timeframe"
    if "key" in frame:
        start, stop = _key_span(frame["key"], datetime.fromtimestamp(now, zone).date())
        end = stop - timedelta(seconds=1)
    else:
        start, end = _naive(frame["start"], f"{pointer}/start"), _naive(frame["end"], f"{pointer}/end")
    if end < start:
        raise invalid("The timeframe's end must not be before its start.", pointer)
    if end - start > timedelta(days=366):
        raise invalid("The timeframe may be at most 1 year long.", pointer)
    return Span(start, end, zone)


def _bucket_start(moment: datetime, interval: str) -> datetime:
    if interval == "hourly":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "weekly":
        return day - timedelta(days=day.weekday())
    if interval == "monthly":
        return day.replace(day=1)
    return day


def _next_bucket(start: datetime, interval: str) -> datetime:
    if interval == "hourly":
        return start + timedelta(hours=1)
    if interval == "weekly":
        return start + timedelta(days=7)
    if interval == "monthly":
        return (start + timedelta(days=32)).replace(day=1)
    return start + timedelta(days=1)


def buckets(span: Span, interval: str | None) -> list[datetime]:
    """Local bucket starts covering the span (one bucket for a values report)."""
    if interval is None:
        return [span.start]
    out, moment = [], _bucket_start(span.start, interval)
    while moment <= span.end:
        out.append(moment)
        moment = _next_bucket(moment, interval)
    return out


def check_interval(span: Span, interval: str) -> None:
    limit = INTERVAL_LIMITS.get(interval)
    if limit is not None and span.end - span.start > limit:
        days = limit.days
        raise invalid(
            f"The timeframe is too long for a {interval} interval (at most {days} days).",
            "/data/attributes/interval",
        )


def iso_local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.replace(tzinfo=zone).isoformat()


# ------------------------------------------------------------------ filters


def parse_filter(text: str | None, allowed: frozenset[str]) -> dict[str, frozenset[str]]:
    """`and(equals(a,"x"),any(b,["y","z"]))` -> {a: {x}, b: {y, z}} (AND only, as the spec says)."""
    if not text:
        return {}
    inner = text.strip()
    parts = [inner]
    if inner.startswith("and(") and inner.endswith(")"):
        parts = _split_args(inner[4:-1])
    out: dict[str, frozenset[str]] = {}
    for part in parts:
        match = _FILTER.match(part.strip())
        if match is None or match.group(2) not in allowed:
            raise invalid(f"Invalid filter: '{part}'.", "/data/attributes/filter")
        raw = match.group(3)
        values = re.findall(r'"([^"]*)"|\'([^\']*)\'', raw)
        out[match.group(2)] = frozenset(a or b for a, b in values)
    return out


def _split_args(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "(["
        depth -= char in ")]"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current] if current else parts


# ------------------------------------------------------------------ counting


@dataclass
class Counts:
    """What a report needs about one group in one bucket."""

    n: dict[str, int] = field(default_factory=dict)
    profiles: dict[str, set[int]] = field(default_factory=dict)
    value: float = 0.0

    def add(self, name: str, profile: int) -> None:
        self.n[name] = self.n.get(name, 0) + 1
        self.profiles.setdefault(name, set()).add(profile)

    def count(self, name: str) -> int:
        return self.n.get(name, 0)

    def unique(self, name: str) -> int:
        return len(self.profiles.get(name, ()))


def _rate(part: float, whole: float) -> float:
    return round(min(1.0, part / whole), 6) if whole else 0.0


def message_statistic(name: str, c: Counts) -> float:
    """One campaign/flow statistic from the counts (see the module docstring)."""
    recipients = c.count("received")
    bounced = c.count("bounced")
    delivered = recipients - min(bounced, recipients)
    conversions = c.count("conversion")
    value = round(c.value, 2)
    table: dict[str, Callable[[], float]] = {
        "recipients": lambda: recipients,
        "delivered": lambda: delivered,
        "delivery_rate": lambda: _rate(delivered, recipients),
        "bounced": lambda: bounced,
        "bounce_rate": lambda: _rate(bounced, recipients),
        "bounced_or_failed": lambda: bounced,
        "bounced_or_failed_rate": lambda: _rate(bounced, recipients),
        "failed": lambda: 0,
        "failed_rate": lambda: 0.0,
        "opens": lambda: c.count("opened"),
        "opens_unique": lambda: c.unique("opened"),
        "open_rate": lambda: _rate(c.unique("opened"), delivered),
        "clicks": lambda: c.count("clicked"),
        "clicks_unique": lambda: c.unique("clicked"),
        "click_rate": lambda: _rate(c.unique("clicked"), delivered),
        "click_to_open_rate": lambda: _rate(c.unique("clicked"), c.unique("opened")),
        "unsubscribes": lambda: c.count("unsubscribed"),
        "unsubscribe_uniques": lambda: c.unique("unsubscribed"),
        "unsubscribe_rate": lambda: _rate(c.unique("unsubscribed"), delivered),
        "spam_complaints": lambda: 0,
        "spam_complaint_rate": lambda: 0.0,
        "conversions": lambda: conversions,
        "conversion_uniques": lambda: c.unique("conversion"),
        "conversion_rate": lambda: _rate(c.unique("conversion"), delivered),
        "conversion_value": lambda: value,
        "average_order_value": lambda: round(value / conversions, 2) if conversions else 0.0,
        "revenue_per_recipient": lambda: round(value / delivered, 2) if delivered else 0.0,
        "message_segment_count_sum": lambda: c.count("sms_received"),
        "text_message_credit_usage_amount": lambda: c.count("sms_received"),
        "text_message_spend": lambda: 0.0,
        "text_message_roi": lambda: 0.0,
    }
    return table[name]()


def form_statistic(name: str, c: Counts) -> float:
    table: dict[str, Callable[[], float]] = {
        "viewed_form": lambda: c.count("viewed"),
        "viewed_form_uniques": lambda: c.unique("viewed"),
        "submits": lambda: c.count("submitted"),
        "submit_rate": lambda: _rate(c.unique("submitted"), c.unique("viewed")),
    }
    return table[name]() if name in table else 0


MESSAGE_COUNTER = {
    "Received Email": "received",
    "Received SMS": "received",
    "Opened Email": "opened",
    "Clicked Email": "clicked",
    "Clicked SMS": "clicked",
    "Bounced Email": "bounced",
    "Unsubscribed": "unsubscribed",
}


class Reports:
    """Answers the report queries of one account."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def zone(self) -> ZoneInfo:
        accounts = self.store.records_view("account")
        name = accounts[0].attributes.get("timezone", "UTC") if accounts else "UTC"
        return ZoneInfo(name)

    def answer(self, path: str, body: Any, base: str) -> dict[str, Any]:
        """The response document for a valid query; ApiError(400) otherwise."""
        endpoint = report_paths()[path]
        check_schema({"$ref": f"#/components/schemas/{endpoint.request_schema}"}, body, "")
        attributes = body["data"].get("attributes", {})
        rtype = body["data"].get("type")
        if "attributes" not in body["data"]:
            raise invalid("'attributes' is a required field.", "/data/attributes")
        now = self.store.clock()
        handler = {
            "/api/campaign-values-reports": self._campaigns,
            "/api/flow-values-reports": self._flows,
            "/api/flow-series-reports": self._flows,
            "/api/form-series-reports": self._forms,
            "/api/segment-series-reports": self._segments,
            "/api/metric-aggregates": self._aggregates,
        }[path]
        result = handler(attributes, now)
        links = {"self": f"{base}{path}/"}
        if path == "/api/metric-aggregates":
            data = {"type": rtype, "id": str(uuid.uuid4()), "attributes": result, "links": links}
        else:
            data = {"type": rtype, "attributes": result}
            relationships = self._relationships(path, result, base)
            if relationships:
                data["relationships"] = relationships
        return {"data": data, "links": links, "meta": {"agent_hints": {"next_steps": []}}}

    # -------------------------------------------------------------- messages

    def _conversion_metric(self, attributes: dict[str, Any]) -> int:
        wanted = attributes["conversion_metric_id"]
        metrics = self.store.records_view("metric")
        index = next((i for i, m in enumerate(metrics) if m.id == wanted), None)
        if index is None:
            raise invalid(f"Metric {wanted} does not exist.", "/data/attributes/conversion_metric_id")
        if metrics[index].attributes["name"] not in VALUE_METRICS:
            raise invalid(NO_VALUES, "/data/attributes/conversion_metric_id")
        return index

    def _span_rows(self, span: Span) -> range:
        ts = self.store.events.cols.ts
        lo = bisect.bisect_left(ts, span.epoch(span.start))
        hi = bisect.bisect_right(ts, span.epoch(span.end))
        return range(lo, hi)

    def _message_counts(
        self, kind: str, span: Span, interval: str | None, conversion: int
    ) -> tuple[list[datetime], dict[Target, list[Counts]]]:
        events = self.store.events
        cols, metrics, sends = events.cols, self.store.records_view("metric"), events.sends
        starts = buckets(span, interval)
        groups: dict[Target, list[Counts]] = {}

        def cell(target: Target, ts: int) -> Counts:
            series = groups.get(target)
            if series is None:
                series = groups[target] = [Counts() for _ in starts]
            if interval is None:
                return series[0]
            moment = _bucket_start(span.local(ts), interval)
            return series[bisect.bisect_right(starts, moment) - 1]

        for row in self._span_rows(span):
            metric = cols.metric[row]
            name = metrics[metric].attributes["name"]
            profile = cols.profile[row]
            if name in MESSAGE_COUNTER and sends is not None:
                target = sends.message(name, cols.rand[row])
                if target is not None and target.kind == kind:
                    counts = cell(target, cols.ts[row])
                    counts.add(MESSAGE_COUNTER[name], profile)
                    if name == "Received SMS":
                        counts.add("sms_received", profile)
            if metric == conversion:
                target = events.conversion(row)
                if target is not None and target.kind == kind:
                    counts = cell(target, cols.ts[row])
                    counts.add("conversion", profile)
                    counts.value += float(events.attributes(row)["event_properties"].get("$value", 0))
        return starts, groups

    def _grouping(self, kind: str, target: Target, group_by: list[str]) -> dict[str, Any]:
        values = {
            f"{kind}_id": target.parent_id,
            f"{kind}_message_id": target.message_id,
            "send_channel": CHANNELS.get(target.channel, target.channel),
            f"{kind}_name": target.name,
            f"{kind}_message_name": target.name,
        }
        unknown = [g for g in group_by if g not in values]
        if unknown:
            raise invalid(
                f"The simulator does not group by {', '.join(unknown)}.", "/data/attributes/group_by"
            )
        return {g: values[g] for g in group_by}

    def _message_report(self, kind: str, attributes: dict[str, Any], now: int) -> dict[str, Any]:
        conversion = self._conversion_metric(attributes)
        span = timeframe(attributes, self.zone, now)
        interval = attributes.get("interval")
        if interval is not None:
            check_interval(span, interval)
        group_by = attributes.get("group_by") or [f"{kind}_id", f"{kind}_message_id", "send_channel"]
        missing = [g for g in (f"{kind}_id", f"{kind}_message_id") if g not in group_by]
        if missing:
            raise invalid(f"group_by must include {', '.join(missing)}.", "/data/attributes/group_by")
        allowed = frozenset({f"{kind}_id", f"{kind}_message_id", "send_channel"})
        wanted = parse_filter(attributes.get("filter"), allowed)
        starts, groups = self._message_counts(kind, span, interval, conversion)
        results = []
        for target in sorted(groups, key=lambda t: (t.parent_id, t.message_id)):
            grouping = self._grouping(kind, target, group_by)
            full = self._grouping(kind, target, sorted(allowed))
            if any(full[k] not in v for k, v in wanted.items()):
                continue
            series = groups[target]
            stats: dict[str, Any] = {}
            for stat in attributes["statistics"]:
                values = [message_statistic(stat, counts) for counts in series]
                stats[stat] = values if interval is not None else values[0]
            results.append({"groupings": grouping, "statistics": stats})
        out: dict[str, Any] = {"results": results}
        if interval is not None:
            out["date_times"] = [iso_local(s, span.zone) for s in starts]
        return out

    def _campaigns(self, attributes: dict[str, Any], now: int) -> dict[str, Any]:
        return self._message_report("campaign", attributes, now)

    def _flows(self, attributes: dict[str, Any], now: int) -> dict[str, Any]:
        return self._message_report("flow", attributes, now)

    def _relationships(self, path: str, result: dict[str, Any], base: str) -> dict[str, Any]:
        links = {"self": f"{base}{path}/relationships/", "related": f"{base}{path}/related/"}
        if path == "/api/campaign-values-reports":
            ids = sorted({r["groupings"]["campaign_id"] for r in result["results"]})
            return {"campaigns": {"data": [{"type": "campaign", "id": i} for i in ids], "links": links}}
        if path in ("/api/flow-values-reports", "/api/flow-series-reports"):
            flows = sorted({r["groupings"]["flow_id"] for r in result["results"]})
            messages = sorted({r["groupings"]["flow_message_id"] for r in result["results"]})
            return {
                "flows": {"data": [{"type": "flow", "id": i} for i in flows], "links": links},
                "flow-messages": {
                    "data": [{"type": "flow-message", "id": i} for i in messages],
                    "links": links,
                },
            }
        return {}

    # -------------------------------------------------------------- segments and forms

    def _segments(self, attributes: dict[str, Any], now: int) -> dict[str, Any]:
        span = timeframe(attributes, self.zone, now)
        if span.start < SEGMENT_DATA_START:
            raise invalid(
                "Data is unavailable before June 1st, 2023. Please use a time frame after this date.",
                "/data/attributes/timeframe",
            )
        interval = attributes["interval"]
        check_interval(span, interval)
        wanted = parse_filter(attributes.get("filter"), frozenset({"segment_id"})).get("segment_id")
        starts = buckets(span, interval)
        ends = [span.epoch(_next_bucket(s, interval)) for s in starts]
        lows = [span.epoch(s) for s in starts]
        results = []
        for segment in self.store.records_view("segment"):
            if wanted is not None and segment.id not in wanted:
                continue
            joined = [key >> SHIFT for key in self.store.members("segment", segment.id)]
            added = [
                bisect.bisect_left(joined, hi) - bisect.bisect_left(joined, lo)
                for lo, hi in zip(lows, ends, strict=True)
            ]
            values = {
                "members_added": added,
                "members_removed": [0] * len(starts),
                "net_members_changed": added,
                "total_members": [bisect.bisect_left(joined, hi) for hi in ends],
            }
            stats = {stat: list(values[stat]) for stat in attributes["statistics"]}
            results.append({"groupings": {"segment_id": segment.id}, "statistics": stats})
        return {"results": results, "date_times": [iso_local(s, span.zone) for s in starts]}

    def _forms(self, attributes: dict[str, Any], now: int) -> dict[str, Any]:
        span = timeframe(attributes, self.zone, now)
        interval = attributes["interval"]
        check_interval(span, interval)
        group_by = attributes.get("group_by") or ["form_id"]
        if "form_version_id" in group_by and "form_id" not in group_by:
            raise invalid("group_by form_version_id requires form_id.", "/data/attributes/group_by")
        wanted = parse_filter(attributes.get("filter"), frozenset({"form_id", "form_version_id"}))
        starts = buckets(span, interval)
        events, metrics = self.store.events, self.store.records_view("metric")
        cols, sends = events.cols, events.sends
        groups: dict[tuple[str, ...], list[Counts]] = {}
        counter = {"Viewed Form": "viewed", "Submitted Form": "submitted"}
        for row in self._span_rows(span):
            name = metrics[cols.metric[row]].attributes["name"]
            form = sends.form(name, cols.rand[row]) if sends is not None else None
            if form is None:
                continue
            ids = {"form_id": form.form_id, "form_version_id": form.version_id}
            if any(ids[k] not in v for k, v in wanted.items()):
                continue
            key = tuple(ids[g] for g in group_by)
            series = groups.setdefault(key, [Counts() for _ in starts])
            moment = _bucket_start(span.local(cols.ts[row]), interval)
            series[bisect.bisect_right(starts, moment) - 1].add(counter[name], cols.profile[row])
        results = []
        for key in sorted(groups):
            stats = {s: [form_statistic(s, c) for c in groups[key]] for s in attributes["statistics"]}
            results.append({"groupings": dict(zip(group_by, key, strict=True)), "statistics": stats})
        return {"results": results, "date_times": [iso_local(s, span.zone) for s in starts]}

    # -------------------------------------------------------------- metric aggregates

    def _aggregates(self, attributes: dict[str, Any], now: int) -> dict[str, Any]:
        metrics = self.store.records_view("metric")
        index = next((i for i, m in enumerate(metrics) if m.id == attributes["metric_id"]), None)
        if index is None:
            raise invalid(f"Metric {attributes['metric_id']} does not exist.", "/data/attributes/metric_id")
        try:
            zone = ZoneInfo(attributes.get("timezone") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise invalid(
                f"Unknown timezone '{attributes.get('timezone')}'.", "/data/attributes/timezone"
            ) from None
        lo = hi = None
        for text in attributes.get("filter") or []:
            match = _AGG_FILTER.match(text.replace(" ", ""))
            if match is None or match.group(2) != "datetime":
                raise invalid(f"Invalid filter: '{text}'.", "/data/attributes/filter")
            moment = _naive(match.group(3).strip("'\""), "/data/attributes/filter")
            if match.group(1) in ("greater-or-equal", "greater-than"):
                lo = moment
            elif match.group(1) == "less-than":
                hi = moment - timedelta(seconds=1)
            else:
                hi = moment
        if lo is None or hi is None:
            raise invalid("The filter must include a datetime range.", "/data/attributes/filter")
        if hi < lo or hi - lo > timedelta(days=366):
            raise invalid(
                "The datetime range must be positive and at most 1 year long.", "/data/attributes/filter"
            )
        span = Span(lo, hi, zone)
        interval = AGGREGATE_INTERVALS[attributes.get("interval") or "day"]
        starts = buckets(span, interval)
        dims = attributes.get("by") or []
        measurements = attributes["measurements"]
        events, cols = self.store.events, self.store.events.cols
        groups: dict[tuple[str, ...], list[Counts]] = {}
        for row in self._span_rows(span):
            if cols.metric[row] != index:
                continue
            key = tuple(self._dimension(row, d) for d in dims)
            series = groups.setdefault(key, [Counts() for _ in starts])
            moment = _bucket_start(span.local(cols.ts[row]), interval)
            counts = series[bisect.bisect_right(starts, moment) - 1]
            counts.add("event", cols.profile[row])
            counts.value += float(events.attributes(row)["event_properties"].get("$value", 0) or 0)
        data = []
        for key in sorted(groups):
            series = groups[key]
            values = {
                "count": [float(c.count("event")) for c in series],
                "unique": [float(c.unique("event")) for c in series],
                "sum_value": [round(c.value, 2) for c in series],
            }
            data.append({"dimensions": list(key), "measurements": {m: values[m] for m in measurements}})
        return {"dates": [iso_local(s, zone) for s in starts], "data": data}

    def _dimension(self, row: int, name: str) -> str:
        events = self.store.events
        if name in ("$attributed_message", "$attributed_flow", "$attributed_channel"):
            target = events.conversion(row)
            if target is None:
                return ""
            if name == "$attributed_message":
                return target.message_id
            if name == "$attributed_channel":
                return CHANNELS.get(target.channel, target.channel)
            return target.parent_id if target.kind == "flow" else ""
        value = events.attributes(row)["event_properties"].get(name, "")
        return "" if value is None else str(value)


__all__ = ["SERVED", "Reports", "Span", "report_paths"]
