"""A tiny aiohttp app that uses `Controls` exactly as the contract in controls.py says.

It stands in for the real simulator core so the controls can be tested on their own, over a
real socket on 127.0.0.1. It stays (the simulator cannot replace it) because these tests check
`Controls` as a unit against its contract with any app: they need a route whose record count the
request chooses (`count`, for the per-record latency and the records stats), fixed tiers
independent of the simulator's routing and spec, and a fresh `Controls` per test built from
chosen options and a fake clock. The controls inside the real simulator are tested in
`test_controls_end_to_end.py`. Routes (buckets as in Klaviyo's 2026-07-15 spec):

    GET /api/events               get_events, XL 350/s 3500/m, `count` records (default 3)
    GET /api/profiles             get_profiles, L 75/s 750/m; predictive_analytics -> M 10/s 150/m
    GET /api/lists/{id}           get_list, L; additional-fields[list]=profile_count -> XS 1/s 15/m
    GET /api/missing              the app's own 404 through `respond`
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import orjson
from aiohttp import web

from klaviyo_simulator.controls import Controls, RouteInfo


class FakeClock:
    """An injectable clock that only moves when told to."""

    def __init__(self, now: float = 1000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def events_route() -> RouteInfo:
    return RouteInfo("get_events", "/api/events", "get_events", burst=350, steady=3500)


def profiles_route(request: web.Request) -> RouteInfo:
    if "predictive_analytics" in request.query.get("additional-fields[profile]", ""):
        return RouteInfo(
            "get_profiles",
            request.path,
            "get_profiles:predictive_analytics",
            burst=10,
            steady=150,
            tags=frozenset({"predictive_analytics"}),
        )
    return RouteInfo("get_profiles", request.path, "get_profiles", burst=75, steady=750)


def list_route(request: web.Request) -> RouteInfo:
    if "profile_count" in request.query.get("additional-fields[list]", ""):
        return RouteInfo("get_list", request.path, "get_list:profile_count", burst=1, steady=15)
    return RouteInfo("get_list", request.path, "get_list", burst=75, steady=750)


async def fetch(
    session: aiohttp.ClientSession, url: str, timeout: aiohttp.ClientTimeout | None = None
) -> tuple[int, dict[str, str], bytes]:
    """GET `url`: status, headers and the whole body."""
    async with session.get(url, timeout=timeout) as response:
        return response.status, dict(response.headers), await response.read()


def page(kind: str, count: int) -> bytes:
    return orjson.dumps({"data": [{"type": kind, "id": str(i), "attributes": {}} for i in range(count)]})


def controlled(
    controls: Controls,
    route_of: Callable[[web.Request], RouteInfo],
    body_of: Callable[[web.Request], tuple[bytes, int]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler that follows the contract: `before` (maybe an early answer), then `respond`."""

    async def handle(request: web.Request) -> web.StreamResponse:
        route = route_of(request)
        early = await controls.before(request, route)
        if early is not None:
            return early
        body, records = body_of(request)
        return await controls.respond(request, route, body, records=records)

    return handle


def counted(kind: str, parameter: str, default: str) -> Callable[[web.Request], tuple[bytes, int]]:
    """A page of `kind` records, as many as the request's `parameter` says."""

    def body(request: web.Request) -> tuple[bytes, int]:
        count = int(request.query.get(parameter, default))
        return page(kind, count), count

    return body


def one_list(request: web.Request) -> tuple[bytes, int]:
    return orjson.dumps({"data": {"type": "list", "id": request.match_info["id"]}}), 1


def build_app(controls: Controls) -> web.Application:
    get_events = controlled(controls, lambda _: events_route(), counted("event", "count", "3"))
    get_profiles = controlled(controls, profiles_route, counted("profile", "page[size]", "20"))
    get_list = controlled(controls, list_route, one_list)

    async def missing(request: web.Request) -> web.StreamResponse:
        body = orjson.dumps({"errors": [{"id": "x", "status": 404, "code": "not_found"}]})
        return await controls.respond(request, None, body, status=404)

    app = web.Application()
    app.router.add_get("/api/events", get_events)
    app.router.add_get("/api/profiles", get_profiles)
    app.router.add_get("/api/lists/{id}", get_list)
    app.router.add_get("/api/missing", missing)
    controls.add_admin_routes(app)
    return app


@asynccontextmanager
async def serving(controls: Controls) -> AsyncIterator[str]:
    """Serve the tiny app on 127.0.0.1 (a free port); yields the base URL; always stops it."""
    runner = web.AppRunner(build_app(controls), shutdown_timeout=5.0)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()
