"""What to do with each response status or exception: one lookup table, one backoff formula.

The client's single retry loop classifies every outcome with `classify()` and acts on the
returned `Action`; the waits come from `backoff_delay()` (5xx-like) or `Retry-After` (429).
"""

from __future__ import annotations

import asyncio
import random
import socket
from enum import Enum

import aiohttp


class Action(Enum):
    OK = "ok"
    RATE_LIMITED = "rate_limited"  # wait Retry-After (+ jitter), bounded by max_rate_limit_wait
    BACKOFF = "backoff"  # exponential backoff with jitter, up to max_retries, then TransientError
    ACCESS = "access"  # 401/403: AccessError for this stream
    NOT_FOUND = "not_found"  # 404: the caller decides (detail fetches ignore it)
    BAD_REQUEST = "bad_request"  # 400 and other 4xx: a bug on our side, quote Klaviyo's detail


STATUS_ACTIONS: dict[int, Action] = {
    200: Action.OK,
    400: Action.BAD_REQUEST,
    401: Action.ACCESS,
    403: Action.ACCESS,
    404: Action.NOT_FOUND,
    408: Action.BACKOFF,
    429: Action.RATE_LIMITED,
}

# Exceptions raised while sending or reading, most specific first.
EXCEPTION_ACTIONS: tuple[tuple[type[BaseException], Action], ...] = (
    (asyncio.TimeoutError, Action.BACKOFF),
    (aiohttp.ClientConnectorError, Action.BACKOFF),  # DNS failure, refused connection
    (aiohttp.ServerDisconnectedError, Action.BACKOFF),
    (aiohttp.ClientPayloadError, Action.BACKOFF),  # truncated body
    (aiohttp.ClientOSError, Action.BACKOFF),  # connection reset
    (aiohttp.ClientConnectionError, Action.BACKOFF),
    (socket.gaierror, Action.BACKOFF),
    (ConnectionError, Action.BACKOFF),
)


def classify_status(status: int) -> Action:
    if status in STATUS_ACTIONS:
        return STATUS_ACTIONS[status]
    if 200 <= status < 300:
        return Action.OK
    if status >= 500:
        return Action.BACKOFF
    return Action.BAD_REQUEST


def classify_exception(error: BaseException) -> Action | None:
    """The action for a transport exception, or None when it is not ours to retry."""
    for kind, action in EXCEPTION_ACTIONS:
        if isinstance(error, kind):
            return action
    return None


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
