"""Connector configuration: one table of fields, from which both validation and the SPEC come.

Accepted keys are a superset of Airbyte's `source-klaviyo` spec; unknown keys are ignored.
`start_date` accepts `YYYY-MM-DDTHH:MM:SSZ` (Airbyte's pattern), any ISO-8601 datetime with an
offset, and plain `YYYY-MM-DD` (what Airbyte's setup guide tells users to type).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from klaviyo_source.errors import ConfigError

DEFAULT_BASE_URL = "https://a.klaviyo.com"


@dataclass(frozen=True)
class Config:
    api_key: str
    start_date: datetime | None = None
    disable_fetching_predictive_analytics: bool = False
    num_workers: int = 30
    lookback_window: int = 0
    base_url: str = DEFAULT_BASE_URL
    # Advanced knobs (tests use small values; defaults suit production).
    request_timeout: float = 60.0
    max_rate_limit_wait: float = 600.0
    max_retries: int = 6
    backoff_base: float = 1.0

    def __repr__(self) -> str:  # never print the key
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if k != "api_key")
        return f"Config(api_key='***', {fields})"


# name -> (JSON Schema of the property, python type check, human expectation)
SPEC_PROPERTIES: dict[str, dict[str, Any]] = {
    "api_key": {
        "type": "string",
        "title": "Api Key",
        "description": "Klaviyo private API key (starts with pk_). See "
        "https://help.klaviyo.com/hc/en-us/articles/7423954176283 .",
        "airbyte_secret": True,
        "order": 0,
    },
    "start_date": {
        "type": "string",
        "title": "Start Date",
        "description": "UTC date and time in the format 2017-01-25T00:00:00Z (or 2017-01-25). "
        "Any data before this date will not be replicated. If not provided, all data will be "
        "replicated.",
        "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
        r"(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:?[0-9]{2}))?$",
        "examples": ["2017-01-25T00:00:00Z", "2017-01-25"],
        "order": 1,
    },
    "disable_fetching_predictive_analytics": {
        "type": "boolean",
        "title": "Disable Fetching Predictive Analytics",
        "description": "Do not request predictive_analytics on profiles (it lowers Klaviyo's rate "
        "limit for profiles and can cause 503s under load); the field is then absent.",
        "default": False,
        "order": 2,
    },
    "num_workers": {
        "type": "integer",
        "title": "Number of concurrent workers",
        "description": "Maximum number of requests in flight at once, across all streams.",
        "minimum": 1,
        "maximum": 100,
        "default": 30,
        "examples": [1, 10, 30],
        "order": 3,
    },
    "lookback_window": {
        "type": "integer",
        "title": "Lookback Window (Days)",
        "description": "Days re-read before the saved cursor on incremental events and "
        "events_detailed syncs, to catch late-arriving events.",
        "minimum": 0,
        "default": 0,
        "examples": [0, 7],
        "order": 4,
    },
    "base_url": {
        "type": "string",
        "title": "API base URL",
        "description": "Klaviyo API base URL; change only to point at a simulator or proxy.",
        "default": DEFAULT_BASE_URL,
        "pattern": "^https?://",
        "order": 5,
    },
    "request_timeout": {
        "type": "number",
        "title": "Request timeout (seconds)",
        "description": "Per-request timeout; a request that takes longer is retried.",
        "exclusiveMinimum": 0,
        "default": 60,
        "order": 6,
    },
    "max_rate_limit_wait": {
        "type": "number",
        "title": "Maximum rate-limit wait (seconds)",
        "description": "Longest total time one request may wait on 429 Retry-After before its "
        "stream fails with a transient error.",
        "minimum": 0,
        "default": 600,
        "order": 7,
    },
    "max_retries": {
        "type": "integer",
        "title": "Maximum retries on server errors",
        "description": "Retries per request on 5xx, timeouts and connection errors.",
        "minimum": 0,
        "maximum": 20,
        "default": 6,
        "order": 8,
    },
    "backoff_base": {
        "type": "number",
        "title": "Backoff base (seconds)",
        "description": "First exponential-backoff delay on server errors (doubles each retry, with jitter).",
        "minimum": 0,
        "default": 1,
        "order": 9,
    },
}

CONNECTION_SPECIFICATION: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Klaviyo Spec",
    "type": "object",
    "required": ["api_key"],
    "additionalProperties": True,
    "properties": SPEC_PROPERTIES,
}

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_start_date(value: str) -> datetime:
    """Parse a start_date; naive datetimes are taken as UTC."""
    text = value.strip()
    if _DATE_ONLY.match(text):
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    if not re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", text):
        raise ValueError(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _expect(key: str, expectation: str) -> ConfigError:
    return ConfigError(f"Invalid config: '{key}' must be {expectation}.")


def _number(
    raw: dict[str, Any],
    key: str,
    *,
    integer: bool,
    minimum: float,
    maximum: float | None,
    exclusive_min: bool = False,
) -> float | int | None:
    if key not in raw or raw[key] is None:
        return None
    value = raw[key]
    kind = "an integer" if integer else "a number"
    bounds = f" >= {minimum:g}" if not exclusive_min else f" > {minimum:g}"
    if maximum is not None:
        bounds += f" and <= {maximum:g}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _expect(key, kind + bounds)
    if integer and isinstance(value, float):
        if not value.is_integer():
            raise _expect(key, kind + bounds)
        value = int(value)
    if value != value or value in (float("inf"), float("-inf")):  # NaN / inf
        raise _expect(key, kind + bounds)
    too_small = value <= minimum if exclusive_min else value < minimum
    if too_small or (maximum is not None and value > maximum):
        raise _expect(key, kind + bounds)
    number: float | int = value
    return number


def parse_config(raw: Any, *, api_key_override: str | None = None) -> Config:
    """Validate a config document; raise ConfigError naming the offending key."""
    if not isinstance(raw, dict):
        raise ConfigError("Invalid config: expected a JSON object.")
    api_key = api_key_override if api_key_override is not None else raw.get("api_key")
    if not isinstance(api_key, str) or not api_key.strip():
        raise _expect("api_key", "a non-empty string (your Klaviyo private API key)")
    values: dict[str, Any] = {"api_key": api_key.strip()}

    start = raw.get("start_date")
    if start not in (None, ""):
        if not isinstance(start, str):
            raise _expect("start_date", "a date such as 2024-01-31 or 2024-01-31T00:00:00Z")
        try:
            values["start_date"] = parse_start_date(start)
        except ValueError:
            raise _expect("start_date", "a date such as 2024-01-31 or 2024-01-31T00:00:00Z") from None

    flag = raw.get("disable_fetching_predictive_analytics")
    if flag is not None:
        if not isinstance(flag, bool):
            raise _expect("disable_fetching_predictive_analytics", "true or false")
        values["disable_fetching_predictive_analytics"] = flag

    base_url = raw.get("base_url")
    if base_url is not None:
        parts = urlsplit(base_url) if isinstance(base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise _expect("base_url", "an http(s) URL such as https://a.klaviyo.com")
        if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
            # Credentials in the URL would be sent instead of (or beside) the API key header.
            raise _expect("base_url", "a plain http(s) URL without credentials, query or fragment")
        values["base_url"] = base_url.rstrip("/")

    numeric = {
        "num_workers": dict(integer=True, minimum=1, maximum=100),
        "lookback_window": dict(integer=True, minimum=0, maximum=3650),
        "request_timeout": dict(integer=False, minimum=0, maximum=3600, exclusive_min=True),
        "max_rate_limit_wait": dict(integer=False, minimum=0, maximum=86400),
        "max_retries": dict(integer=True, minimum=0, maximum=20),
        "backoff_base": dict(integer=False, minimum=0, maximum=300),
    }
    for key, rules in numeric.items():
        value = _number(raw, key, **rules)  # type: ignore[arg-type]
        if value is not None:
            values[key] = value
    return Config(**values)
