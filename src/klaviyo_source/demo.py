"""`klaviyo-source demo` (first version): start the simulator in-process and page through a few endpoints.

Temporary until the sync exists; it shows the simulator serving Klaviyo-shaped pages end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiohttp
import orjson

from klaviyo_source.revision import REVISION
from klaviyo_source.simulator import SimulatorOptions, run_simulator


async def count_pages(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> tuple[int, int]:
    """Follow links.next from `url`; returns (records, pages)."""
    records = pages = 0
    next_url: str | None = url
    while next_url:
        async with session.get(next_url, headers=headers) as response:
            body: dict[str, Any] = orjson.loads(await response.read())
            if response.status != 200:
                raise RuntimeError(f"{response.status} from {next_url.split('?')[0]}: {body}")
        records += len(body["data"])
        pages += 1
        next_url = body["links"].get("next")
    return records, pages


async def run(scale: str) -> int:
    started = time.monotonic()
    async with run_simulator(SimulatorOptions(scale=scale)) as sim:
        print(
            f"simulator ({scale}) on {sim.base_url}: {sim.store.event_count:,} events, "
            f"{sim.store.profile_count:,} profiles, ready in {time.monotonic() - started:.1f}s"
        )
        headers = {"Authorization": f"Klaviyo-API-Key {sim.api_key}", "revision": REVISION}
        base = sim.base_url
        targets = {
            "events": f"{base}/api/events?page[size]=1000&sort=datetime&include=metric&fields[metric]=name",
            "profiles": f"{base}/api/profiles?page[size]=100&sort=updated"
            "&additional-fields[profile]=subscriptions",
            "metrics": f"{base}/api/metrics",
            "lists": f"{base}/api/lists",
            "templates": f"{base}/api/templates?sort=updated",
            "flows": f"{base}/api/flows?sort=updated",
        }
        for channel in ("email", "sms", "mobile_push"):
            for archived in ("false", "true"):
                targets[f"campaigns {channel}/archived={archived}"] = (
                    f"{base}/api/campaigns?filter=and(equals(messages.channel,'{channel}'),equals(archived,{archived}))"
                    "&sort=updated_at"
                )
        print(f"{'stream':<34} {'records':>9} {'pages':>6} {'seconds':>8}")
        async with aiohttp.ClientSession() as session:
            for name, url in targets.items():
                t0 = time.monotonic()
                records, pages = await count_pages(session, url, headers)
                print(f"{name:<34} {records:>9,} {pages:>6} {time.monotonic() - t0:>8.2f}")
            after = sim.advance(events=100, profiles_created=5, profiles_updated=10, campaigns_updated=2)
            print(
                f"advance: +{len(after['events'])} events, +{len(after['profiles_created'])} profiles, "
                f"{len(after['profiles_updated'])} profiles updated, "
                f"{len(after['campaigns_updated'])} campaigns updated"
            )
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="klaviyo-source demo")
    parser.add_argument("--scale", choices=["small", "medium"], default="small")
    args = parser.parse_args(argv[1:])
    return asyncio.run(run(args.scale))
