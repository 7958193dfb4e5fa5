"""Filters, sorts and pagination checked against brute force over the store's ground truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klaviyo_simulator import Simulator
from klaviyo_simulator.resources.events import event_id

from .client import fetch, fetch_all

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
OPS = {
    "greater-than": lambda v, b: v > b,
    "greater-or-equal": lambda v, b: v >= b,
    "less-than": lambda v, b: v < b,
    "less-or-equal": lambda v, b: v <= b,
}


LITERAL_STYLES = 9


def literal(moment: datetime, style: int) -> tuple[str, int]:
    """A datetime literal in one of the forms Klaviyo accepts, and its exact epoch microseconds."""
    moment = moment.astimezone(UTC)
    forms = [
        moment.strftime("%Y-%m-%dT%H:%M:%S"),
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        moment.strftime("%Y-%m-%d %H:%M:%SZ"),
        moment.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        moment.astimezone(timezone(timedelta(hours=3))).strftime("%Y-%m-%dT%H:%M:%S+03:00"),
        moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        moment.strftime("%Y-%m-%d"),
        moment.strftime("%Y-%m-%dT%H:%M:%S+0000"),  # ISO 8601's basic offset: Airbyte's connector's form
        moment.astimezone(timezone(timedelta(hours=-5, minutes=-30))).strftime("%Y-%m-%dT%H:%M:%S.%f-0530"),
    ]
    assert len(forms) == LITERAL_STYLES
    text = forms[style]
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return text, int(parsed.timestamp()) * 1_000_000 + parsed.microsecond


def paged_ids(sim: Simulator, path: str, params: dict[str, str]) -> list[str]:
    return [item["id"] for item in fetch_all(sim, path, params)]


def moments(sim: Simulator) -> st.SearchStrategy[datetime]:
    lo = sim.store.now - 2 * 365 * 86_400 - 86_400
    return st.integers(lo, sim.store.now + 86_400).flatmap(
        lambda s: st.integers(0, 999_999).map(
            lambda us: datetime.fromtimestamp(s, UTC) + timedelta(microseconds=us)
        )
    )


@SETTINGS
@given(data=st.data())
def test_events_windows_sorts_and_pages(sim: Simulator, data: st.DataObject) -> None:
    store = sim.store
    conditions: list[tuple[str, str, int]] = []  # (field, op, bound in microseconds)
    terms = []
    for _ in range(data.draw(st.integers(0, 2))):
        field = data.draw(st.sampled_from(["datetime", "timestamp"]))
        op = data.draw(st.sampled_from(sorted(OPS)))
        moment = data.draw(moments(sim))
        if field == "datetime":
            text, bound = literal(moment, data.draw(st.integers(0, LITERAL_STYLES - 1)))
        else:
            seconds = int(moment.timestamp())
            text, bound = str(seconds), seconds * 1_000_000
        conditions.append((field, op, bound))
        terms.append(f"{op}({field},{text})")
    metric = data.draw(st.none() | st.sampled_from(store.records("metric")))
    if metric is not None:
        terms.append(f'equals(metric_id,"{metric.id}")')
    sort = data.draw(st.sampled_from(["datetime", "-datetime", "timestamp", "-timestamp", None]))
    size = data.draw(st.integers(100, 1000))
    params = {"page[size]": str(size)}
    if terms:
        params["filter"] = data.draw(st.sampled_from([",".join(terms), f"and({','.join(terms)})"]))
    if sort:
        params["sort"] = sort
    got = paged_ids(sim, "/api/events", params)

    metric_ids = [m.id for m in store.records("metric")]
    metric_index = metric_ids.index(metric.id) if metric is not None else None
    rows = [
        row
        for row in range(store.event_count)
        if all(OPS[op](store.events.cols.ts[row] * 1_000_000, bound) for _, op, bound in conditions)
        and (metric_index is None or store.events.cols.metric[row] == metric_index)
    ]
    rows.sort(key=lambda r: (store.events.cols.ts[r], r), reverse=bool(sort and sort.startswith("-")))
    assert got == [event_id(r) for r in rows]


@SETTINGS
@given(data=st.data())
def test_profiles_updated_window_sorts_and_pages(sim: Simulator, data: st.DataObject) -> None:
    store = sim.store
    conditions = []
    terms = []
    for _ in range(data.draw(st.integers(0, 2))):
        field = data.draw(st.sampled_from(["updated", "created"]))
        op = data.draw(st.sampled_from(["greater-than", "less-than"]))  # the only ones the spec allows
        text, bound = literal(data.draw(moments(sim)), data.draw(st.integers(0, LITERAL_STYLES - 1)))
        conditions.append((field, op, bound))
        terms.append(f"{op}({field},{text})")
    sort = data.draw(
        st.sampled_from(["updated", "-updated", "created", "-created", "id", "-id", "email", "-email"])
    )
    size = data.draw(st.integers(20, 100))
    params = {"page[size]": str(size), "sort": sort}
    if terms:
        params["filter"] = ",".join(terms)
    got = paged_ids(sim, "/api/profiles", params)

    def value(row: int, field: str) -> Any:
        if field in ("updated", "created"):
            column = store.profiles.cols.updated if field == "updated" else store.profiles.cols.created
            return column[row] * 1_000_000
        if field == "id":
            return store.profile_id(row)
        return store.profiles.value(row, "email")

    rows = [
        r
        for r in range(store.profile_count)
        if all(OPS[op](value(r, field), bound) for field, op, bound in conditions)
    ]
    rows.sort(key=lambda r: (value(r, sort.lstrip("-")), r), reverse=sort.startswith("-"))
    assert got == [store.profile_id(r) for r in rows]


@SETTINGS
@given(data=st.data())
def test_suppressed_profiles_by_suppression_timestamp(sim: Simulator, data: st.DataObject) -> None:
    store = sim.store
    field = "subscriptions.email.marketing.suppression.timestamp"
    lo_text, lo = literal(data.draw(moments(sim)), data.draw(st.integers(0, LITERAL_STYLES - 1)))
    hi_text, hi = literal(data.draw(moments(sim)), data.draw(st.integers(0, LITERAL_STYLES - 1)))
    params = {
        "filter": f"greater-or-equal({field},{lo_text}),less-than({field},{hi_text})",
        "additional-fields[profile]": "subscriptions",
        "page[size]": "100",
        "sort": field,
    }
    got = fetch_all(sim, "/api/profiles", params)
    expected = sorted(
        (ts, row) for row, (_, ts) in store.profiles.cols.suppression.items() if lo <= ts * 1_000_000 < hi
    )
    assert [p["id"] for p in got] == [store.profile_id(row) for _, row in expected]
    for profile in got:
        assert profile["attributes"]["subscriptions"]["email"]["marketing"]["suppression"]


SMALL = {
    "/api/flows": ("flow", "updated", ["created", "id", "name", "status", "trigger_type", "updated"], 50),
    "/api/templates": ("template", "updated", ["created", "id", "name", "updated"], 10),
    "/api/tags": ("tag", "", ["id", "name"], 50),
}


@SETTINGS
@given(data=st.data())
def test_small_collections_filters_sorts_and_pages(sim: Simulator, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(sorted(SMALL)))
    rtype, cursor, sorts, max_size = SMALL[path]
    rows = sim.store.records(rtype)
    terms, conditions = [], []
    if cursor and data.draw(st.booleans()):
        op = data.draw(st.sampled_from(sorted(OPS)))
        text, bound = literal(data.draw(moments(sim)), data.draw(st.integers(0, LITERAL_STYLES - 1)))
        terms.append(f"{op}({cursor},{text})")
        conditions.append((op, bound))
    archived = None
    if rtype == "flow" and data.draw(st.booleans()):
        archived = data.draw(st.booleans())
        terms.append(f"equals(archived,{str(archived).lower()})")
    sort = data.draw(st.sampled_from(sorts))
    desc = data.draw(st.booleans())
    params = {"page[size]": str(data.draw(st.integers(1, max_size))), "sort": ("-" if desc else "") + sort}
    if terms:
        params["filter"] = ",".join(terms)
    got = paged_ids(sim, path, params)

    def micros(text: str) -> int:
        return int(datetime.fromisoformat(text).timestamp()) * 1_000_000

    selected = [
        r
        for r in rows
        if all(OPS[op](micros(r.attributes[cursor]), bound) for op, bound in conditions)
        and (archived is None or r.attributes["archived"] == archived)
    ]
    selected.sort(key=lambda r: (r.id if sort == "id" else r.attributes[sort], r.id), reverse=desc)
    assert got == [r.id for r in selected]


def test_campaign_partitions_cover_every_campaign_once(sim: Simulator) -> None:
    seen: list[str] = []
    for channel in ("email", "sms", "mobile_push"):
        for archived in ("true", "false"):
            flt = f"and(equals(messages.channel,'{channel}'),equals(archived,{archived}))"
            seen += paged_ids(sim, "/api/campaigns", {"filter": flt, "sort": "updated_at", "page[size]": "7"})
    assert sorted(seen) == sorted(r.id for r in sim.store.records("campaign"))


def test_lists_only_allow_greater_than_on_updated(sim: Simulator) -> None:
    ok = fetch(sim, "/api/lists", {"filter": "greater-than(updated,2020-01-01T00:00:00Z)"})
    assert ok.status == 200
    for flt in ("less-than(updated,2030-01-01T00:00:00Z)", "greater-or-equal(updated,2020-01-01T00:00:00Z)"):
        bad = fetch(sim, "/api/lists", {"filter": flt})
        assert bad.status == 400
        assert bad.body["errors"][0]["source"] == {"parameter": "filter"}
        assert "updated" in bad.body["errors"][0]["detail"]


def test_members_of_a_list_by_joined_group_at(sim: Simulator) -> None:
    group = sim.store.records("list")[0]
    got = paged_ids(sim, f"/api/lists/{group.id}/profiles", {"page[size]": "37", "sort": "-joined_group_at"})
    keys = sorted(sim.store.members("list", group.id), reverse=True)
    assert got == [sim.store.profile_id(k & 0xFFFFFFFF) for k in keys]


BAD_FILTERS = [
    ("/api/profiles", "greater-or-equal(updated,2024-01-01T00:00:00Z)"),  # profiles: gt/lt only
    ("/api/profiles", "equals(first_name,'Ada')"),  # not a filterable field
    ("/api/events", "greater-than(datetime,'2024-01-01T00:00:00Z')"),  # quoted datetime
    ("/api/events", "greater-than(datetime,yesterday)"),  # not a datetime
    ("/api/events", "greater-than(datetime,2024-01-01T00:00:00+000)"),  # three-digit offset
    ("/api/events", "greater-than(datetime,2024-01-01T00:00:00+00:0)"),  # half a colon offset
    ("/api/events", "greater-than(datetime,2024-01-01T00:00:00+2500)"),  # offset beyond a day
    ("/api/events", "greater-than(datetime,2024-01-01t00:00:00z)"),  # lowercase letters
    ("/api/events", "greater-than(timestamp,2024-01-01)"),  # not a number
    ("/api/events", "equals(metric_id,abc)"),  # unquoted string
    ("/api/events", "any(metric_id,['a','b'])"),  # operator not allowed for the field
    ("/api/events", "or(equals(metric_id,'a'),equals(metric_id,'b'))"),  # or() unsupported
    ("/api/events", "has(datetime)"),  # has() not allowed here
    ("/api/events", "greater-than(datetime,2024-01-01T00:00:00Z"),  # unbalanced
    ("/api/events", "greater-than(datetime,2024-01-01T00:00:00Z),"),  # trailing comma
    ("/api/campaigns", "equals(messages.channel,'fax')"),  # not in the enum
    ("/api/campaigns", "equals(messages.channel,['email'])"),  # list shape not allowed
    ("/api/metrics", "equals(name,'Placed Order')"),
    ("/api/tags", "contains(name,['a'])"),
]


def test_unsupported_filters_are_400_naming_filter(sim: Simulator) -> None:
    for path, flt in BAD_FILTERS:
        reply = fetch(sim, path, {"filter": flt})
        assert reply.status == 400, (path, flt, reply.body)
        error = reply.body["errors"][0]
        assert error["code"] == "invalid" and error["source"] == {"parameter": "filter"}, (path, flt)
        assert error["detail"], (path, flt)


def test_supported_filter_forms(sim: Simulator) -> None:
    metric_ids = [m.id for m in sim.store.records("metric")][:2]
    for flt in (
        f"equals(metric_id,['{metric_ids[0]}','{metric_ids[1]}'])",
        'equals(metric_id,"' + metric_ids[0] + '")',
        "has(profile)",
        "and(has(metric),greater-than(timestamp,1000.5))",
    ):
        assert fetch(sim, "/api/events", {"filter": flt}).status == 200, flt
    assert fetch(sim, "/api/tags", {"filter": "starts-with(name,'Default')"}).status == 200


def test_page_size_bounds_per_endpoint(sim: Simulator) -> None:
    cases = [("/api/events", "1001"), ("/api/events", "0"), ("/api/profiles", "101"), ("/api/lists", "11")]
    cases += [("/api/events", "ten"), ("/api/metrics", "5")]
    for path, size in cases:
        reply = fetch(sim, path, {"page[size]": size})
        assert reply.status == 400, (path, size)
        assert reply.body["errors"][0]["source"] == {"parameter": "page[size]"}
    assert len(fetch(sim, "/api/events", {"page[size]": "1000"}).body["data"]) == 1000
    assert len(fetch(sim, "/api/events").body["data"]) == 200


def test_bad_sorts_are_400_naming_sort(sim: Simulator) -> None:
    for path, sort in (("/api/events", "uuid"), ("/api/profiles", "-first_name"), ("/api/metrics", "name")):
        reply = fetch(sim, path, {"sort": sort})
        assert reply.status == 400
        assert reply.body["errors"][0]["source"] == {"parameter": "sort"}


def test_cursor_tampering_is_rejected(sim: Simulator) -> None:
    first = fetch(sim, "/api/events", {"sort": "datetime"})
    next_url = first.body["links"]["next"]
    assert "page%5Bcursor%5D=" in next_url and "sort=datetime" in next_url
    cursor = next_url.split("page%5Bcursor%5D=")[1]
    for bad in (cursor[:-1] + ("0" if cursor[-1] != "0" else "1"), "x" + cursor, "garbage"):
        reply = fetch(sim, "/api/events", {"sort": "datetime", "page[cursor]": bad})
        assert reply.status == 400
        assert reply.body["errors"][0]["detail"] == "Invalid cursor provided."
    # a cursor is only valid with the sort it was made for
    assert fetch(sim, "/api/events", {"sort": "-datetime", "page[cursor]": cursor}).status == 400


def test_next_link_repeats_the_whole_query(sim: Simulator) -> None:
    params = {
        "filter": "greater-than(datetime,2000-01-01)",
        "sort": "-timestamp",
        "fields[event]": "datetime",
        "fields[metric]": "name",
        "include": "metric",
        "page[size]": "5",
    }
    body = fetch(sim, "/api/events", params).body
    next_url = body["links"]["next"]
    assert next_url.startswith(sim.base_url + "/api/events/?")
    second = fetch(sim, next_url)
    assert second.status == 200
    assert set(second.body["data"][0]["attributes"]) == {"datetime"}
    assert {i["type"] for i in second.body["included"]} == {"metric"}
    assert len(second.body["data"]) == 5


def test_prev_link_returns_the_previous_page(sim: Simulator) -> None:
    params = {"sort": "datetime", "page[size]": "50"}
    one = fetch(sim, "/api/events", params).body
    assert one["links"]["prev"] is None
    two = fetch(sim, one["links"]["next"]).body
    three = fetch(sim, two["links"]["next"]).body
    back = fetch(sim, three["links"]["prev"]).body
    assert [e["id"] for e in back["data"]] == [e["id"] for e in two["data"]]
    back_again = fetch(sim, back["links"]["prev"]).body
    assert [e["id"] for e in back_again["data"]] == [e["id"] for e in one["data"]]


def test_paging_sees_every_record_once_while_records_are_added(sim: Simulator) -> None:
    store = sim.store
    before = set(store.event_ids())
    reply = fetch(sim, "/api/events", {"sort": "datetime", "page[size]": "700"})
    seen = [e["id"] for e in reply.body["data"]]
    added: list[str] = []
    while reply.body["links"]["next"]:
        if len(added) < 60:
            added += sim.advance(events=20, boundary=len(added) == 0)["events"]
        reply = fetch(sim, reply.body["links"]["next"])
        seen += [e["id"] for e in reply.body["data"]]
    assert len(seen) == len(set(seen))
    assert set(seen) == before | set(added)


def test_sparse_fieldsets_with_dotted_paths(sim: Simulator) -> None:
    body = fetch(sim, "/api/profiles", {"fields[profile]": "email,location.city,location.zip"}).body
    attributes = body["data"][0]["attributes"]
    assert set(attributes) == {"email", "location"}
    assert set(attributes["location"]) == {"city", "zip"}


def test_paging_profiles_by_updated_while_profiles_are_updated(sim: Simulator) -> None:
    """Keyset paging: records not touched during the walk appear exactly once; touched ones reappear later."""
    before = set(sim.store.profile_ids())
    reply = fetch(sim, "/api/profiles", {"sort": "updated", "page[size]": "100"})
    seen = [p["id"] for p in reply.body["data"]]
    touched: set[str] = set()
    created: list[str] = []
    while reply.body["links"]["next"]:
        if len(touched) < 30:
            changes = sim.advance(profiles_updated=10, profiles_created=2, boundary=True)
            touched |= set(changes["profiles_updated"])
            created += changes["profiles_created"]
        reply = fetch(sim, reply.body["links"]["next"])
        seen += [p["id"] for p in reply.body["data"]]
    counts: dict[str, int] = {}
    for pid in seen:
        counts[pid] = counts.get(pid, 0) + 1
    assert set(seen) == before | set(created)
    assert all(counts[pid] == 1 for pid in (before - touched) | set(created))


PARAM_NAMES = [
    "filter",
    "sort",
    "page[size]",
    "page[cursor]",
    "include",
    "fields[event]",
    "fields[profile]",
    "additional-fields[profile]",
    "additional-fields[list]",
    "fields[nope]",
    "other",
]
PARAM_VALUES = [
    "",
    "id",
    "-updated",
    "0",
    "10",
    "1000",
    "metric",
    "email,location.city",
    "subscriptions",
    "equals(id,'x')",
    "has(profile)",
    "greater-than(updated,2024-01-01)",
    "abc.def",
    "%",
    "[]",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(
        ["/api/events", "/api/profiles", "/api/lists", "/api/metrics", "/api/flows", "/api/tags"]
    ),
    params=st.dictionaries(st.sampled_from(PARAM_NAMES), st.sampled_from(PARAM_VALUES), max_size=4),
)
def test_arbitrary_queries_never_fail_with_5xx(sim: Simulator, path: str, params: dict[str, str]) -> None:
    reply = fetch(sim, path, params)
    assert reply.status in (200, 400), (path, params, reply.body)
    if reply.status == 400:
        assert reply.body["errors"][0]["source"]["parameter"] in params
