"""A tiny server on 127.0.0.1 for wire situations the simulator cannot produce (a
self-referencing `links.next`, values of unexpected types, hand-made data sets: see
tests/reliability/test_wire_oddities.py and tests/engine/engine_fake_api.py): routes are
`path -> handler`, served from a background thread so the code under test can run its own event
loop. Everything the simulator's fault controls can script is tested against the simulator."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
JSONAPI = "application/vnd.api+json"


def jsonapi(body: bytes) -> web.Response:
    return web.Response(body=body, content_type=JSONAPI)


@contextmanager
def serve(routes: dict[str, Handler]) -> Iterator[str]:
    """Serve `routes` (GET) on a free port; yields the base URL; stops the server on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="tiny-api", daemon=True)
    thread.start()

    async def start() -> tuple[web.AppRunner, int]:
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_get(path, handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, runner.addresses[0][1]

    runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
