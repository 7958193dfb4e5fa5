"""The fixed-window limiter with an injected clock: burst and steady windows, Retry-After, headers."""

from controls_harness import FakeClock

from klaviyo_simulator.ratelimit import (
    FixedWindowCounter,
    FixedWindowLimiter,
    Window,
    rate_limit_headers,
    seconds_until_reset,
    windows_for,
)

S_TIER = windows_for(burst=3, steady=60)
XS_TIER = windows_for(burst=1, steady=15)


def test_burst_window_admits_the_limit_then_throttles_until_the_next_second() -> None:
    clock = FakeClock(100.25)
    limiter = FixedWindowLimiter(clock)
    assert [limiter.acquire("a:s", S_TIER).admitted for _ in range(3)] == [True, True, True]
    blocked = limiter.acquire("a:s", S_TIER)
    assert not blocked.admitted
    assert blocked.retry_after == 1  # 0.75 s left in the window, rounded up
    clock.advance(0.75)  # exactly the next window
    assert limiter.acquire("a:s", S_TIER).admitted


def test_throttled_requests_do_not_count() -> None:
    clock = FakeClock(100.0)
    limiter = FixedWindowLimiter(clock)
    for _ in range(3):
        limiter.acquire("a:s", S_TIER)
    for _ in range(50):
        assert not limiter.acquire("a:s", S_TIER).admitted
    clock.advance(1.0)
    assert [limiter.acquire("a:s", S_TIER).admitted for _ in range(4)] == [True, True, True, False]
    # only the 6 admitted requests used the steady window
    assert limiter.state("a:s", Window(60.0, 60)).remaining == 54


def test_steady_window_blocks_until_the_minute_resets() -> None:
    clock = FakeClock(120.0)  # the start of a minute window
    limiter = FixedWindowLimiter(clock)
    for second in range(15):
        clock.now = 120.0 + second
        assert limiter.acquire("a:xs", XS_TIER).admitted
    clock.now = 120.0 + 20.5
    blocked = limiter.acquire("a:xs", XS_TIER)
    assert not blocked.admitted
    assert blocked.retry_after == 40  # 39.5 s until 180.0, rounded up
    clock.now = 180.0
    assert limiter.acquire("a:xs", XS_TIER).admitted


def test_when_both_windows_block_the_later_reset_wins() -> None:
    clock = FakeClock(0.0)
    limiter = FixedWindowLimiter(clock)
    tier = windows_for(burst=2, steady=2)
    assert limiter.acquire("k", tier).admitted
    assert limiter.acquire("k", tier).admitted
    clock.now = 0.5
    assert limiter.acquire("k", tier).retry_after == 60  # 59.5 s, rounded up


def test_buckets_and_accounts_are_independent() -> None:
    limiter = FixedWindowLimiter(FakeClock(5.5))
    assert limiter.acquire("acct:get_list:profile_count", XS_TIER).admitted
    assert not limiter.acquire("acct:get_list:profile_count", XS_TIER).admitted
    assert limiter.acquire("acct:get_list", windows_for(75, 750)).admitted
    assert limiter.acquire("other:get_list:profile_count", XS_TIER).admitted


def test_state_reports_the_steady_window_for_headers() -> None:
    clock = FakeClock(130.0)  # 10 s into the minute window [120, 180)
    limiter = FixedWindowLimiter(clock)
    steady = Window(60.0, 150)
    for _ in range(4):
        limiter.acquire("k", windows_for(10, 150))
    state = limiter.state("k", steady)
    assert (state.limit, state.remaining, state.reset) == (150, 146, 50)
    assert rate_limit_headers(state) == {
        "RateLimit-Limit": "150",
        "RateLimit-Remaining": "146",
        "RateLimit-Reset": "50",
    }
    clock.now = 180.0
    assert limiter.state("k", steady).remaining == 150


def test_record_counts_without_enforcing() -> None:
    limiter = FixedWindowLimiter(FakeClock(0.0))
    for _ in range(5):
        limiter.record("k", XS_TIER)
    assert limiter.state("k", Window(60.0, 15)).remaining == 10
    assert not limiter.acquire("k", XS_TIER).admitted


def test_daily_window_is_enforced_when_given() -> None:
    clock = FakeClock(0.0)
    limiter = FixedWindowLimiter(clock)
    report = windows_for(burst=1, steady=2, daily=3)
    assert [w.seconds for w in report] == [1.0, 60.0, 86_400.0]
    for minute in range(3):
        clock.now = minute * 60.0
        assert limiter.acquire("r", report).admitted
    clock.now = 3 * 60.0
    blocked = limiter.acquire("r", report)
    assert not blocked.admitted
    assert blocked.retry_after == 86_400 - 180


def test_zero_limits_are_not_windows() -> None:
    assert windows_for(burst=0, steady=0) == ()
    assert FixedWindowLimiter(FakeClock()).acquire("k", ()).admitted


def test_seconds_until_reset_is_whole_and_positive() -> None:
    assert seconds_until_reset(60.0, 60.0) == 60
    assert seconds_until_reset(119.999, 60.0) == 1
    assert seconds_until_reset(10.2, 1.0) == 1


def test_counter_remembers_the_peak_window() -> None:
    counter = FixedWindowCounter(1.0)
    for now in (0.1, 0.2, 0.3, 1.5, 2.1, 2.2):
        counter.add("b", now)
    assert counter.peak("b") == 3
    assert counter.count("b", 2.9) == 2
    assert counter.count("b", 3.0) == 0
    assert counter.seen() == ["b"]
