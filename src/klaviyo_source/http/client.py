"""The HTTP client: one aiohttp session, auth and revision headers, pacing and the retry loop.

`KlaviyoClient.get_json()` returns a parsed JSON:API document or raises one of the errors of
`klaviyo_source.errors` (`NotFoundError` for 404s, which detail fetches ignore), as the policy
of `http/policy.py` decides; `fetch` is a short loop around pacing, one attempt and that policy.
Messages name the URL (which never contains the key: it travels in the Authorization header
only) and quote Klaviyo's `detail`. Waits longer than a heartbeat period are cut into slices so the caller
can show life (`RequestObserver.heartbeat`), because the Airbyte platform kills a silent source.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Protocol, TypeVar

import aiohttp
import orjson
from yarl import URL

from klaviyo_source import jsonio
from klaviyo_source.config import Config
from klaviyo_source.endpoints import bucket_for, rate_for
from klaviyo_source.errors import NotFoundError, ServerError
from klaviyo_source.http.policy import (
    TRANSPORT_ERRORS,
    Accept,
    Budget,
    Fail,
    Outcome,
    Request,
    Tally,
    preflight_error,
    resolve,
)
from klaviyo_source.http.ratelimit import RateLimiters
from klaviyo_source.http.slots import Slots
from klaviyo_source.revision import REVISION

__all__ = ["KlaviyoClient", "NotFoundError", "RequestObserver", "ServerError", "decode_document", "preflight"]

HEARTBEAT_SECONDS = 25.0  # < 30 s: the platform kills a source silent for 60 s
# Cheap (page[size]=1) on an S-tier bucket (3/s, 60/min) whose only stream, tags, needs a page
# or two: the alternatives cost more (/api/accounts is XS, 1/s and 15/min, and its stream needs
# its one request; the unused buckets are endpoints the simulator does not serve).
PREFLIGHT_PATH = "/api/tags"
PREFLIGHT_PARAMS = {"page[size]": "1"}
PREFLIGHT_TIMEOUT = 10.0
JSON_BODY = {"Content-Type": "application/vnd.api+json"}


class RequestObserver(Protocol):
    """Per-stream counters and heartbeat; every method must be cheap and must not raise."""

    def on_request(self) -> None: ...
    def on_throttled(self, wait: float) -> None: ...
    def on_retry(self, reason: str, wait: float) -> None: ...
    def on_rate_wait(self, seconds: float) -> None: ...
    def heartbeat(self, message: str) -> None: ...


class NullObserver:
    """Counts nothing, says nothing (a base for observers that want a few of the calls)."""

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


NO_OBSERVER: RequestObserver = NullObserver()


T = TypeVar("T")


def decode_document(body: bytes) -> dict[str, Any]:
    """A JSON:API document with a `data` list or object; ValueError (-> retried) otherwise."""
    try:
        doc = jsonio.loads(body)  # integers beyond 64 bits stay exact (orjson would round them)
    except ValueError as error:
        raise ValueError(f"invalid JSON ({error})") from None
    if isinstance(doc, dict) and isinstance(doc.get("data"), list | dict):
        return doc
    raise ValueError("the document has no 'data' list or object")


class KlaviyoClient:
    """Async context manager around one aiohttp session."""

    def __init__(
        self, config: Config, *, limiters: RateLimiters | None = None, max_retries: int | None = None
    ):
        self.config = config
        self.limiters = limiters or RateLimiters()
        self.max_retries = config.max_retries if max_retries is None else max_retries
        self.budget = Budget(self.max_retries, config.max_rate_limit_wait, config.backoff_base)
        self._beats: dict[str, float] = {}  # bucket -> when its last heartbeat was said
        self._session: aiohttp.ClientSession | None = None
        # Requests in flight across every stream of the run (num_workers). Taken after pacing,
        # so a request waiting for its rate bucket does not hold a slot others could use; the
        # slowest published tier first (http/slots.py).
        self._in_flight = Slots(config.num_workers)

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
        return self._in_flight.free()

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

    async def _sleep(self, seconds: float, why: str, bucket: str, observer: RequestObserver) -> None:
        """Sleep, calling the heartbeat at least every HEARTBEAT_SECONDS: once per bucket, however
        many requests wait on it."""
        end = time.monotonic() + seconds
        while True:
            now = time.monotonic()
            left = end - now
            if left <= 0:
                return
            # 0.9: waiters wake up a little apart; the first one in a period speaks for all
            if seconds > HEARTBEAT_SECONDS and now - self._beats.get(bucket, -1e9) >= 0.9 * HEARTBEAT_SECONDS:
                self._beats[bucket] = now
                observer.heartbeat(f"{why}; {left:.0f}s left")
            await asyncio.sleep(min(left, HEARTBEAT_SECONDS))

    async def _pace(self, bucket: str, observer: RequestObserver) -> None:
        """Wait for the bucket's limiter and reserve a slot (`sent` or `unreserve` must follow)."""
        limiter = self.limiters.get(bucket)
        waited = 0.0
        while True:
            wait = limiter.delay()
            if wait <= 0:
                await limiter.reserve()
                break
            await self._sleep(wait, f"Pacing requests to Klaviyo's {bucket} rate limit", bucket, observer)
            waited += wait
        if waited:
            observer.on_rate_wait(waited)

    def _request(
        self, url: URL, params: Mapping[str, str] | None, method: str = "GET"
    ) -> tuple[Request, str]:
        """How messages name the request, and its rate bucket."""
        shown = str(url) if not params else f"{url}?{'&'.join(f'{k}={v}' for k, v in params.items())}"
        if method != "GET":
            shown = f"{method} {shown}"
        return Request(shown, url.path, self.config.base_url), bucket_for(
            url.path, {**url.query, **(params or {})}, method
        )

    async def _attempt(
        self,
        url: URL,
        params: Mapping[str, str] | None,
        bucket: str,
        observer: RequestObserver,
        timeout: float | None = None,
        body: bytes | None = None,
    ) -> tuple[Outcome, float]:
        """Pace, send once (a POST when there is a `body`) and read the answer (or the transport
        error); and when it took its slot."""
        if self._session is None:
            raise RuntimeError("KlaviyoClient used outside 'async with'")
        await self._pace(bucket, observer)
        limiter = self.limiters.get(bucket)
        observer.on_request()
        # (aiohttp reads timeout=None as "no timeout": pass the session's unless shortened)
        limit = self._session.timeout if timeout is None else aiohttp.ClientTimeout(total=timeout)
        sent_at: float | None = None
        try:
            async with self._in_flight.hold(rate_for(bucket)[1]):
                sent_at = limiter.sent()  # the rate windows count it from now, not from pacing
                sent = (
                    self._session.get(url, params=params, timeout=limit)
                    if body is None
                    else self._session.post(url, params=params, data=body, headers=JSON_BODY, timeout=limit)
                )
                try:
                    async with sent as response:
                        answer = await response.read()
                        limiter.answered(sent_at)
                        return Outcome(response.status, headers=response.headers, body=answer), sent_at
                except TRANSPORT_ERRORS as error:
                    return Outcome(error=error), sent_at
        finally:
            if sent_at is None:  # cancelled while waiting for a slot
                limiter.unreserve()

    async def get_json(
        self,
        path_or_url: str,
        params: Mapping[str, str] | None = None,
        *,
        observer: RequestObserver | None = None,
    ) -> dict[str, Any]:
        """GET a JSON:API document; retries per http/policy.py; raises the errors it names."""
        return await self.fetch(path_or_url, params, decode_document, observer=observer)

    async def post_json(
        self, path: str, json_body: Any, *, observer: RequestObserver | None = None
    ) -> dict[str, Any]:
        """POST a JSON:API query (the Reporting API) and return the document; as `get_json`."""
        return await self.fetch(path, None, decode_document, observer=observer, json_body=json_body)

    async def fetch(
        self,
        path_or_url: str,
        params: Mapping[str, str] | None,
        decode: Callable[[bytes], T],
        *,
        observer: RequestObserver | None = None,
        json_body: Any = None,
    ) -> T:
        """GET (or POST `json_body`) and decode a 2xx body with `decode` (ValueError = malformed:
        retried like a 5xx). The rate bucket follows from the method, path and parameters
        (klaviyo_source.endpoints)."""
        obs = observer or NO_OBSERVER
        url = self._url(path_or_url)
        body = None if json_body is None else orjson.dumps(json_body)
        request, bucket = self._request(url, params, "GET" if body is None else "POST")
        limiter = self.limiters.get(bucket)
        tally = Tally()
        while True:
            outcome, sent_at = await self._attempt(url, params, bucket, obs, body=body)
            resolution = resolve(outcome, tally, self.budget, request)
            if isinstance(resolution, Accept):
                limiter.observe(outcome.headers, sent_at)
                try:
                    return decode(outcome.body)
                except ValueError as error:
                    outcome = dataclasses.replace(outcome, malformed=str(error))
                resolution = resolve(outcome, tally, self.budget, request)
            if isinstance(resolution, Fail):
                raise resolution.error
            assert not isinstance(resolution, Accept)
            tally = tally.after(resolution)
            if resolution.throttled:
                limiter.pause(resolution.wait)
                obs.on_throttled(resolution.wait)
                why = f"Rate limited by Klaviyo on {request.path} (429)"
            else:
                obs.on_retry(resolution.reason, resolution.wait)
                why = f"Retrying {request.path} after {resolution.reason}"
            await self._sleep(resolution.wait, why, bucket, obs)


async def preflight(client: KlaviyoClient) -> None:
    """One cheap request before a run: AccessError when Klaviyo rejects the key (401),
    UnreachableError when base_url refuses the connection or does not resolve. Anything else
    passes: a 403 only means the key lacks that one scope, and transient trouble is retried by
    the run's own requests."""
    url = client._url(PREFLIGHT_PATH)
    request, bucket = client._request(url, PREFLIGHT_PARAMS)
    timeout = min(PREFLIGHT_TIMEOUT, client.config.request_timeout)
    outcome, _ = await client._attempt(url, PREFLIGHT_PARAMS, bucket, NO_OBSERVER, timeout)
    error = preflight_error(outcome, request, client.budget)
    if error is not None:
        raise error
