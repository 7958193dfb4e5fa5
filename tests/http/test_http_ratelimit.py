"""The rate limiter with an injected clock, and its limits taken from the spec's tiers."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from klaviyo_source.http.policy import backoff_delay, retry_after_delay
from klaviyo_source.http.ratelimit import Limits, RateLimiter, RateLimiters, limits_for


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


def test_limiter_pause_and_exhausted_quota() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Limits(burst=100, steady=1000), clock=clock, sleep=clock.sleep)
    limiter.pause(5)
    assert limiter.delay() == pytest.approx(5)
    clock.now += 5
    assert limiter.delay() == 0
    limiter.observe({"RateLimit-Remaining": "0", "RateLimit-Reset": "7"})
    assert limiter.delay() == pytest.approx(7)


def test_limiter_spends_the_servers_fixed_windows_without_exceeding_them() -> None:
    """A fake server with aligned 60 s windows answering RateLimit-* headers, zero latency."""
    clock = FakeClock()
    clock.now = 1010.0  # 50 s before an aligned window boundary
    limiter = RateLimiter(limits_for("get_campaigns"), clock=clock, sleep=clock.sleep)  # M: 10/s, 150/min
    per_window: dict[int, int] = {}
    per_second: dict[int, int] = {}

    async def go() -> list[float]:
        times = []
        for _ in range(400):
            await limiter.acquire()
            now = clock.now
            times.append(now)
            window = int(now // 60)
            per_window[window] = per_window.get(window, 0) + 1
            per_second[int(now)] = per_second.get(int(now), 0) + 1
            reset = max(1, math.ceil((window + 1) * 60 - now))
            limiter.observe(
                {"RateLimit-Remaining": str(max(0, 150 - per_window[window])), "RateLimit-Reset": str(reset)}
            )
        return times

    times = asyncio.run(go())
    assert max(per_window.values()) <= 150
    assert max(per_second.values()) <= 10
    # 400 requests: a sliding 90 % minute needs > 2 minutes; whole fixed windows take < 3 windows
    assert times[-1] - times[0] < 2 * 60 + 20
    assert times[-1] - times[0] > 60  # but never faster than the quota allows


def test_limiter_in_window_mode_ignores_stale_answers() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Limits(burst=100, steady=90, window=100), clock=clock, sleep=clock.sleep)
    limiter.observe({"RateLimit-Remaining": "10", "RateLimit-Reset": "30"})
    limiter.observe({"RateLimit-Remaining": "80", "RateLimit-Reset": "30"})  # older answer: ignored
    times = _run_requests(limiter, clock, 12)
    assert times[-1] - times[0] >= 29  # only ~8 fit before the reset


def test_limits_are_the_spec_tiers_exactly() -> None:
    assert limits_for("get_events") == Limits(350, 3500, 3500)  # XL
    assert limits_for("get_list:profile_count") == Limits(1, 15, 15)  # XS, the conditional tier
    assert limits_for("get_profiles:predictive_analytics") == Limits(10, 150, 150)  # M
    assert limits_for("get_profiles") == Limits(75, 750, 750)  # L
    assert limits_for("get_flows") == Limits(3, 60, 60)  # S
    assert limits_for("unknown") == Limits(1, 15, 15)  # the strictest tier
    limiters = RateLimiters()
    assert limiters.get("get_events") is limiters.get("get_events")


def test_without_headers_the_published_tier_is_spent_to_its_limit() -> None:
    """No RateLimit-* answer (a proxy strips them): every 61 s holds the whole published minute,
    never more, and every 1.1 s the whole burst."""
    clock = FakeClock()
    limiter = RateLimiter(limits_for("get_flows"), clock=clock, sleep=clock.sleep)  # S: 3/s, 60/min
    times = _run_requests(limiter, clock, 130)
    assert _max_in_window(times, 61.0) == 60
    assert _max_in_window(times, 1.1) == 3
    assert sum(1 for t in times if t < times[0] + 61.0) == 60  # the first window's 60 all go


def test_a_larger_server_limit_scales_the_burst() -> None:
    """RateLimit-Limit above the published tier (a simulator without limits, raised limits): the
    steady window follows it and the burst grows by the same factor; a smaller one shrinks it."""
    clock = FakeClock()
    limiter = RateLimiter(limits_for("get_list:profile_count"), clock=clock, sleep=clock.sleep)  # 1/s
    limiter.observe({"RateLimit-Limit": "1000000", "RateLimit-Remaining": "999999", "RateLimit-Reset": "30"})
    assert limiter.burst == 66_666
    times = _run_requests(limiter, clock, 500)
    assert times[-1] == times[0]  # nothing waited
    limiter.observe({"RateLimit-Limit": "150", "RateLimit-Remaining": "100", "RateLimit-Reset": "30"})
    assert limiter.burst == 10


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


def test_limiter_spends_exactly_the_servers_quota_with_requests_in_flight() -> None:
    """Answers come back after later requests were sent: what remains is the server's count minus
    the requests sent after the answered one, so the window is spent to the last request, no more."""
    clock = FakeClock()
    clock.now = 1000.0
    limiter = RateLimiter(Limits(burst=1000, steady=135, window=150), clock=clock, sleep=clock.sleep)
    limiter.observe({"RateLimit-Remaining": "150", "RateLimit-Reset": "50"})  # fresh window ahead

    async def go() -> int:
        sent: list[float] = []
        while limiter.delay() == 0:
            await limiter.acquire()
            sent.append(limiter.last_acquired)
            clock.now += 0.01
            if len(sent) > 20:  # the answer to a request sent 20 requests ago arrives now
                answered = len(sent) - 20
                limiter.observe(
                    {"RateLimit-Remaining": str(150 - answered), "RateLimit-Reset": "40"},
                    sent_at=sent[answered - 1],
                )
        return len(sent)

    assert asyncio.run(go()) == 150


def test_a_reserved_request_counts_from_when_it_is_sent() -> None:
    """Requests that took a rate slot but waited for a num_workers slot count as sent until they
    are, and then from their real send time: they cannot bunch with the next second's."""
    clock = FakeClock()
    limiter = RateLimiter(Limits(burst=3, steady=100), clock=clock, sleep=clock.sleep)

    async def go() -> None:
        for _ in range(3):
            await limiter.reserve()
        assert limiter.delay() > 0  # three reserved, none sent: the burst is taken
        clock.now += 5.0  # they wait for num_workers slots
        assert limiter.delay() > 0  # still taken
        for _ in range(3):
            limiter.sent()
        assert limiter.delay() == pytest.approx(1.1)  # counted from their send time
        clock.now += 1.1
        await limiter.reserve()
        limiter.unreserve()  # never sent: the slot comes back
        assert limiter.delay() == 0

    asyncio.run(go())
