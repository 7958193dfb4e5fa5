"""Filter building, partitions and the watermark, without a network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from klaviyo_source.config import Config
from klaviyo_source.endpoints import bucket_for
from klaviyo_source.engine.contract import StreamOutcome
from klaviyo_source.engine.params import listing_params, variant_of
from klaviyo_source.engine.partitions import FLOOR, ListingPlan, Member, Track, member_starts, plan_windows
from klaviyo_source.engine.run import trailing_rescan
from klaviyo_source.streams.table import LISTINGS, NO_PARTITION, STREAMS_BY_NAME

LO = datetime(2024, 8, 1, tzinfo=UTC)
HI = datetime(2024, 10, 15, 12, tzinfo=UTC)


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
    assert params["include"] == "campaign-messages,tags"  # campaign_messages, campaign_tags
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
    assert member_starts(events, group, {}, start_date=None, rescan=timedelta(0)) == {NO_PARTITION: FLOOR}
    assert member_starts(events, group, saved, start_date=LO, rescan=timedelta(days=3)) == {
        NO_PARTITION: datetime(2024, 9, 7, tzinfo=UTC)
    }
    assert member_starts(events, group, saved, start_date=HI, rescan=timedelta(0)) == {NO_PARTITION: HI}
    hours = member_starts(events, group, saved, start_date=LO, rescan=timedelta(hours=6))
    assert hours == {NO_PARTITION: datetime(2024, 9, 9, 18, tzinfo=UTC)}
    profiles = STREAMS_BY_NAME["profiles"]  # no `lookback` on its row: resumes at its state
    assert (
        member_starts(profiles, LISTINGS["profiles"], saved, start_date=LO, rescan=timedelta(days=3)) == saved
    )


def test_trailing_rescan_is_the_larger_of_late_events_hours_and_lookback_window() -> None:
    assert trailing_rescan(Config(api_key="k")) == timedelta(hours=168)  # the default: 7 days
    assert trailing_rescan(Config(api_key="k", late_events_hours=6)) == timedelta(hours=6)
    assert trailing_rescan(Config(api_key="k", late_events_hours=6, lookback_window=2)) == timedelta(days=2)
    assert trailing_rescan(Config(api_key="k", late_events_hours=0)) == timedelta(0)


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


def test_rate_limit_waits_count_as_wall_clock_time() -> None:
    member = _plan("events").members[0]
    stats = member.outcome.stats
    member.waits.add(stats, 10.0, 12.0)
    member.waits.add(stats, 10.5, 12.5)  # overlaps: only 0.5 s more
    member.waits.add(stats, 11.0, 12.0)  # inside: nothing
    member.waits.add(stats, 20.0, 21.0)
    assert stats.rate_limit_wait_seconds == 3.5
