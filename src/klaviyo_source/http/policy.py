"""The HTTP policy: one pure function from what an attempt produced to what the client does next.

    outcome                                 resolution
    2xx                                     Accept (decode the body)
    2xx whose body does not decode          Retry with backoff; then MalformedResponseError
    429                                     Retry after Retry-After (+ jitter; without it 1 s doubling);
                                            RateLimitError once the waits would pass max_rate_limit_wait
    408, 5xx                                Retry with backoff; then ServerError (status = the last)
    timeout, reset, refused, DNS failure    Retry with backoff; then NoAnswerError (status None)
    refused / DNS failure, first contact    UnreachableError at once (base_url is wrong: a config error)
    401                                     AccessError (the key is wrong or revoked)
    403                                     ScopeError naming the scope (an HTML 403 is Klaviyo's edge,
                                            not a scope: AccessError)
    404                                     NotFoundError (detail fetches ignore it)
    other 4xx                               BadRequestError quoting Klaviyo's detail

Backoff: `backoff_base * 2^retry`, capped at 60 s, with jitter in [50 %, 100 %], up to
max_retries. Messages name the URL (never the key) and quote Klaviyo's `detail`.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
import orjson

from klaviyo_source.endpoints import scopes_for
from klaviyo_source.errors import (
    AccessError,
    BadRequestError,
    KlaviyoSourceError,
    MalformedResponseError,
    NoAnswerError,
    NotFoundError,
    RateLimitError,
    ScopeError,
    ServerError,
    UnreachableError,
)

# Exceptions of sending or reading that are the network's doing (anything else is a bug: raised).
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    asyncio.TimeoutError,
    aiohttp.ClientConnectionError,  # refused, DNS, reset, disconnected (ClientConnectorError, ...)
    aiohttp.ClientPayloadError,  # truncated body
    socket.gaierror,
    ConnectionError,
)
# The configured host cannot be reached at all (refused, no such name): a config error at first contact.
UNREACHABLE_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientConnectorError, socket.gaierror)


@dataclass(frozen=True)
class Outcome:
    """What one attempt produced: an HTTP answer, or the transport error that replaced it."""

    status: int | None = None  # None: no answer came
    error: BaseException | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    malformed: str | None = None  # a 2xx whose body did not decode: why


@dataclass(frozen=True)
class Request:
    """The request, as messages name it."""

    url: str  # with its query, never the key
    path: str
    base_url: str


@dataclass(frozen=True)
class Budget:
    max_retries: int
    max_rate_limit_wait: float
    backoff_base: float


@dataclass(frozen=True)
class Accept:
    """Decode the body."""


@dataclass(frozen=True)
class Retry:
    wait: float  # seconds
    reason: str  # "HTTP 503", "ServerDisconnectedError: ...", "Retry-After 3"
    throttled: bool = False  # a 429: pause the bucket, not a backoff retry


@dataclass(frozen=True)
class Fail:
    error: KlaviyoSourceError


Resolution = Accept | Retry | Fail


@dataclass(frozen=True)
class Tally:
    """What the attempts so far cost."""

    retries: int = 0  # backoff retries used
    throttles: int = 0  # 429s answered
    throttle_waited: float = 0.0  # seconds waited on 429s

    def after(self, retry: Retry) -> Tally:
        if retry.throttled:
            return Tally(self.retries, self.throttles + 1, self.throttle_waited + retry.wait)
        return Tally(self.retries + 1, self.throttles, self.throttle_waited)


def backoff_delay(attempt: int, base: float, *, cap: float = 60.0, rng: random.Random | None = None) -> float:
    """Delay before retry number `attempt` (0-based): base * 2^attempt, capped, with full jitter
    in [50 %, 100 %] so parallel workers do not retry in lockstep."""
    raw = min(cap, base * (2.0**attempt))
    return raw * (0.5 + 0.5 * (rng or random).random())


def retry_after_delay(header: str | None, *, default: float = 1.0, rng: random.Random | None = None) -> float:
    """Seconds to wait on a 429: Retry-After (integer seconds) plus up to 10 % jitter (min 50 ms)."""
    base: float
    try:
        base = float(header) if header is not None else default
    except ValueError:
        base = default
    base = max(0.0, base)
    return base + max(0.05, base * 0.1) * (rng or random).random()


def detail_of(body: bytes) -> str:
    """Klaviyo's `errors[0].detail` (or a short prefix of a non-JSON body)."""
    try:
        doc = orjson.loads(body)
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return str(first.get("detail") or first.get("title") or first.get("code") or "")
    except orjson.JSONDecodeError:
        pass
    text = body[:200].decode("utf-8", "replace").strip()
    return " ".join(text.split())


def _access_error(outcome: Outcome, request: Request, status: int) -> AccessError:
    detail = detail_of(outcome.body)
    path = request.path
    kind = AccessError
    if status == 401:
        message = (
            f"Klaviyo rejected the API key (401 on {path}): {(detail or 'not authenticated').rstrip('.')}. "
            "Check that the private API key is correct and not revoked."
        )
    elif "html" in outcome.headers.get("Content-Type", ""):
        message = (
            f"Klaviyo's edge refused the request (403 HTML page on {path}, likely a bot challenge), "
            "not a scope problem; retry later or from another network."
        )
    else:
        kind = ScopeError
        scope = "', '".join(scopes_for(path)) or "the matching read"
        message = (
            f"The API key lacks permission for {path} (403): {(detail or 'permission denied').rstrip('.')}. "
            f"Grant the '{scope}' scope to the key, or leave this stream out of the sync."
        )
    internal = f"GET {request.url} failed with status {status}: {detail}"
    return kind(message, internal, url=request.url, status=status)


def _transport_reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _throttled(
    outcome: Outcome, tally: Tally, budget: Budget, request: Request, rng: random.Random | None
) -> Resolution:
    retry_after = outcome.headers.get("Retry-After")
    # Without Retry-After: exponential from 1 s (Airbyte's behaviour), with jitter.
    fallback = max(1.0, backoff_delay(tally.throttles, 1.0, rng=rng))
    wait = retry_after_delay(retry_after, default=fallback, rng=rng)
    if tally.throttle_waited + wait > budget.max_rate_limit_wait:
        return Fail(
            RateLimitError(
                f"Klaviyo kept rate-limiting {request.url} (429); waited {tally.throttle_waited:.0f}s, "
                f"next Retry-After {retry_after}s would exceed max_rate_limit_wait "
                f"({budget.max_rate_limit_wait:g}s). Retry the sync later.",
                url=request.url,
                status=429,
            )
        )
    return Retry(wait, f"Retry-After {retry_after}", throttled=True)


def _backoff(
    outcome: Outcome, what: str, tally: Tally, budget: Budget, request: Request, rng: random.Random | None
) -> Resolution:
    attempt = tally.retries
    if attempt < budget.max_retries:
        return Retry(backoff_delay(attempt, budget.backoff_base, rng=rng), what)
    if outcome.malformed is not None:
        return Fail(
            MalformedResponseError(
                f"Malformed response from {request.url}: {what} (after {attempt} retries).",
                url=request.url,
                status=outcome.status,
            )
        )
    kind = NoAnswerError if outcome.status is None else ServerError
    return Fail(
        kind(
            f"Klaviyo request failed after {attempt} retries: {what} on {request.url}. "
            "This is usually temporary; retry the sync later.",
            url=request.url,
            status=outcome.status,
        )
    )


def resolve(
    outcome: Outcome,
    tally: Tally,
    budget: Budget,
    request: Request,
    *,
    first_contact: bool = False,
    rng: random.Random | None = None,
) -> Resolution:
    """What to do after `outcome`, given what the attempts so far cost. `first_contact`: this is
    the run's first request, so a host that cannot be reached at all is a wrong base_url."""
    if outcome.status is None:
        error = outcome.error or ConnectionError("no answer")
        reason = _transport_reason(error)
        if first_contact and tally.retries == 0 and isinstance(error, UNREACHABLE_ERRORS):
            return Fail(
                UnreachableError(
                    f"Could not reach Klaviyo at {request.base_url}: {reason}. "
                    "Check base_url and the network (DNS, firewall, proxy).",
                    url=request.url,
                )
            )
        return _backoff(outcome, reason, tally, budget, request, rng)
    status = outcome.status
    if outcome.malformed is not None:
        return _backoff(outcome, outcome.malformed, tally, budget, request, rng)
    if 200 <= status < 300:
        return Accept()
    if status == 429:
        return _throttled(outcome, tally, budget, request, rng)
    if status == 408 or status >= 500:
        return _backoff(outcome, f"HTTP {status}", tally, budget, request, rng)
    if status in (401, 403):
        return Fail(_access_error(outcome, request, status))
    detail = detail_of(outcome.body)
    if status == 404:
        return Fail(NotFoundError(f"Not found (404): {request.url}: {detail}", url=request.url, status=404))
    return Fail(
        BadRequestError(
            f"Klaviyo refused the request as invalid (HTTP {status}) on {request.url}: {detail}",
            url=request.url,
            status=status,
        )
    )


def preflight_error(outcome: Outcome, request: Request, budget: Budget) -> KlaviyoSourceError | None:
    """The error that must stop a run before it starts: a rejected key (401) or a base_url that
    cannot be reached. Anything else passes (a 403 only says the key lacks that one scope; a 5xx
    or a timeout is retried by the run's own requests)."""
    resolution = resolve(outcome, Tally(), budget, request, first_contact=True)
    if not isinstance(resolution, Fail):
        return None
    error = resolution.error
    if isinstance(error, UnreachableError) or (isinstance(error, AccessError) and error.status == 401):
        return error
    return None
