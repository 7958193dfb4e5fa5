"""The HTTP policy as one table: an attempt's outcome and what the attempts so far cost -> the
resolution (accept, retry after N s, or fail with an error class, failure type and message)."""

from __future__ import annotations

import random
import socket
from typing import Any

import aiohttp
import orjson
import pytest

from klaviyo_source import errors
from klaviyo_source.http.policy import (
    Accept,
    Budget,
    Fail,
    Outcome,
    Request,
    Retry,
    Tally,
    preflight_error,
    resolve,
)

REQUEST = Request("http://127.0.0.1:1/api/events?page[size]=1", "/api/events", "http://127.0.0.1:1")
BUDGET = Budget(max_retries=2, max_rate_limit_wait=60.0, backoff_base=1.0)


class LowRandom(random.Random):
    """Jitter at its low end: backoff waits are half the raw delay, Retry-After waits exact."""

    def random(self) -> float:
        return 0.0


def _klaviyo_error(detail: str) -> bytes:
    return orjson.dumps({"errors": [{"status": 403, "detail": detail}]})


def _refused() -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connect call failed"))


FRESH = Tally()
SPENT = Tally(retries=2)


def retry(wait: float, *, throttled: bool = False) -> tuple[Any, ...]:
    return ("retry", wait, throttled)


def fail(kind: type[errors.KlaviyoSourceError], status: int | None, says: str) -> tuple[Any, ...]:
    return ("fail", kind, status, says)


def row(name: str, outcome: Outcome, expected: Any, tally: Tally = FRESH, first: bool = False) -> Any:
    return pytest.param(outcome, tally, first, expected, id=name)


GARBAGE = Outcome(200, malformed="invalid JSON")
RESET = Outcome(error=aiohttp.ServerDisconnectedError())
DNS = Outcome(error=socket.gaierror(-2, "Name or service not known"))
EDGE = Outcome(403, headers={"Content-Type": "text/html"}, body=b"<html>challenge</html>")

TABLE = [
    row("200", Outcome(200), Accept),
    row("204", Outcome(204), Accept),
    row("200 garbage, retries left", GARBAGE, retry(0.5)),
    row(
        "200 garbage, no retries left", GARBAGE, fail(errors.MalformedResponseError, 200, "Malformed"), SPENT
    ),
    row("503 first", Outcome(503), retry(0.5)),
    row("503 second", Outcome(503), retry(1.0), Tally(retries=1)),
    row("408", Outcome(408), retry(0.5)),
    row(
        "503, no retries left",
        Outcome(503),
        fail(errors.ServerError, 503, "after 2 retries: HTTP 503"),
        SPENT,
    ),
    row("timeout", Outcome(error=TimeoutError()), retry(0.5)),
    row("reset, no retries left", RESET, fail(errors.NoAnswerError, None, "usually temporary"), SPENT),
    row("refused mid-run", Outcome(error=_refused()), retry(0.5)),
    row(
        "refused at first contact",
        Outcome(error=_refused()),
        fail(errors.UnreachableError, None, "Could not reach Klaviyo at http://127.0.0.1:1"),
        first=True,
    ),
    row(
        "DNS failure at first contact", DNS, fail(errors.UnreachableError, None, "Check base_url"), first=True
    ),
    row("reset at first contact", Outcome(error=ConnectionResetError()), retry(0.5), first=True),
    row("429 Retry-After 3", Outcome(429, headers={"Retry-After": "3"}), retry(3.0, throttled=True)),
    row("429 without Retry-After", Outcome(429), retry(2.0, throttled=True), Tally(throttles=2)),
    row(
        "429 past max_rate_limit_wait",
        Outcome(429, headers={"Retry-After": "30"}),
        fail(errors.RateLimitError, 429, "exceed max_rate_limit_wait (60s)"),
        Tally(throttle_waited=40.0),
    ),
    row(
        "401",
        Outcome(401, body=_klaviyo_error("Incorrect authentication credentials.")),
        fail(errors.AccessError, 401, "rejected the API key (401 on /api/events)"),
    ),
    row(
        "403 scope",
        Outcome(403, body=_klaviyo_error("Missing scope(s): events:read.")),
        fail(errors.ScopeError, 403, "Grant the 'events:read' scope"),
    ),
    row("403 HTML edge page", EDGE, fail(errors.AccessError, 403, "not a scope problem")),
    row(
        "404", Outcome(404, body=_klaviyo_error("Nope.")), fail(errors.NotFoundError, 404, "Not found (404)")
    ),
    row(
        "400",
        Outcome(400, body=_klaviyo_error("Invalid filter.")),
        fail(
            errors.BadRequestError,
            400,
            "invalid (HTTP 400) on http://127.0.0.1:1/api/events?page[size]=1: Invalid filter.",
        ),
    ),
]
FAILURE_TYPES = {
    errors.UnreachableError: "config_error",
    errors.AccessError: "config_error",
    errors.ScopeError: "config_error",
    errors.ServerError: "transient_error",
    errors.NoAnswerError: "transient_error",
    errors.RateLimitError: "transient_error",
}


@pytest.mark.parametrize(("outcome", "tally", "first_contact", "expected"), TABLE)
def test_policy_table(outcome: Outcome, tally: Tally, first_contact: bool, expected: Any) -> None:
    resolution = resolve(outcome, tally, BUDGET, REQUEST, first_contact=first_contact, rng=LowRandom())
    if expected is Accept:
        assert isinstance(resolution, Accept)
    elif expected[0] == "retry":
        assert isinstance(resolution, Retry)
        assert resolution.wait == pytest.approx(expected[1])
        assert resolution.throttled is expected[2]
    else:
        _, kind, status, says = expected
        assert isinstance(resolution, Fail)
        error = resolution.error
        assert type(error) is kind and error.status == status
        assert error.failure_type == FAILURE_TYPES.get(kind, "system_error")
        assert says in error.message, error.message
        assert error.url == REQUEST.url and error.stream is None


def test_tally_counts_retries_and_throttle_waits_apart() -> None:
    tally = Tally().after(Retry(3.0, "Retry-After 3", throttled=True)).after(Retry(0.5, "HTTP 503"))
    assert tally == Tally(retries=1, throttles=1, throttle_waited=3.0)


@pytest.mark.parametrize(
    ("outcome", "stops"),
    [
        (Outcome(200), None),
        (Outcome(403, body=_klaviyo_error("Missing scope(s): tags:read.")), None),  # the key is good
        (Outcome(404), None),
        (Outcome(503), None),  # the run's own requests retry it
        (Outcome(error=TimeoutError()), None),
        (Outcome(401), errors.AccessError),
        (Outcome(error=_refused()), errors.UnreachableError),
    ],
    ids=["200", "403", "404", "503", "timeout", "401", "refused"],
)
def test_preflight_stops_only_for_a_bad_key_or_an_unreachable_host(
    outcome: Outcome, stops: type[Exception] | None
) -> None:
    error = preflight_error(outcome, REQUEST, BUDGET)
    assert (type(error) if error is not None else None) is stops
