"""Filter building, record shaping and the watermark, without a network."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from klaviyo_source.config import Config
from klaviyo_source.endpoints import bucket_for
from klaviyo_source.engine.contract import StreamOutcome
from klaviyo_source.engine.params import listing_params, variant_of
from klaviyo_source.engine.partitions import FLOOR, ListingPlan, Member, Track, member_starts, plan_windows
from klaviyo_source.streams import records as shape
from klaviyo_source.streams.table import LISTINGS, NO_PARTITION, STREAMS, STREAMS_BY_NAME

LO = datetime(2024, 8, 1, tzinfo=UTC)
HI = datetime(2024, 10, 15, 12, tzinfo=UTC)
SPEC = json.loads(
    (Path(__file__).parents[2] / "src/klaviyo_source/openapi/klaviyo-2026-07-15.json").read_text()
)


def _plan(*names: str) -> ListingPlan:
    members = [
        Member(
            STREAMS_BY_NAME[n],
            True,
            {},
            {p.key: LO for p in LISTINGS[STREAMS_BY_NAME[n].listing].partitions},
            StreamOutcome(n),
        )
        for n in names
    ]
    return ListingPlan(LISTINGS[members[0].row.listing], members)


def _params(
    plan: ListingPlan, key: tuple[tuple[str, str], ...], page_size: int | None, **config: bool
) -> dict[str, str]:
    variant = variant_of(plan, Config(api_key="pk_test", **config))  # type: ignore[arg-type]
    return listing_params(plan, key, LO, HI, page_size=page_size, variant=variant)


def test_airbyte_2x_streams_keep_their_order_and_keys() -> None:
    airbyte_2x = [
        "profiles", "global_exclusions", "events", "events_detailed", "email_templates", "metrics",
        "lists", "lists_detailed", "campaigns", "campaigns_detailed", "flows",
    ]  # fmt: skip
    assert [r.name for r in STREAMS][: len(airbyte_2x)] == airbyte_2x
    assert all(STREAMS_BY_NAME[name].primary_key == ("id",) for name in airbyte_2x)


def test_page_sizes_are_each_endpoints_maximum() -> None:
    for group in LISTINGS.values():
        params = SPEC["paths"][group.path]["get"]["parameters"]
        size = next((p for p in params if p.get("name") == "page[size]"), None)
        if size is None:
            assert group.page_size is None
        else:
            assert group.page_size == size["schema"]["maximum"], group.name
        sorts = next(p for p in params if p.get("name") == "sort")["schema"]["enum"] if group.sort else []
        assert group.sort is None or group.sort in sorts


def test_events_params() -> None:
    params = _params(_plan("events"), NO_PARTITION, 1000)
    assert params == {
        "fields[metric]": "name",
        "filter": "greater-or-equal(datetime,2024-08-01T00:00:00Z),less-than(datetime,2024-10-15T12:00:00Z)",
        "sort": "datetime",
        "page[size]": "1000",
        "include": "metric,attributions",
    }
    # The same include with or without events_detailed: a record's shape never depends on its sibling.
    both = _params(_plan("events", "events_detailed"), NO_PARTITION, 1000)
    assert both == params


def test_profiles_params_use_strict_operators_and_predictive_flag() -> None:
    plan = _plan("profiles")
    params = _params(plan, NO_PARTITION, 100)
    assert params["filter"] == (
        "greater-than(updated,2024-07-31T23:59:59.999999Z),less-than(updated,2024-10-15T12:00:00Z)"
    )
    assert params["additional-fields[profile]"] == "subscriptions,predictive_analytics"
    variant = variant_of(plan, Config(api_key="pk_test"))
    assert (
        variant is not None
        and bucket_for("/api/profiles", dict(variant.params)) == "get_profiles:predictive_analytics"
    )
    plain = _params(plan, NO_PARTITION, 100, disable_fetching_predictive_analytics=True)
    assert plain["additional-fields[profile]"] == "subscriptions"
    assert variant_of(plan, Config(api_key="pk_test", disable_fetching_predictive_analytics=True)) is None
    # global_exclusions riding on the profiles scan does not ask for predictive analytics
    riding = ListingPlan(LISTINGS["profiles"], _plan("global_exclusions").members)
    assert variant_of(riding, Config(api_key="pk_test")) is None


def test_campaign_and_flow_partitions() -> None:
    plan = _plan("campaigns", "campaigns_detailed")
    assert len(plan.row.partitions) == 6
    key = (("archived", "true"), ("campaign_type", "mobile_push"))
    params = _params(plan, key, 100)
    assert params["filter"] == (
        "and(equals(archived,true),equals(messages.channel,'mobile_push'),"
        "greater-or-equal(updated_at,2024-08-01T00:00:00Z),less-than(updated_at,2024-10-15T12:00:00Z))"
    )
    assert params["include"] == "campaign-messages"
    flows = _params(_plan("flows"), (("archived", "false"),), 50)
    assert flows["filter"].startswith("and(equals(archived,false),greater-or-equal(updated,")


def test_lists_have_no_upper_bound_and_metrics_no_filter() -> None:
    lists = _params(_plan("lists"), NO_PARTITION, 10)
    assert lists["filter"] == "greater-than(updated,2024-07-31T23:59:59.999999Z)"
    assert _params(_plan("metrics"), NO_PARTITION, None) == {}


def test_member_starts_floor_start_date_state_and_lookback() -> None:
    events = STREAMS_BY_NAME["events"]
    group = LISTINGS["events"]
    saved = {NO_PARTITION: datetime(2024, 9, 10, tzinfo=UTC)}
    assert member_starts(events, group, {}, start_date=None, lookback_days=0) == {NO_PARTITION: FLOOR}
    assert member_starts(events, group, saved, start_date=LO, lookback_days=3) == {
        NO_PARTITION: datetime(2024, 9, 7, tzinfo=UTC)
    }
    assert member_starts(events, group, saved, start_date=HI, lookback_days=0) == {NO_PARTITION: HI}


def test_watermark_is_contiguous_prefix_and_never_lowered() -> None:
    plan = _plan("events")
    track = Track(plan, NO_PARTITION)
    a = track.add(LO, LO + timedelta(days=10))
    b = track.add(LO + timedelta(days=10), LO + timedelta(days=20))
    assert track.watermark() is None  # nothing read: the stream keeps its start
    b.done = True
    b.last = LO + timedelta(days=15)
    assert track.watermark() is None  # a is not done: nothing beyond its progress is safe
    a.last = LO + timedelta(days=2)
    assert track.watermark() == LO + timedelta(days=2)
    a.done = True
    assert track.watermark() == LO + timedelta(days=15)
    c = track.add(LO + timedelta(days=20), LO + timedelta(days=30))
    assert track.watermark() == LO + timedelta(days=15)  # an empty window does not move it
    c.done = True
    assert track.watermark() == LO + timedelta(days=15)  # the max record cursor, not c's bound


def test_member_state_is_capped_at_hi_final_but_keeps_a_future_saved_state() -> None:
    plan = _plan("events")
    future = datetime(2099, 1, 1, tzinfo=UTC)
    plan.members[0].saved = {NO_PARTITION: future}
    plan.members[0].starts = {NO_PARTITION: future}
    assert plan_windows(plan, HI) == []
    assert plan.members[0].state(plan, HI) == {"datetime": "2099-01-01T00:00:00+00:00"}
    other = _plan("events")
    plan_windows(other, HI)
    other.tracks[NO_PARTITION].windows[0].last = HI + timedelta(days=1)
    other.tracks[NO_PARTITION].windows[0].done = True
    assert other.members[0].state(other, HI) == {"datetime": "2024-10-15T12:00:00+00:00"}


def test_a_start_date_after_the_sync_start_records_no_state() -> None:
    """Nothing was read from a start beyond hi_final: no state (or the saved one), never "now"."""
    plan = _plan("events")
    plan.members[0].starts = {NO_PARTITION: HI + timedelta(days=3)}
    assert plan_windows(plan, HI) == []
    assert plan.members[0].state(plan, HI) == {}
    saved = datetime(2024, 9, 1, tzinfo=UTC)
    plan.members[0].saved = {NO_PARTITION: saved}
    assert plan.members[0].state(plan, HI) == {"datetime": "2024-09-01T00:00:00+00:00"}


def test_merge_included_like_airbyte_2_14() -> None:
    record = {
        "type": "event",
        "id": "e1",
        "relationships": {
            "metric": {"data": {"type": "metric", "id": "m1"}},
            "attributions": {"data": [{"type": "attribution", "id": "a1"}]},
            "profile": {"data": {"type": "profile", "id": "p-not-included"}},
        },
    }
    index = shape.include_index(
        {
            "included": [
                {"type": "metric", "id": "m1", "attributes": {"name": "Placed Order"}},
                {"type": "attribution", "id": "a1", "relationships": {"campaign": {"data": {"id": "c1"}}}},
            ]
        }
    )
    merged = shape.merge_included(record, index)
    assert merged["relationships"]["metric"]["data"] == {"type": "metric", "id": "m1", "name": "Placed Order"}
    assert (
        merged["relationships"]["attributions"]["data"][0]["relationships"]["campaign"]["data"]["id"] == "c1"
    )
    assert merged["relationships"]["profile"]["data"] == {"type": "profile", "id": "p-not-included"}
    assert record["relationships"]["metric"]["data"] == {"type": "metric", "id": "m1"}  # untouched


def test_global_exclusion_copies_suppression_without_touching_the_profile() -> None:
    suppression = [{"reason": "HARD_BOUNCE", "timestamp": "2024-01-01T00:00:00+00:00"}]
    profile = {
        "id": "p",
        "attributes": {"subscriptions": {"email": {"marketing": {"suppression": suppression}}}},
    }
    out = shape.global_exclusion(profile)
    assert out is not None
    assert out["attributes"]["subscriptions"]["email"]["marketing"]["suppressions"] == suppression
    assert "suppressions" not in profile["attributes"]["subscriptions"]["email"]["marketing"]
    assert shape.global_exclusion({"id": "q", "attributes": {}}) is None
    empty = {"id": "r", "attributes": {"subscriptions": {"email": {"marketing": {"suppression": []}}}}}
    assert shape.global_exclusion(empty) is None


def test_profile_region_number_becomes_a_string() -> None:
    record = {"attributes": {"location": {"region": 10, "city": "Oslo"}}}
    shape.normalize_profile(record)
    assert record["attributes"]["location"] == {"region": "10", "city": "Oslo"}
    shape.normalize_profile({"attributes": {"location": None}})


def test_rate_limit_waits_count_as_wall_clock_time() -> None:
    member = _plan("events").members[0]
    stats = member.outcome.stats
    member.waits.add(stats, 10.0, 12.0)
    member.waits.add(stats, 10.5, 12.5)  # overlaps: only 0.5 s more
    member.waits.add(stats, 11.0, 12.0)  # inside: nothing
    member.waits.add(stats, 20.0, 21.0)
    assert stats.rate_limit_wait_seconds == 3.5
