"""Query parameters of a listing request for one partition and time window.

Operators are those the 2026-07-15 spec allows per field (the row's `WindowFilter`): profiles'
`updated` has only `greater-than`/`less-than` (the lower bound is moved 1 µs down so windows stay
[lo, hi)), lists' `updated` only `greater-than` (no upper bound: the scan stops at hi), metrics
have no date filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

from klaviyo_source.config import Config
from klaviyo_source.engine.partitions import ONE_US, ListingPlan
from klaviyo_source.streams.table import Fanout, Params, PartitionKey, Variant, WindowFilter
from klaviyo_source.times import filter_time

# A batched parent filter stays within this many characters percent-encoded: URLs well under the
# 8 KB that common servers and proxies accept, whatever the ids' lengths.
MAX_FILTER_CHARS = 4000


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


def _quoted(value: str) -> str:
    """A string literal of Klaviyo's filter syntax (single quotes, double when it holds one)."""
    return f'"{value}"' if "'" in value else f"'{value}'"


def parent_batches(fanout: Fanout, parent_ids: Sequence[str]) -> list[list[str]]:
    """The parents' ids as the fan-out's requests name them: one each, or (with `batch`) up to
    `batch.size` a request while the percent-encoded filter stays within MAX_FILTER_CHARS (a
    longer id still goes, alone)."""
    batch = fanout.batch
    if batch is None:
        return [[parent_id] for parent_id in parent_ids]
    base = len(quote(fanout.parent_filter.format(ids=""), safe=""))
    out: list[list[str]] = []
    group: list[str] = []
    used = base
    for parent_id in parent_ids:
        cost = len(quote(_quoted(parent_id), safe="")) + (len(quote(",", safe="")) if group else 0)
        if group and (len(group) >= batch.size or used + cost > MAX_FILTER_CHARS):
            out.append(group)
            group, used = [], base
            cost = len(quote(_quoted(parent_id), safe=""))
        group.append(parent_id)
        used += cost
    if group:
        out.append(group)
    return out


def fanout_params(fanout: Fanout, parent_ids: Sequence[str], lo: datetime, hi: datetime) -> dict[str, str]:
    """The query of the parents' child listing over [lo, hi) (one parent unless `batch`)."""
    predicates: tuple[str, ...] = ()
    if fanout.parent_filter and fanout.batch is not None:
        predicates = (fanout.parent_filter.format(ids=",".join(_quoted(i) for i in parent_ids)),)
    elif fanout.parent_filter:
        (parent_id,) = parent_ids
        predicates = (fanout.parent_filter.format(id=parent_id),)
    return query_params(
        fixed=fanout.params,
        predicates=predicates,
        window=fanout.window,
        lo=lo,
        hi=hi,
        sort=fanout.sort,
        page_size=fanout.page_size,
    )
