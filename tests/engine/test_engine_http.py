"""Limiter with an injected clock, the retry table, backoff and Retry-After waits."""

from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest

from klaviyo_source.http.ratelimit import BUCKET_TIERS, Limits, RateLimiter, RateLimiters, limits_for
from klaviyo_source.http.retry import (
    Action,
    backoff_delay,
    classify_exception,
    classify_status,
    retry_after_delay,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _run_requests(limiter: RateLimiter, clock: FakeClock, count: int) -> list[float]:
    async def go() -> list[float]:
        times = []
        for _ in range(count):
            await limiter.acquire()
            times.append(clock.now)
        return times

    return asyncio.run(go())


def _max_in_window(times: list[float], width: float) -> int:
    return max(sum(1 for t in times if start <= t < start + width) for start in times)


def test_limiter_never_exceeds_burst_or_steady() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Limits(burst=3, steady=10), clock=clock, sleep=clock.sleep)
    times = _run_requests(limiter, clock, 35)
    assert _max_in_window(times, 1.0) <= 3
    assert _max_in_window(times, 60.0) <= 10
    assert limiter.waited > 0


def test_limiter_pause_and_headers() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Limits(burst=100, steady=1000), clock=clock, sleep=clock.sleep)
    limiter.pause(5)
    assert limiter.delay() == pytest.approx(5)
    clock.now += 5
    assert limiter.delay() == 0
    limiter.observe({"RateLimit-Remaining": "0", "RateLimit-Reset": "7"})
    assert limiter.delay() == pytest.approx(7)
    clock.now += 7
    # Remaining far below what we used: the difference counts as used for the next minute.
    limiter.observe({"RateLimit-Remaining": "2", "RateLimit-Reset": "30"})
    times = _run_requests(limiter, clock, 3)
    assert times[2] - times[0] >= 59  # only 2 slots left in this minute


def test_tiers_are_conservative_and_complete() -> None:
    assert limits_for("get_events") == Limits(315, 3150)
    assert limits_for("get_list:profile_count") == Limits(1, 13)
    assert limits_for("get_profiles:predictive_analytics").steady < limits_for("get_profiles").steady
    assert limits_for("get_flows") == Limits(2, 54)
    assert set(BUCKET_TIERS.values()) <= {"XS", "S", "M", "L", "XL"}
    limiters = RateLimiters()
    assert limiters.get("get_events") is limiters.get("get_events")


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (200, Action.OK),
        (204, Action.OK),
        (400, Action.BAD_REQUEST),
        (401, Action.ACCESS),
        (403, Action.ACCESS),
        (404, Action.NOT_FOUND),
        (405, Action.BAD_REQUEST),
        (408, Action.BACKOFF),
        (429, Action.RATE_LIMITED),
        (500, Action.BACKOFF),
        (502, Action.BACKOFF),
        (503, Action.BACKOFF),
        (524, Action.BACKOFF),
    ],
)
def test_status_table(status: int, action: Action) -> None:
    assert classify_status(status) is action


def test_exception_table() -> None:
    assert classify_exception(TimeoutError()) is Action.BACKOFF
    assert classify_exception(aiohttp.ServerDisconnectedError()) is Action.BACKOFF
    assert classify_exception(aiohttp.ClientPayloadError("truncated")) is Action.BACKOFF
    assert classify_exception(ConnectionResetError()) is Action.BACKOFF
    assert classify_exception(ValueError("bug")) is None


def test_backoff_grows_with_jitter_and_cap() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, 1.0, rng=rng) for n in range(8)]
    for n, delay in enumerate(delays):
        assert 0.5 * min(60, 2**n) <= delay <= min(60, 2**n)


def test_retry_after_plus_jitter() -> None:
    rng = random.Random(2)
    assert 3.0 <= retry_after_delay("3", rng=rng) <= 3.3
    assert 1.0 <= retry_after_delay(None, rng=rng) <= 1.1
    assert 1.0 <= retry_after_delay("soon", rng=rng) <= 1.1
    assert 0.0 < retry_after_delay("0", rng=rng) <= 0.05
