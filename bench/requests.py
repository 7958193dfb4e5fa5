"""Benchmark (e): requests a full sync makes, per endpoint, against the minimum possible.

The minimum comes from a ground-truth scan of the same simulator, generic over the rows of
`klaviyo_source/streams/table.py`: the engine's own plan of a full-catalog full refresh (which
listings, which members ride on which scan, the predictive variant) is paged once per partition
with the listing's maximum page size and the query an unsplit window sends, so each partition
takes ceil(records / max page) requests (at least 1); a stream's detail fetches add one request
per listed record, and its fan-out one child listing per parent, or per batch of a parent
page's parents (`Fanout.batch`; the row's shaper and `has_children` pick the parents, as the
engine does), also paged at the maximum. Streams of one
listing share its requests. The scan also yields the records of every page, which `rate_bound`
turns into latency floors.

    .venv/bin/python -m bench --only requests [--quick]
"""

from __future__ import annotations

import copy
import math
import statistics
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.harness import ALL_STREAMS, fresh_account, post, read_config, run_read, simulator, stats
from klaviyo_simulator.server import DEFAULT_KEY
from klaviyo_source.config import Config, parse_config
from klaviyo_source.endpoints import bucket_for
from klaviyo_source.engine.contract import StreamSelection
from klaviyo_source.engine.params import fanout_params, listing_params, parent_batches, variant_of
from klaviyo_source.engine.partitions import ListingPlan, Member
from klaviyo_source.engine.run import _plan
from klaviyo_source.revision import REVISION
from klaviyo_source.streams.records import Page, Record


@dataclass(frozen=True)
class Need:
    """The minimal requests of one endpoint partition: records per request, in order."""

    label: str
    bucket: str
    pages: tuple[int, ...]  # records in each minimal request
    chained: bool  # requests must go one after another (cursor paging of one partition)
    after: int = 0  # records of the parent's first page (a detail fetch waits for it)
    page_size: int | None = None  # the maximum page size the scan used (None: the server's)

    @property
    def requests(self) -> int:
        return len(self.pages)


def _get(url: str, attempts: int = 3) -> dict[str, Any]:
    request = urllib.request.Request(url)
    request.add_header("Authorization", f"Klaviyo-API-Key {DEFAULT_KEY}")
    request.add_header("revision", REVISION)
    request.add_header("Accept", "application/vnd.api+json")
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                document: dict[str, Any] = orjson.loads(response.read())
                return document
        except urllib.error.HTTPError as error:
            if error.code < 500 or attempt == attempts - 1:
                raise RuntimeError(
                    f"ground-truth scan: {error.code} on {url}: {error.read()[:500]!r}"
                ) from None
            print(f"  (ground-truth scan: {error.code} on {url}, retrying)", file=sys.stderr)
    raise AssertionError("unreachable")


def _documents(base_url: str, path: str, params: dict[str, str] | None) -> Iterator[dict[str, Any]]:
    """Every page of a listing, following links.next."""
    url: str | None = f"{base_url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    while url:
        document = _get(url)
        yield document
        url = (document.get("links") or {}).get("next")


def _shaped(plan: ListingPlan, member: Member, key: Any, document: dict[str, Any]) -> list[Record]:
    """A member's records of one page as the engine shapes them (before details and fan-outs)."""
    row = plan.row
    data: list[Record] = copy.deepcopy(document["data"])
    if row.has_cursor:
        leaf = row.cursor_path[-1]
        for rec in data:
            rec[leaf] = rec["attributes"][leaf]
    extra = row.partition(key).attributes
    for rec in data:
        rec["attributes"].update(extra)
    if member.row.shape is not None:
        data = member.row.shape(data, Page(copy.deepcopy(document)))
    return data


def _listing_names(plan: ListingPlan) -> str:
    return ", ".join(m.name for m in plan.members)


def full_catalog_plans(base_url: str) -> tuple[Config, list[ListingPlan]]:
    """The engine's plan of a full refresh of every stream, with the benchmark's config."""
    config = parse_config(read_config(base_url, workers=1), environ={})
    selections = [StreamSelection(name, incremental=False) for name in ALL_STREAMS]
    plans, failed, _ = _plan(config, selections, {}, datetime.now(UTC))
    if failed:
        raise RuntimeError(f"ground-truth scan: streams failed before any request: {failed}")
    return config, plans


def minimal_needs(base_url: str) -> list[Need]:
    """Scan the simulator the minimal way (run it without limits or latency, then reset stats)."""
    config, plans = full_catalog_plans(base_url)
    hi = datetime.now(UTC)
    needs: list[Need] = []
    for plan in plans:
        row = plan.row
        variant = variant_of(plan, config)
        label = f"GET {row.path} ({_listing_names(plan)})"
        parents: dict[str, list[list[Record]]] = {m.name: [] for m in plan.members}  # per page
        first_page = 0
        for partition in row.partitions:
            lo = min(m.starts[partition.key] for m in plan.members)
            params = listing_params(plan, partition.key, lo, hi, page_size=row.page_size, variant=variant)
            bucket = bucket_for(row.path, params)
            pages: list[int] = []
            for document in _documents(base_url, row.path, params):
                pages.append(len(document["data"]))
                for member in plan.members:
                    if member.row.detail is not None or member.row.fanout is not None:
                        parents[member.name].append(_shaped(plan, member, partition.key, document))
            first_page = first_page or pages[0]
            needs.append(Need(label, bucket, tuple(pages), not row.splittable, page_size=row.page_size))
        for member in plan.members:
            detail, fanout = member.row.detail, member.row.fanout
            if detail is not None:
                records = [record for page in parents[member.name] for record in page]
                bucket = bucket_for(detail.path.format(id="x"), dict(detail.params))
                detail_label = f"GET {detail.path} ({member.name})"
                needs.append(Need(detail_label, bucket, (1,) * len(records), chained=False, after=first_page))
            if fanout is not None:
                groups: list[list[str]] = []
                for page in parents[member.name]:  # the engine fans out page by page of parents
                    chosen = [p for p in page if fanout.has_children is None or fanout.has_children(p)]
                    groups += parent_batches(fanout, list(dict.fromkeys(str(p["id"]) for p in chosen)))
                child_label = f"GET {fanout.path} ({member.name})"
                for group in groups:
                    params = fanout_params(fanout, group, member.child_start(()), hi)
                    path = fanout.path.format(id=group[0])
                    child_pages = tuple(len(d["data"]) for d in _documents(base_url, path, params))
                    bucket = bucket_for(path, params)
                    needs.append(
                        Need(
                            child_label,
                            bucket,
                            child_pages,
                            chained=True,
                            after=first_page,
                            page_size=fanout.page_size,
                        )
                    )
    return needs


def minimum_by_bucket(needs: list[Need]) -> dict[str, int]:
    out: dict[str, int] = {}
    for need in needs:
        out[need.bucket] = out.get(need.bucket, 0) + need.requests
    return out


def labels_by_bucket(needs: list[Need]) -> dict[str, str]:
    return {need.bucket: need.label for need in needs}


def check_minimal(needs: list[Need]) -> None:
    """The scan used maximal pages, so every chain took ceil(records / max) requests (>= 1)."""
    for need in needs:
        if need.page_size is not None and need.chained:
            assert need.requests == max(1, math.ceil(sum(need.pages) / need.page_size)), need


def scan_quietly(base_url: str) -> list[Need]:
    """The ground-truth scan with rate limits and latency off; options and stats restored after."""

    saved = post(base_url, "/__sim/options", {})
    keep = {k: saved[k] for k in ("rate_limits", "latency_ms", "latency_per_record_ms", "latency_jitter")}
    post(base_url, "/__sim/options", {"rate_limits": False, "latency_ms": 0, "latency_per_record_ms": 0})
    try:
        needs = minimal_needs(base_url)
    finally:
        post(base_url, "/__sim/options", keep)
        fresh_account(base_url)
    check_minimal(needs)
    return needs


Row = tuple[str, str, str, str, str]  # (bench, figure, value, goal, limit / note)


def answered_requests(snapshot: dict[str, Any]) -> dict[str, int]:
    """Requests per bucket from `/__sim/stats`, 429s left out (they are retried and counted apart)."""
    throttled = snapshot.get("throttled", {})
    return {k: int(v) - int(throttled.get(k, 0)) for k, v in snapshot["requests_by_bucket"].items()}


def request_rows(needs: list[Need], counts: list[dict[str, int]], *, setup: str) -> list[Row]:
    """One row per bucket (median over runs) against the minimum, and a total."""
    minimum = minimum_by_bucket(needs)
    labels = labels_by_bucket(needs)
    rows: list[Row] = []
    buckets = list(minimum) + sorted(set().union(*counts) - set(minimum))
    total_made, total_min = 0.0, 0
    for bucket in buckets:
        made = statistics.median(run.get(bucket, 0) for run in counts)
        least = minimum.get(bucket, 0)
        total_made += made
        total_min += least
        ratio = f"{made / least:.2f}x" if least else "not needed"
        rows.append(
            ("e requests", labels.get(bucket, bucket), f"{made:.0f} ({ratio})", f"min {least}", bucket)
        )
    rows.append(
        (
            "e requests",
            "all endpoints, full catalog",
            f"{total_made:.0f} ({total_made / total_min:.2f}x)",
            f"min {total_min}",
            f"{setup}; median of {len(counts)} (per bucket; 429s not counted)",
        )
    )
    return rows


def measure(*, scale: str, seed: int, workers: int, runs: int) -> list[Row]:
    """Full catalog, full refresh, no limits or latency: requests per bucket vs the minimum. (`python
    -m bench` takes these counts from the rate-bound runs instead when both are selected.)"""
    with simulator("--seed", str(seed), "--scale", scale) as sim:
        needs = scan_quietly(sim.base_url)
        counts: list[dict[str, int]] = []
        for _ in range(runs):
            fresh_account(sim.base_url)
            usage = run_read(read_config(sim.base_url, workers=workers), ALL_STREAMS)
            if usage.exit_code != 0:
                raise RuntimeError(f"requests benchmark: read exited {usage.exit_code}: {usage.stderr_tail}")
            counts.append(answered_requests(stats(sim.base_url)))
    return request_rows(needs, counts, setup=f"{scale} dataset, no limits or latency, num_workers={workers}")
