"""The HTTP client: one aiohttp session, auth and revision headers, pacing and the retry loop.

`KlaviyoClient.get_json()` returns a parsed JSON:API document or raises one of the errors of
`klaviyo_source.errors` (plus `NotFoundError` for 404s, which detail fetches ignore). Messages
name the URL (which never contains the key: it travels in the Authorization header only) and
quote Klaviyo's `detail`. Waits longer than a heartbeat period are cut into slices so the caller
can show life (`RequestObserver.heartbeat`), because the Airbyte platform kills a silent source.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Protocol, TypeVar

import aiohttp
import orjson
from yarl import URL

from klaviyo_source.config import Config
from klaviyo_source.errors import AccessError, KlaviyoSourceError, MalformedResponseError, TransientError
from klaviyo_source.http.ratelimit import RateLimiters
from klaviyo_source.http.retry import (
    Action,
    backoff_delay,
    classify_exception,
    classify_status,
    retry_after_delay,
)
from klaviyo_source.revision import REVISION

HEARTBEAT_SECONDS = 25.0  # < 30 s: the platform kills a source silent for 60 s

# path prefix -> (rate bucket, scope that reads it)
_ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("/api/events", "get_events", "events:read"),
    ("/api/profiles", "get_profiles", "profiles:read"),
    ("/api/templates", "get_templates", "templates:read"),
    ("/api/lists/", "get_list", "lists:read"),
    ("/api/lists", "get_lists", "lists:read"),
    ("/api/campaign-recipient-estimations", "get_campaign_recipient_estimation", "campaigns:read"),
    ("/api/campaigns", "get_campaigns", "campaigns:read"),
    ("/api/metrics", "get_metrics", "metrics:read"),
    ("/api/flows", "get_flows", "flows:read"),
    ("/api/accounts", "get_accounts", "accounts:read"),
)


def endpoint_of(path: str) -> tuple[str, str]:
    """(rate bucket, scope) of an API path; unknown paths get the strictest bucket."""
    for prefix, bucket, scope in _ENDPOINTS:
        if path.startswith(prefix):
            return bucket, scope
    return "unknown", "the matching read scope"


class NotFoundError(KlaviyoSourceError):
    """404: the resource does not exist (detail fetches skip it)."""

    status = 404


class ServerError(TransientError):
    """5xx (or timeouts) that outlived the retries; `status` is the last HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RequestObserver(Protocol):
    """Per-stream counters and heartbeat; every method must be cheap and must not raise."""

    def on_request(self) -> None: ...
    def on_throttled(self, wait: float) -> None: ...
    def on_retry(self, reason: str, wait: float) -> None: ...
    def on_rate_wait(self, seconds: float) -> None: ...
    def heartbeat(self, message: str) -> None: ...


class _NoObserver:
    def on_request(self) -> None:
        pass

    def on_throttled(self, wait: float) -> None:
        pass

    def on_retry(self, reason: str, wait: float) -> None:
        pass

    def on_rate_wait(self, seconds: float) -> None:
        pass

    def heartbeat(self, message: str) -> None:
        pass


NO_OBSERVER: RequestObserver = _NoObserver()


T = TypeVar("T")


def decode_document(body: bytes) -> dict[str, Any]:
    """A JSON:API document with a `data` list or object; ValueError (-> retried) otherwise."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"invalid JSON ({error})") from None
    if isinstance(doc, dict) and isinstance(doc.get("data"), list | dict):
        return doc
    raise ValueError("the document has no 'data' list or object")


def _detail(body: bytes) -> str:
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


def _access_error(status: int, path: str, url: str, body: bytes, content_type: str) -> AccessError:
    detail = _detail(body)
    _, scope = endpoint_of(path)
    if status == 401:
        message = (
            f"Klaviyo rejected the API key (401 on {path}): {(detail or 'not authenticated').rstrip('.')}. "
            "Check that the private API key is correct and not revoked."
        )
    elif "html" in content_type:
        message = (
            f"Klaviyo's edge refused the request (403 HTML page on {path}, likely a bot challenge), "
            "not a scope problem; retry later or from another network."
        )
    else:
        message = (
            f"The API key lacks permission for {path} (403): {(detail or 'permission denied').rstrip('.')}. "
            f"Grant the '{scope}' scope to the key, or leave this stream out of the sync."
        )
    return AccessError(message, f"GET {url} failed with status {status}: {detail}")


class KlaviyoClient:
    """Async context manager around one aiohttp session."""

    def __init__(
        self, config: Config, *, limiters: RateLimiters | None = None, max_retries: int | None = None
    ):
        self.config = config
        self.limiters = limiters or RateLimiters()
        self.max_retries = config.max_retries if max_retries is None else max_retries
        self._session: aiohttp.ClientSession | None = None
        # Requests in flight across every stream of the run (num_workers). Taken after pacing,
        # so a request waiting for its rate bucket does not hold a slot others could use.
        self._in_flight = asyncio.Semaphore(config.num_workers)

    async def __aenter__(self) -> KlaviyoClient:
        connector = aiohttp.TCPConnector(limit=max(10, self.config.num_workers * 2), ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            base_url=None,
            connector=connector,
            headers={
                "Authorization": f"Klaviyo-API-Key {self.config.api_key}",
                "revision": REVISION,
                "Accept": "application/vnd.api+json",
            },
            timeout=aiohttp.ClientTimeout(total=self.config.request_timeout),
            raise_for_status=False,
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def free_slots(self) -> int:
        """Request slots (of num_workers) nobody is using or waiting for right now."""
        if self._in_flight.locked():
            return 0
        return self._in_flight._value  # asyncio keeps the count private; it is the free capacity

    def _url(self, path_or_url: str) -> URL:
        if path_or_url.startswith(("http://", "https://")):
            url = URL(path_or_url, encoded=True)  # links.next comes percent-encoded already
            base = URL(self.config.base_url)
            if url.origin() != base.origin():
                # Klaviyo names its own host in links; keep going through the configured base URL
                # (a proxy, a simulator), never to a host the user did not configure.
                url = url.with_scheme(base.scheme).with_host(base.host or "").with_port(base.explicit_port)
            return url
        return URL(self.config.base_url + path_or_url)

    async def _sleep(self, seconds: float, why: str, observer: RequestObserver) -> None:
        """Sleep, calling the heartbeat at least every HEARTBEAT_SECONDS."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            if seconds > HEARTBEAT_SECONDS:
                observer.heartbeat(f"{why}; {left:.0f}s left")
            await asyncio.sleep(min(left, HEARTBEAT_SECONDS))

    async def _pace(self, bucket: str, observer: RequestObserver) -> float:
        """Wait for the bucket's limiter; returns the moment the request took its slot."""
        limiter = self.limiters.get(bucket)
        waited = 0.0
        while True:
            wait = limiter.delay()
            if wait <= 0:
                await limiter.acquire()
                sent_at = limiter.last_acquired  # read before any other task can acquire
                break
            await self._sleep(wait, f"Pacing requests to Klaviyo's {bucket} rate limit", observer)
            waited += wait
        if waited:
            observer.on_rate_wait(waited)
        return sent_at

    async def get_json(
        self,
        path_or_url: str,
        params: Mapping[str, str] | None = None,
        *,
        bucket: str | None = None,
        observer: RequestObserver | None = None,
    ) -> dict[str, Any]:
        """GET a JSON:API document; retries per http/retry.py; raises the errors documented above."""
        return await self.fetch(path_or_url, params, decode_document, bucket=bucket, observer=observer)

    async def fetch(
        self,
        path_or_url: str,
        params: Mapping[str, str] | None,
        decode: Callable[[bytes], T],
        *,
        bucket: str | None = None,
        observer: RequestObserver | None = None,
    ) -> T:
        """GET and decode a 200 body with `decode` (ValueError = malformed: retried like a 5xx)."""
        if self._session is None:
            raise RuntimeError("KlaviyoClient used outside 'async with'")
        obs = observer or NO_OBSERVER
        url = self._url(path_or_url)
        path = url.path
        bucket = bucket or endpoint_of(path)[0]
        limiter = self.limiters.get(bucket)
        attempt = 0  # backoff retries used
        throttle_waited = 0.0
        throttles = 0
        shown = str(url) if not params else f"{url}?{'&'.join(f'{k}={v}' for k, v in params.items())}"
        while True:
            sent_at = await self._pace(bucket, obs)
            obs.on_request()
            status = 0
            reason = ""
            try:
                async with self._in_flight, self._session.get(url, params=params) as response:
                    status = response.status
                    body = await response.read()
                    action = classify_status(status)
                    if action is Action.OK:
                        limiter.observe(response.headers, sent_at)
                        try:
                            return decode(body)
                        except ValueError as error:
                            reason = str(error)
                        action = Action.BACKOFF
                        status = -1  # malformed marker
                    retry_after = response.headers.get("Retry-After")
                    content_type = response.headers.get("Content-Type", "")
            except Exception as error:  # transport trouble; classified below
                action_or_none = classify_exception(error)
                if action_or_none is None:
                    raise
                action = action_or_none
                reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                retry_after = None
                content_type = ""
                body = b""

            if action is Action.RATE_LIMITED:
                throttles += 1
                # Without Retry-After: exponential from 1 s (Airbyte's behaviour), with jitter.
                fallback = max(1.0, backoff_delay(throttles - 1, 1.0))
                wait = retry_after_delay(retry_after, default=fallback)
                if throttle_waited + wait > self.config.max_rate_limit_wait:
                    raise TransientError(
                        f"Klaviyo kept rate-limiting {shown} (429); waited {throttle_waited:.0f}s, "
                        f"next Retry-After {retry_after}s would exceed max_rate_limit_wait "
                        f"({self.config.max_rate_limit_wait:g}s). Retry the sync later."
                    )
                limiter.pause(wait)
                obs.on_throttled(wait)
                throttle_waited += wait
                await self._sleep(wait, f"Rate limited by Klaviyo on {path} (429)", obs)
                continue
            if action is Action.BACKOFF:
                what = reason if status in (0, -1) else f"HTTP {status}"
                if attempt >= self.max_retries:
                    if status == -1:
                        raise MalformedResponseError(
                            f"Malformed response from {shown}: {reason} (after {attempt} retries)."
                        )
                    raise ServerError(
                        f"Klaviyo request failed after {attempt} retries: {what} on {shown}. "
                        "This is usually temporary; retry the sync later.",
                        status,
                    )
                wait = backoff_delay(attempt, self.config.backoff_base)
                attempt += 1
                obs.on_retry(what, wait)
                await self._sleep(wait, f"Retrying {path} after {what}", obs)
                continue
            if action is Action.ACCESS:
                raise _access_error(status, path, shown, body, content_type)
            if action is Action.NOT_FOUND:
                raise NotFoundError(f"Not found (404): {shown}: {_detail(body)}")
            raise KlaviyoSourceError(
                f"Klaviyo refused the request as invalid (HTTP {status}) on {shown}: {_detail(body)}"
            )
