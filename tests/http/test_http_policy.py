"""The HTTP policy as one table: an attempt's outcome and what the attempts so far cost -> the
resolution (accept, retry after N s, or fail with an error class, failure type and message)."""

from __future__ import annotations

import random
import socket
from typing import Any

import aiohttp
import orjson
import pytest

from klaviyo_source.errors import (
    AccessError,
    BadRequestError,
    MalformedResponseError,
    NoAnswerError,
    NotFoundError,
    RateLimitError,
    ScopeError,
    ServerError,
    UnreachableError,
)
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

# (outcome, tally, first_contact, expected): expected is Accept, ("retry", wait, throttled) or
# ("fail", error class, failure_type, status, words the message says)
TABLE: list[tuple[str, Outcome, Tally, bool, Any]] = [
    ("200", Outcome(200), FRESH, False, Accept),
    ("204", Outcome(204), FRESH, False, Accept),
    (
        "200 garbage, retries left",
        Outcome(200, malformed="invalid JSON"),
        FRESH,
        False,
        ("retry", 0.5, False),
    ),
    (
        "200 garbage, no retries left",
        Outcome(200, malformed="invalid JSON"),
        SPENT,
        False,
        ("fail", MalformedResponseError, "system_error", 200, "Malformed response from"),
    ),
    ("503 first", Outcome(503), FRESH, False, ("retry", 0.5, False)),
    ("503 second", Outcome(503), Tally(retries=1), False, ("retry", 1.0, False)),
    ("408", Outcome(408), FRESH, False, ("retry", 0.5, False)),
    (
        "503, no retries left",
        Outcome(503),
        SPENT,
        False,
        ("fail", ServerError, "transient_error", 503, "failed after 2 retries: HTTP 503"),
    ),
    ("timeout", Outcome(error=TimeoutError()), FRESH, False, ("retry", 0.5, False)),
    (
        "reset, no retries left",
        Outcome(error=aiohttp.ServerDisconnectedError()),
        SPENT,
        False,
        ("fail", NoAnswerError, "transient_error", None, "usually temporary"),
    ),
    ("refused mid-run", Outcome(error=_refused()), FRESH, False, ("retry", 0.5, False)),
    (
        "refused at first contact",
        Outcome(error=_refused()),
        FRESH,
        True,
        ("fail", UnreachableError, "config_error", None, "Could not reach Klaviyo at http://127.0.0.1:1"),
    ),
    (
        "DNS failure at first contact",
        Outcome(error=socket.gaierror(-2, "Name or service not known")),
        FRESH,
        True,
        ("fail", UnreachableError, "config_error", None, "Check base_url"),
    ),
    ("reset at first contact", Outcome(error=ConnectionResetError()), FRESH, True, ("retry", 0.5, False)),
    ("429 Retry-After 3", Outcome(429, headers={"Retry-After": "3"}), FRESH, False, ("retry", 3.0, True)),
    ("429 without Retry-After", Outcome(429), Tally(throttles=2), False, ("retry", 2.0, True)),
    (
        "429 past max_rate_limit_wait",
        Outcome(429, headers={"Retry-After": "30"}),
        Tally(throttle_waited=40.0),
        False,
        ("fail", RateLimitError, "transient_error", 429, "exceed max_rate_limit_wait (60s)"),
    ),
    (
        "401",
        Outcome(401, body=_klaviyo_error("Incorrect authentication credentials.")),
        FRESH,
        False,
        ("fail", AccessError, "config_error", 401, "rejected the API key (401 on /api/events)"),
    ),
    (
        "403 scope",
        Outcome(403, body=_klaviyo_error("Missing scope(s): events:read.")),
        FRESH,
        False,
        ("fail", ScopeError, "config_error", 403, "Grant the 'events:read' scope"),
    ),
    (
        "403 HTML edge page",
        Outcome(403, headers={"Content-Type": "text/html"}, body=b"<html>challenge</html>"),
        FRESH,
        False,
        ("fail", AccessError, "config_error", 403, "not a scope problem"),
    ),
    (
        "404",
        Outcome(404, body=_klaviyo_error("No such list.")),
        FRESH,
        False,
        ("fail", NotFoundError, "system_error", 404, "Not found (404)"),
    ),
    (
        "400",
        Outcome(400, body=_klaviyo_error("Invalid filter.")),
        FRESH,
        False,
        ("fail", BadRequestError, "system_error", 400, "invalid (HTTP 400) on http://127.0.0.1:1/api/events"),
    ),
]


@pytest.mark.parametrize(
    ("outcome", "tally", "first_contact", "expected"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_policy_table(outcome: Outcome, tally: Tally, first_contact: bool, expected: Any) -> None:
    resolution = resolve(outcome, tally, BUDGET, REQUEST, first_contact=first_contact, rng=LowRandom())
    if expected is Accept:
        assert isinstance(resolution, Accept)
    elif expected[0] == "retry":
        assert isinstance(resolution, Retry)
        assert resolution.wait == pytest.approx(expected[1])
        assert resolution.throttled is expected[2]
    else:
        _, kind, failure_type, status, says = expected
        assert isinstance(resolution, Fail)
        error = resolution.error
        assert type(error) is kind and error.failure_type == failure_type and error.status == status
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
        (Outcome(401), AccessError),
        (Outcome(error=_refused()), UnreachableError),
    ],
    ids=["200", "403", "404", "503", "timeout", "401", "refused"],
)
def test_preflight_stops_only_for_a_bad_key_or_an_unreachable_host(
    outcome: Outcome, stops: type[Exception] | None
) -> None:
    error = preflight_error(outcome, REQUEST, BUDGET)
    assert (type(error) if error is not None else None) is stops
