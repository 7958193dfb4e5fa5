"""Every stream as one row of data, and every listing (one endpoint the engine scans) as another.

A row says everything about its stream; the engine, the HTTP layer and the state codec hold no
stream or listing name (a test walks their code and fails on one). `STREAMS` keeps Airbyte's
discover order. Streams of one listing are served by the same requests (events and
events_detailed share GET /api/events, ...): a page is fetched once and feeds every selected
member. Parameters, filter operators and page sizes follow the vendored OpenAPI (2026-07-15);
tests check them against it. Adding a stream = a row here + its schema (+ a simulator resource
when the endpoint is new).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from klaviyo_source.streams import rawshape
from klaviyo_source.streams import records as shape
from klaviyo_source.streams import reports as report
from klaviyo_source.streams.rawshape import RawShaper
from klaviyo_source.streams.reconcile import Reconcile, included_ids
from klaviyo_source.streams.records import Page, Record
from klaviyo_source.streams.reports import ReportQuery

# One partition of a listing: fixed (key, value) pairs, e.g. (("archived", "true"), ("campaign_type", "sms")).
PartitionKey = tuple[tuple[str, str], ...]
NO_PARTITION: PartitionKey = ()
Params = tuple[tuple[str, str], ...]

FLOOR_ISO = "2012-01-01T00:00:00+00:00"  # start of time when start_date is absent (as Airbyte)
EPOCH_ISO = "1970-01-01T00:00:00+00:00"


@dataclass(frozen=True, kw_only=True)
class Partition:
    """A fixed slice of a listing: its state key, its filter predicates, and attributes every
    record of it gets (the campaign's channel, which Klaviyo's campaign resource lacks)."""

    key: PartitionKey = NO_PARTITION
    predicates: tuple[str, ...] = ()
    attributes: Params = ()


@dataclass(frozen=True, kw_only=True)
class ConfigPartitions:
    """Partitions named by a config list (Airbyte 3.x's `event_metric_ids`): one per value, keyed
    `(key, value)` in state and filtered by `predicate` ({value} filled in); an empty list leaves
    the listing's own partitions (one unfiltered read). Values may also be names of the resources
    `names_from` lists (`attributes.name`), resolved to their ids before the read."""

    setting: str  # Config attribute: a tuple of strings
    key: str  # the partition's key in state, as Airbyte writes it
    predicate: str  # filter term with {value}
    names_from: str = ""  # listing path whose resources' names may stand for ids


@dataclass(frozen=True, kw_only=True)
class WindowFilter:
    """Server-side time window: `lower(field, lo)` and `upper(field, hi)`. A `greater-than` lower
    bound is moved 1 µs down so windows stay [lo, hi); no upper operator = the engine stops at hi."""

    field: str
    lower: Literal["greater-than", "greater-or-equal"]
    upper: Literal["less-than", "less-or-equal"] | None


@dataclass(frozen=True, kw_only=True)
class Variant:
    """Other parameters for a listing, used when a member stream asks for them and the config key
    `unless` is not true (profiles' predictive analytics, a stricter rate tier)."""

    label: str  # for messages: "predictive analytics"
    params: Params
    unless: str  # Config attribute that turns the variant off
    min_page_size: int  # on repeated 503s the page size halves down to this, then the stream fails
    on_503_advice: str  # what the user can do when even the smallest page gets 503s


@dataclass(frozen=True, kw_only=True)
class Listing:
    """One listing endpoint and how the engine cuts and filters it."""

    name: str
    path: str
    # Where the window field lives in a record (a list on the way stands for its first item);
    # () = no cursor. Records get a top-level copy of it named `cursor_name`.
    cursor_path: tuple[str, ...]
    page_size: int | None  # the endpoint's maximum; None when it has no page[size]
    sort: str | None
    window: WindowFilter | None  # None = no date filter (the client filters on the cursor)
    splittable: bool = False  # large: adaptive splitting of time windows
    partitions: tuple[Partition, ...] = (Partition(),)
    params: Params = ()  # fixed query parameters (includes, sparse fields, additional fields)
    variant: Variant | None = None
    config_partitions: ConfigPartitions | None = None
    cursor_as: str = ""  # the top-level cursor copy's name when not the path's last key
    # Datetimes besides the cursor that Klaviyo sometimes writes with a space instead of `T`
    # (2026): normalized to ISO-8601 with offset before shaping (`*` = every key or item).
    datetime_paths: tuple[tuple[str, ...], ...] = ()
    # No date filter, but a sort newest first on the cursor (`sort=-<cursor>`): the scan stops
    # after the first page that reaches below every member's start (reviews: incremental reads
    # the changed reviews' pages, not the whole listing).
    newest_first: bool = False

    @property
    def cursor_name(self) -> str:
        """The name of the top-level cursor copy records get (Airbyte's envelope)."""
        return self.cursor_as or (self.cursor_path[-1] if self.cursor_path else "")

    @property
    def has_cursor(self) -> bool:
        """Records carry a cursor (else every read lists everything: tags, coupons, accounts)."""
        return bool(self.cursor_path)

    @property
    def ordered(self) -> bool:
        """Pages come sorted on the members' cursor within each window (state can follow them)."""
        return self.sort is not None and self.window is not None

    @property
    def raw_capable(self) -> bool:
        """Pages can go out pre-serialized: sorted, cursor at attributes.<name>, and nothing added
        to the records but the top-level cursor copy."""
        return self.ordered and len(self.cursor_path) == 2 and not any(p.attributes for p in self.partitions)

    def partition(self, key: PartitionKey) -> Partition:
        return next(p for p in self.partitions if p.key == key)

    def configured(self, values: tuple[str, ...]) -> Listing:
        """This listing as a config list partitions it: one partition per value (none: as is)."""
        spec = self.config_partitions
        if spec is None or not values:
            return self
        return replace(
            self,
            partitions=tuple(
                Partition(key=((spec.key, value),), predicates=(spec.predicate.format(value=value),))
                for value in values
            ),
        )


@dataclass(frozen=True, kw_only=True)
class Detail:
    """A per-record fetch that completes a stream's record (GET path with {id} of the record)."""

    path: str
    params: Params = ()
    # (listing record, detail document or None on 404, page) -> the stream's record, or None to drop
    combine: Callable[[Record, Record | None, Page], Record | None]


@dataclass(frozen=True, kw_only=True)
class ParentBatch:
    """Several parents named by one child listing request: the fan-out's `parent_filter` takes
    `{ids}` (a list-valued operator, `any(coupon.id,[{ids}])`), filled with up to `size` quoted
    parent ids (fewer when the filter would grow past the engine's URL budget). Only for child
    listings without a cursor (one cursor per parent cannot ride a shared request)."""

    size: int  # parents per request at most
    parent_path: tuple[str, ...]  # where a child resource names its parent's id


@dataclass(frozen=True, kw_only=True)
class Fanout:
    """A child listing read once per record of the stream's listing (GET path with the parent's
    id): memberships, a flow's actions. Its state keeps one cursor per parent."""

    path: str  # with {id}, unless `parent_filter` names the parent
    parent_key: str  # names the parent in the stream's state partitions (and in its records)
    cursor_path: tuple[str, ...]  # where the child's cursor lives in a child resource; () = none
    page_size: int | None
    sort: str | None
    window: WindowFilter | None
    params: Params = ()
    # A filter predicate naming the parent, with {id} (or {ids} with `batch`): for child
    # listings that are not nested under their parent's path (GET /api/coupon-codes requires
    # a `coupon.id` filter).
    parent_filter: str = ""
    batch: ParentBatch | None = None  # None: one child listing per parent
    # True: every parent each sync (a new member does not move its list's cursor). False: only
    # parents changed since the stream's `parent_state`.
    every_parent: bool = True
    # Which parents can have children at all (None: every parent): a flow action holds messages
    # only when its typed definition has one (the spec's send-* and experiment actions).
    has_children: Callable[[Record], bool] | None = None
    # (parent record, child resource) -> the stream's record (with its top-level cursor copy)
    row: Callable[[Record, Record], Record]


@dataclass(frozen=True, kw_only=True)
class Report:
    """A Reporting API query (POST, a JSON body) a report stream reads in whole days of the
    account's timezone, within the endpoint's daily quota (`engine/reports.py`)."""

    path: str  # e.g. /api/flow-series-reports
    type: str  # the body's JSON:API type, e.g. flow-series-report
    # "daily": a series (a request covers up to `max_days` days, one record per day and group);
    # None: values (one request per day, one aggregate per group).
    interval: str | None
    max_days: int  # days per request (the spec's interval rule: daily <= 60 days)
    # One partition per metric named by the Config attribute `metrics_from` (ids or names, empty:
    # every metric), keyed `partition_key` in the state ("" = one partition, no metric).
    partition_key: str = ""
    metrics_from: str = ""
    data_from: str = ""  # the first day the endpoint has data (segments: 2023-06-01)
    body: Callable[[ReportQuery], dict[str, object]]  # the request's `attributes`
    rows: Callable[[Record, ReportQuery], list[Record]]  # response document -> records
    # A 400 whose detail contains this skips the partition with a warning (Airbyte 3.x ignores it)
    refusal: str = ""


@dataclass(frozen=True, kw_only=True)
class Stream:
    """One stream: Airbyte's name, cursor and primary key, the listing that serves it, and every
    behaviour of its own."""

    name: str
    listing: str  # LISTINGS key
    # None: no cursor (the endpoint has no updated-like field): full refresh, and incremental
    # re-reads everything; state stays {} and Airbyte gets no source-defined cursor.
    cursor_field: str | None
    primary_key: tuple[str, ...] = ("id",)
    # Per page: the listing's records (already cut to the window and to this stream's start) ->
    # this stream's records. None = the records as listed (plus the top-level cursor copy); such
    # streams may take the pre-serialized fast path.
    shape: Callable[[list[Record], Page], list[Record]] | None = None
    # The same shaper on the pre-serialized fast path (streams/rawshape.py): raw records in,
    # byte for byte the records `shape` gives, serialized. A listing whose selected streams are
    # all passthrough or have one goes the fast path (when the sink takes raw records).
    raw_shape: RawShaper | None = None
    # The parts of each record `raw_shape` reads (top-level or under attributes), found when the
    # page is split: ("relationships",), ("attributes", "subscriptions").
    raw_reads: tuple[tuple[str, ...], ...] = ()
    detail: Detail | None = None
    fanout: Fanout | None = None
    wants_variant: bool = False  # asks for its listing's variant
    # Incremental reads start the trailing re-scan (late_events_hours, lookback_window) before the
    # saved cursor: Klaviyo makes some records visible after their cursor has been passed.
    lookback: bool = False
    # A fixed re-read before the saved cursor (seconds), whatever the config says.
    fixed_lookback_seconds: int = 0
    # Where the stream starts without state, instead of start_date ("" = start_date, else the
    # 2012 floor): a fixed instant such as the epoch.
    pinned_start: str = ""
    # A listing that can serve this stream too when it is read anyway and starts early enough
    # (global_exclusions rides on the profiles scan instead of its own suppression scan).
    rides_on: str = ""
    # The shaper's rows carry their own cursor, not their parent's (a flow action's `updated` on
    # the flows listing): rows below the stream's start (unchanged since its state) are dropped,
    # before they go out or become fan-out parents.
    rows_own_cursor: bool = False
    partitioned_state: bool = False  # state is one cursor per partition
    # No cursor, and a read costs one slow-tier request per parent, with nothing saying which
    # parents changed: incremental reads re-read it at most every `slow_refresh_hours` (config);
    # in between it ends COMPLETE with no request. The last complete read's time is kept in its
    # state (engine/cadence.py); a full refresh always reads.
    slow_refresh: bool = False
    # Airbyte <= 2.12 kept `{"<cursor>": A, "archived": {"<cursor>": B}}`: the partition keys those
    # two cursors belonged to, besides `archived` (campaigns: it read email campaigns only).
    legacy_archived_extra: PartitionKey = NO_PARTITION
    # Airbyte's legacy per-partition `states` lists of single-cursor streams: which cursor to take
    # ("min" misses nothing; "max" where every later change has a later cursor).
    legacy_states_pick: Literal["min", "max"] = "min"
    # Deleted records: the id scan that lists the live keys (streams/reconcile.py); None = none.
    reconcile: Reconcile | None = None
    # Rows derived from a parent record carry its id in this column: a parent on a page brings
    # all its current rows, so its earlier rows that did not come back are deletions (a lifted
    # suppression leaves global_exclusions, a dropped list suppression leaves list_exclusions).
    replaces: str = ""
    # A Reporting API stream (no listing: `listing` is ""): engine/reports.py reads it.
    report: Report | None = None

    @property
    def has_cursor(self) -> bool:
        return self.cursor_field is not None

    @property
    def passthrough(self) -> bool:
        """Records go out as listed, plus the top-level cursor copy."""
        return self.shape is None and self.detail is None and self.fanout is None

    @property
    def raw_ready(self) -> bool:
        """Its records can be made on the fast path (as listed, or by `raw_shape`)."""
        return self.passthrough or (
            self.raw_shape is not None and self.detail is None and self.fanout is None
        )


_CHANNELS = ("email", "sms", "mobile_push")
# A profile's subscription datetimes (consent, last update, suppressions), every channel and kind.
_SUBSCRIPTION_DATETIMES: tuple[tuple[str, ...], ...] = (
    ("attributes", "subscriptions", "*", "*", "consent_timestamp"),
    ("attributes", "subscriptions", "*", "*", "last_updated"),
    ("attributes", "subscriptions", "*", "*", "suppression", "*", "timestamp"),
    ("attributes", "subscriptions", "*", "*", "list_suppressions", "*", "timestamp"),
)
_ARCHIVED = ("true", "false")
_PREDICTIVE_503_ADVICE = "Retry the sync later, or set disable_fetching_predictive_analytics to true."

LISTINGS: dict[str, Listing] = {
    row.name: row
    for row in (
        Listing(
            name="profiles",
            path="/api/profiles",
            cursor_path=("attributes", "updated"),
            page_size=100,
            sort="updated",
            window=WindowFilter(field="updated", lower="greater-than", upper="less-than"),
            splittable=True,
            params=(("additional-fields[profile]", "subscriptions"),),
            datetime_paths=_SUBSCRIPTION_DATETIMES,
            variant=Variant(
                label="predictive analytics",
                params=(("additional-fields[profile]", "subscriptions,predictive_analytics"),),
                unless="disable_fetching_predictive_analytics",
                min_page_size=25,
                on_503_advice=_PREDICTIVE_503_ADVICE,
            ),
        ),
        Listing(
            # global_exclusions on its own (Airbyte 3.x): only suppressed profiles, filtered and
            # sorted on the suppression time, which is the records' `updated` and the cursor.
            name="suppressions",
            path="/api/profiles",
            cursor_path=("attributes", "subscriptions", "email", "marketing", "suppression", "timestamp"),
            cursor_as="updated",
            page_size=100,
            sort="subscriptions.email.marketing.suppression.timestamp",
            window=WindowFilter(
                field="subscriptions.email.marketing.suppression.timestamp",
                lower="greater-or-equal",
                upper="less-than",
            ),
            params=(("additional-fields[profile]", "subscriptions"),),
            datetime_paths=_SUBSCRIPTION_DATETIMES,
        ),
        Listing(
            # list_exclusions on their own: of the profiles changed since the state, only those
            # holding a list suppression (any `list_suppressions` entry since the epoch); every
            # other profile would yield no row. With profiles selected they ride its scan.
            name="list_suppressed_profiles",
            path="/api/profiles",
            cursor_path=("attributes", "updated"),
            page_size=100,
            sort="updated",
            window=WindowFilter(field="updated", lower="greater-than", upper="less-than"),
            splittable=True,
            partitions=(
                Partition(
                    predicates=(
                        "greater-or-equal(subscriptions.email.marketing.list_suppressions.timestamp,"
                        "1970-01-01T00:00:00Z)",
                    )
                ),
            ),
            params=(("additional-fields[profile]", "subscriptions"),),
        ),
        Listing(
            name="events",
            path="/api/events",
            cursor_path=("attributes", "datetime"),
            page_size=1000,
            sort="datetime",
            window=WindowFilter(field="datetime", lower="greater-or-equal", upper="less-than"),
            splittable=True,
            # The same includes whichever members are selected, so a record's shape (to-many
            # relationships carry `data` only when included) never depends on its sibling stream.
            params=(("fields[metric]", "name"), ("include", "metric,attributions")),
            config_partitions=ConfigPartitions(
                setting="event_metric_ids",
                key="event_metric_id",
                predicate='equals(metric_id,"{value}")',
                names_from="/api/metrics",
            ),
        ),
        Listing(
            name="templates",
            path="/api/templates",
            cursor_path=("attributes", "updated"),
            page_size=10,
            sort="updated",
            window=WindowFilter(field="updated", lower="greater-or-equal", upper="less-than"),
        ),
        Listing(
            # No date filter and no sort exist on metrics: one scan, the client filters.
            name="metrics",
            path="/api/metrics",
            cursor_path=("attributes", "updated"),
            page_size=None,
            sort=None,
            window=None,
        ),
        Listing(
            # lists allow only greater-than on updated: no upper bound, the engine stops at hi.
            name="lists",
            path="/api/lists",
            cursor_path=("attributes", "updated"),
            page_size=10,
            sort="updated",
            window=WindowFilter(field="updated", lower="greater-than", upper=None),
            params=(("include", "tags"),),  # list_tags
        ),
        Listing(
            name="campaigns",
            path="/api/campaigns",
            cursor_path=("attributes", "updated_at"),
            page_size=100,
            sort="updated_at",
            window=WindowFilter(field="updated_at", lower="greater-or-equal", upper="less-than"),
            partitions=tuple(
                Partition(
                    key=(("archived", a), ("campaign_type", c)),
                    predicates=(f"equals(archived,{a})", f"equals(messages.channel,'{c}')"),
                    attributes=(("channel", c),),
                )
                for c in _CHANNELS
                for a in _ARCHIVED
            ),
            # Tags feed campaign_tags, messages campaign_messages and campaigns_detailed: the same
            # includes whichever members are selected (a record's shape never depends on a sibling).
            params=(("include", "campaign-messages,tags"),),
        ),
        Listing(
            name="flows",
            path="/api/flows",
            cursor_path=("attributes", "updated"),
            page_size=50,
            sort="updated",
            window=WindowFilter(field="updated", lower="greater-or-equal", upper="less-than"),
            partitions=tuple(
                Partition(key=(("archived", a),), predicates=(f"equals(archived,{a})",)) for a in _ARCHIVED
            ),
            # flow_actions and flow_messages' parents come from the included actions (no request
            # per flow), flow_tags from the included tags. Always sent, so a flow record's shape
            # never depends on its siblings.
            params=(("include", "flow-actions,tags"),),
        ),
        Listing(
            # segments allow only greater-than on updated (as lists): no upper bound.
            name="segments",
            path="/api/segments",
            cursor_path=("attributes", "updated"),
            page_size=10,
            sort="updated",
            window=WindowFilter(field="updated", lower="greater-than", upper=None),
            params=(("include", "tags"),),  # segment_tags
        ),
        # Listings without a cursor: no date field to filter or sort on, every read lists all.
        Listing(
            name="tags",
            path="/api/tags",
            cursor_path=(),
            page_size=50,
            sort=None,
            window=None,
        ),
        Listing(
            name="tag_groups",
            path="/api/tag-groups",
            cursor_path=(),
            page_size=25,
            sort=None,
            window=None,
        ),
        Listing(
            name="coupons",
            path="/api/coupons",
            cursor_path=(),
            page_size=100,
            sort=None,
            window=None,
        ),
        Listing(
            name="forms",
            path="/api/forms",
            cursor_path=("attributes", "updated_at"),
            page_size=100,
            sort="updated_at",
            window=WindowFilter(field="updated_at", lower="greater-or-equal", upper="less-than"),
        ),
        Listing(
            name="images",
            path="/api/images",
            cursor_path=("attributes", "updated_at"),
            page_size=100,
            sort="updated_at",
            window=WindowFilter(field="updated_at", lower="greater-or-equal", upper="less-than"),
        ),
        Listing(
            name="push_tokens",
            path="/api/push-tokens",
            cursor_path=(),
            page_size=100,
            sort=None,
            window=None,
        ),
        # Catalogs filter and sort on neither `updated` nor anything like it: one scan, the client
        # filters on `updated` (as metrics).
        *(
            Listing(
                name=f"catalog_{kind}",
                path=f"/api/catalog-{kind}",
                cursor_path=("attributes", "updated"),
                page_size=100,
                sort=None,
                window=None,
            )
            for kind in ("items", "variants", "categories")
        ),
        # One account per key, one page (no page[size], no cursor).
        Listing(
            name="accounts",
            path="/api/accounts",
            cursor_path=(),
            page_size=None,
            sort=None,
            window=None,
        ),
        Listing(
            name="universal_content",
            path="/api/template-universal-content",
            cursor_path=("attributes", "updated"),
            page_size=100,
            sort="updated",
            window=WindowFilter(field="updated", lower="greater-or-equal", upper="less-than"),
        ),
        Listing(
            # Reviews filter on `created` only (an edited or moderated review keeps it), but sort
            # on `-updated`: the client filters on `updated` and stops below the state.
            name="reviews",
            path="/api/reviews",
            cursor_path=("attributes", "updated"),
            page_size=100,
            sort="-updated",
            window=None,
            newest_first=True,
        ),
        Listing(
            name="web_feeds",
            path="/api/web-feeds",
            cursor_path=("attributes", "updated"),
            page_size=20,
            sort="updated",
            window=WindowFilter(field="updated", lower="greater-or-equal", upper="less-than"),
        ),
        Listing(
            # One page, no filter or sort; `updated_at` may be null (older webhooks): no cursor.
            # The topics a webhook sends come as relationship data with include=webhook-topics.
            name="webhooks",
            path="/api/webhooks",
            cursor_path=(),
            page_size=None,
            sort=None,
            window=None,
            params=(("include", "webhook-topics"),),
        ),
        Listing(
            # One page, no filter or sort: the client filters on `updated`.
            name="custom_metrics",
            path="/api/custom-metrics",
            cursor_path=("attributes", "updated"),
            page_size=None,
            sort=None,
            window=None,
        ),
        Listing(
            # One record per account, a page of 1 (the spec's maximum), no date.
            name="tracking_settings",
            path="/api/tracking-settings",
            cursor_path=(),
            page_size=1,
            sort=None,
            window=None,
        ),
    )
}

_CAMPAIGN_EMAIL: PartitionKey = (("campaign_type", "email"),)


def _ids(resource_type: str, *, column: str = "id", large: bool = False, include: str = "") -> Reconcile:
    """Reconcile on the listing's ids alone (`fields[<type>]=id`); with `include`, the included
    children's ids come along on the same pages, so parent and child streams share one scan."""
    params: Params = ((f"fields[{resource_type}]", "id"),)
    if include:
        params += (("include", include), (f"fields[{include[:-1]}]", "id"))
    return Reconcile(params=params, column=column, large=large)


def _included_ids(parent_type: str, include: str) -> Reconcile:
    """Reconcile on the ids of included children (`include=<type>`, ids only)."""
    return replace(_ids(parent_type, include=include), ids=included_ids(include[:-1]))


def _per_parent(
    path: str,
    parent_column: str,
    page_size: int,
    *,
    column: str = "id",
    large: bool = False,
    parents: Reconcile | None = None,
) -> Reconcile:
    """Reconcile per parent on a relationships endpoint (ids only): the parents the destination
    holds, or (parent not in the key) those `parents` lists."""
    return Reconcile(
        per_parent=path,
        parent_column=parent_column,
        column=column,
        page_size=page_size,
        large=large,
        parents=parents,
    )


_REREAD = Reconcile()  # no cursor: every sync re-reads every record, so the read itself lists the live keys

STREAMS: tuple[Stream, ...] = (
    Stream(
        name="profiles",
        listing="profiles",
        cursor_field="updated",
        shape=shape.normalize_profiles,
        raw_shape=rawshape.normalize_profiles,
        raw_reads=(("attributes", "location"),),
        wants_variant=True,
        reconcile=_ids("profile", large=True),
    ),
    Stream(
        name="global_exclusions",
        listing="suppressions",
        cursor_field="updated",
        shape=shape.global_exclusions,
        raw_shape=rawshape.global_exclusions,
        raw_reads=(("attributes", "subscriptions"),),
        rides_on="profiles",
        # Airbyte 3.x: the suppression time is the cursor, from the epoch (start_date does not
        # bound it), re-reading the last hour.
        fixed_lookback_seconds=3600,
        pinned_start=EPOCH_ISO,
        # Every sync: the suppressed profiles' ids (a small share of all profiles).
        reconcile=Reconcile(
            listing="suppressions", params=(("fields[profile]", "id"),), window_from=EPOCH_ISO
        ),
        replaces="id",
    ),
    Stream(name="events", listing="events", cursor_field="datetime", lookback=True),
    Stream(
        name="events_detailed",
        listing="events",
        cursor_field="datetime",
        shape=shape.merge_included_page,
        raw_shape=rawshape.merge_included_page,
        raw_reads=(("relationships",),),
        lookback=True,
    ),
    Stream(name="email_templates", listing="templates", cursor_field="updated", reconcile=_ids("template")),
    # Airbyte 3.x reads every metric whatever start_date says (its start is 1970).
    Stream(
        name="metrics",
        listing="metrics",
        cursor_field="updated",
        pinned_start=EPOCH_ISO,
        reconcile=_ids("metric"),
    ),
    Stream(name="lists", listing="lists", cursor_field="updated", reconcile=_ids("list")),
    Stream(
        name="lists_detailed",
        listing="lists",
        cursor_field="updated",
        detail=Detail(
            path="/api/lists/{id}",
            params=(("additional-fields[list]", "profile_count"),),
            combine=shape.group_with_profile_count,
        ),
        legacy_states_pick="max",
        reconcile=_ids("list"),
    ),
    Stream(
        name="campaigns",
        listing="campaigns",
        cursor_field="updated_at",
        partitioned_state=True,
        legacy_archived_extra=_CAMPAIGN_EMAIL,
        reconcile=_ids("campaign", include="campaign-messages"),
    ),
    Stream(
        name="campaigns_detailed",
        listing="campaigns",
        cursor_field="updated_at",
        detail=Detail(
            path="/api/campaign-recipient-estimations/{id}",
            combine=shape.campaign_with_estimation,
        ),
        partitioned_state=True,
        legacy_archived_extra=_CAMPAIGN_EMAIL,
        reconcile=_ids("campaign", include="campaign-messages"),
    ),
    Stream(
        name="flows",
        listing="flows",
        cursor_field="updated",
        partitioned_state=True,
        reconcile=_ids("flow", include="flow-actions"),
    ),
    Stream(name="segments", listing="segments", cursor_field="updated", reconcile=_ids("segment")),
    Stream(
        name="list_memberships",
        listing="lists",
        cursor_field="joined_group_at",
        primary_key=("list_id", "profile_id"),
        fanout=Fanout(
            path="/api/lists/{id}/profiles",
            parent_key="list_id",
            cursor_path=("attributes", "joined_group_at"),
            page_size=100,
            sort="joined_group_at",
            window=WindowFilter(field="joined_group_at", lower="greater-or-equal", upper="less-than"),
            params=(("fields[profile]", "joined_group_at"),),  # ids and join times only
            row=shape.membership("list_id"),
        ),
        partitioned_state=True,
        reconcile=_per_parent(
            "/api/lists/{id}/relationships/profiles", "list_id", 100, column="profile_id", large=True
        ),
    ),
    Stream(
        name="segment_memberships",
        listing="segments",
        cursor_field="joined_group_at",
        primary_key=("segment_id", "profile_id"),
        fanout=Fanout(
            path="/api/segments/{id}/profiles",
            parent_key="segment_id",
            cursor_path=("attributes", "joined_group_at"),
            page_size=100,
            sort="joined_group_at",
            window=WindowFilter(field="joined_group_at", lower="greater-or-equal", upper="less-than"),
            params=(("fields[profile]", "joined_group_at"),),
            row=shape.membership("segment_id"),
        ),
        partitioned_state=True,
        reconcile=_per_parent(
            "/api/segments/{id}/relationships/profiles", "segment_id", 100, column="profile_id", large=True
        ),
    ),
    Stream(
        name="segments_detailed",
        listing="segments",
        cursor_field="updated",
        detail=Detail(
            path="/api/segments/{id}",
            params=(("additional-fields[segment]", "profile_count"),),
            combine=shape.group_with_profile_count,
        ),
        reconcile=_ids("segment"),
    ),
    Stream(
        # The actions of the flows changed since the state, from the flows listing's
        # include=flow-actions (a changed action moves its flow's `updated`); state per archived
        # partition as flows'.
        name="flow_actions",
        listing="flows",
        cursor_field="updated",
        shape=shape.included_children("flow-actions", cursor="updated", parent_key="flow_id"),
        rows_own_cursor=True,
        partitioned_state=True,
        reconcile=_included_ids("flow", "flow-actions"),
    ),
    Stream(
        # One child listing per flow action changed since `parent_state` (a changed message moves
        # its action's `updated`), each from that action's own cursor.
        name="flow_messages",
        listing="flows",
        cursor_field="updated",
        shape=shape.included_children("flow-actions", cursor="updated", parent_key="flow_id"),
        rows_own_cursor=True,
        fanout=Fanout(
            path="/api/flow-actions/{id}/flow-messages",
            parent_key="flow_action_id",
            cursor_path=("attributes", "updated"),
            page_size=50,
            sort="updated",
            window=WindowFilter(field="updated", lower="greater-or-equal", upper="less-than"),
            every_parent=False,
            has_children=shape.has_any(("attributes", "definition", "data"), ("message", "main_action")),
            row=shape.child_resource("flow_action_id", cursor="updated"),
        ),
        partitioned_state=True,
        reconcile=_per_parent(
            "/api/flow-actions/{id}/relationships/flow-messages",
            "flow_action_id",
            50,
            large=True,
            parents=_included_ids("flow", "flow-actions"),
        ),
    ),
    # Derived streams: rows built from the pages of a listing read anyway (no request of their
    # own); their cursor and state are their parent's.
    Stream(
        name="campaign_messages",
        listing="campaigns",
        cursor_field="updated_at",
        shape=shape.campaign_message_rows,
        partitioned_state=True,
        reconcile=_included_ids("campaign", "campaign-messages"),
    ),
    Stream(
        name="campaign_audiences",
        listing="campaigns",
        cursor_field="updated_at",
        primary_key=("campaign_id", "audience_id", "inclusion"),
        shape=shape.campaign_audience_rows,
        partitioned_state=True,
        reconcile=_ids("campaign", include="campaign-messages", column="campaign_id"),
        replaces="campaign_id",
    ),
    Stream(
        name="campaign_tags",
        listing="campaigns",
        cursor_field="updated_at",
        primary_key=("campaign_id", "tag_id"),
        shape=shape.tag_links("campaign_id", "updated_at"),
        partitioned_state=True,
        reconcile=_ids("campaign", include="campaign-messages", column="campaign_id"),
        replaces="campaign_id",
    ),
    Stream(
        name="flow_tags",
        listing="flows",
        cursor_field="updated",
        primary_key=("flow_id", "tag_id"),
        shape=shape.tag_links("flow_id", "updated"),
        partitioned_state=True,
        reconcile=_ids("flow", include="flow-actions", column="flow_id"),
        replaces="flow_id",
    ),
    Stream(
        name="list_tags",
        listing="lists",
        cursor_field="updated",
        primary_key=("list_id", "tag_id"),
        shape=shape.tag_links("list_id", "updated"),
        reconcile=_ids("list", column="list_id"),
        replaces="list_id",
    ),
    Stream(
        name="segment_tags",
        listing="segments",
        cursor_field="updated",
        primary_key=("segment_id", "tag_id"),
        shape=shape.tag_links("segment_id", "updated"),
        reconcile=_ids("segment", column="segment_id"),
        replaces="segment_id",
    ),
    # Every profile has subscriptions: alone, profile_subscriptions reads the profiles listing
    # (without predictive analytics); list_exclusions alone reads only the changed profiles that
    # hold a list suppression. With profiles (or profile_subscriptions) selected they ride its
    # pages (one fetch feeds profiles, profile_subscriptions and list_exclusions).
    Stream(
        name="profile_subscriptions",
        listing="profiles",
        cursor_field="updated",
        primary_key=("profile_id", "channel", "kind"),
        shape=shape.profile_subscription_rows,
        reconcile=_ids("profile", column="profile_id", large=True),
        replaces="profile_id",
        raw_shape=rawshape.from_subscriptions(shape.profile_subscription_rows),
        raw_reads=(("attributes", "subscriptions"),),
    ),
    Stream(
        name="list_exclusions",
        listing="list_suppressed_profiles",
        cursor_field="updated",
        primary_key=("profile_id", "list_id"),
        shape=shape.list_exclusion_rows,
        rides_on="profiles",
        # Every sync: the ids of the profiles holding a list suppression (a small share); a
        # profile without one any more (or deleted) takes its rows along.
        reconcile=Reconcile(
            listing="list_suppressed_profiles", params=(("fields[profile]", "id"),), column="profile_id"
        ),
        replaces="profile_id",
        raw_shape=rawshape.from_subscriptions(shape.list_exclusion_rows),
        raw_reads=(("attributes", "subscriptions"),),
    ),
    Stream(name="tags", listing="tags", cursor_field=None, reconcile=_REREAD),
    Stream(name="tag_groups", listing="tag_groups", cursor_field=None, reconcile=_REREAD),
    Stream(name="coupons", listing="coupons", cursor_field=None, reconcile=_REREAD),
    Stream(
        # GET /api/coupon-codes requires a `coupon.id` filter, whose `any` takes a list (the
        # spec states no list limit; 100, Klaviyo's documented cap on its other list filters):
        # one listing per page of coupons, each code naming its coupon.
        name="coupon_codes",
        listing="coupons",
        cursor_field=None,
        fanout=Fanout(
            path="/api/coupon-codes",
            parent_key="coupon_id",
            cursor_path=(),
            page_size=100,
            sort=None,
            window=None,
            parent_filter="any(coupon.id,[{ids}])",
            batch=ParentBatch(size=100, parent_path=("relationships", "coupon", "data", "id")),
            row=shape.child_of("coupon_id", None),
        ),
        partitioned_state=True,
        reconcile=_REREAD,
    ),
    Stream(name="forms", listing="forms", cursor_field="updated_at", reconcile=_ids("form")),
    Stream(
        # Every form each sync (a new version need not move its form's updated_at), each from
        # its own cursor.
        name="form_versions",
        listing="forms",
        cursor_field="updated_at",
        fanout=Fanout(
            path="/api/forms/{id}/form-versions",
            parent_key="form_id",
            cursor_path=("attributes", "updated_at"),
            page_size=100,
            sort="updated_at",
            window=WindowFilter(field="updated_at", lower="greater-or-equal", upper="less-than"),
            row=shape.child_of("form_id", "updated_at"),
        ),
        partitioned_state=True,
        reconcile=_per_parent(
            "/api/forms/{id}/relationships/form-versions", "form_id", 100, large=True, parents=_ids("form")
        ),
    ),
    Stream(name="images", listing="images", cursor_field="updated_at", reconcile=_ids("image")),
    Stream(name="push_tokens", listing="push_tokens", cursor_field=None, reconcile=_REREAD),
    *(
        Stream(
            name=f"catalog_{kind}", listing=f"catalog_{kind}", cursor_field="updated", reconcile=_ids(rtype)
        )
        for kind, rtype in (
            ("items", "catalog-item"),
            ("variants", "catalog-variant"),
            ("categories", "catalog-category"),
        )
    ),
    Stream(name="accounts", listing="accounts", cursor_field=None, reconcile=_REREAD),
    Stream(
        # GET /api/metrics/{id}/metric-properties: one page per metric (no paging, no date, XS
        # tier), every metric when read (a new property does not move its metric's `updated`):
        # at most every slow_refresh_hours on incremental reads.
        name="metric_properties",
        listing="metrics",
        cursor_field=None,
        fanout=Fanout(
            path="/api/metrics/{id}/metric-properties",
            parent_key="metric_id",
            cursor_path=(),
            page_size=None,
            sort=None,
            window=None,
            row=shape.child_of("metric_id", None),
        ),
        partitioned_state=True,
        reconcile=_REREAD,
        slow_refresh=True,
    ),
    Stream(
        name="universal_content",
        listing="universal_content",
        cursor_field="updated",
        reconcile=_ids("template-universal-content"),
    ),
    Stream(name="reviews", listing="reviews", cursor_field="updated", reconcile=_ids("review")),
    Stream(name="web_feeds", listing="web_feeds", cursor_field="updated", reconcile=_ids("web-feed")),
    Stream(name="webhooks", listing="webhooks", cursor_field=None, reconcile=_REREAD),
    Stream(
        name="custom_metrics",
        listing="custom_metrics",
        cursor_field="updated",
        reconcile=_ids("custom-metric"),
    ),
    Stream(name="tracking_settings", listing="tracking_settings", cursor_field=None, reconcile=_REREAD),
    # Reporting API streams: POST queries in whole days, 225 calls per day per endpoint.
    Stream(
        name="campaign_values_reports",
        listing="",
        cursor_field="date",
        primary_key=("date", "campaign_id", "campaign_message_id", "send_channel", "conversion_metric_id"),
        report=Report(
            path="/api/campaign-values-reports",
            type="campaign-values-report",
            interval=None,
            max_days=1,
            partition_key="conversion_metric_id",
            metrics_from="metric_ids",
            body=report.message_query,
            rows=report.values_rows(("campaign_id", "campaign_message_id", "send_channel")),
            refusal=report.NO_VALUES_DATA,
        ),
    ),
    Stream(
        name="flow_series_reports",
        listing="",
        cursor_field="date",
        primary_key=("date", "flow_id", "flow_message_id", "send_channel", "conversion_metric_id"),
        report=Report(
            path="/api/flow-series-reports",
            type="flow-series-report",
            interval="daily",
            max_days=60,
            partition_key="conversion_metric_id",
            metrics_from="metric_ids",
            body=report.message_query,
            rows=report.series_rows(("flow_id", "flow_message_id", "send_channel")),
            refusal=report.NO_VALUES_DATA,
        ),
    ),
    Stream(
        name="flow_values_reports",
        listing="",
        cursor_field="date",
        primary_key=("date", "flow_id", "flow_message_id", "send_channel", "conversion_metric_id"),
        report=Report(
            path="/api/flow-values-reports",
            type="flow-values-report",
            interval=None,
            max_days=1,
            partition_key="conversion_metric_id",
            metrics_from="metric_ids",
            body=report.message_query,
            rows=report.values_rows(("flow_id", "flow_message_id", "send_channel")),
            refusal=report.NO_VALUES_DATA,
        ),
    ),
    Stream(
        name="segment_series_reports",
        listing="",
        cursor_field="date",
        primary_key=("date", "segment_id"),
        report=Report(
            path="/api/segment-series-reports",
            type="segment-series-report",
            interval="daily",
            max_days=60,
            data_from="2023-06-01",  # the spec: "Data is unavailable before June 1st, 2023"
            body=report.series_query(()),
            rows=report.series_rows(("segment_id",)),
        ),
    ),
    Stream(
        name="form_series_reports",
        listing="",
        cursor_field="date",
        primary_key=("date", "form_id", "form_version_id"),
        report=Report(
            path="/api/form-series-reports",
            type="form-series-report",
            interval="daily",
            max_days=60,
            body=report.series_query(("form_id", "form_version_id")),
            rows=report.series_rows(("form_id", "form_version_id")),
        ),
    ),
    Stream(
        name="metric_aggregates",
        listing="",
        cursor_field="date",
        primary_key=("date", "metric_id", "measurement", "dimension_key"),
        report=Report(
            path="/api/metric-aggregates",
            type="metric-aggregate",
            interval="day",
            max_days=60,
            partition_key="metric_id",
            metrics_from="metric_aggregate_metrics",
            body=report.aggregate_query,
            rows=report.aggregate_rows,
        ),
    ),
)

STREAMS_BY_NAME: dict[str, Stream] = {row.name: row for row in STREAMS}
# What `sync` reads when no stream is named: every stream but the Reporting API's, whose daily
# quota (225 calls per endpoint) makes them opt-in (`--streams campaign_values_reports,...`).
DEFAULT_STREAMS: tuple[str, ...] = tuple(row.name for row in STREAMS if row.report is None)
REPORT_STREAMS: tuple[str, ...] = tuple(row.name for row in STREAMS if row.report is not None)


def endpoint_paths(stream: str) -> tuple[str, ...]:
    """The spec path templates a stream requests: its listing, then its detail or child listing."""
    row = STREAMS_BY_NAME[stream]
    if row.report is not None:
        return (row.report.path,)
    paths = [LISTINGS[row.listing].path]
    if row.detail is not None:
        paths.append(row.detail.path)
    if row.fanout is not None:
        paths.append(row.fanout.path)
    return tuple(paths)


def catalog_row(name: str, seen: set[str]) -> Stream:
    """The row a catalog entry names, each name once (`seen` collects them); LookupError with
    the reason otherwise, for the catalog parser to place."""
    row = STREAMS_BY_NAME.get(name)
    if row is None:
        raise LookupError(f"unknown stream '{name}' (known streams: {', '.join(r.name for r in STREAMS)})")
    if name in seen:
        raise LookupError(f"stream '{name}' is listed twice")
    seen.add(name)
    return row
