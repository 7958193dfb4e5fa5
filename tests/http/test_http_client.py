"""The client against the simulator: it derives each request's rate bucket itself, and requests
waiting on one bucket share one heartbeat line per period."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from typing import Any

import pytest

from klaviyo_simulator.server import Simulator
from klaviyo_source.config import parse_config
from klaviyo_source.http import client as http_client
from klaviyo_source.http.client import KlaviyoClient, NullObserver
from klaviyo_source.http.ratelimit import RateLimiters


class Beats(NullObserver):
    """Keeps the heartbeat lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def heartbeat(self, message: str) -> None:
        self.lines.append((time.monotonic(), message))


def _config(sim: Simulator, **overrides: Any) -> Any:
    return parse_config({"api_key": sim.api_key, "base_url": sim.base_url, **overrides})


def test_the_client_paces_each_request_in_the_bucket_its_path_and_parameters_select(sim: Simulator) -> None:
    async def go() -> set[str]:
        limiters = RateLimiters()
        async with KlaviyoClient(_config(sim), limiters=limiters) as client:
            lists = await client.get_json("/api/lists", {"page[size]": "10"})
            list_id = lists["data"][0]["id"]
            await client.get_json(f"/api/lists/{list_id}", {"additional-fields[list]": "profile_count"})
            await client.get_json("/api/profiles", {"additional-fields[profile]": "predictive_analytics"})
        return set(limiters._by_bucket)

    assert asyncio.run(go()) == {"get_lists", "get_list:profile_count", "get_profiles:predictive_analytics"}


def test_requests_waiting_on_one_bucket_log_one_heartbeat_per_period(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lists_detailed's three concurrent detail fetches waiting on the 1/s tier used to log the same
    "Pacing ... left" line three times at once."""
    period = 0.2
    monkeypatch.setattr(http_client, "HEARTBEAT_SECONDS", period)
    beats = Beats()

    async def go() -> float:
        limiters = RateLimiters()
        async with KlaviyoClient(_config(sim), limiters=limiters) as client:
            lists = await client.get_json("/api/lists", {"page[size]": "10"})
            ids = [record["id"] for record in lists["data"]]
            limiters.get("get_list:profile_count").pause(1.0)
            started = time.monotonic()
            await asyncio.gather(
                *(
                    client.get_json(
                        f"/api/lists/{ids[n % len(ids)]}",
                        {"additional-fields[list]": "profile_count"},
                        observer=beats,
                    )
                    for n in range(3)
                )
            )
            return time.monotonic() - started

    elapsed = asyncio.run(go())
    pacing = [
        at
        for at, line in beats.lines
        if line.startswith("Pacing requests to Klaviyo's get_list:profile_count")
    ]
    assert pacing, beats.lines
    assert len(pacing) <= math.ceil(elapsed / (0.9 * period)) + 1, (elapsed, beats.lines)
    gaps = [b - a for a, b in itertools.pairwise(pacing)]
    assert all(gap >= 0.85 * period for gap in gaps), gaps  # never two lines at once
