"""Request statistics of the simulator, served at GET /__sim/stats and by `Controls.stats()`.

Every API request that reaches the controls is counted once, whatever its fate (served,
throttled, faulted), so the per-bucket window peaks measure what the *client* sent: a test can
assert that a client never exceeded a tier (`max_per_second <= burst`). Windows are the same
aligned fixed windows the limiter uses.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from klaviyo_simulator.ratelimit import (
    BURST_SECONDS,
    STEADY_SECONDS,
    Clock,
    FixedWindowCounter,
)


class Stats:
    """Counters of one simulator run; `reset()` starts over."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.requests_by_operation: Counter[str] = Counter()
        self.requests_by_bucket: Counter[str] = Counter()
        self.records_by_operation: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.throttled_by_bucket: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.per_second = FixedWindowCounter(BURST_SECONDS)
        self.per_minute = FixedWindowCounter(STEADY_SECONDS)
        self.in_flight = 0
        self.in_flight_peak = 0
        self.predictive_in_flight = 0

    def request(self, operation: str, bucket: str | None) -> None:
        """One API request arrived."""
        self.requests_by_operation[operation] += 1
        if bucket is not None:
            now = self.clock()
            self.requests_by_bucket[bucket] += 1
            self.per_second.add(bucket, now)
            self.per_minute.add(bucket, now)

    def started(self, predictive: bool) -> None:
        self.in_flight += 1
        self.in_flight_peak = max(self.in_flight_peak, self.in_flight)
        if predictive:
            self.predictive_in_flight += 1

    def finished(self, predictive: bool) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        if predictive:
            self.predictive_in_flight = max(0, self.predictive_in_flight - 1)

    def served(self, operation: str, status: int, records: int) -> None:
        """A response left through `respond` (or a fault/throttle response was built)."""
        self.statuses[str(status)] += 1
        self.records_by_operation[operation] += records

    def throttled(self, bucket: str) -> None:
        self.throttled_by_bucket[bucket] += 1
        self.statuses["429"] += 1

    def fault(self, label: str) -> None:
        self.faults[label] += 1

    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-able data; keys are stable (tests and benchmarks read them)."""
        return {
            "requests": dict(self.requests_by_operation),
            "requests_total": sum(self.requests_by_operation.values()),
            "requests_by_bucket": dict(self.requests_by_bucket),
            "records": dict(self.records_by_operation),
            "records_total": sum(self.records_by_operation.values()),
            "statuses": dict(self.statuses),
            "throttled": dict(self.throttled_by_bucket),
            "throttled_total": sum(self.throttled_by_bucket.values()),
            "faults": dict(self.faults),
            "faults_total": sum(self.faults.values()),
            "windows": {
                bucket: {
                    "max_per_second": self.per_second.peak(bucket),
                    "max_per_minute": self.per_minute.peak(bucket),
                }
                for bucket in self.per_second.seen()
            },
            "in_flight": self.in_flight,
            "in_flight_peak": self.in_flight_peak,
        }
