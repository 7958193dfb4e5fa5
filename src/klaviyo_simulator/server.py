"""Run the simulator in-process: `start_in_thread` (own thread + loop) or `run_simulator` (caller's loop)."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from klaviyo_simulator.app import build_app
from klaviyo_simulator.controls import ControlOptions, Controls
from klaviyo_simulator.model import Sizes
from klaviyo_simulator.store import Store

DEFAULT_KEY = "pk_sim_full_access"


@dataclass
class SimulatorOptions:
    """How to build and serve a simulated account."""

    seed: int = 42
    scale: str = "small"
    sizes: dict[str, int] = field(default_factory=dict)  # exact-size overrides, e.g. {"events": 1234}
    keys: dict[str, list[str] | None] = field(default_factory=lambda: {DEFAULT_KEY: None})
    controls: ControlOptions = field(default_factory=ControlOptions)
    host: str = "127.0.0.1"
    port: int = 0  # 0 = a free port
    now: int | None = None  # epoch seconds of "now" at generation (default: the real clock)


@dataclass
class Simulator:
    """A running simulator: where it listens and handles on its state."""

    base_url: str
    api_key: str
    store: Store
    controls: Controls
    _advance: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    _change: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None

    def advance(self, **changes: Any) -> dict[str, Any]:
        """Same as `POST /__sim/advance`: create/update records stamped now; returns what changed."""
        if self._advance is None:
            raise RuntimeError("this simulator handle cannot advance time")
        return self._advance(changes)

    def change(self, action: str, **payload: Any) -> dict[str, Any]:
        """Same as `POST /__sim/<action>` (delete, unsuppress, remove-members): see `Store.change`."""
        if self._change is None:
            raise RuntimeError("this simulator handle cannot change records")
        return self._change(action, payload)


def build_store(options: SimulatorOptions) -> Store:
    return Store(options.seed, Sizes.for_scale(options.scale, options.sizes), options.now)


def _full_access_key(keys: dict[str, list[str] | None]) -> str:
    for key, scopes in keys.items():
        if scopes is None:
            return key
    return next(iter(keys))


def _secret(seed: int) -> bytes:
    return hashlib.sha256(f"klaviyo-sim-cursor-{seed}".encode()).digest()


async def _serve(options: SimulatorOptions, store: Store, controls: Controls) -> tuple[web.AppRunner, str]:
    keys = {k: (frozenset(v) if v is not None else None) for k, v in options.keys.items()}
    app = build_app(store, controls, keys, _secret(options.seed))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://{options.host}:{port}"


@asynccontextmanager
async def run_simulator(options: SimulatorOptions | None = None) -> AsyncIterator[Simulator]:
    """Serve inside the caller's event loop; `sim.advance` runs synchronously on that loop's thread."""
    options = options or SimulatorOptions()
    store = build_store(options)
    controls = Controls(options.controls)
    runner, base_url = await _serve(options, store, controls)
    try:
        yield Simulator(
            base_url, _full_access_key(options.keys), store, controls, store.advance, store.change
        )
    finally:
        await runner.cleanup()


@contextmanager
def start_in_thread(options: SimulatorOptions | None = None) -> Iterator[Simulator]:
    """Serve from a background thread with its own event loop; stopped when the block exits."""
    options = options or SimulatorOptions()
    store = build_store(options)
    controls = Controls(options.controls)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="klaviyo-simulator", daemon=True)
    thread.start()

    def stop_loop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()

    try:
        runner, base_url = asyncio.run_coroutine_threadsafe(_serve(options, store, controls), loop).result()
    except BaseException:
        stop_loop()  # e.g. the port is taken: leave no thread behind
        raise

    def advance(changes: dict[str, Any]) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            return store.advance(changes)

        return asyncio.run_coroutine_threadsafe(run(), loop).result()

    def change(action: str, payload: dict[str, Any]) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            return store.change(action, payload)

        return asyncio.run_coroutine_threadsafe(run(), loop).result()

    try:
        yield Simulator(base_url, _full_access_key(options.keys), store, controls, advance, change)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
        stop_loop()
