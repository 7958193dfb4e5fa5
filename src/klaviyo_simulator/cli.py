"""`klaviyo-source simulate`: serve the simulator on a port until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

from klaviyo_simulator.controls import ControlOptions
from klaviyo_simulator.model import SCALES
from klaviyo_simulator.server import DEFAULT_KEY, SimulatorOptions, run_simulator

SIZE_FLAGS = ("events", "profiles", "lists", "segments", "templates", "campaigns", "flows", "tags")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="klaviyo-source simulate", description="Serve a local Klaviyo API simulator."
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8700)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--scale", choices=sorted(SCALES), default="small")
    for name in SIZE_FLAGS:
        p.add_argument(f"--{name}", type=int, default=None, help=f"exact number of {name}")
    p.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="KEY[:scope,scope]",
        help="an accepted private key, optionally limited to scopes (repeatable)",
    )
    p.add_argument("--rate-limits", action="store_true", help="enforce Klaviyo's rate tiers")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--latency-per-record-ms", type=float, default=0.0)
    p.add_argument("--latency-jitter", type=float, default=0.0)
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--predictive-503-rate", type=float, default=0.0)
    return p


def options_from(args: argparse.Namespace) -> SimulatorOptions:
    keys: dict[str, list[str] | None] = {}
    for spec in args.key:
        key, _, scopes = spec.partition(":")
        keys[key] = [s for s in scopes.split(",") if s] if scopes else None
    controls = ControlOptions(
        rate_limits=args.rate_limits,
        latency_ms=args.latency_ms,
        latency_per_record_ms=args.latency_per_record_ms,
        latency_jitter=args.latency_jitter,
        error_rate=args.error_rate,
        predictive_503_rate=args.predictive_503_rate,
        seed=args.seed,
    )
    sizes = {name: getattr(args, name) for name in SIZE_FLAGS if getattr(args, name) is not None}
    return SimulatorOptions(
        seed=args.seed,
        scale=args.scale,
        sizes=sizes,
        keys=keys or {DEFAULT_KEY: None},
        controls=controls,
        host=args.host,
        port=args.port,
    )


async def serve(options: SimulatorOptions) -> None:
    started = time.monotonic()
    async with run_simulator(options) as sim:
        took = time.monotonic() - started
        print(
            f"Klaviyo simulator listening on {sim.base_url} (seed {options.seed}, scale {options.scale}, "
            f"{sim.store.event_count} events, {sim.store.profile_count} profiles, ready in {took:.1f}s)"
        )
        # The key is printed on purpose here: it is a local, fake key the user needs to connect.
        print(f"API key: {sim.api_key}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv[1:])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(options_from(args)))
    return 0
