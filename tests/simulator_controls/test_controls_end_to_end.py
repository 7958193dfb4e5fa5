"""The controls inside the real simulator (`start_in_thread`), seen by an aiohttp client on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import orjson
import pytest
from controls_harness import FakeClock, fetch

from kit.sim import sim_fixture
from klaviyo_simulator import Simulator
from klaviyo_source.revision import REVISION

PREDICTIVE = "additional-fields[profile]=predictive_analytics"
PROFILE_COUNT = "additional-fields[list]=profile_count"
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
Scenario = Callable[[aiohttp.ClientSession, str], Awaitable[None]]


running = sim_fixture(sizes={"events": 500, "profiles": 200})


@pytest.fixture
def sim(running: Simulator) -> Iterator[Simulator]:
    """The shared simulator with controls back at their defaults for each test."""
    running.controls.set_options(
        rate_limits=False, error_rate=0.0, predictive_503_rate=0.0, predictive_503_max_page=0
    )
    running.controls.clear_faults()
    clock = FakeClock(5000.25)
    running.controls.set_clock(clock)
    yield running
    running.controls.clear_faults()


def run(sim: Simulator, scenario: Scenario) -> None:
    headers = {"Authorization": f"Klaviyo-API-Key {sim.api_key}", "revision": REVISION}

    async def main() -> None:
        client_timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(headers=headers, timeout=client_timeout) as session:
            await scenario(session, sim.base_url)

    asyncio.run(main())


async def first_list_id(session: aiohttp.ClientSession, base: str) -> str:
    status, _, body = await fetch(session, f"{base}/api/lists")
    assert status == 200
    list_id: str = orjson.loads(body)["data"][0]["id"]
    return list_id


def clock_of(sim: Simulator) -> FakeClock:
    clock = sim.controls.clock
    assert isinstance(clock, FakeClock)
    return clock


def test_xs_list_profile_count_is_one_per_second(sim: Simulator) -> None:
    sim.controls.set_options(rate_limits=True)
    clock = clock_of(sim)

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        url = f"{base}/api/lists/{await first_list_id(session, base)}?{PROFILE_COUNT}"
        status, headers, body = await fetch(session, url)
        assert status == 200 and "profile_count" in orjson.loads(body)["data"]["attributes"]
        assert headers["RateLimit-Limit"] == "15" and headers["RateLimit-Remaining"] == "14"
        status, headers, body = await fetch(session, url)
        assert status == 429 and headers["Retry-After"] == "1"
        assert not any(name in headers for name in RATE_HEADERS)
        assert orjson.loads(body)["errors"][0]["code"] == "throttled"
        clock.advance(1.0)
        assert (await fetch(session, url))[0] == 200

    run(sim, scenario)
    assert sim.controls.stats()["throttled"] == {"get_list:profile_count": 1}


def test_predictive_profiles_bucket_is_m_tier_and_separate(sim: Simulator) -> None:
    sim.controls.set_options(rate_limits=True)

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        predictive = [(await fetch(session, f"{base}/api/profiles?{PREDICTIVE}"))[0] for _ in range(11)]
        assert predictive == [200] * 10 + [429]
        status, headers, _ = await fetch(session, f"{base}/api/profiles")
        assert status == 200 and headers["RateLimit-Limit"] == "750"

    run(sim, scenario)
    windows = sim.controls.stats()["windows"]
    assert windows["get_profiles:predictive_analytics"]["max_per_second"] == 11


def test_scripted_sequence_over_http_admin_call(sim: Simulator) -> None:
    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        script: dict[str, Any] = {
            "path": "/api/events",
            "sequence": [503, {"status": 429, "retry_after": 7}, "ok"],
        }
        async with session.post(f"{base}/__sim/faults", json=script) as response:
            assert response.status == 200
        status, _, body = await fetch(session, f"{base}/api/events")
        assert status == 503 and orjson.loads(body)["errors"][0]["status"] == 503
        status, headers, _ = await fetch(session, f"{base}/api/events")
        assert status == 429 and headers["Retry-After"] == "7"
        assert (await fetch(session, f"{base}/api/events"))[0] == 200
        async with session.delete(f"{base}/__sim/faults") as response:
            assert response.status == 200

    run(sim, scenario)


def test_transport_and_body_faults_as_a_client_sees_them(sim: Simulator) -> None:
    sim.controls.script("/api/events", ["reset", "reset", "truncated", "invalid_json", "cut_body"])

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        with pytest.raises(aiohttp.ClientConnectionError):
            await fetch(session, f"{base}/api/events")
        for _ in range(2):
            status, _, body = await fetch(session, f"{base}/api/events")
            assert status == 200
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(body)
        with pytest.raises(aiohttp.ClientPayloadError):
            await fetch(session, f"{base}/api/events")
        status, _, body = await fetch(session, f"{base}/api/events")
        assert status == 200 and orjson.loads(body)["data"]

    run(sim, scenario)


@pytest.mark.timeout(60)
def test_hang_times_out_the_client_and_others_are_served(sim: Simulator) -> None:
    sim.controls.script("/api/events", ["hang"])

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        hung = asyncio.create_task(fetch(session, f"{base}/api/events", aiohttp.ClientTimeout(total=0.5)))
        await asyncio.sleep(0.1)
        assert (await fetch(session, f"{base}/api/metrics"))[0] == 200
        with pytest.raises(asyncio.TimeoutError):
            await hung

    run(sim, scenario)


def test_slow_body_times_out_a_strict_reader(sim: Simulator) -> None:
    sim.controls.script("/api/events", [{"kind": "slow_body", "seconds": 2}])

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        strict = aiohttp.ClientTimeout(total=10, sock_read=0.05)
        async with session.get(f"{base}/api/events", timeout=strict) as response:
            assert response.status == 200
            with pytest.raises(asyncio.TimeoutError):
                await response.read()

    run(sim, scenario)


def test_predictive_503_fallback_to_smaller_pages(sim: Simulator) -> None:
    sim.controls.set_options(predictive_503_max_page=50)

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        status, _, body = await fetch(session, f"{base}/api/profiles?{PREDICTIVE}&page[size]=100")
        assert status == 503 and orjson.loads(body)["errors"][0]["code"] == "service_unavailable"
        status, _, body = await fetch(session, f"{base}/api/profiles?{PREDICTIVE}&page[size]=50")
        assert status == 200 and len(orjson.loads(body)["data"]) == 50
        assert (await fetch(session, f"{base}/api/profiles?page[size]=100"))[0] == 200

    run(sim, scenario)


def test_stats_count_app_errors_and_records(sim: Simulator) -> None:
    sim.controls.reset_stats()

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        assert (await fetch(session, f"{base}/api/events?page[size]=7"))[0] == 200
        assert (await fetch(session, f"{base}/api/events?page[size]=0"))[0] == 400
        async with session.get(f"{base}/__sim/stats") as response:
            stats = await response.json()
        assert stats["requests"] == {"get_events": 2}
        assert stats["records"] == {"get_events": 7}
        assert stats["statuses"] == {"200": 1, "400": 1}

    run(sim, scenario)
