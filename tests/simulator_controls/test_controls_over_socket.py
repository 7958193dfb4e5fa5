"""Controls behind a tiny aiohttp app, exercised by an aiohttp client over 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from controls_harness import FakeClock, fetch, serving

from klaviyo_simulator.controls import UNLIMITED_PER_MINUTE, ControlOptions, Controls

Scenario = Callable[[aiohttp.ClientSession, str], Awaitable[None]]
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
PREDICTIVE = "additional-fields[profile]=predictive_analytics"


def run(controls: Controls, scenario: Scenario) -> None:
    async def main() -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        async with serving(controls) as base, aiohttp.ClientSession(timeout=timeout) as session:
            await scenario(session, base)

    asyncio.run(main())


# --- rate limits -----------------------------------------------------------------------------


def test_xs_list_profile_count_allows_one_per_second_then_429() -> None:
    clock = FakeClock(1000.25)
    controls = Controls(ControlOptions(rate_limits=True), clock=clock)

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        url = f"{base}/api/lists/L1?additional-fields[list]=profile_count"
        status, headers, _ = await fetch(session, url)
        assert status == 200
        assert (headers["RateLimit-Limit"], headers["RateLimit-Remaining"]) == ("15", "14")
        assert headers["RateLimit-Reset"] == "20"  # window [960, 1020), now 1000.25
        status, headers, body = await fetch(session, url)
        assert status == 429
        assert headers["Retry-After"] == "1"
        assert not any(name in headers for name in RATE_HEADERS)
        (error,) = orjson.loads(body)["errors"]
        assert (error["status"], error["code"]) == (429, "throttled")
        assert error["detail"] == "Request was throttled. Expected available in 1 second."
        # the plain list bucket is separate
        assert (await fetch(session, f"{base}/api/lists/L1"))[0] == 200
        clock.advance(1.0)
        assert (await fetch(session, url))[0] == 200

    run(controls, scenario)
    stats = controls.stats()
    assert stats["throttled"] == {"get_list:profile_count": 1}
    assert stats["requests_by_bucket"] == {"get_list:profile_count": 3, "get_list": 1}
    assert stats["windows"]["get_list:profile_count"] == {"max_per_second": 2, "max_per_minute": 3}


def test_steady_window_throttle_carries_seconds_until_the_minute_ends() -> None:
    clock = FakeClock(960.0)
    controls = Controls(ControlOptions(rate_limits=True), clock=clock)

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        url = f"{base}/api/lists/L1?additional-fields[list]=profile_count"
        for second in range(15):
            clock.now = 960.0 + second
            assert (await fetch(session, url))[0] == 200
        clock.now = 960.0 + 17.5
        status, headers, body = await fetch(session, url)
        assert status == 429 and headers["Retry-After"] == "43"
        assert "Expected available in 43 seconds." in orjson.loads(body)["errors"][0]["detail"]

    run(controls, scenario)


def test_rate_headers_are_sent_with_limits_off_and_on_app_errors() -> None:
    """Limits off: the headers advertise a window nobody fills (nothing is enforced), so a client
    that follows them is not paced for Klaviyo's tier; `rate_headers` off strips them."""
    controls = Controls(clock=FakeClock(0.5))

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        for expected_remaining in ("999999", "999998"):
            status, headers, _ = await fetch(session, f"{base}/api/events")
            assert status == 200 and headers["RateLimit-Remaining"] == expected_remaining
            assert headers["RateLimit-Limit"] == str(UNLIMITED_PER_MINUTE)
            assert headers["Content-Type"] == "application/vnd.api+json"
        status, headers, _ = await fetch(session, f"{base}/api/missing")
        assert status == 404 and "RateLimit-Limit" not in headers  # not a routed API request
        controls.set_options(rate_limits=True)
        status, headers, _ = await fetch(session, f"{base}/api/events")
        assert (headers["RateLimit-Limit"], headers["RateLimit-Remaining"]) == ("3500", "3497")
        controls.set_options(rate_headers=False)
        status, headers, _ = await fetch(session, f"{base}/api/events")
        assert status == 200 and not any(name in headers for name in RATE_HEADERS)

    run(controls, scenario)
    assert controls.stats()["requests"] == {"get_events": 4, "other": 1}


def test_rate_limits_toggle_at_run_time() -> None:
    clock = FakeClock(10.5)
    controls = Controls(clock=clock)

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        url = f"{base}/api/lists/L1?additional-fields[list]=profile_count"
        assert [(await fetch(session, url))[0] for _ in range(3)] == [200, 200, 200]
        controls.set_options(rate_limits=True)
        assert (await fetch(session, url))[0] == 429
        async with session.post(f"{base}/__sim/options", json={"rate_limits": False}) as response:
            assert response.status == 200 and (await response.json())["rate_limits"] is False
        assert (await fetch(session, url))[0] == 200

    run(controls, scenario)


def test_a_throttled_request_leaves_its_scripted_item_for_the_next_one() -> None:
    clock = FakeClock(10.5)
    controls = Controls(ControlOptions(rate_limits=True), clock=clock)

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        url = f"{base}/api/lists/L1?additional-fields[list]=profile_count"
        assert (await fetch(session, url))[0] == 200
        controls.script("/api/lists", ["truncated"])
        assert (await fetch(session, url))[0] == 429
        clock.advance(1.0)
        status, _, body = await fetch(session, url)
        assert status == 200
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(body)

    run(controls, scenario)


# --- scripted faults -------------------------------------------------------------------------


def test_scripted_sequence_applies_in_order_then_normal() -> None:
    controls = Controls()
    controls.script("/api/events", [503, 503, "ok", 500])

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        results = [await fetch(session, f"{base}/api/events") for _ in range(5)]
        assert [status for status, _, _ in results] == [503, 503, 200, 500, 200]
        (error,) = orjson.loads(results[0][2])["errors"]
        assert (error["status"], error["code"]) == (503, "service_unavailable")
        assert results[0][1]["Content-Type"] == "application/vnd.api+json"
        assert (await fetch(session, f"{base}/api/profiles"))[0] == 200

    run(controls, scenario)
    assert controls.stats()["faults"] == {"503": 2, "500": 1}


def test_gateway_errors_are_cloudflare_html_and_403_can_be_a_challenge() -> None:
    controls = Controls()
    controls.script("/api/events", [502, 504, {"status": 403, "html": True}, {"status": 403, "detail": "no"}])

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        status, headers, body = await fetch(session, f"{base}/api/events")
        assert status == 502 and headers["Content-Type"].startswith("text/html")
        assert headers["Server"] == "cloudflare" and b"502 Bad Gateway" in body
        status, headers, body = await fetch(session, f"{base}/api/events")
        assert status == 504 and b"504 Gateway Time-out" in body
        status, headers, _ = await fetch(session, f"{base}/api/events")
        assert status == 403 and headers["cf-mitigated"] == "challenge"
        status, headers, body = await fetch(session, f"{base}/api/events")
        assert status == 403 and orjson.loads(body)["errors"][0]["detail"] == "no"

    run(controls, scenario)


def test_scripted_throttle_has_the_given_retry_after() -> None:
    controls = Controls()
    controls.script("/api/events", [{"status": 429, "retry_after": 7}])

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        status, headers, body = await fetch(session, f"{base}/api/events")
        assert status == 429 and headers["Retry-After"] == "7"
        assert not any(name in headers for name in RATE_HEADERS)
        assert orjson.loads(body)["errors"][0]["detail"].endswith("in 7 seconds.")

    run(controls, scenario)


def test_script_matches_on_query_substring() -> None:
    controls = Controls()
    controls.script("/api/profiles", [503], query_contains=PREDICTIVE)

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        assert (await fetch(session, f"{base}/api/profiles?page[size]=100"))[0] == 200
        assert (await fetch(session, f"{base}/api/profiles?{PREDICTIVE}&page[size]=100"))[0] == 503
        assert (await fetch(session, f"{base}/api/profiles?{PREDICTIVE}&page[size]=100"))[0] == 200

    run(controls, scenario)


def test_reset_is_a_client_connection_error() -> None:
    controls = Controls()
    # aiohttp's client silently retries an idempotent request once after a disconnect,
    # so it takes two resets in a row for the caller to see one
    controls.script("/api/events", ["reset", "reset"])

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        with pytest.raises(aiohttp.ClientConnectionError):
            await fetch(session, f"{base}/api/events")
        assert (await fetch(session, f"{base}/api/events"))[0] == 200

    run(controls, scenario)
    assert controls.stats()["faults"] == {"reset": 2}


def test_truncated_and_invalid_json_fail_to_decode() -> None:
    controls = Controls()
    controls.script("/api/events", ["truncated", "invalid_json"])

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        for _ in range(2):
            async with session.get(f"{base}/api/events?count=5") as response:
                assert response.status == 200
                with pytest.raises(ValueError):
                    await response.json(content_type=None)
        status, _, body = await fetch(session, f"{base}/api/events?count=5")
        assert status == 200 and len(orjson.loads(body)["data"]) == 5

    run(controls, scenario)
    assert controls.stats()["records"] == {"get_events": 5}


def test_slow_body_arrives_whole_or_times_out_a_strict_reader() -> None:
    controls = Controls()
    controls.script(
        "/api/events", [{"kind": "slow_body", "seconds": 0.5}, {"kind": "slow_body", "seconds": 2}]
    )

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        status, headers, body = await fetch(session, f"{base}/api/events?count=50")
        assert status == 200 and "RateLimit-Limit" in headers
        assert len(orjson.loads(body)["data"]) == 50
        strict = aiohttp.ClientTimeout(total=10, sock_read=0.05)
        async with session.get(f"{base}/api/events?count=50", timeout=strict) as response:
            assert response.status == 200  # headers came at once
            with pytest.raises(asyncio.TimeoutError):
                await response.read()

    run(controls, scenario)


def test_cut_body_is_a_payload_error() -> None:
    controls = Controls()
    controls.script("/api/events", ["cut_body"])

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        async with session.get(f"{base}/api/events?count=50") as response:
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
        assert (await fetch(session, f"{base}/api/events"))[0] == 200

    run(controls, scenario)
    assert controls.stats()["faults"] == {"cut_body": 1}


@pytest.mark.timeout(30)
def test_hang_times_out_the_client_without_blocking_others() -> None:
    controls = Controls()
    controls.script("/api/events", ["hang"])

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        hung = asyncio.create_task(fetch(session, f"{base}/api/events", aiohttp.ClientTimeout(total=0.5)))
        await asyncio.sleep(0.1)
        assert (await fetch(session, f"{base}/api/profiles"))[0] == 200  # others are served
        with pytest.raises(asyncio.TimeoutError):
            await hung
        for _ in range(100):  # the hang notices the client left
            if controls.stats()["in_flight"] == 0:
                break
            await asyncio.sleep(0.05)
        assert controls.stats()["in_flight"] == 0

    run(controls, scenario)
    assert controls.stats()["faults"] == {"hang": 1}


@pytest.mark.timeout(30)
def test_hang_does_not_block_shutdown() -> None:
    controls = Controls()
    controls.script("/api/events", ["hang"])
    outcome: list[BaseException] = []

    async def main() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            async with serving(controls) as base:
                hung = asyncio.create_task(fetch(session, f"{base}/api/events"))
                while controls.stats()["in_flight"] == 0:
                    await asyncio.sleep(0.02)
            # leaving `serving` ran runner.cleanup(); the hung request was released by on_shutdown
            try:
                await hung
            except aiohttp.ClientError as exc:
                outcome.append(exc)

    asyncio.run(main())
    assert len(outcome) == 1 and isinstance(outcome[0], aiohttp.ClientConnectionError)


# --- random faults and latency ---------------------------------------------------------------


def test_error_rate_one_makes_every_request_a_5xx() -> None:
    controls = Controls(ControlOptions(error_rate=1.0, seed=3))

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        statuses = {(await fetch(session, f"{base}/api/events"))[0] for _ in range(40)}
        assert statuses == {500, 502, 503, 504}

    run(controls, scenario)
    assert controls.stats()["faults_total"] == 40


def test_predictive_503_by_page_threshold_and_by_rate() -> None:
    controls = Controls(ControlOptions(predictive_503_max_page=50))

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        assert (await fetch(session, f"{base}/api/profiles?{PREDICTIVE}&page[size]=100"))[0] == 503
        assert (await fetch(session, f"{base}/api/profiles?{PREDICTIVE}&page[size]=50"))[0] == 200
        assert (await fetch(session, f"{base}/api/profiles?page[size]=100"))[0] == 200
        controls.set_options(predictive_503_max_page=0, predictive_503_rate=1.0)
        assert (await fetch(session, f"{base}/api/profiles?{PREDICTIVE}&page[size]=100"))[0] == 503
        statuses = [
            (await fetch(session, f"{base}/api/profiles?{PREDICTIVE}&page[size]=50"))[0] for _ in range(40)
        ]
        assert 200 in statuses and 503 in statuses  # p = 0.5 for page[size]=50, one at a time

    run(controls, scenario)


def test_latency_sleeps_without_blocking_so_requests_overlap() -> None:
    controls = Controls(ControlOptions(latency_ms=300, latency_per_record_ms=1, latency_jitter=0.2))

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        results = await asyncio.gather(*(fetch(session, f"{base}/api/events?count=10") for _ in range(8)))
        assert [status for status, _, _ in results] == [200] * 8

    run(controls, scenario)
    stats = controls.stats()
    assert stats["in_flight_peak"] == 8 and stats["in_flight"] == 0
    assert stats["records"] == {"get_events": 80}


# --- admin routes ----------------------------------------------------------------------------


def test_admin_routes_script_clear_and_report() -> None:
    controls = Controls()

    async def post(session: aiohttp.ClientSession, url: str, payload: Any) -> tuple[int, Any]:
        async with session.post(url, json=payload) as response:
            return response.status, await response.json()

    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        status, answer = await post(
            session, f"{base}/__sim/faults", {"path": "/api/events", "sequence": [503, "ok", 500]}
        )
        assert status == 200 and answer["scripts"][0]["remaining"] == ["503", "ok", "500"]
        assert (await fetch(session, f"{base}/api/events"))[0] == 503
        async with session.get(f"{base}/__sim/faults") as response:
            assert (await response.json())["scripts"][0]["remaining"] == ["ok", "500"]
        async with session.delete(f"{base}/__sim/faults") as response:
            assert response.status == 200
        assert (await fetch(session, f"{base}/api/events"))[0] == 200
        status, answer = await post(
            session, f"{base}/__sim/faults", {"path": "/api/events", "sequence": ["x"]}
        )
        assert status == 400 and "unknown fault kind" in answer["error"]
        status, answer = await post(session, f"{base}/__sim/options", {"no_such_option": 1})
        assert status == 400
        async with session.get(f"{base}/__sim/stats") as response:
            stats = await response.json()
        assert stats["requests"] == {"get_events": 2} and stats["faults"] == {"503": 1}
        assert stats["statuses"] == {"503": 1, "200": 1}
        async with session.post(f"{base}/__sim/stats/reset") as response:
            assert (await response.json())["requests_total"] == 0

    run(controls, scenario)
