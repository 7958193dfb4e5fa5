"""Fault injection: scripted per-path sequences, random 5xx, and the predictive-analytics 503 rule.

A script is a path prefix (plus an optional method and query substring) with a sequence of
items; each matching API request takes the next item, then the path behaves normally again.
Items (JSON or Python):

    503, 500, 404, ...              that status with Klaviyo's error body (502/504: Cloudflare HTML)
    "ok"                            serve normally
    "reset"                         abort the connection (TCP RST) without answering
    "truncated"                     200, valid headers, the JSON body cut in the middle
    "invalid_json"                  200, a body that is not JSON
    "slow_body"                     headers now, the body trickled over `seconds`
    "cut_body"                      full Content-Length, half the body, then the connection closes
    "hang"                          never answer until the client goes away or the server stops
    {"status": 429, "retry_after": 7}               a scripted throttle
    {"status": 403, "html": true}                   Cloudflare's challenge page, not a scope error
    {"status": 403, "code": ..., "detail": ...}     any error with chosen texts
    {"kind": "slow_body", "seconds": 3}             a kind with parameters

This module also builds the error bodies (JSON:API `errors` and Cloudflare's HTML pages) and
the responses of the transport-level faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from klaviyo_simulator.errors import error_document

PREDICTIVE_TAG = "predictive_analytics"
DEFAULT_PROFILE_PAGE_SIZE = 20  # get_profiles' documented default page[size]
MAX_PROFILE_PAGE_SIZE = 100

KINDS = frozenset({"ok", "status", "reset", "truncated", "invalid_json", "slow_body", "cut_body", "hang"})
BODY_KINDS = frozenset({"truncated", "invalid_json", "slow_body", "cut_body"})  # need the real body
RANDOM_5XX = (500, 502, 503, 504)
HTML_BY_DEFAULT = frozenset({502, 504})  # Cloudflare answers these itself, as HTML

GATEWAY_REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}


@dataclass(frozen=True)
class Fault:
    """One scripted item, normalised."""

    kind: str
    status: int = 0
    retry_after: int = 0  # for 429: the Retry-After header (default 1)
    seconds: float = 0.0  # for slow_body / hang: duration (0 = the option's default)
    html: bool = False  # Cloudflare HTML page instead of Klaviyo's JSON error
    code: str | None = None
    title: str | None = None
    detail: str | None = None

    @property
    def label(self) -> str:
        """How stats name this fault: the kind, or the status for status faults."""
        return str(self.status) if self.kind == "status" else self.kind


def parse_item(item: Any) -> Fault:
    """Turn one sequence item (int, str or dict) into a `Fault`; ValueError if it is not one."""
    if isinstance(item, bool):
        raise ValueError(f"not a fault item: {item!r}")
    if isinstance(item, int):
        return _status_fault(item, {})
    if isinstance(item, str):
        if item not in KINDS or item == "status":
            raise ValueError(f"unknown fault kind {item!r}; expected a status or one of {sorted(KINDS)}")
        return Fault(kind=item)
    if isinstance(item, dict):
        unknown = set(item) - {"kind", "status", "retry_after", "seconds", "html", "code", "title", "detail"}
        if unknown:
            raise ValueError(f"unknown fault item keys {sorted(unknown)}")
        if "status" in item:
            return _status_fault(item["status"], item)
        kind = item.get("kind")
        if kind not in KINDS or kind == "status":
            raise ValueError(f"fault item needs a 'status' or a known 'kind': {item!r}")
        return Fault(kind=str(kind), seconds=_seconds(item.get("seconds", 0.0)))
    raise ValueError(f"not a fault item: {item!r}")


def _status_fault(status: Any, item: dict[str, Any]) -> Fault:
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"not an HTTP status: {status!r}")
    if 200 <= status < 300:
        return Fault(kind="ok")
    retry_after = item.get("retry_after", 1 if status == 429 else 0)
    if not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0:
        raise ValueError(f"retry_after must be a non-negative integer: {retry_after!r}")
    return Fault(
        kind="status",
        status=status,
        retry_after=retry_after,
        html=bool(item.get("html", status in HTML_BY_DEFAULT)),
        code=_optional_text(item.get("code")),
        title=_optional_text(item.get("title")),
        detail=_optional_text(item.get("detail")),
    )


def _seconds(value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValueError(f"seconds must be a non-negative number: {value!r}")
    return float(value)


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass
class Script:
    """A fault sequence bound to requests whose path starts with `path`."""

    path: str
    items: deque[Fault]
    query_contains: str | None = None
    method: str | None = None
    served: int = field(default=0)

    def matches(self, method: str, path: str, query: str) -> bool:
        if not path.startswith(self.path):
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return (
            self.query_contains is None
            or self.query_contains in query
            or self.query_contains in unquote(query)
        )

    def describe(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "query_contains": self.query_contains,
            "method": self.method,
            "remaining": [fault.label for fault in self.items],
            "served": self.served,
        }


class FaultBook:
    """The active scripts. Thread-safe: tests may script from another thread than the server's."""

    def __init__(self) -> None:
        self._scripts: list[Script] = []
        self._lock = threading.Lock()

    def script(
        self, path: str, sequence: list[Any], *, query_contains: str | None = None, method: str | None = None
    ) -> None:
        """Append a script; earlier scripts for overlapping paths are consumed first."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        faults = deque(parse_item(item) for item in sequence)
        with self._lock:
            self._scripts.append(Script(path, faults, query_contains, method))

    def take(self, method: str, path: str, query: str) -> tuple[Script, Fault] | None:
        """The next item for this request, removed from its script; None if no script matches."""
        with self._lock:
            for script in self._scripts:
                if script.items and script.matches(method, path, query):
                    script.served += 1
                    return script, script.items.popleft()
            return None

    def put_back(self, script: Script, fault: Fault) -> None:
        """Return an item the request could not use (it was throttled first)."""
        with self._lock:
            script.served -= 1
            script.items.appendleft(fault)

    def clear(self) -> None:
        with self._lock:
            self._scripts.clear()

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [script.describe() for script in self._scripts if script.items]


# --- the predictive-analytics 503 rule -------------------------------------------------------


def page_size(request: web.Request) -> int:
    """The request's page[size], or the profiles default when absent or unreadable."""
    try:
        return int(request.query.get("page[size]", DEFAULT_PROFILE_PAGE_SIZE))
    except ValueError:
        return DEFAULT_PROFILE_PAGE_SIZE


def predictive_503_probability(rate: float, size: int, in_flight: int) -> float:
    """Chance of a 503 for a profiles request with predictive_analytics.

    `rate` applies to a full page (100) with no other such request in flight; it scales
    linearly with page[size] and grows by half for each other predictive request in flight:
    p = rate x (size / 100) x (1 + 0.5 x (in_flight - 1)), capped at 1.
    """
    size_factor = max(1, size) / MAX_PROFILE_PAGE_SIZE
    load_factor = 1.0 + 0.5 * max(0, in_flight - 1)
    return min(1.0, max(0.0, rate * size_factor * load_factor))


# --- bodies ----------------------------------------------------------------------------------


def error_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def error_body(
    status: int,
    rng: random.Random,
    *,
    code: str | None = None,
    title: str | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    """Klaviyo's JSON:API error document with a seeded error id (see `errors.error_document`)."""
    return error_document(status, error_id=error_id(rng), code=code, title=title, detail=detail)


def throttled_detail(retry_after: int) -> str:
    """DRF's throttling text, which Klaviyo returns verbatim."""
    unit = "second" if retry_after == 1 else "seconds"
    return f"Request was throttled. Expected available in {retry_after} {unit}."


def throttled_body(retry_after: int, rng: random.Random) -> dict[str, Any]:
    return error_document(
        429,
        error_id=error_id(rng),
        detail=throttled_detail(retry_after),
        links={"type": "https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling#rate-limits"},
    )


def cloudflare_headers(rng: random.Random) -> dict[str, str]:
    return {"Server": "cloudflare", "CF-RAY": f"{rng.getrandbits(64):016x}-IAD"}


def gateway_page(status: int) -> str:
    """The bare HTML Cloudflare's edge sends for 502/503/504."""
    reason = GATEWAY_REASONS.get(status, "Error")
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


CHALLENGE_PAGE = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head>'
    "<body><noscript>Enable JavaScript and cookies to continue</noscript></body></html>"
)


def truncated(body: bytes) -> bytes:
    """The first half of the body (at least one byte short of it): valid HTTP, broken JSON."""
    return body[: max(0, min(len(body) - 1, len(body) // 2))] if body else b'{"data": ['


def invalid_json(body: bytes) -> bytes:
    """A body that no JSON parser accepts, however the original looked."""
    return b"{'data': <not json> " + body[:32]


# --- transport-level faults ------------------------------------------------------------------


def reset_connection(request: web.Request) -> None:
    """Abort the connection with a TCP RST (SO_LINGER 0), as a dropped upstream would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def hang(request: web.Request, release: asyncio.Event, max_seconds: float) -> None:
    """Wait without answering until the client disconnects, `release` is set, or max_seconds.

    Polls the transport because aiohttp does not cancel handlers when a client goes away.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    while not client_gone(request) and not release.is_set() and loop.time() < deadline:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), timeout=min(0.05, max(0.0, deadline - loop.time())))
    reset_connection(request)


async def slow_body(
    request: web.Request,
    body: bytes,
    *,
    status: int,
    headers: dict[str, str],
    seconds: float,
    chunks: int = 10,
) -> web.StreamResponse:
    """Send headers at once, then the body in `chunks` pieces spread over `seconds`."""
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = len(body)
    try:
        await response.prepare(request)
        step = max(1, -(-len(body) // chunks))
        for start in range(0, len(body), step):
            await asyncio.sleep(seconds / chunks)
            await response.write(body[start : start + step])
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client gave up while we trickled; nothing left to send
    return response


async def cut_body(
    request: web.Request, body: bytes, *, status: int, headers: dict[str, str]
) -> web.StreamResponse:
    """Promise the whole body (Content-Length), send half of it, then close the connection.

    A graceful close (FIN after the buffered half), not a reset: an RST could make the client's
    kernel drop the half that already arrived, and this fault is about an incomplete payload.
    """
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = max(1, len(body))
    try:
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
    except (ConnectionError, RuntimeError):
        pass  # the client is gone already
    if request.transport is not None:
        request.transport.close()
    return response
