"""Benchmark (c): a large events read under Klaviyo's tiers and latency; is the XL tier the limit?

Simulator: N events (default 1,000,000), `--rate-limits`, 150 ms + 0.3 ms per record of latency
(a full page of 1,000 events takes 450 ms). The connector reads `events` to /dev/null while a
thread samples the simulator's requests in flight. Ceilings on records/s, whichever is lowest
limits the run:

* XL tier (get_events): 3,500 requests/min x 1,000 per page = 58,333 records/s sustained; a run
  of R <= 3,500 requests fits in the first minute's allowance, so for it only the 350/s burst
  binds (`XL tier` = records / (send time of R requests + one page's latency));
* workers: num_workers requests in flight x 1,000 records / 0.45 s (the connector's own cap);
* CPU: 1 / (connector CPU per record), measured in the same run.

The run's floor (`wall / floor of the run`): the minimum of requests sent into Klaviyo's aligned
minutes, as early as the tier and the workers allow (num_workers / 0.45 s per second at most),
from where in the minute the run started, plus one page's latency. Past the first minute's
allowance this, not the XL ceiling above, is what a run can reach.

Average in flight is the mean of the samples; Little's law (requests x 0.45 s / wall) checks it.
"""

from __future__ import annotations

import math

from bench.harness import (
    InFlightSampler,
    fresh_account,
    median_of,
    process_cpu,
    read_config,
    run_read,
    simulator,
    stats,
    throttled_share,
)
from bench.rate_bound import (
    LATENCY_MS,
    LATENCY_PER_RECORD_MS,
    klaviyo_conditions,
    klaviyo_tiers,
    latency,
    tier_send_time,
)
from bench.requests import Row

PAGE = 1000


def paced_send_time(requests: int, rate: float, burst: int, steady: int, start: float) -> float:
    """Seconds after `start` (monotonic) at which the last of `requests` can be sent when they go
    out at most `rate` per second (each worker holds one for a page's latency) into Klaviyo's
    aligned fixed windows (1 s: burst, 60 s: steady)."""
    now = start
    second, in_second = math.floor(now), 0
    minute, in_minute = math.floor(now / 60.0), 0
    for sent in range(requests):
        if sent:
            now += 1.0 / rate
        while True:
            if math.floor(now) != second:
                second, in_second = math.floor(now), 0
            if math.floor(now / 60.0) != minute:
                minute, in_minute = math.floor(now / 60.0), 0
            if in_minute >= steady:
                now = (minute + 1) * 60.0
            elif in_second >= burst:
                now = second + 1.0
            else:
                break
        in_second += 1
        in_minute += 1
    return now - start


def measure(*, events: int, seed: int, workers: int, runs: int, jitter: float = 0.0) -> list[Row]:
    flags = [
        "--seed",
        str(seed),
        "--scale",
        "small",
        "--events",
        str(events),
        *klaviyo_conditions(jitter),
    ]
    results = []
    page_seconds = latency(PAGE, LATENCY_MS, LATENCY_PER_RECORD_MS)
    burst, steady = klaviyo_tiers()["get_events"]
    sendable = workers / page_seconds  # the most the workers can send per second
    with simulator(*flags) as sim:
        records = sim.events
        minimal = -(-records // PAGE)
        for _ in range(runs):
            fresh_account(sim.base_url)
            served_cpu = process_cpu(sim.pid)
            with InFlightSampler(sim.base_url) as sampler:
                usage = run_read(read_config(sim.base_url, workers=workers), ["events"])
            served_cpu = process_cpu(sim.pid) - served_cpu
            if usage.exit_code != 0:
                raise RuntimeError(
                    f"latency-bound benchmark: read exited {usage.exit_code}: {usage.stderr_tail}"
                )
            snapshot = stats(sim.base_url)
            requests = float(snapshot["requests_by_bucket"].get("get_events", 0))
            # Klaviyo's minutes are aligned: where the run started decides how much of the first
            # one it gets. The floor: the minimum of requests sent as early as those windows and
            # the workers allow, the last answered a page's latency later.
            floor = paced_send_time(minimal, sendable, burst, steady, usage.started) + page_seconds
            results.append(
                {
                    "wall": usage.wall,
                    "cpu": usage.cpu,
                    "records_per_s": records / usage.wall,
                    "in_flight_mean": sampler.mean(),
                    "in_flight_peak": float(snapshot["in_flight_peak"]),
                    "requests": requests,
                    "throttled_share": throttled_share(snapshot),
                    "peak_rss_mb": usage.peak_rss_mb,
                    "simulator_busy": served_cpu / usage.wall,
                    "floor": floor,
                    "over_floor": usage.wall / floor,
                }
            )
    median = median_of(results)
    ceilings = {
        # What the tier allows this run: within the first minute's allowance only the burst binds.
        "XL tier": records / (tier_send_time(minimal, burst, steady) + page_seconds),
        "XL steady (sustained)": steady / 60 * PAGE,
        f"num_workers={workers}": workers * PAGE / page_seconds,
        "connector CPU": records / median["cpu"],
    }
    limit = min((k for k in ceilings if k != "XL steady (sustained)"), key=lambda k: ceilings[k])
    little = median["requests"] * page_seconds / median["wall"]
    label = f"c latency-bound ({records:,} events, num_workers={workers})"
    return [
        (
            label,
            "records / s",
            f"{median['records_per_s']:,.0f}",
            f">= XL steady {ceilings['XL steady (sustained)']:,.0f}",
            "ceilings: " + ", ".join(f"{k} {v:,.0f}" for k, v in ceilings.items()) + f"; lowest: {limit}",
        ),
        (
            label,
            "requests in flight (mean)",
            f"{median['in_flight_mean']:.1f}",
            f"{ceilings['XL steady (sustained)'] / PAGE * page_seconds:.0f} to hold XL steady",
            f"peak {median['in_flight_peak']:.0f}; Little's law {little:.1f}; num_workers={workers}",
        ),
        (
            label,
            "wall / floor of the run",
            f"{median['over_floor']:.2f}x",
            "",
            f"floor {median['floor']:.1f} s (median): {minimal} requests into Klaviyo's aligned minutes "
            f"({burst}/s, {steady}/min) at most {sendable:.0f}/s ({workers} workers / {page_seconds:.2f} s), "
            "from where the run started, + one page's latency",
        ),
        (
            label,
            "wall s / 429s",
            f"{median['wall']:.1f} / {median['throttled_share']:.2%}",
            "",
            f"{median['requests']:.0f} requests (min {minimal}); connector CPU {median['cpu']:.1f} s, "
            f"RSS {median['peak_rss_mb']:.0f} MB; simulator busy {median['simulator_busy']:.0%} of the "
            f"wall time; median of {runs}",
        ),
    ]
