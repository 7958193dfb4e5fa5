"""Benchmark (e): requests a full sync makes, per endpoint, against the minimum possible.

The minimum comes from a ground-truth scan of the same simulator: every listing partition the
connector must read (campaigns: channel x archived, flows: archived) is paged once with the
endpoint's maximum page size, so it takes ceil(records / max page) requests, and at least 1 for
an empty partition; plus the detail fetches that cannot be avoided (one GET /api/lists/{id} per
list for lists_detailed, one recipient estimation per campaign for campaigns_detailed). The
scan also yields the records of every page, which `rate_bound` turns into latency floors.

    .venv/bin/python -m bench --only requests [--quick]
"""

from __future__ import annotations

import math
import statistics
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from bench.harness import ALL_STREAMS, fresh_account, post, read_config, run_read, simulator, stats
from klaviyo_simulator.server import DEFAULT_KEY
from klaviyo_source.revision import REVISION

_CHANNELS = ("email", "sms", "mobile_push")
_ARCHIVED = ("true", "false")


@dataclass(frozen=True)
class Listing:
    """One listing endpoint as the full catalog needs it (one row of data per endpoint)."""

    label: str  # what the table shows
    path: str
    bucket: str  # the rate bucket the connector's requests fall into (full catalog, predictive on)
    page_size: int | None  # the endpoint's maximum (None: no page[size], the server's fixed page)
    partitions: tuple[str | None, ...] = (None,)  # filter per partition
    splittable: bool = False  # the connector may cut it into parallel time windows
    detail: tuple[str, str] | None = None  # (label, bucket): one detail request per record


LISTINGS: tuple[Listing, ...] = (
    Listing("GET /api/events (events, events_detailed)", "/api/events", "get_events", 1000, splittable=True),
    Listing(
        "GET /api/profiles +predictive (profiles, global_exclusions)",
        "/api/profiles",
        "get_profiles:predictive_analytics",
        100,
        splittable=True,
    ),
    Listing("GET /api/templates (email_templates)", "/api/templates", "get_templates", 10),
    Listing("GET /api/metrics (metrics)", "/api/metrics", "get_metrics", None),
    Listing(
        "GET /api/lists (lists)",
        "/api/lists",
        "get_lists",
        10,
        detail=("GET /api/lists/{id}?profile_count (lists_detailed)", "get_list:profile_count"),
    ),
    Listing(
        "GET /api/campaigns (campaigns, campaigns_detailed)",
        "/api/campaigns",
        "get_campaigns",
        100,
        partitions=tuple(
            f"and(equals(messages.channel,'{c}'),equals(archived,{a}))" for c in _CHANNELS for a in _ARCHIVED
        ),
        detail=(
            "GET /api/campaign-recipient-estimations/{id} (campaigns_detailed)",
            "get_campaign_recipient_estimation",
        ),
    ),
    Listing(
        "GET /api/flows (flows)",
        "/api/flows",
        "get_flows",
        50,
        partitions=tuple(f"equals(archived,{a})" for a in _ARCHIVED),
    ),
)


@dataclass(frozen=True)
class Need:
    """The minimal requests of one endpoint partition: records per request, in order."""

    label: str
    bucket: str
    pages: tuple[int, ...]  # records in each minimal request
    chained: bool  # requests must go one after another (cursor paging of one partition)
    after: int = 0  # records of the parent's first page (a detail fetch waits for it)

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


def _pages(base_url: str, listing: Listing, partition: str | None) -> Iterator[int]:
    query: dict[str, str] = {}
    if listing.page_size:
        query["page[size]"] = str(listing.page_size)
    if partition:
        query["filter"] = partition
    url: str | None = f"{base_url}{listing.path}?{urllib.parse.urlencode(query)}"
    while url:
        document = _get(url)
        yield len(document["data"])
        url = (document.get("links") or {}).get("next")


def minimal_needs(base_url: str) -> list[Need]:
    """Scan the simulator the minimal way (run it without limits or latency, then reset stats)."""
    needs: list[Need] = []
    for listing in LISTINGS:
        detail_records = 0
        first_page = 0
        for partition in listing.partitions:
            pages = tuple(_pages(base_url, listing, partition))
            first_page = first_page or pages[0]
            needs.append(Need(listing.label, listing.bucket, pages, chained=not listing.splittable))
            detail_records += sum(pages)
        if listing.detail is not None:
            label, bucket = listing.detail
            needs.append(Need(label, bucket, (1,) * detail_records, chained=False, after=first_page))
    return needs


def minimum_by_bucket(needs: list[Need]) -> dict[str, int]:
    out: dict[str, int] = {}
    for need in needs:
        out[need.bucket] = out.get(need.bucket, 0) + need.requests
    return out


def labels_by_bucket(needs: list[Need]) -> dict[str, str]:
    return {need.bucket: need.label for need in needs}


def check_minimal(needs: list[Need]) -> None:
    """The scan used maximal pages, so every partition took ceil(records / max) requests (>= 1)."""
    sizes = {listing.label: listing.page_size for listing in LISTINGS}
    for need in needs:
        size = sizes.get(need.label)
        if size is not None and need.chained:
            assert need.requests == max(1, math.ceil(sum(need.pages) / size)), need


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
