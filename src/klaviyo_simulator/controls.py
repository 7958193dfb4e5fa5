"""The simulator's controls: rate limits, faults, latency and request statistics.

`app.py` resolves each API request to a `RouteInfo` and calls, in this order:

    early = await controls.before(request, route)   # a 429 / scripted fault response, or None
    if early is not None: return early
    ... validate the query, build the JSON body ...
    return await controls.respond(request, route, body, records=n)   # latency, body faults,
                                                                    # RateLimit-* headers, stats
Error responses produced by the app itself (400/401/403/404) go through
`controls.respond(request, route_or_None, body, records=0, status=4xx)` too, so they are counted.

Admin routes (`/__sim/stats`, `/__sim/faults`, `/__sim/options`, ...) are added by
`controls.add_admin_routes(app)`, which must run before the app starts (it also hooks
`on_shutdown` so hanging requests are released). This file is the contract; the internals live
in `ratelimit.py` (windows), `faults.py` (scripts, error bodies, transport faults) and
`stats.py` (counters). docs/simulator-controls.md describes the behaviour.

Order inside `before`: a scripted item for the path wins (status/reset/hang answer at once and
are not counted by the limiter); then the limiter (429 when a window is full; a scripted "ok"
or body fault is put back so the next request gets it); then random faults (predictive 503
rule, `error_rate`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from klaviyo_simulator import faults
from klaviyo_simulator.errors import JSONAPI
from klaviyo_simulator.faults import Fault, FaultBook, Script
from klaviyo_simulator.ratelimit import (
    STEADY_SECONDS,
    Clock,
    FixedWindowLimiter,
    Window,
    rate_limit_headers,
    windows_for,
)
from klaviyo_simulator.stats import Stats

# What the steady window's headers advertise when rate limits are off: more than any run sends.
UNLIMITED_PER_MINUTE = 1_000_000


@dataclass(frozen=True)
class RouteInfo:
    """What the controls need to know about one API request."""

    operation: str  # OpenAPI operationId, e.g. "get_events"
    path: str  # the request path, e.g. "/api/events"
    bucket: str  # rate-limit bucket, e.g. "get_events" or "get_profiles:predictive_analytics"
    burst: int  # requests per second allowed in the bucket
    steady: int  # requests per minute allowed in the bucket
    tags: frozenset[str] = field(default_factory=frozenset)  # e.g. {"predictive_analytics"}
    daily: int = 0  # requests per day (reporting endpoints: 225); 0 = no daily window


@dataclass
class ControlOptions:
    """Flags of `klaviyo-source simulate` that shape behaviour (all off by default)."""

    rate_limits: bool = False
    latency_ms: float = 0.0  # fixed latency per response
    latency_per_record_ms: float = 0.0  # added per record in the response
    latency_jitter: float = 0.0  # +- fraction of the total latency, e.g. 0.2
    error_rate: float = 0.0  # probability of a 5xx on any API request
    predictive_503_rate: float = 0.0  # probability of 503 on profiles with predictive_analytics
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    predictive_503_max_page: int = 0  # > 0: predictive requests with a larger page[size] always 503
    predictive_latency_factor: float = 1.0  # latency multiplier for predictive_analytics requests
    slow_body_seconds: float = 2.0  # default duration of a "slow_body" fault
    hang_seconds: float = 300.0  # a "hang" gives up after this long even if the client waits
    # Reporting API daily quotas (225/d per report endpoint): enforced with `rate_limits` or,
    # alone, with `daily_quotas`; the "day" can be shortened and the quota lowered for tests.
    daily_quotas: bool = False
    quota_day_seconds: float = 86_400.0  # length of the daily window (fixed, aligned to the clock)
    daily_quota: int = 0  # > 0: this many calls per day instead of the spec's (225)
    rate_headers: bool = True  # off: no RateLimit-* headers (a proxy that strips them)
    # Klaviyo breaking its own contract (klaviyo_simulator/quirks.py), off by default.
    quirk_greater_than_equal: bool = False  # greater-than also returns records at the bound's second
    quirk_unsorted_archived: bool = False  # archived campaigns' pages slightly out of sort order
    quirk_space_datetimes: bool = False  # datetimes written with a space instead of T


@dataclass
class _Pending:
    """What `before` decided about a request, read back by `respond`."""

    limiter_key: str | None = None
    steady: Window | None = None
    body_fault: Fault | None = None
    predictive: bool = False
    rate_headers: dict[str, str] | None = None  # the steady window as counted at admission


ACCOUNT_KEY = web.RequestKey("klaviyo_account", str)  # optional: limits are counted per account
_STATE_KEY = web.RequestKey("klaviyo_sim_controls", _Pending)


class Controls:
    """Rate limits, faults, latency and stats for the simulator (see the module docstring)."""

    def __init__(self, options: ControlOptions | None = None, *, clock: Clock = time.monotonic) -> None:
        self.options = options or ControlOptions()
        self.clock = clock
        self.limiter = FixedWindowLimiter(clock)
        self.faults = FaultBook()
        self._stats = Stats(clock)
        self._seed_rngs(self.options.seed)
        self._hanging: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    # --- the contract called by app.py ---------------------------------------------------

    async def before(self, request: web.Request, route: RouteInfo) -> web.StreamResponse | None:
        """Count the request; answer it now if a script, the limiter or a random fault says so."""
        predictive = faults.PREDICTIVE_TAG in route.tags
        pending = _Pending(predictive=predictive)
        request[_STATE_KEY] = pending
        self._stats.request(route.operation, route.bucket)
        self._track_in_flight(predictive)

        taken = self.faults.take(request.method, request.path, request.query_string)
        if taken is not None and taken[1].kind not in faults.BODY_KINDS | {"ok"}:
            return await self._answer_fault(request, route, taken[1])

        options = self.options
        daily = options.daily_quota if route.daily and options.daily_quota else route.daily
        windows = windows_for(route.burst, route.steady, daily, options.quota_day_seconds or 86_400.0)
        key = f"{request.get(ACCOUNT_KEY, 'default')}:{route.bucket}"
        enforced = windows if options.rate_limits else tuple(w for w in windows if w.daily)
        if enforced and (options.rate_limits or options.daily_quotas):
            decision = self.limiter.acquire(key, enforced)
            if not decision.admitted:
                if taken is not None:
                    self.faults.put_back(*taken)
                self._stats.throttled(route.bucket)
                return self._throttled(decision.retry_after)
            self.limiter.record(key, tuple(w for w in windows if w not in enforced))
        else:
            self.limiter.record(key, windows)
        pending.limiter_key = key
        pending.steady = next((w for w in windows if w.seconds == STEADY_SECONDS), None)
        if not self.options.rate_limits and pending.steady is not None:
            # Nothing is enforced, so the headers say so: a window nobody will fill (Klaviyo's
            # own tier would make a client pace for limits this server does not have).
            pending.steady = Window(STEADY_SECONDS, UNLIMITED_PER_MINUTE)
        # Like a rate-limit middleware, the headers describe the window as this request was
        # counted, not as it is when the (delayed) response leaves.
        pending.rate_headers = self._rate_headers(pending) if self.options.rate_headers else {}

        if taken is not None:
            pending.body_fault = taken[1] if taken[1].kind in faults.BODY_KINDS else None
            return None
        random_status = self._random_fault(request, predictive)
        if random_status is not None:
            return await self._answer_fault(request, route, faults.parse_item(random_status))
        return None

    async def respond(
        self,
        request: web.Request,
        route: RouteInfo | None,
        body: bytes,
        *,
        records: int = 0,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        """Delay, add RateLimit-* headers, apply a pending body fault, count, and build the response."""
        operation = route.operation if route else "other"
        pending = request.get(_STATE_KEY)
        if not isinstance(pending, _Pending):
            pending = _Pending()
            self._stats.request(operation, None)
        await self._delay(records, pending.predictive)

        out_headers = dict(headers or {})
        out_headers.update(self._rate_headers(pending))
        if not any(name.lower() == "content-type" for name in out_headers):
            out_headers["Content-Type"] = JSONAPI
        fault = pending.body_fault
        if fault is None:
            self._stats.served(operation, status, records)
            return web.Response(body=body, status=status, headers=out_headers)

        self._stats.fault(fault.label)
        if fault.kind == "slow_body":
            self._stats.served(operation, status, records)
            seconds = fault.seconds or self.options.slow_body_seconds
            return await faults.slow_body(request, body, status=status, headers=out_headers, seconds=seconds)
        if fault.kind == "cut_body":
            self._stats.served(operation, status, 0)
            return await faults.cut_body(request, body, status=status, headers=out_headers)
        self._stats.served(operation, status, 0)
        broken = faults.truncated(body) if fault.kind == "truncated" else faults.invalid_json(body)
        return web.Response(body=broken, status=status, headers=out_headers)

    def stats(self) -> dict[str, Any]:
        """Counters since the last reset (see stats.py for the keys)."""
        return self._stats.snapshot()

    def add_admin_routes(self, app: web.Application) -> None:
        """Add the /__sim/ control endpoints and release hanging requests on shutdown."""
        app.router.add_get("/__sim/stats", self._get_stats)
        app.router.add_post("/__sim/stats/reset", self._reset_stats)
        app.router.add_get("/__sim/faults", self._get_faults)
        app.router.add_post("/__sim/faults", self._post_faults)
        app.router.add_delete("/__sim/faults", self._delete_faults)
        app.router.add_get("/__sim/options", self._get_options)
        app.router.add_post("/__sim/options", self._post_options)
        app.router.add_post("/__sim/rate-limits/reset", self._reset_rate_limits)
        app.on_shutdown.append(self._on_shutdown)

    # --- methods for in-process tests and the admin routes -------------------------------

    def script(
        self,
        path: str,
        sequence: list[Any],
        query_contains: str | None = None,
        *,
        method: str | None = None,
    ) -> None:
        """Script faults: each request under `path` (matching `query_contains`) takes one item."""
        self.faults.script(path, sequence, query_contains=query_contains, method=method)

    def clear_faults(self) -> None:
        """Drop all scripts (random fault rates are options: use `set_options`)."""
        self.faults.clear()

    def set_options(self, **changes: Any) -> ControlOptions:
        """Change options at run time, e.g. `set_options(rate_limits=True, latency_ms=50)`."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(ControlOptions)}
        if unknown:
            raise ValueError(f"unknown control options {sorted(unknown)}")
        new = dataclasses.replace(self.options, **{name: _checked(name, v) for name, v in changes.items()})
        if new.seed != self.options.seed:
            self._seed_rngs(new.seed)
        self.options = new
        return new

    def reset_stats(self) -> None:
        self._stats.reset()

    def set_clock(self, clock: Clock) -> None:
        """Use another clock for windows and stats (tests of a running simulator); resets windows."""
        self.clock = clock
        self.limiter = FixedWindowLimiter(clock)
        self._stats.clock = clock
        self._stats.reset()

    def reset_rate_limits(self) -> None:
        """Empty every rate-limit window (as if a fresh minute and day had begun)."""
        self.limiter.reset()

    def release_hangs(self) -> None:
        """End every "hang" fault now (their connections are reset). Safe from any thread."""
        for loop, event in list(self._hanging):
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    # --- internals -----------------------------------------------------------------------

    def _seed_rngs(self, seed: int) -> None:
        """Separate streams, so e.g. turning latency on does not change which requests fail."""
        self._fault_rng = random.Random(f"{seed}:faults")
        self._latency_rng = random.Random(f"{seed}:latency")
        self._id_rng = random.Random(f"{seed}:ids")

    def _track_in_flight(self, predictive: bool) -> None:
        """In flight = from `before` until aiohttp has written the response (the request task ends)."""
        self._stats.started(predictive)
        task = asyncio.current_task()
        if task is None:
            self._stats.finished(predictive)
            return
        task.add_done_callback(lambda _: self._stats.finished(predictive))

    def _random_fault(self, request: web.Request, predictive: bool) -> int | None:
        options = self.options
        if predictive:
            size = faults.page_size(request)
            if 0 < options.predictive_503_max_page < size:
                return 503
            probability = faults.predictive_503_probability(
                options.predictive_503_rate, size, self._stats.predictive_in_flight
            )
            if probability > 0 and self._fault_rng.random() < probability:
                return 503
        if options.error_rate > 0 and self._fault_rng.random() < options.error_rate:
            return self._fault_rng.choice(faults.RANDOM_5XX)
        return None

    async def _answer_fault(self, request: web.Request, route: RouteInfo, fault: Fault) -> web.StreamResponse:
        """The response of a fault decided in `before` (not a body fault)."""
        self._stats.fault(fault.label)
        if fault.kind == "reset":
            faults.reset_connection(request)
            return web.Response(status=500)  # never reaches the client: the transport is gone
        if fault.kind == "hang":
            await self._hang(request, fault.seconds or self.options.hang_seconds)
            return web.Response(status=504)  # never reaches the client
        if fault.status == 429:
            self._stats.served(route.operation, 429, 0)
            return self._throttled(fault.retry_after)
        await self._delay(0, False)
        self._stats.served(route.operation, fault.status, 0)
        if fault.html:
            page = faults.CHALLENGE_PAGE if fault.status == 403 else faults.gateway_page(fault.status)
            headers = faults.cloudflare_headers(self._id_rng)
            if fault.status == 403:
                headers["cf-mitigated"] = "challenge"
            return web.Response(text=page, status=fault.status, content_type="text/html", headers=headers)
        body = faults.error_body(
            fault.status, self._id_rng, code=fault.code, title=fault.title, detail=fault.detail
        )
        pending = request.get(_STATE_KEY)
        headers = self._rate_headers(pending) if isinstance(pending, _Pending) else {}
        return web.Response(
            body=orjson.dumps(body), status=fault.status, content_type=JSONAPI, headers=headers
        )

    async def _hang(self, request: web.Request, seconds: float) -> None:
        entry = (asyncio.get_running_loop(), asyncio.Event())
        self._hanging.add(entry)
        try:
            await faults.hang(request, entry[1], seconds)
        finally:
            self._hanging.discard(entry)

    def _throttled(self, retry_after: int) -> web.Response:
        """Klaviyo's 429: Retry-After only, no RateLimit-* headers."""
        body = faults.throttled_body(retry_after, self._id_rng)
        return web.Response(
            body=orjson.dumps(body),
            status=429,
            content_type=JSONAPI,
            headers={"Retry-After": str(retry_after)},
        )

    def _rate_headers(self, pending: _Pending) -> dict[str, str]:
        if pending.rate_headers is not None:
            return pending.rate_headers
        if pending.limiter_key is None or pending.steady is None:
            return {}
        return rate_limit_headers(self.limiter.state(pending.limiter_key, pending.steady))

    async def _delay(self, records: int, predictive: bool) -> None:
        """Sleep for the configured latency without blocking the loop."""
        options = self.options
        total_ms = options.latency_ms + options.latency_per_record_ms * records
        if predictive:
            total_ms *= options.predictive_latency_factor
        if options.latency_jitter > 0 and total_ms > 0:
            total_ms *= 1.0 + self._latency_rng.uniform(-options.latency_jitter, options.latency_jitter)
        if total_ms > 0:
            await asyncio.sleep(total_ms / 1000.0)

    # --- admin handlers ------------------------------------------------------------------

    async def _get_stats(self, _: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _reset_stats(self, _: web.Request) -> web.Response:
        self.reset_stats()
        return web.json_response(self.stats())

    async def _get_faults(self, _: web.Request) -> web.Response:
        return web.json_response({"scripts": self.faults.describe()})

    async def _post_faults(self, request: web.Request) -> web.Response:
        return await _admin_call(request, self._script_from_json)

    def _script_from_json(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or not isinstance(payload.get("path"), str):
            raise ValueError('expected {"path": "/api/...", "sequence": [...]}')
        sequence = payload.get("sequence")
        if not isinstance(sequence, list):
            raise ValueError("'sequence' must be a list")
        query_contains = payload.get("query_contains")
        method = payload.get("method")
        self.script(
            payload["path"],
            sequence,
            None if query_contains is None else str(query_contains),
            method=None if method is None else str(method),
        )
        return {"scripts": self.faults.describe()}

    async def _delete_faults(self, _: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"scripts": []})

    async def _get_options(self, _: web.Request) -> web.Response:
        return web.json_response(dataclasses.asdict(self.options))

    async def _post_options(self, request: web.Request) -> web.Response:
        def apply(payload: Any) -> dict[str, Any]:
            if not isinstance(payload, dict):
                raise ValueError("expected a JSON object of options")
            return dataclasses.asdict(self.set_options(**payload))

        return await _admin_call(request, apply)

    async def _reset_rate_limits(self, _: web.Request) -> web.Response:
        self.reset_rate_limits()
        return web.json_response({"ok": True})

    async def _on_shutdown(self, _: web.Application) -> None:
        self.release_hangs()


PROBABILITIES = frozenset({"error_rate", "predictive_503_rate", "latency_jitter"})


def _checked(name: str, value: Any) -> Any:
    """Validate one option value against the type of its default (floats accept ints)."""
    default = getattr(ControlOptions(), name)
    if isinstance(default, bool) or isinstance(value, bool):
        if not (isinstance(default, bool) and isinstance(value, bool)):
            raise ValueError(f"option {name} must be {type(default).__name__}: {value!r}")
        return value
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise ValueError(f"option {name} must be an object: {value!r}")
        return value
    if isinstance(default, int) and not isinstance(value, int):
        raise ValueError(f"option {name} must be an integer: {value!r}")
    if not isinstance(value, int | float) or value < 0:
        raise ValueError(f"option {name} must be a non-negative number: {value!r}")
    if name in PROBABILITIES and value > 1:
        raise ValueError(f"option {name} must be between 0 and 1: {value!r}")
    return value if isinstance(default, int) else float(value)


async def _admin_call(request: web.Request, apply: Callable[[Any], dict[str, Any]]) -> web.Response:
    """Parse the JSON body, apply it, answer 200 with the result or 400 with the reason."""
    try:
        payload = orjson.loads(await request.read())
        return web.json_response(apply(payload))
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)


__all__ = ["ACCOUNT_KEY", "JSONAPI", "ControlOptions", "Controls", "RouteInfo", "Script"]
