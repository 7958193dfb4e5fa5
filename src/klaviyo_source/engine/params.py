"""Query parameters of a listing request for one partition and time window.

Operators are those the 2026-07-15 spec allows per field (the row's `WindowFilter`): profiles'
`updated` has only `greater-than`/`less-than` (the lower bound is moved 1 µs down so windows stay
[lo, hi)), lists' `updated` only `greater-than` (no upper bound: the scan stops at hi), metrics
have no date filter.
"""

from __future__ import annotations

from datetime import datetime

from klaviyo_source.config import Config
from klaviyo_source.engine.partitions import ONE_US, ListingPlan
from klaviyo_source.streams.table import PartitionKey, Variant
from klaviyo_source.times import filter_time


def variant_of(plan: ListingPlan, config: Config) -> Variant | None:
    """The listing's variant when a selected member asks for it and the config allows it."""
    variant = plan.row.variant
    if variant is None or getattr(config, variant.unless, False):
        return None
    if not any(m.row.wants_variant for m in plan.members):
        return None
    return variant


def listing_params(
    plan: ListingPlan,
    key: PartitionKey,
    lo: datetime,
    hi: datetime,
    *,
    page_size: int | None,
    variant: Variant | None,
) -> dict[str, str]:
    row = plan.row
    params = dict(row.params)
    if variant is not None:
        params.update(variant.params)
    partition = row.partition(key)
    predicates = list(partition.predicates)
    window = row.window
    if window is not None:
        low = lo - ONE_US if window.lower == "greater-than" else lo
        predicates.append(f"{window.lower}({window.field},{filter_time(low)})")
        if window.upper is not None:
            predicates.append(f"{window.upper}({window.field},{filter_time(hi)})")
    if predicates:
        params["filter"] = f"and({','.join(predicates)})" if partition.predicates else ",".join(predicates)
    if row.sort:
        params["sort"] = row.sort
    if page_size:
        params["page[size]"] = str(page_size)
    return params
