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
from klaviyo_source.streams.table import Fanout, Params, PartitionKey, Variant, WindowFilter
from klaviyo_source.times import filter_time


def variant_of(plan: ListingPlan, config: Config) -> Variant | None:
    """The listing's variant when a selected member asks for it and the config allows it."""
    variant = plan.row.variant
    if variant is None or getattr(config, variant.unless, False):
        return None
    if not any(m.row.wants_variant for m in plan.members):
        return None
    return variant


def query_params(
    *,
    fixed: Params,
    predicates: tuple[str, ...],
    window: WindowFilter | None,
    lo: datetime,
    hi: datetime,
    sort: str | None,
    page_size: int | None,
) -> dict[str, str]:
    """A listing's query: fixed parameters, filter (partition predicates and the time window
    [lo, hi)), sort and page size."""
    params = dict(fixed)
    terms = list(predicates)
    if window is not None:
        low = lo - ONE_US if window.lower == "greater-than" else lo
        terms.append(f"{window.lower}({window.field},{filter_time(low)})")
        if window.upper is not None:
            terms.append(f"{window.upper}({window.field},{filter_time(hi)})")
    if terms:
        params["filter"] = f"and({','.join(terms)})" if predicates and len(terms) > 1 else ",".join(terms)
    if sort:
        params["sort"] = sort
    if page_size:
        params["page[size]"] = str(page_size)
    return params


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
    fixed = dict(row.params)
    if variant is not None:
        fixed.update(variant.params)
    return query_params(
        fixed=tuple(fixed.items()),
        predicates=row.partition(key).predicates,
        window=row.window,
        lo=lo,
        hi=hi,
        sort=row.sort,
        page_size=page_size,
    )


def fanout_params(fanout: Fanout, parent_id: str, lo: datetime, hi: datetime) -> dict[str, str]:
    """The query of one parent's child listing over [lo, hi)."""
    predicates = (fanout.parent_filter.format(id=parent_id),) if fanout.parent_filter else ()
    return query_params(
        fixed=fanout.params,
        predicates=predicates,
        window=fanout.window,
        lo=lo,
        hi=hi,
        sort=fanout.sort,
        page_size=fanout.page_size,
    )
