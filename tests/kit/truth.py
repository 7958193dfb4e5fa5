"""Ground truth for tests: what a complete read of each connector stream must return.

The simulator exists to test the connector, so this one place maps the connector's stream names
onto the store's collections: stream -> {record key: cursor in epoch microseconds}; a record's
key is its primary key, '/'-joined when composite (`record_key`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from klaviyo_simulator.resources.profiles import ROW_MASK, SHIFT
from klaviyo_simulator.store import Store
from klaviyo_source.streams.table import STREAMS_BY_NAME

# stream -> (resource type in the store, cursor attribute or None) for the small collections.
SMALL_STREAMS: dict[str, tuple[str, str | None]] = {
    "metrics": ("metric", "updated"),
    "lists": ("list", "updated"),
    "lists_detailed": ("list", "updated"),
    "email_templates": ("template", "updated"),
    "flows": ("flow", "updated"),
    "campaigns": ("campaign", "updated_at"),
    "campaigns_detailed": ("campaign", "updated_at"),
    "segments": ("segment", "updated"),
    "segments_detailed": ("segment", "updated"),
    "flow_actions": ("flow-action", "updated"),
    "flow_messages": ("flow-message", "updated"),
    "tags": ("tag", None),
    "tag_groups": ("tag-group", None),
    "coupons": ("coupon", None),
    "coupon_codes": ("coupon-code", None),
    "forms": ("form", "updated_at"),
    "form_versions": ("form-version", "updated_at"),
    "images": ("image", "updated_at"),
    "push_tokens": ("push-token", None),
    "catalog_items": ("catalog-item", "updated"),
    "catalog_variants": ("catalog-variant", "updated"),
    "catalog_categories": ("catalog-category", "updated"),
    "accounts": ("account", None),
    "metric_properties": ("metric-property", None),
    "universal_content": ("template-universal-content", "updated"),
    "reviews": ("review", "updated"),
    "web_feeds": ("web-feed", "updated"),
    "webhooks": ("webhook", None),
    "custom_metrics": ("custom-metric", "updated"),
    "tracking_settings": ("tracking-setting", None),
}


# stream -> the group type whose members it lists
MEMBERSHIP_STREAMS: dict[str, str] = {"list_memberships": "list", "segment_memberships": "segment"}

# tag-link stream -> (parent resource type, parent's cursor attribute)
TAG_STREAMS: dict[str, tuple[str, str]] = {
    "campaign_tags": ("campaign", "updated_at"),
    "flow_tags": ("flow", "updated"),
    "list_tags": ("list", "updated"),
    "segment_tags": ("segment", "updated"),
}


def live_profile_rows(store: Store) -> list[int]:
    """Rows of the profiles not deleted (admin `delete`)."""
    return [row for row in range(store.profile_count) if row not in store.profiles.deleted]


def epoch_us(moment: datetime | str | None) -> int | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def expected(store: Store) -> dict[str, dict[str, int | None]]:
    """Every stream's records: id -> cursor (epoch µs)."""
    events_ts, profile_cols = store.events.cols.ts, store.profiles.cols
    events: dict[str, int | None] = {
        event_id: ts * 1_000_000 for event_id, ts in zip(store.event_ids(), events_ts, strict=True)
    }
    profiles: dict[str, int | None] = {
        store.profile_id(row): profile_cols.updated[row] * 1_000_000 for row in live_profile_rows(store)
    }
    truth: dict[str, dict[str, int | None]] = {
        "events": events,
        "events_detailed": dict(events),
        "profiles": profiles,
        "global_exclusions": {  # the cursor is the suppression time (Airbyte 3.x)
            store.profile_id(row): seconds * 1_000_000
            for row, (_, seconds) in profile_cols.suppression.items()
            if row not in store.profiles.deleted
        },
    }
    for stream, (resource, cursor) in SMALL_STREAMS.items():
        truth[stream] = {
            row.id: epoch_us(row.attributes[cursor]) if cursor else None for row in store.records(resource)
        }
    for stream, group_type in MEMBERSHIP_STREAMS.items():
        truth[stream] = {f"{g}/{p}": joined for (g, p), joined in memberships(store, group_type).items()}
    truth.update(derived(store))
    return truth


def derived(store: Store) -> dict[str, dict[str, int | None]]:
    """The derived streams' rows (key -> cursor), from the parents' records in the store."""
    campaigns = store.records("campaign")
    truth: dict[str, dict[str, int | None]] = {
        "campaign_messages": {
            mid: epoch_us(store.get("campaign-message", mid).attributes["updated_at"])  # type: ignore[union-attr]
            for c in campaigns
            for mid in c.related_ids("campaign-messages")
        },
        "campaign_audiences": {
            f"{c.id}/{audience}/{inclusion}": epoch_us(c.attributes["updated_at"])
            for c in campaigns
            for inclusion in ("included", "excluded")
            for audience in c.attributes["audiences"][inclusion]
        },
    }
    for stream, (resource, cursor) in TAG_STREAMS.items():
        truth[stream] = {
            f"{row.id}/{tag}": epoch_us(row.attributes[cursor])
            for row in store.records(resource)
            for tag in row.related_ids("tags")
        }
    subscriptions: dict[str, int | None] = {}
    exclusions: dict[str, int | None] = {}
    profiles = store.profiles
    for row in live_profile_rows(store):
        pid, updated = store.profile_id(row), profiles.cols.updated[row] * 1_000_000
        for channel, kinds in profiles.subscriptions(row).items():
            subscriptions.update((f"{pid}/{channel}/{kind}", updated) for kind in kinds)
        exclusions.update((f"{pid}/{s['list_id']}", updated) for s in profiles.list_suppressions(row))
    truth["profile_subscriptions"] = subscriptions
    truth["list_exclusions"] = exclusions
    return truth


def report_ids(store: Store, stream: str, settings: Mapping[str, Any] | None = None) -> set[str]:
    """The primary keys a read of a report stream with kit.documents.REPORT_SETTINGS returns
    (yesterday in the account's timezone, Placed Order): the simulator's answers to the queries
    the stream's row builds, shaped by its row builder. (The numbers themselves are checked
    against the events in tests/engine/test_report_streams.py.)"""
    from kit.documents import REPORT_SETTINGS
    from klaviyo_simulator.resources.reports import Reports
    from klaviyo_source.config import Config
    from klaviyo_source.engine.reports import split_list
    from klaviyo_source.streams.reports import ReportQuery
    from klaviyo_source.streams.schema import load_schema

    report = STREAMS_BY_NAME[stream].report
    assert report is not None
    config = {**REPORT_SETTINGS, **(settings or {})}
    zone = ZoneInfo(store.records_view("account")[0].attributes["timezone"])
    last = datetime.now(zone).date() - timedelta(days=1)
    names = {m.attributes["name"]: m.id for m in store.records_view("metric")}
    metric = names[str(config[report.metrics_from])] if report.metrics_from else ""
    statistics = tuple(load_schema(stream)["properties"].get("statistics", {}).get("properties", {}))
    measurements = tuple(
        split_list(str(config.get("metric_aggregate_measurements", Config.metric_aggregate_measurements)))
    )
    out: set[str] = set()
    for offset in range(int(config["report_history_days"])):
        day = last - timedelta(days=offset)
        query = ReportQuery(day, day, zone, statistics, metric, report.interval, measurements)
        body = {"data": {"type": report.type, "attributes": report.body(query)}}
        document = Reports(store).answer(report.path, body, "http://truth")
        out |= {record_key(stream, row) for row in report.rows(document, query)}
    return out


def record_key(stream: str, record: Mapping[str, Any]) -> str:
    """A record's primary key as one string ('/'-joined when composite), as `expected` keys it."""
    return "/".join(str(record[k]) for k in STREAMS_BY_NAME[stream].primary_key)


def expected_ids(store: Store, stream: str) -> set[str]:
    """The ids every complete read of `stream` must contain."""
    if STREAMS_BY_NAME[stream].report is not None:
        return report_ids(store, stream)
    if stream in ("events", "events_detailed"):
        return set(store.event_ids())
    if stream == "profiles":
        return set(store.profiles.live_ids())
    if stream == "global_exclusions":
        return {
            store.profile_id(row)
            for row in store.profiles.cols.suppression
            if row not in store.profiles.deleted
        }
    if stream in MEMBERSHIP_STREAMS:
        return {f"{g}/{p}" for g, p in memberships(store, MEMBERSHIP_STREAMS[stream])}
    if stream not in SMALL_STREAMS:
        return set(derived(store)[stream])
    resource, _ = SMALL_STREAMS[stream]
    return {row.id for row in store.records(resource)}


def memberships(store: Store, group_type: str) -> dict[tuple[str, str], int]:
    """(group id, profile id) -> joined_group_at (epoch µs) of every member of every group."""
    out: dict[tuple[str, str], int] = {}
    for group in store.records(group_type):
        for key in store.members(group_type, group.id):
            out[(group.id, store.profile_id(key & ROW_MASK))] = (key >> SHIFT) * 1_000_000
    return out
