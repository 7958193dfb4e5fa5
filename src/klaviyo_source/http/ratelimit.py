"""Client-side pacing: one limiter per Klaviyo rate bucket, shared by every stream of a run.

Klaviyo counts requests per account and endpoint in a 1-second burst window and a 60-second
steady window, and answers every non-429 response with `RateLimit-Limit/Remaining/Reset` for the
steady window. Until a bucket's first such answer (a run's first requests, or a proxy that strips
the headers) its limiter spends Klaviyo's published tiers exactly, in sliding logs a little
longer than Klaviyo's windows (requests sent 1 s apart can land in one server second); from then
on it follows the server's fixed window. `RateLimit-Limit` above the published tier (a simulator
without limits, an account with raised limits) scales the burst by the same factor. A 429's
`Retry-After` pauses the bucket, so one throttled request does not trigger a storm from its
siblings. The clock and sleep are injectable for tests.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from klaviyo_source.endpoints import rate_for

SAFETY = 1.0  # fraction of Klaviyo's published limit we allow ourselves: all of it
# Our windows are a little longer than Klaviyo's: requests spaced exactly 1 s apart on our clock
# can land in one server second after network jitter (matters most for 1/s buckets).
BURST_WINDOW = 1.1
STEADY_WINDOW = 61.0
PENDING_POLL = 0.05  # a window full of reserved, unsent requests: look again this soon


@dataclass(frozen=True)
class Limits:
    burst: int  # per second
    steady: int  # per minute, used until the server tells us its count
    window: int = 0  # Klaviyo's own steady limit per fixed minute window (0: same as steady)


def limits_for(bucket: str, safety: float = SAFETY) -> Limits:
    """A bucket's spec limits, times `safety` (see klaviyo_source.endpoints.rate_for)."""
    burst, steady = rate_for(bucket)
    return Limits(max(1, int(burst * safety)), max(1, int(steady * safety)), steady)


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """`acquire()` returns when a request may be sent.

    Burst: a sliding 1.1 s log. Steady: until a response carries `RateLimit-Remaining/Reset`, a
    sliding 61 s log at the published limit; from then on Klaviyo's own fixed window: spend
    what the server says remains (minus the requests we sent after the answered one), then wait
    for its reset and start the next window with the full quota (`RateLimit-Limit`). Spending
    whole fixed windows is up to 2x faster than a sliding minute on a bucket that has to wait.
    """

    def __init__(
        self, limits: Limits, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.limits = limits
        self._burst = limits.burst  # scaled when the server's limit differs from the published one
        self._server_limit = 0  # the last RateLimit-Limit (0: none yet)
        self._clock = clock
        self._sleep = sleep
        self._second: deque[float] = deque()  # send times, sliding 1.1 s
        self._minute: deque[float] = deque()  # send times, sliding 61 s
        self._pending = 0  # slots taken by requests not sent yet (waiting for a num_workers slot)
        self._paused_until = 0.0
        self._window_end: float | None = None  # end of the server's current steady window
        self._window_left = 0  # requests we may still send in it
        self.waited = 0.0  # total seconds callers spent waiting here
        self.last_acquired = 0.0
        self._freshest: float | None = None  # send time of the freshest answer in this window
        self.latency: float | None = None  # seconds from sending to the whole answer, smoothed

    @property
    def _published(self) -> int:
        return self.limits.window or self.limits.steady

    @property
    def _window_limit(self) -> int:
        return self._server_limit or self._published

    @property
    def burst(self) -> int:
        """Requests per second this limiter allows now."""
        return self._burst

    def _follow_limit(self, header: str | None) -> None:
        """The server's steady limit; the burst scales with it (the headers carry no burst)."""
        try:
            limit = int(header) if header is not None else 0
        except ValueError:
            return
        if limit > 0 and limit != self._server_limit:
            self._server_limit = limit
            self._burst = max(1, self.limits.burst * limit // self._published)

    def _sent_after(self, sent_at: float | None) -> int:
        """Requests we sent after `sent_at` or are about to send (the server had not counted them
        when it answered the request sent then). Unknown send time: those of the last burst window."""
        if sent_at is None:
            return len(self._second) + self._pending
        return len(self._minute) - bisect.bisect_right(self._minute, sent_at) + self._pending

    @staticmethod
    def _full(log: deque[float], pending: int, limit: int, width: float, now: float) -> float:
        """Wait until `log` + `pending` fit under `limit` again (0: they fit). Only pending ones:
        poll, as they enter the log when sent."""
        if len(log) + pending < limit:
            return 0.0
        if len(log) > len(log) + pending - limit:
            return log[len(log) + pending - limit] + width - now
        return PENDING_POLL

    def delay(self) -> float:
        """Seconds until a request may go (0 = now); prunes the windows."""
        now = self._clock()
        # Same expressions for pruning and waiting, so float rounding cannot make them disagree.
        while self._second and self._second[0] + BURST_WINDOW <= now:
            self._second.popleft()
        while self._minute and self._minute[0] + STEADY_WINDOW <= now:
            self._minute.popleft()
        wait = max(0.0, self._paused_until - now)
        wait = max(wait, self._full(self._second, self._pending, self._burst, BURST_WINDOW, now))
        if self._window_end is None:
            steady = self._full(self._minute, self._pending, self.limits.steady, STEADY_WINDOW, now)
            return max(wait, steady)
        if now >= self._window_end:  # the server's next fixed window has started
            self._window_end += 60.0 * (1 + int((now - self._window_end) // 60.0))
            # Requests still in flight may land in the new window: the first answer from it
            # (observe) corrects this downward, exactly.
            self._window_left = self._window_limit - len(self._second) - self._pending
        if self._window_left <= 0:
            wait = max(wait, self._window_end - now)
        return wait

    async def reserve(self) -> float:
        """Wait for a slot and take it, for a request that goes out later (`sent`, or `unreserve`
        if it never does): it counts as sent from now until it is. Returns the seconds waited."""
        waited = 0.0
        while True:
            wait = self.delay()
            if wait <= 0:
                self._pending += 1
                self._window_left -= 1
                self.waited += waited
                return waited
            wait = max(wait, 0.001)  # a wait below clock resolution would spin
            await self._sleep(wait)
            waited += wait

    def sent(self) -> float:
        """A reserved request goes out now; returns the moment (pass it to `observe` with its
        answer). The windows count it from when it is sent, not from when it was reserved: a
        request that waited for a num_workers slot cannot bunch with the next second's."""
        now = self._clock()
        self._pending = max(0, self._pending - 1)
        self._second.append(now)
        self._minute.append(now)
        self.last_acquired = now
        return now

    def answered(self, sent_at: float) -> None:
        """The answer to the request sent at `sent_at` is in: smooth it into `latency`, down at
        once and up slowly (a busy event loop delays answers; the server's own time is the floor)."""
        took = max(0.0, self._clock() - sent_at)
        self.latency = took if self.latency is None else min(took, 0.9 * self.latency + 0.1 * took)

    def useful_parallelism(self) -> int | None:
        """Requests in flight that keep this bucket at its burst rate (Little's law: rate x
        latency, plus one); more only wait for the rate. None before any answer."""
        if self.latency is None:
            return None
        return math.ceil(self._burst * self.latency) + 1

    def unreserve(self) -> None:
        """A reserved request will not be sent: give its slot back."""
        if self._pending > 0:
            self._pending -= 1
            self._window_left += 1

    async def acquire(self) -> float:
        """Wait for a slot and send at once (`reserve` + `sent`); returns the seconds waited.
        `last_acquired` is the moment sent."""
        waited = await self.reserve()
        self.sent()
        return waited

    def pause(self, seconds: float) -> None:
        """Nobody sends on this bucket for `seconds` (Retry-After, exhausted quota)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe(self, headers: Mapping[str, str], sent_at: float | None = None) -> None:
        """Follow the server's steady window from `RateLimit-Remaining` / `RateLimit-Reset`
        (whole seconds, rounded up, so our idea of its end is never early). `sent_at`: when the
        answered request took its slot; what remains is the server's count minus the requests
        we sent after it, so the whole window can be spent without a blind margin."""
        remaining = headers.get("RateLimit-Remaining")
        reset = headers.get("RateLimit-Reset")
        if remaining is None or reset is None:
            return
        try:
            left, reset_s = int(remaining), float(reset)
        except ValueError:
            return
        self._follow_limit(headers.get("RateLimit-Limit"))
        now = self._clock()
        end = now + reset_s
        if left <= 0:
            self.pause(reset_s)
        left -= self._sent_after(sent_at)
        if self._window_end is None or end > self._window_end + 2.0:
            self._window_end, self._window_left = end, left  # first report, or a newer window
            self._freshest = sent_at
        elif end >= self._window_end - 2.0:
            # Same window. With send times known, the answer to the most recently sent request
            # is the freshest count (requests overtaking each other on the way make any answer
            # off by one or two either way: a rare 429 costs less than idling to the next
            # window); without them, only ever lower what is left.
            if sent_at is None or self._freshest is None:
                self._window_left = min(self._window_left, left)
            elif sent_at >= self._freshest:
                self._freshest = sent_at
                self._window_left = left
        # else: a late answer from an earlier window; it says nothing about this one


class RateLimiters:
    """All buckets of one run; created lazily by name."""

    def __init__(
        self,
        *,
        safety: float = SAFETY,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        override: Limits | None = None,
    ) -> None:
        self._safety = safety
        self._override = override  # same limits for every bucket (tests, proxies with their own)
        self._clock = clock
        self._sleep = sleep
        self._by_bucket: dict[str, RateLimiter] = {}

    def get(self, bucket: str) -> RateLimiter:
        limiter = self._by_bucket.get(bucket)
        if limiter is None:
            limits = self._override or limits_for(bucket, self._safety)
            limiter = RateLimiter(limits, clock=self._clock, sleep=self._sleep)
            self._by_bucket[bucket] = limiter
        return limiter
