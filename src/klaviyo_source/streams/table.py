"""Every stream as one row of data, and every fetch group (one listing endpoint) as another.

`STREAMS` keeps Airbyte's discover order (name, cursor, primary key). A stream belongs to a fetch
group: the streams of one group are served by the same listing requests (events and
events_detailed share GET /api/events, ...), so a page is fetched once and feeds every selected
member. Request parameters, filter operators and page sizes are checked against the vendored
OpenAPI spec (2026-07-15); see docs/architecture.md for the table in prose.
"""

from __future__ import annotations

from dataclasses import dataclass

# One partition of a group: fixed (key, value) pairs, e.g. (("archived", "true"), ("campaign_type", "sms")).
PartitionKey = tuple[tuple[str, str], ...]
NO_PARTITION: PartitionKey = ()


@dataclass(frozen=True)
class StreamRow:
    name: str
    cursor_field: str
    primary_key: tuple[str, ...] = ("id",)
    group: str = ""  # fetch group (GROUPS key)
    # A group that can serve this stream too when it is read anyway and starts early enough
    # (global_exclusions rides on the profiles scan instead of its own suppression scan).
    shares: str = ""
    detail: str = ""  # per-record extra work: "list_profile_count", "campaign_estimation"
    partitioned_state: bool = False  # state is one cursor per partition (campaigns, flows)


@dataclass(frozen=True)
class GroupRow:
    """One listing endpoint and how the engine cuts and filters it."""

    name: str
    path: str
    bucket: str  # rate-limit bucket (see http/ratelimit.py TIERS)
    cursor_path: tuple[str, ...]  # where the window field lives in a record
    page_size: int | None  # the endpoint's maximum; None when it has no page[size]
    sort: str | None
    # Server-side window filter: (field, lower operator, upper operator). `greater-than` lowers
    # the bound by 1 µs so every window is [lo, hi). None = no date filter (client-side).
    window_filter: tuple[str, str, str | None] | None
    splittable: bool = False  # large: adaptive splitting of time windows
    partitions: tuple[PartitionKey, ...] = (NO_PARTITION,)
    params: tuple[tuple[str, str], ...] = ()  # fixed query parameters


FLOOR_ISO = "2012-01-01T00:00:00+00:00"  # start of time when start_date is absent (as Airbyte)

_CHANNELS = ("email", "sms", "mobile_push")
_ARCHIVED = ("true", "false")

GROUPS: dict[str, GroupRow] = {
    row.name: row
    for row in (
        GroupRow(
            "profiles",
            "/api/profiles",
            "get_profiles",
            ("attributes", "updated"),
            100,
            "updated",
            ("updated", "greater-than", "less-than"),
            splittable=True,
        ),
        GroupRow(
            # global_exclusions on its own: only suppressed profiles come back.
            "suppressions",
            "/api/profiles",
            "get_profiles",
            ("attributes", "updated"),
            100,
            "subscriptions.email.marketing.suppression.timestamp",
            ("subscriptions.email.marketing.suppression.timestamp", "greater-or-equal", "less-than"),
            params=(("additional-fields[profile]", "subscriptions"),),
        ),
        GroupRow(
            "events",
            "/api/events",
            "get_events",
            ("attributes", "datetime"),
            1000,
            "datetime",
            ("datetime", "greater-or-equal", "less-than"),
            splittable=True,
            params=(("fields[metric]", "name"),),
        ),
        GroupRow(
            "templates",
            "/api/templates",
            "get_templates",
            ("attributes", "updated"),
            10,
            "updated",
            ("updated", "greater-or-equal", "less-than"),
        ),
        GroupRow("metrics", "/api/metrics", "get_metrics", ("attributes", "updated"), None, None, None),
        GroupRow(
            # lists allow only greater-than on updated: no upper bound, the engine stops at hi.
            "lists",
            "/api/lists",
            "get_lists",
            ("attributes", "updated"),
            10,
            "updated",
            ("updated", "greater-than", None),
        ),
        GroupRow(
            "campaigns",
            "/api/campaigns",
            "get_campaigns",
            ("attributes", "updated_at"),
            100,
            "updated_at",
            ("updated_at", "greater-or-equal", "less-than"),
            partitions=tuple((("archived", a), ("campaign_type", c)) for c in _CHANNELS for a in _ARCHIVED),
        ),
        GroupRow(
            "flows",
            "/api/flows",
            "get_flows",
            ("attributes", "updated"),
            50,
            "updated",
            ("updated", "greater-or-equal", "less-than"),
            partitions=tuple((("archived", a),) for a in _ARCHIVED),
        ),
    )
}

STREAMS: tuple[StreamRow, ...] = (
    StreamRow("profiles", "updated", group="profiles"),
    StreamRow("global_exclusions", "updated", group="suppressions", shares="profiles"),
    StreamRow("events", "datetime", group="events"),
    StreamRow("events_detailed", "datetime", group="events"),
    StreamRow("email_templates", "updated", group="templates"),
    StreamRow("metrics", "updated", group="metrics"),
    StreamRow("lists", "updated", group="lists"),
    StreamRow("lists_detailed", "updated", group="lists", detail="list_profile_count"),
    StreamRow("campaigns", "updated_at", group="campaigns", partitioned_state=True),
    StreamRow(
        "campaigns_detailed",
        "updated_at",
        group="campaigns",
        detail="campaign_estimation",
        partitioned_state=True,
    ),
    StreamRow("flows", "updated", group="flows", partitioned_state=True),
)

STREAMS_BY_NAME: dict[str, StreamRow] = {row.name: row for row in STREAMS}

# Detail fetches: (path template, fixed params, rate bucket).
DETAILS: dict[str, tuple[str, tuple[tuple[str, str], ...], str]] = {
    "list_profile_count": (
        "/api/lists/{id}",
        (("additional-fields[list]", "profile_count"),),
        "get_list:profile_count",
    ),
    "campaign_estimation": (
        "/api/campaign-recipient-estimations/{id}",
        (),
        "get_campaign_recipient_estimation",
    ),
}


def endpoint_paths(stream: str) -> tuple[str, ...]:
    """The spec path templates a stream requests: its listing, then its detail fetch if any."""
    row = STREAMS_BY_NAME[stream]
    paths = [GROUPS[row.group].path]
    if row.detail:
        paths.append(DETAILS[row.detail][0])
    return tuple(paths)
