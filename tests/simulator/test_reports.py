"""The Reporting API and metric aggregates over a real socket: the spec's request rules, response
schemas, the daily quota with a shortened day, and numbers recomputed from the events stream
(GET /api/events with their attributions) and the segment memberships."""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kit.sim import sim_fixture
from klaviyo_simulator import Simulator
from klaviyo_simulator.resources.reports import SERVED, report_paths

from .client import fetch, fetch_all
from .test_schemas import validate

sim = sim_fixture(
    seed=5,
    sizes={"events": 4000, "profiles": 300, "campaigns": 10, "flows": 3, "segments": 4, "forms": 4},
)
CLIENT_ERROR = "/components/responses/ClientError/content/application~1vnd.api+json/schema"
ZONE = ZoneInfo("America/New_York")  # the simulated account's timezone


def metric_id(sim: Simulator, name: str) -> str:
    return next(m.id for m in sim.store.records_view("metric") if m.attributes["name"] == name)


def window(days: int = 40) -> tuple[date, date]:
    last = datetime.now(ZONE).date() - timedelta(days=1)
    return last - timedelta(days=days - 1), last


def frame(first: date, last: date) -> dict[str, str]:
    return {"start": f"{first}T00:00:00", "end": f"{last}T23:59:59"}


def body(sim: Simulator, path: str, first: date, last: date, **extra: Any) -> dict[str, Any]:
    rtype = path.removeprefix("/api/").removesuffix("s")
    conversion = metric_id(sim, "Placed Order")
    attributes: dict[str, Any] = {
        "/api/campaign-values-reports": {
            "statistics": [
                "recipients",
                "opens",
                "opens_unique",
                "clicks",
                "bounced",
                "conversions",
                "conversion_value",
                "open_rate",
            ],
            "conversion_metric_id": conversion,
        },
        "/api/flow-values-reports": {
            "statistics": ["recipients", "opens", "clicks", "conversions", "conversion_value"],
            "conversion_metric_id": conversion,
        },
        "/api/flow-series-reports": {
            "statistics": ["recipients", "opens", "clicks", "conversions"],
            "conversion_metric_id": conversion,
            "interval": "daily",
        },
        "/api/segment-series-reports": {
            "statistics": ["members_added", "members_removed", "net_members_changed", "total_members"],
            "interval": "daily",
        },
        "/api/form-series-reports": {
            "statistics": ["viewed_form", "submits", "submit_rate"],
            "interval": "daily",
            "group_by": ["form_id", "form_version_id"],
        },
    }.get(path, {})
    attributes = {**attributes, "timeframe": frame(first, last)}
    if path == "/api/metric-aggregates":
        attributes = {
            "metric_id": metric_id(sim, "Placed Order"),
            "measurements": ["count", "sum_value", "unique"],
            "interval": "day",
            "filter": [
                f"greater-or-equal(datetime,{first}T00:00:00)",
                f"less-than(datetime,{last + timedelta(days=1)}T00:00:00)",
            ],
            "timezone": "America/New_York",
        }
    attributes.update(extra)
    return {"data": {"type": rtype, "attributes": attributes}}


def post(sim: Simulator, path: str, document: dict[str, Any]) -> Any:
    return fetch(
        sim, path, method="POST", json=document, headers={"Content-Type": "application/vnd.api+json"}
    )


@pytest.mark.parametrize("path", SERVED)
def test_responses_validate_against_the_spec(sim: Simulator, path: str) -> None:
    reply = post(sim, path, body(sim, path, *window()))
    assert reply.status == 200, reply.body
    validate(reply.body, f"/components/schemas/{report_paths()[path].response_schema}")


def _mutate(document: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(document)
    for key, value in change.items():
        if value is None:
            del out["data"]["attributes"][key]
        else:
            out["data"]["attributes"][key] = value
    return out


@pytest.mark.parametrize(
    ("path", "change", "detail"),
    [
        ("/api/campaign-values-reports", {"statistics": None}, "'statistics' is a required field"),
        (
            "/api/campaign-values-reports",
            {"conversion_metric_id": None},
            "'conversion_metric_id' is a required",
        ),
        ("/api/campaign-values-reports", {"statistics": ["opens", "nope"]}, "'nope' is not a valid choice"),
        ("/api/flow-series-reports", {"interval": "yearly"}, "'yearly' is not a valid choice"),
        ("/api/flow-series-reports", {"interval": None}, "'interval' is a required field"),
        ("/api/flow-series-reports", {"timeframe": {"start": "2026-01-01T00:00:00"}}, "matches none"),
        ("/api/flow-series-reports", {"timeframe": {"key": "last_30_days", "x": 1}}, "matches none"),
        (
            "/api/flow-series-reports",
            {"timeframe": frame(date(2025, 1, 1), date(2026, 3, 1))},
            "at most 1 year",
        ),
        (
            "/api/flow-series-reports",
            {"timeframe": frame(date(2026, 1, 1), date(2026, 3, 15))},
            "at most 60 days",
        ),
        ("/api/flow-series-reports", {"interval": "hourly"}, "at most 7 days"),
        (
            "/api/segment-series-reports",
            {"timeframe": frame(date(2023, 5, 1), date(2023, 6, 20))},
            "June 1st, 2023",
        ),
        ("/api/form-series-reports", {"group_by": ["form_version_id"]}, "requires form_id"),
        ("/api/flow-values-reports", {"group_by": ["flow_id"]}, "must include flow_message_id"),
        ("/api/metric-aggregates", {"measurements": ["median"]}, "'median' is not a valid choice"),
        ("/api/metric-aggregates", {"filter": []}, "must include a datetime range"),
    ],
)
def test_invalid_queries_get_klaviyos_400(
    sim: Simulator, path: str, change: dict[str, Any], detail: str
) -> None:
    reply = post(sim, path, _mutate(body(sim, path, *window()), change))
    assert reply.status == 400, reply.body
    validate(reply.body, CLIENT_ERROR)
    assert detail in reply.body["errors"][0]["detail"]


def test_a_conversion_metric_without_values_is_refused(sim: Simulator) -> None:
    path = "/api/campaign-values-reports"
    document = body(sim, path, *window(), conversion_metric_id=metric_id(sim, "Opened Email"))
    reply = post(sim, path, document)
    assert reply.status == 400
    assert "does not support querying for values data" in reply.body["errors"][0]["detail"]


# ------------------------------------------------------------------ numbers from the events


def local_day(event: dict[str, Any]) -> date:
    return datetime.fromisoformat(event["attributes"]["datetime"]).astimezone(ZONE).date()


def events_by_day(sim: Simulator, first: date, last: date) -> list[dict[str, Any]]:
    """Every event of the local days [first, last], read through GET /api/events."""
    lo = datetime(first.year, first.month, first.day, tzinfo=ZONE).astimezone(UTC) - timedelta(days=1)
    hi = datetime(last.year, last.month, last.day, tzinfo=ZONE).astimezone(UTC) + timedelta(days=2)
    params = {
        "filter": f"and(greater-or-equal(datetime,{lo.isoformat()}),less-than(datetime,{hi.isoformat()}))",
        "include": "attributions,metric",
        "page[size]": "1000",
    }
    events = []
    url: str | None = "/api/events"
    names = {m.id: m.attributes["name"] for m in sim.store.records_view("metric")}
    attributions: dict[str, dict[str, Any]] = {}
    while url:
        reply = fetch(sim, url, params if url == "/api/events" else None)
        attributions.update(
            {i["id"]: i for i in reply.body.get("included", []) if i["type"] == "attribution"}
        )
        events.extend(reply.body["data"])
        url = reply.body["links"].get("next")
    for event in events:
        event["metric_name"] = names[event["relationships"]["metric"]["data"]["id"]]
        linked = [attributions[a["id"]] for a in event["relationships"]["attributions"].get("data", [])]
        event["attributed"] = {
            rel: value["data"]["id"] for a in linked for rel, value in a["relationships"].items()
        }
    return [e for e in events if first <= local_day(e) <= last]


COUNTED = {
    "Received Email": "recipients",
    "Received SMS": "recipients",
    "Opened Email": "opens",
    "Clicked Email": "clicks",
    "Clicked SMS": "clicks",
    "Bounced Email": "bounced",
}


def recompute_messages(
    events: list[dict[str, Any]], kind: str, by_day: bool
) -> dict[tuple[Any, ...], Counter[str]]:
    """(message id[, day]) -> counts, from the events' `$message`/`$flow` and attributions."""
    out: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    for event in events:
        props = event["attributes"]["event_properties"]
        day = (local_day(event),) if by_day else ()
        name = event["metric_name"]
        if name in COUNTED and ("$flow" in props) == (kind == "flow"):
            out[(props["$message"], *day)][COUNTED[name]] += 1
        message = event["attributed"].get(f"{kind}-message")
        if name == "Placed Order" and message:
            out[(message, *day)]["conversions"] += 1
            out[(message, *day)]["conversion_value"] += props["$value"]
    return out


@pytest.mark.parametrize("kind", ["campaign", "flow"])
def test_values_reports_equal_the_events(sim: Simulator, kind: str) -> None:
    first, last = window(200)
    path = f"/api/{kind}-values-reports"
    reply = post(sim, path, body(sim, path, first, last))
    assert reply.status == 200, reply.body
    got = {
        r["groupings"][f"{kind}_message_id"]: {
            k: r["statistics"][k] for k in ("recipients", "opens", "clicks", "conversions")
        }
        | {"conversion_value": round(r["statistics"]["conversion_value"], 2)}
        for r in reply.body["data"]["attributes"]["results"]
    }
    expected = {
        key[0]: {k: c[k] for k in ("recipients", "opens", "clicks", "conversions")}
        | {"conversion_value": round(c["conversion_value"], 2)}
        for key, c in recompute_messages(events_by_day(sim, first, last), kind, by_day=False).items()
    }
    assert got == expected
    assert sum(v["recipients"] for v in got.values()) > 0 and sum(v["conversions"] for v in got.values()) > 0


def test_flow_series_equals_the_events_per_day(sim: Simulator) -> None:
    first, last = window(30)
    path = "/api/flow-series-reports"
    attributes = post(sim, path, body(sim, path, first, last)).body["data"]["attributes"]
    days = [datetime.fromisoformat(d).date() for d in attributes["date_times"]]
    assert days == [first + timedelta(days=k) for k in range((last - first).days + 1)]
    got = {
        (r["groupings"]["flow_message_id"], day): {
            s: r["statistics"][s][k] for s in ("recipients", "opens", "clicks")
        }
        for r in attributes["results"]
        for k, day in enumerate(days)
    }
    expected = recompute_messages(events_by_day(sim, first, last), "flow", by_day=True)
    for key, stats in got.items():
        assert stats == {s: expected.get(key, Counter())[s] for s in stats}, key
    assert {k for k, c in expected.items() if c["recipients"] or c["opens"] or c["clicks"]} <= set(got)


def test_segment_series_equals_the_memberships(sim: Simulator) -> None:
    first, last = window(20)
    path = "/api/segment-series-reports"
    attributes = post(sim, path, body(sim, path, first, last)).body["data"]["attributes"]
    days = [datetime.fromisoformat(d).date() for d in attributes["date_times"]]
    assert attributes["results"]
    for result in attributes["results"]:
        segment = result["groupings"]["segment_id"]
        joined = [
            datetime.fromisoformat(m["attributes"]["joined_group_at"]).astimezone(ZONE).date()
            for m in fetch_all(
                sim, f"/api/segments/{segment}/profiles", {"fields[profile]": "joined_group_at"}
            )
        ]
        stats = result["statistics"]
        assert stats["members_added"] == [sum(1 for j in joined if j == d) for d in days]
        assert stats["total_members"] == [sum(1 for j in joined if j <= d) for d in days]
        assert stats["members_removed"] == [0] * len(days)
        assert stats["net_members_changed"] == stats["members_added"]


def test_form_series_equals_the_form_events(sim: Simulator) -> None:
    first, last = window(40)
    path = "/api/form-series-reports"
    attributes = post(sim, path, body(sim, path, first, last)).body["data"]["attributes"]
    days = [datetime.fromisoformat(d).date() for d in attributes["date_times"]]
    expected: Counter[tuple[str, str, date, str]] = Counter()
    for event in events_by_day(sim, first, last):
        props = event["attributes"]["event_properties"]
        if event["metric_name"] in ("Viewed Form", "Submitted Form"):
            stat = "viewed_form" if event["metric_name"] == "Viewed Form" else "submits"
            expected[(props["form_id"], props["form_version_id"], local_day(event), stat)] += 1
    got: Counter[tuple[str, str, date, str]] = Counter()
    for result in attributes["results"]:
        g = result["groupings"]
        for stat in ("viewed_form", "submits"):
            for k, day in enumerate(days):
                if result["statistics"][stat][k]:
                    got[(g["form_id"], g["form_version_id"], day, stat)] = result["statistics"][stat][k]
    assert got == expected and expected


def test_metric_aggregates_equal_the_events(sim: Simulator) -> None:
    first, last = window(30)
    path = "/api/metric-aggregates"
    attributes = post(sim, path, body(sim, path, first, last)).body["data"]["attributes"]
    days = [datetime.fromisoformat(d).date() for d in attributes["dates"]]
    (row,) = attributes["data"]
    orders = [e for e in events_by_day(sim, first, last) if e["metric_name"] == "Placed Order"]
    assert row["measurements"]["count"] == [sum(1 for e in orders if local_day(e) == d) for d in days]
    values = [
        round(sum(e["attributes"]["event_properties"]["$value"] for e in orders if local_day(e) == d), 2)
        for d in days
    ]
    assert row["measurements"]["sum_value"] == values


def test_daily_quota_with_a_short_day(sim: Simulator) -> None:
    """225/d per report endpoint (lowered to 2 here) over a "day" shortened to 100 s of a fake clock."""
    now = [1_000_000.0]
    sim.controls.set_clock(lambda: now[0])
    sim.controls.set_options(daily_quotas=True, quota_day_seconds=100.0, daily_quota=2)
    try:
        path = "/api/flow-series-reports"
        document = body(sim, path, *window(5))
        assert [post(sim, path, document).status for _ in range(2)] == [200, 200]
        refused = post(sim, path, document)
        assert refused.status == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 100
        assert (
            post(
                sim, "/api/campaign-values-reports", body(sim, "/api/campaign-values-reports", *window(5))
            ).status
            == 200
        )
        now[0] += 100.0  # the next "day"
        assert post(sim, path, document).status == 200
    finally:
        sim.controls.set_options(daily_quotas=False, quota_day_seconds=86_400.0, daily_quota=0)
        sim.controls.set_clock(__import__("time").monotonic)
