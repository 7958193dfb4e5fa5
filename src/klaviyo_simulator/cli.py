"""`klaviyo-source simulate`: serve the simulator on a port until interrupted.

Every flag is validated before anything is generated; a bad value, a port out of range or a
port already in use ends with one line on stderr naming the flag and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import sys
import time
from functools import cache
from typing import NoReturn

from klaviyo_simulator.controls import ControlOptions
from klaviyo_simulator.model import SCALES
from klaviyo_simulator.server import DEFAULT_KEY, SimulatorOptions, run_simulator
from klaviyo_simulator.spec import all_scopes, load_spec

PROG = "klaviyo-source simulate"
SIZE_FLAGS = (
    "events",
    "profiles",
    "lists",
    "segments",
    "templates",
    "campaigns",
    "flows",
    "tags",
    "coupons",
    "forms",
    "images",
    "push_tokens",
    "catalog_items",
    "reviews",
    "universal_content",
    "web_feeds",
)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


@cache
def known_scopes() -> frozenset[str]:
    """Every scope any operation of the vendored OpenAPI names in `x-klaviyo-scopes`."""
    return frozenset(
        scope
        for operations in load_spec()["paths"].values()
        for operation in operations.values()
        if isinstance(operation, dict)
        for scope in operation.get("x-klaviyo-scopes", [])
    )


def port_number(text: str) -> int:
    port = int(text) if text.isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535; 0 = any free port)")
    return port


def count(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (a whole number, 0 or more)")
    return value


def milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (milliseconds, 0 or more)")
    return value


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction between 0 and 1 (0.01 = 1 %)")
    return value


def key_spec(text: str) -> tuple[str, list[str] | None]:
    """`KEY` (every scope) or `KEY:scope,scope` -> (key, scopes)."""
    key, colon, scopes_text = text.partition(":")
    if not key.strip() or key != key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} has no key before the ':' (KEY or KEY:scope,scope)")
    if not colon:
        return key, None
    scopes = [s for s in scopes_text.split(",") if s]
    if not scopes:
        raise argparse.ArgumentTypeError(f"{text!r} lists no scopes after the ':' (KEY:scope,scope)")
    unknown = [s for s in scopes if s not in known_scopes()]
    if unknown:
        served = ", ".join(sorted(all_scopes()))
        raise argparse.ArgumentTypeError(
            f"unknown scope {', '.join(map(repr, unknown))} in {text!r} (the served endpoints need: {served})"
        )
    return key, scopes


QUIRK_NAMES = ("greater_than_equal", "unsorted_archived", "space_datetimes")  # ControlOptions.quirk_*


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Serve a local, seeded Klaviyo API simulator until interrupted.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument(
        "--port",
        type=port_number,
        default=8700,
        help="port to listen on; 0 = any free port (default: %(default)s)",
    )
    p.add_argument(
        "--seed", type=int, default=42, help="seed of the generated account (default: %(default)s)"
    )
    p.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="small",
        help="size of the account: small, medium or large (default: %(default)s)",
    )
    for name in SIZE_FLAGS:
        defaults = ", ".join(f"{scale} {sizes[name]:,}" for scale, sizes in SCALES.items())
        p.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=count,
            default=None,
            metavar="N",
            help=f"exact number of {name} (default: from --scale: {defaults})",
        )
    p.add_argument(
        "--key",
        action="append",
        type=key_spec,
        default=[],
        metavar="KEY[:scope,scope]",
        help=f"an accepted private key, optionally limited to scopes; repeatable "
        f"(default: one full-access key, {DEFAULT_KEY})",
    )
    p.add_argument("--rate-limits", action="store_true", help="enforce Klaviyo's rate tiers (default: off)")
    p.add_argument(
        "--daily-quotas",
        action="store_true",
        help="enforce the Reporting API's daily quotas (225/d per report endpoint) even without "
        "--rate-limits (default: off)",
    )
    p.add_argument(
        "--quota-day-seconds",
        type=float,
        default=86_400.0,
        help="length of the daily quota window in seconds, shortened for tests (default: %(default)s)",
    )
    p.add_argument(
        "--daily-quota",
        type=int,
        default=0,
        help="calls per day per report endpoint instead of the spec's 225; 0: the spec's "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--latency-ms",
        type=milliseconds,
        default=0.0,
        help="latency of every response, ms (default: %(default)s)",
    )
    p.add_argument(
        "--latency-per-record-ms",
        type=milliseconds,
        default=0.0,
        help="latency added per record in a response, ms (default: %(default)s)",
    )
    p.add_argument(
        "--latency-jitter",
        type=probability,
        default=0.0,
        help="random +- fraction of the latency, 0-1 (default: %(default)s)",
    )
    p.add_argument(
        "--error-rate",
        type=probability,
        default=0.0,
        help="probability of a random 5xx on any API request, 0-1 (default: %(default)s)",
    )
    p.add_argument(
        "--predictive-503-rate",
        type=probability,
        default=0.0,
        help="probability of a 503 on profiles with predictive analytics, 0-1 (default: %(default)s)",
    )
    p.add_argument(
        "--quirk",
        action="append",
        default=[],
        choices=QUIRK_NAMES,
        help="make Klaviyo break its own contract as it did in 2026, repeatable "
        "(docs/simulator-controls.md, Quirks; default: none)",
    )
    return p


def options_from(args: argparse.Namespace) -> SimulatorOptions:
    keys: dict[str, list[str] | None] = dict(args.key)
    controls = ControlOptions(
        rate_limits=args.rate_limits,
        daily_quotas=args.daily_quotas,
        quota_day_seconds=args.quota_day_seconds,
        daily_quota=args.daily_quota,
        latency_ms=args.latency_ms,
        latency_per_record_ms=args.latency_per_record_ms,
        latency_jitter=args.latency_jitter,
        error_rate=args.error_rate,
        predictive_503_rate=args.predictive_503_rate,
        seed=args.seed,
        quirk_greater_than_equal="greater_than_equal" in args.quirk,
        quirk_unsorted_archived="unsorted_archived" in args.quirk,
        quirk_space_datetimes="space_datetimes" in args.quirk,
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


class Listening:
    """Whether the server got as far as listening (errors after that are not start-up errors)."""

    started = False


async def serve(options: SimulatorOptions, listening: Listening) -> None:
    started = time.monotonic()
    async with run_simulator(options) as sim:
        listening.started = True
        took = time.monotonic() - started
        print(
            f"Klaviyo simulator listening on {sim.base_url} (seed {options.seed}, scale {options.scale}, "
            f"{sim.store.event_count} events, {sim.store.profile_count} profiles, ready in {took:.1f}s)"
        )
        # The keys are printed on purpose: they are local, fake keys the user needs to connect.
        for key, scopes in options.keys.items():
            print(
                f"API key: {key} ({'scopes: ' + ', '.join(scopes) if scopes is not None else 'all scopes'})"
            )
        sys.stdout.flush()
        await asyncio.Event().wait()


def listen_error(options: SimulatorOptions, err: OSError) -> str:
    where = f"{options.host}:{options.port}"
    if err.errno == errno.EADDRINUSE:
        return f"port {options.port} on {options.host} is already in use (choose another --port, or --port 0)"
    reason = err.strerror or str(err)
    return f"cannot listen on {where}: {reason} (check --host and --port)"


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv[1:])
    options = options_from(args)
    listening = Listening()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(options, listening))
    except OSError as err:
        if listening.started:
            raise
        print(f"{PROG}: error: {listen_error(options, err)}", file=sys.stderr)
        return 2
    return 0
