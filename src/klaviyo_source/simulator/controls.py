"""The simulator's controls: rate limits, faults, latency and request statistics.

`app.py` resolves each API request to a `RouteInfo` and calls, in this order:

    early = await controls.before(request, route)   # a 429 / scripted fault response, or None
    if early is not None: return early
    ... validate the query, build the JSON body ...
    return await controls.respond(request, route, body, records=n)   # latency, body faults,
                                                                    # RateLimit-* headers, stats
Error responses produced by the app itself (400/401/403/404) go through
`controls.respond(request, route_or_None, body, records=0, status=4xx)` too, so they are counted.

Admin routes (`/__sim/stats`, `/__sim/faults`, ...) are added by `controls.add_admin_routes(app)`.
This file is the contract; its internals (limiter, fault scripts, latency) live in
`ratelimit.py`, `faults.py` and `stats.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

JSONAPI = "application/vnd.api+json"


@dataclass(frozen=True)
class RouteInfo:
    """What the controls need to know about one API request."""

    operation: str  # OpenAPI operationId, e.g. "get_events"
    path: str  # the request path, e.g. "/api/events"
    bucket: str  # rate-limit bucket, e.g. "get_events" or "get_profiles:predictive_analytics"
    burst: int  # requests per second allowed in the bucket
    steady: int  # requests per minute allowed in the bucket
    tags: frozenset[str] = field(default_factory=frozenset)  # e.g. {"predictive_analytics"}


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


class Controls:
    """Passthrough implementation; replaced by the real limiter/fault/latency logic."""

    def __init__(self, options: ControlOptions | None = None) -> None:
        self.options = options or ControlOptions()
        self.requests: dict[str, int] = {}
        self.records: dict[str, int] = {}

    async def before(self, request: web.Request, route: RouteInfo) -> web.StreamResponse | None:
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
        key = route.operation if route else "other"
        self.requests[key] = self.requests.get(key, 0) + 1
        self.records[key] = self.records.get(key, 0) + records
        return web.Response(body=body, status=status, content_type=JSONAPI, headers=headers)

    def stats(self) -> dict[str, Any]:
        return {"requests": dict(self.requests), "records": dict(self.records), "throttled": {}}

    def add_admin_routes(self, app: web.Application) -> None:
        async def get_stats(_: web.Request) -> web.Response:
            return web.json_response(self.stats())

        app.router.add_get("/__sim/stats", get_stats)
