"""One simulator factory for the whole suite: sizes, keys and fault controls as arguments.

`simulator(...)` serves a simulated account on 127.0.0.1 from a background thread (for code
under test that runs its own event loop or a subprocess against it); `simulator_in_loop(...)`
serves inside the caller's event loop (for in-process `engine.read`); `sim_fixture(...)` makes a
pytest fixture of either scope from the same arguments. Control options (`rate_limits`,
`latency_ms`, `error_rate`, ... see docs/simulator-controls.md) are keyword arguments too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest

from klaviyo_simulator.controls import ControlOptions
from klaviyo_simulator.server import Simulator, SimulatorOptions, run_simulator, start_in_thread

# Small, multi-page data: profiles 100/page, templates and lists 10/page, events 1000/page.
SIZES = {"events": 1500, "profiles": 300, "campaigns": 12, "flows": 4, "lists": 3, "templates": 25}


def options(
    *,
    seed: int = 11,
    scale: str = "small",
    sizes: dict[str, int] | None = None,
    keys: dict[str, list[str] | None] | None = None,
    now: int | None = None,
    port: int = 0,
    fault_seed: int = 0,
    **controls: Any,
) -> SimulatorOptions:
    """SimulatorOptions with the kit's defaults (seed 11, `SIZES`). `seed` seeds the data,
    `fault_seed` the controls' RNG (jitter, random faults); `controls` -> ControlOptions."""
    return SimulatorOptions(
        seed=seed,
        scale=scale,
        sizes=SIZES if sizes is None else sizes,
        controls=ControlOptions(seed=fault_seed, **controls),
        now=now,
        port=port,
        **({} if keys is None else {"keys": keys}),
    )


@contextmanager
def simulator(**arguments: Any) -> Iterator[Simulator]:
    """A simulated account served from a background thread; stopped when the block exits."""
    with start_in_thread(options(**arguments)) as sim:
        yield sim


@asynccontextmanager
async def simulator_in_loop(**arguments: Any) -> AsyncIterator[Simulator]:
    """A simulated account served inside the running event loop; stopped when the block exits."""
    async with run_simulator(options(**arguments)) as sim:
        yield sim


def sim_fixture(*, scope: str = "module", **arguments: Any) -> Callable[..., Any]:
    """A pytest fixture serving `simulator(**arguments)` for the given scope."""

    @pytest.fixture(scope=scope)  # type: ignore[call-overload]
    def sim() -> Iterator[Simulator]:
        with simulator(**arguments) as running:
            yield running

    return sim  # type: ignore[no-any-return]


def run_against_simulator(body: Callable[[Simulator], Awaitable[None]], **arguments: Any) -> None:
    """Run `await body(sim)` in a fresh event loop, against `simulator_in_loop(**arguments)`."""

    async def go() -> None:
        async with simulator_in_loop(**arguments) as sim:
            await body(sim)

    asyncio.run(go())
