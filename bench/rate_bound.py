"""Benchmark (b): a full-catalog sync against Klaviyo's rate tiers, compared with its lower bound.

Simulator: Klaviyo's tiers enforced (`--rate-limits`), 150 ms + 0.3 ms per record of latency,
the medium dataset (20,000 profiles with predictive analytics, 200,000 events, ...). The
connector reads every stream (full refresh) to /dev/null. `headers=False` strips the
simulator's RateLimit-* headers (a proxy that drops them): the client then paces at the published
tiers alone, and the figure shows whether that costs time or 429s.

Lower bound (docs/performance.md has it in prose). For each rate bucket b with R_b minimal
requests (bench/requests.py), burst B_b per second and steady S_b per minute:

    send_b  = max(0, (R_b - S_b) * 60 / S_b, (R_b - B_b) / B_b)      # one window's allowance, then the rate
    floor_b = max(parent_b + send_b + min latency of b's requests,    # the last request must come back
                  max over b's cursor chains of the sum of their page latencies)
    parent_b = latency of the listing's first page for detail fetches (they wait for it), else 0
    bound   = max_b floor_b                                            # buckets run in parallel

latency(page) = latency_ms + latency_per_record_ms x records. The run cannot beat its slowest
bucket. That is the steady-rate reading of the tiers. Klaviyo's (and the simulator's) windows
are fixed and aligned (floor(t / 60) on CLOCK_MONOTONIC, which the bench shares with the
simulator), so each run also gets its **fixed-window floor**: the same computation with send_b
replaced by greedy sending into the aligned 1 s and 60 s windows from the moment the read
process started, the strict minimum for that run's position in the minute.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

from bench.harness import (
    ALL_STREAMS,
    fresh_account,
    median_of,
    post,
    read_config,
    run_read,
    simulator,
    stats,
    throttled_share,
)
from bench.requests import Need, Row, answered_requests, scan_quietly
from klaviyo_simulator.spec import endpoint_rules
from klaviyo_source.endpoints import rate_for

LATENCY_MS = 150.0
LATENCY_PER_RECORD_MS = 0.3


def klaviyo_conditions(jitter: float) -> list[str]:
    """Simulator flags for Klaviyo's tiers and the benchmarks' latency (150 ms + 0.3 ms/record)."""
    return [
        "--rate-limits",
        "--latency-ms",
        str(LATENCY_MS),
        "--latency-per-record-ms",
        str(LATENCY_PER_RECORD_MS),
        "--latency-jitter",
        str(jitter),
    ]


def klaviyo_tiers() -> dict[str, tuple[int, int]]:
    """Bucket -> (burst per second, steady per minute) as served: the vendored spec's tiers."""
    tiers: dict[str, tuple[int, int]] = {}
    for rule in endpoint_rules().values():
        tiers[rule.operation] = (rule.burst, rule.steady)
        for tier in rule.conditional_tiers:
            tiers[f"{rule.operation}:{tier.value}"] = (tier.burst, tier.steady)
    return tiers


def tier_send_time(requests: int, burst: int, steady: int) -> float:
    """Earliest second the last of `requests` can be sent: the first window's allowance (burst
    per second, steady per minute) is free, every further request costs 1/rate."""
    if requests <= 0:
        return 0.0
    return max(0.0, (requests - steady) * 60.0 / steady, (requests - burst) / burst)


def fixed_window_send_time(requests: int, burst: int, steady: int, start: float) -> float:
    """Seconds after `start` (monotonic) at which the last of `requests` can be sent into fresh
    aligned fixed windows (1 s: burst, 60 s: steady), sending as early as they allow."""
    now, left = start, requests
    minute, used = math.floor(start / 60.0), 0
    while left > 0:
        if math.floor(now / 60.0) != minute:
            minute, used = math.floor(now / 60.0), 0
        sent = min(burst, steady - used, left)
        left -= sent
        used += sent
        if left == 0:
            break
        now = (minute + 1) * 60.0 if used >= steady else math.floor(now) + 1.0
    return now - start


@dataclass(frozen=True)
class BucketFloor:
    bucket: str
    requests: int
    tier: tuple[int, int]
    floor: float  # seconds, steady-rate reading of Klaviyo's tiers
    why: str
    parent: float  # seconds before the first request can go (detail fetches)
    last: float  # shortest latency of the bucket's requests
    chain: float  # longest cursor chain


def fixed_window_floor(floors: list[BucketFloor], start: float) -> float:
    """The run's minimum for its position in the minute: max over buckets (see module doc)."""
    out = 0.0
    for f in floors:
        burst, steady = f.tier
        send = fixed_window_send_time(f.requests, burst, steady, start + f.parent)
        out = max(out, f.parent + send + f.last, f.chain)
    return out


def latency(records: int, latency_ms: float, per_record_ms: float) -> float:
    return (latency_ms + per_record_ms * records) / 1000.0


def bucket_floors(
    needs: list[Need], *, latency_ms: float = LATENCY_MS, per_record_ms: float = LATENCY_PER_RECORD_MS
) -> list[BucketFloor]:
    """Lower bound per bucket (module docstring); slowest first."""
    tiers = klaviyo_tiers()
    by_bucket: dict[str, list[Need]] = defaultdict(list)
    for need in needs:
        by_bucket[need.bucket].append(need)
    floors = []
    for bucket, group in by_bucket.items():
        requests = sum(n.requests for n in group)
        pages = [p for n in group for p in n.pages]
        last = min(latency(p, latency_ms, per_record_ms) for p in pages)
        burst, steady = tiers.get(bucket) or rate_for(bucket)
        send = tier_send_time(requests, burst, steady)
        chain = max(
            (sum(latency(p, latency_ms, per_record_ms) for p in n.pages) for n in group if n.chained),
            default=0.0,
        )
        parent = max((latency(n.after, latency_ms, per_record_ms) for n in group if n.after), default=0.0)
        # Detail fetches cannot start before their listing's first page is back (parent > 0).
        rate_term = f"rate: {requests} req at {burst}/s, {steady}/min" + (
            " after the parent page" if parent else ""
        )
        candidates = {rate_term: parent + send + last, "cursor chain latency": chain}
        why = max(candidates, key=lambda k: candidates[k])
        floors.append(
            BucketFloor(bucket, requests, (burst, steady), candidates[why], why, parent, last, chain)
        )
    return sorted(floors, key=lambda f: f.floor, reverse=True)


def measure(
    *, scale: str, seed: int, workers: int, runs: int, jitter: float = 0.0, headers: bool = True
) -> tuple[list[Row], list[Need], list[dict[str, int]]]:
    """The table rows, the minimal needs and each run's answered requests per bucket (for (e))."""
    flags = [
        "--seed",
        str(seed),
        "--scale",
        scale,
        *klaviyo_conditions(jitter),
    ]
    with simulator(*flags) as sim:
        if not headers:
            post(sim.base_url, "/__sim/options", {"rate_headers": False})
        needs = scan_quietly(sim.base_url)
        floors = bucket_floors(needs)
        results = []
        throttled: Counter[str] = Counter()
        counts: list[dict[str, int]] = []
        for _ in range(runs):
            fresh_account(sim.base_url)
            usage = run_read(read_config(sim.base_url, workers=workers), ALL_STREAMS)
            if usage.exit_code != 0:
                raise RuntimeError(
                    f"rate-bound benchmark: read exited {usage.exit_code}: {usage.stderr_tail}"
                )
            snapshot = stats(sim.base_url)
            throttled.update(snapshot["throttled"])
            counts.append(answered_requests(snapshot))
            fixed = fixed_window_floor(floors, usage.started)
            results.append(
                {
                    "fixed_floor": fixed,
                    "wall_over_fixed": usage.wall / fixed,
                    "wall": usage.wall,
                    "cpu": usage.cpu,
                    "requests": float(snapshot["requests_total"]),
                    "throttled": float(snapshot["throttled_total"]),
                    "throttled_share": throttled_share(snapshot),
                }
            )
    median = median_of(results)
    slowest = floors[0]
    bound = slowest.floor
    label = f"b rate-bound ({scale}, {len(ALL_STREAMS)} streams{'' if headers else ', no RateLimit headers'})"
    rows: list[Row] = [
        (
            label,
            "wall s",
            f"{median['wall']:.1f}",
            f"<= 1.15 x bound = {1.15 * bound:.1f}",
            f"bound {bound:.1f} s: {slowest.bucket} ({slowest.why})",
        ),
        (label, "wall / bound", f"{median['wall'] / bound:.2f}x", "<= 1.15x", "steady-rate bound"),
        (
            label,
            "wall / fixed-window floor of the run",
            f"{median['wall_over_fixed']:.2f}x",
            "",
            f"floor {median['fixed_floor']:.1f} s (median): the strict minimum for where each run started "
            "in Klaviyo's aligned minute windows",
        ),
        (
            label,
            "429s / requests",
            f"{median['throttled_share']:.2%} ({median['throttled']:.0f}/{median['requests']:.0f})",
            "< 1%",
            f"num_workers={workers}; connector CPU {median['cpu']:.1f} s; median of {runs}; 429s of all runs "
            f"by bucket: {dict(throttled) or 'none'}",
        ),
    ]
    work = sum(latency(p, LATENCY_MS, LATENCY_PER_RECORD_MS) for n in needs for p in n.pages)
    rows.append(
        (
            label,
            "num_workers floor s",
            f"{work / workers:.1f}",
            "",
            f"sum of minimal request latencies {work:.0f} s / num_workers={workers} (a connector "
            "setting, not a Klaviyo limit)",
        )
    )
    for floor in floors[1:4]:
        rows.append(
            (
                label,
                f"next bucket {floor.bucket}",
                f"floor {floor.floor:.1f} s",
                "",
                floor.why,
            )
        )
    return rows, needs, counts
