"""Benchmark (b): a full-catalog sync against Klaviyo's rate tiers, compared with its lower bound.

Simulator: Klaviyo's tiers enforced (`--rate-limits`), 150 ms + 0.3 ms per record of latency,
the medium dataset (20,000 profiles with predictive analytics, 200,000 events, ...). The
connector reads all 11 streams (full refresh) to /dev/null.

Lower bound (docs/performance.md has it in prose). For each rate bucket b with R_b minimal
requests (bench/requests.py), burst B_b per second and steady S_b per minute:

    send_b  = max(0, (R_b - S_b) * 60 / S_b, (R_b - B_b) / B_b)      # one window's allowance, then the rate
    floor_b = max(parent_b + send_b + min latency of b's requests,    # the last request must come back
                  max over b's cursor chains of the sum of their page latencies)
    parent_b = latency of the listing's first page for detail fetches (they wait for it), else 0
    bound   = max_b floor_b                                            # buckets run in parallel

latency(page) = latency_ms + latency_per_record_ms x records. The run cannot beat its slowest
bucket. `pacing` is the same computation with the connector's own limiter (90 % of each tier,
sliding windows): how close the limiter's design itself can get.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from bench.harness import (
    ALL_STREAMS,
    fresh_account,
    median_of,
    read_config,
    run_read,
    simulator,
    stats,
    throttled_share,
)
from bench.requests import Need, Row, scan_quietly
from klaviyo_source.http.ratelimit import limits_for
from klaviyo_source.simulator.spec import endpoint_rules

LATENCY_MS = 150.0
LATENCY_PER_RECORD_MS = 0.3


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


def sliding_send_time(requests: int, burst: int, steady: int) -> float:
    """When a sliding-window limiter (burst per 1 s, steady per 60 s) lets the last request go."""
    times: list[float] = []
    for i in range(requests):
        earliest = 0.0
        if i >= burst:
            earliest = max(earliest, times[i - burst] + 1.0)
        if i >= steady:
            earliest = max(earliest, times[i - steady] + 60.0)
        times.append(earliest)
    return times[-1] if times else 0.0


@dataclass(frozen=True)
class BucketFloor:
    bucket: str
    requests: int
    tier: tuple[int, int]
    floor: float  # seconds, from Klaviyo's tiers
    pacing: float  # seconds, from the connector's own limiter
    why: str


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
        burst, steady = tiers[bucket]
        send = tier_send_time(requests, burst, steady)
        ours = limits_for(bucket)
        pacing = sliding_send_time(requests, ours.burst, ours.steady)
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
        floor = candidates[why]
        pacing_floor = max(parent + pacing + last, chain)
        floors.append(BucketFloor(bucket, requests, (burst, steady), floor, pacing_floor, why))
    return sorted(floors, key=lambda f: f.floor, reverse=True)


def measure(*, scale: str, seed: int, workers: int, runs: int, jitter: float = 0.0) -> list[Row]:
    flags = [
        "--seed",
        str(seed),
        "--scale",
        scale,
        "--rate-limits",
        "--latency-ms",
        str(LATENCY_MS),
        "--latency-per-record-ms",
        str(LATENCY_PER_RECORD_MS),
        "--latency-jitter",
        str(jitter),
    ]
    with simulator(*flags) as sim:
        needs = scan_quietly(sim.base_url)
        floors = bucket_floors(needs)
        results = []
        throttled: Counter[str] = Counter()
        for _ in range(runs):
            fresh_account(sim.base_url)
            usage = run_read(read_config(sim.base_url, workers=workers), ALL_STREAMS)
            if usage.exit_code != 0:
                raise RuntimeError(
                    f"rate-bound benchmark: read exited {usage.exit_code}: {usage.stderr_tail}"
                )
            snapshot = stats(sim.base_url)
            throttled.update(snapshot["throttled"])
            results.append(
                {
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
    pacing = max(f.pacing for f in floors)
    label = f"b rate-bound ({scale}, 11 streams)"
    rows: list[Row] = [
        (
            label,
            "wall s",
            f"{median['wall']:.1f}",
            f"<= 1.15 x bound = {1.15 * bound:.1f}",
            f"bound {bound:.1f} s: {slowest.bucket} ({slowest.why})",
        ),
        (
            label,
            "wall / bound",
            f"{median['wall'] / bound:.2f}x",
            "<= 1.15x",
            f"limiter's own floor {pacing:.1f} s",
        ),
        (
            label,
            "wall / limiter's own floor",
            f"{median['wall'] / pacing:.2f}x",
            "",
            "how well the engine executes within its limiter's design",
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
                f"{floor.why}; limiter's own floor {floor.pacing:.1f} s",
            )
        )
    return rows
