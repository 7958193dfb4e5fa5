"""Query parameters of a group's listing request for one partition and time window.

Operators are those the 2026-07-15 spec allows per field: profiles' `updated` has only
`greater-than`/`less-than` (the lower bound is moved 1 µs down so windows stay [lo, hi)), lists'
`updated` only `greater-than` (no upper bound: the scan stops at hi), metrics have no date filter.
"""

from __future__ import annotations

from datetime import datetime

from klaviyo_source.engine.partitions import ONE_US, GroupPlan
from klaviyo_source.state import filter_time
from klaviyo_source.streams.table import PartitionKey


def _partition_predicates(key: PartitionKey) -> list[str]:
    out = []
    for name, value in key:
        if name == "campaign_type":
            out.append(f"equals(messages.channel,'{value}')")
        elif name == "archived":
            out.append(f"equals(archived,{value})")
    return out


def wants_predictive(plan: GroupPlan, disable_predictive: bool) -> bool:
    return plan.name == "profiles" and plan.member("profiles") is not None and not disable_predictive


def bucket_of(plan: GroupPlan, disable_predictive: bool) -> str:
    if wants_predictive(plan, disable_predictive):
        return "get_profiles:predictive_analytics"
    return plan.row.bucket


def listing_params(
    plan: GroupPlan,
    key: PartitionKey,
    lo: datetime,
    hi: datetime,
    *,
    page_size: int | None,
    disable_predictive: bool,
) -> dict[str, str]:
    row = plan.row
    params = dict(row.params)
    predicates = _partition_predicates(key)
    if row.window_filter is not None:
        name, lower, upper = row.window_filter
        low = lo - ONE_US if lower == "greater-than" else lo
        predicates.append(f"{lower}({name},{filter_time(low)})")
        if upper is not None:
            predicates.append(f"{upper}({name},{filter_time(hi)})")
    if predicates:
        params["filter"] = f"and({','.join(predicates)})" if row.partitions[0] else ",".join(predicates)
    if row.sort:
        params["sort"] = row.sort
    if page_size:
        params["page[size]"] = str(page_size)
    if row.name == "profiles":
        extra = "subscriptions,predictive_analytics" if wants_predictive(plan, disable_predictive) else None
        params["additional-fields[profile]"] = extra or "subscriptions"
    # Includes are the same whichever members are selected, so a record's shape (to-many
    # relationships carry `data` only when included) never depends on its sibling stream.
    elif row.name == "events":
        params["include"] = "metric,attributions"
    elif row.name == "campaigns":
        params["include"] = "campaign-messages"
    return params
