"""Klaviyo's rate-limit model: per-account fixed windows (burst 1 s, steady 60 s, optional daily).

Windows are aligned to multiples of their length on the injected clock (a monotonic clock by
default), so a window's index is `floor(now / seconds)`. A request is admitted only if every
window of its bucket has room; an admitted request counts in all of them, a throttled one in
none (Klaviyo's docs do not say; DRF, whose throttling texts Klaviyo returns, records only
admitted requests). `Retry-After` is the time until the window that blocked resets, rounded up
to whole seconds and at least 1; when several block, the latest reset wins.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Clock = Callable[[], float]

BURST_SECONDS = 1.0
STEADY_SECONDS = 60.0
DAILY_SECONDS = 86_400.0


@dataclass(frozen=True)
class Window:
    """One fixed window of a bucket: at most `limit` requests per `seconds`."""

    seconds: float
    limit: int
    daily: bool = False  # the daily quota window (its length may be shortened for tests)


@dataclass(frozen=True)
class Decision:
    """The limiter's answer for one request."""

    admitted: bool
    retry_after: int  # whole seconds until the blocking window resets; 0 when admitted


@dataclass(frozen=True)
class WindowState:
    """What the RateLimit-* headers report about one window, right now."""

    limit: int
    remaining: int
    reset: int  # whole seconds until this window resets, at least 1


def windows_for(
    burst: int, steady: int, daily: int = 0, day_seconds: float = DAILY_SECONDS
) -> tuple[Window, ...]:
    """The windows of a bucket; a limit of 0 or less means that window is not enforced."""
    candidates = (
        Window(BURST_SECONDS, burst),
        Window(STEADY_SECONDS, steady),
        Window(day_seconds, daily, daily=True),
    )
    return tuple(window for window in candidates if window.limit > 0)


def seconds_until_reset(now: float, seconds: float) -> int:
    """Whole seconds (rounded up, at least 1) until the window containing `now` ends."""
    window_end = (math.floor(now / seconds) + 1) * seconds
    return max(1, math.ceil(window_end - now - 1e-9))


class FixedWindowCounter:
    """Counts events per fixed window per key and remembers the highest count any window saw."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._current: dict[str, tuple[int, int]] = {}  # key -> (window index, count)
        self._peak: dict[str, int] = {}

    def count(self, key: str, now: float) -> int:
        """Events of `key` in the window containing `now`."""
        index, count = self._current.get(key, (-1, 0))
        return count if index == math.floor(now / self.seconds) else 0

    def add(self, key: str, now: float) -> int:
        """Count one event of `key` at `now`; returns the window's new count."""
        count = self.count(key, now) + 1
        self._current[key] = (math.floor(now / self.seconds), count)
        self._peak[key] = max(self._peak.get(key, 0), count)
        return count

    def peak(self, key: str) -> int:
        """The highest count any single window of `key` reached."""
        return self._peak.get(key, 0)

    def seen(self) -> list[str]:
        """Keys that were ever counted, sorted."""
        return sorted(self._peak)


class FixedWindowLimiter:
    """Admits or throttles requests of rate buckets; keys are opaque strings (account + bucket)."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._counters: dict[tuple[float, bool], FixedWindowCounter] = {}

    def _counter(self, window: Window) -> FixedWindowCounter:
        key = (window.seconds, window.daily)  # a shortened "day" never shares the minute's counts
        if key not in self._counters:
            self._counters[key] = FixedWindowCounter(window.seconds)
        return self._counters[key]

    def acquire(self, key: str, windows: Sequence[Window]) -> Decision:
        """Admit (and count) one request of `key`, or say how long until it could pass."""
        now = self.clock()
        blocked = [w for w in windows if self._counter(w).count(key, now) >= w.limit]
        if blocked:
            return Decision(False, max(seconds_until_reset(now, w.seconds) for w in blocked))
        for window in windows:
            self._counter(window).add(key, now)
        return Decision(True, 0)

    def record(self, key: str, windows: Sequence[Window]) -> None:
        """Count a request without enforcing the limits (rate limits switched off)."""
        now = self.clock()
        for window in windows:
            self._counter(window).add(key, now)

    def state(self, key: str, window: Window) -> WindowState:
        """Limit, remaining requests and seconds to reset of `window` for `key`, now."""
        now = self.clock()
        used = self._counter(window).count(key, now)
        return WindowState(
            window.limit, max(0, window.limit - used), seconds_until_reset(now, window.seconds)
        )

    def reset(self) -> None:
        """Forget all counts (a fresh account)."""
        self._counters.clear()


def rate_limit_headers(state: WindowState) -> dict[str, str]:
    """The three headers every non-429 Klaviyo response carries, for the steady window."""
    return {
        "RateLimit-Limit": str(state.limit),
        "RateLimit-Remaining": str(state.remaining),
        "RateLimit-Reset": str(state.reset),
    }
