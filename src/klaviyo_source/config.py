"""Connector configuration: one table of settings, from which both the SPEC and validation come.

Every face (`read`, `check`, `discover`, `sync`) loads its config with `load_config`, so they
accept the same keys with the same rules:

* Keys are a superset of Airbyte's `source-klaviyo` spec. An unknown key is ignored with a
  warning that names the nearest known key (`bse_url` -> "did you mean base_url?").
* The API key: the config's `api_key` wins; `KLAVIYO_API_KEY` is used when the config has none
  (absent, null or empty). When both are set and differ, a warning says the config's key is used.
* `start_date`: `YYYY-MM-DD`, or a date and time with an optional UTC offset (none means UTC);
  a date in the future is refused (it would read nothing and save "now" as the cursor).
* In Airbyte cloud mode (`DEPLOYMENT_MODE=cloud`, any case, as Airbyte's CDK reads it) a
  user-set `base_url` must be https and must not resolve to a loopback, private, link-local or
  reserved address (no requests into the platform's own network).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

import orjson

from klaviyo_source.errors import ConfigError

DEFAULT_BASE_URL = "https://a.klaviyo.com"
API_KEY_ENV = "KLAVIYO_API_KEY"
DEPLOYMENT_MODE_ENV = "DEPLOYMENT_MODE"


@dataclass(frozen=True)
class Config:
    api_key: str
    start_date: datetime | None = None
    disable_fetching_predictive_analytics: bool = False
    num_workers: int = 30
    lookback_window: int = 0
    event_metric_ids: tuple[str, ...] = ()  # metric ids (or names, resolved before a read)
    late_events_hours: int = 168
    slow_refresh_hours: int = 24  # cursorless per-parent streams (Stream.slow_refresh)
    base_url: str = DEFAULT_BASE_URL
    # Advanced knobs (tests use small values; defaults suit production).
    request_timeout: float = 60.0
    max_rate_limit_wait: float = 600.0
    max_retries: int = 6
    backoff_base: float = 1.0
    # Deleted records (engine/reconcile.py): on, and the cadence of the large id scans.
    detect_deletions: bool = True
    deletion_check_days: int = 7
    # Reporting API streams (engine/reports.py).
    metric_ids: str = ""
    reporting_lookback_window: int = 5
    report_history_days: int = 30
    metric_aggregate_metrics: str = ""
    metric_aggregate_measurements: str = "count,sum_value,unique"
    metric_aggregate_by: str = ""
    report_daily_quota: int = 225
    report_quota_day_seconds: int = 86_400

    def __repr__(self) -> str:  # never print the key
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if k != "api_key")
        return f"Config(api_key='***', {fields})"


Kind = Literal["string", "integer", "number", "boolean"]


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One config key: its JSON Schema in the SPEC and the rules validation applies."""

    name: str
    kind: Kind
    title: str
    description: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    pattern: str | None = None
    format: str | None = None
    examples: tuple[Any, ...] = ()
    secret: bool = False

    def json_schema(self, order: int) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": self.kind, "title": self.title, "description": self.description}
        if self.secret:
            schema["airbyte_secret"] = True
        if self.format is not None:
            schema["format"] = self.format
        if self.pattern is not None:
            schema["pattern"] = self.pattern
        if self.minimum is not None:
            schema["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.default is not None:
            schema["default"] = self.default
        if self.examples:
            schema["examples"] = list(self.examples)
        schema["order"] = order
        return schema

    def expectation(self) -> str:
        """What a valid value is, in words, for error messages."""
        if self.kind == "boolean":
            return "true or false"
        if self.kind == "string":
            return "a non-empty string"
        text = "an integer" if self.kind == "integer" else "a number"
        if self.minimum is not None:
            text += f" > {self.minimum:g}" if self.exclusive_minimum else f" >= {self.minimum:g}"
        if self.maximum is not None:
            text += f" and <= {self.maximum:g}"
        return text


START_DATE_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?$"
)
START_DATE_EXAMPLE = "a past date such as 2024-01-31 or 2024-01-31T00:00:00Z"

SETTINGS: tuple[Setting, ...] = (
    Setting(
        name="api_key",
        kind="string",
        title="Api Key",
        description="Klaviyo private API key (starts with pk_). See "
        "https://help.klaviyo.com/hc/en-us/articles/7423954176283 .",
        secret=True,
    ),
    Setting(
        name="start_date",
        kind="string",
        title="Start Date",
        description="UTC date and time in the format 2017-01-25T00:00:00Z (or 2017-01-25). A time "
        "without an offset is taken as UTC. Any data before this date will not be replicated. If "
        "not provided, all data will be replicated (since 2012-01-01, as Airbyte's connector 2.x; "
        "its 3.x reads the last year only). Must not be in the future.",
        format="date-time",
        pattern=START_DATE_PATTERN,
        examples=("2017-01-25T00:00:00Z", "2017-01-25"),
    ),
    Setting(
        name="disable_fetching_predictive_analytics",
        kind="boolean",
        title="Disable Fetching Predictive Analytics",
        description="Do not request predictive_analytics on profiles (it lowers Klaviyo's rate "
        "limit for profiles and can cause 503s under load); the field is then absent.",
        default=False,
    ),
    Setting(
        name="num_workers",
        kind="integer",
        title="Number of concurrent workers",
        description="Maximum number of requests in flight at once, across all streams.",
        minimum=1,
        maximum=100,
        default=30,
        examples=(1, 10, 30),
    ),
    Setting(
        name="lookback_window",
        kind="integer",
        title="Lookback Window (Days)",
        description="Days re-read before the saved cursor on incremental events and "
        "events_detailed syncs, to catch late-arriving events.",
        minimum=0,
        maximum=3650,
        default=0,
        examples=(0, 7),
    ),
    Setting(
        name="event_metric_ids",
        kind="string",
        title="Event Metric IDs",
        description="Comma-separated metric ids (e.g. 'UYGkp4,Xb7nQ2') to read events and "
        'events_detailed for: one partition per metric, filtered with equals(metric_id,"<id>"), '
        "each with its own cursor in state (as Airbyte's connector 3.x). A metric name (e.g. "
        "'Placed Order') is accepted too and resolved to the id(s) of the metrics of that name "
        "via /api/metrics. Empty: all events, one unfiltered read.",
        examples=("UYGkp4,Xb7nQ2", "Placed Order,Opened Email"),
    ),
    Setting(
        name="late_events_hours",
        kind="integer",
        title="Late events re-scan (hours)",
        description="Klaviyo makes some events visible days after their datetime (peers saw more "
        "than 4 days). Every incremental sync re-reads events and events_detailed from this many "
        "hours before the saved cursor, so such events are picked up; re-read events keep their "
        "id, so dedup destinations absorb them. The re-scan is the larger of this and "
        "lookback_window. Cost per sync: about (events in the window) / 1000 extra requests to "
        "GET /api/events, e.g. 7 for 1,000 events a day over 168 hours. 0 turns it off.",
        minimum=0,
        maximum=2160,
        default=168,
        examples=(0, 24, 168),
    ),
    Setting(
        name="metric_ids",
        kind="string",
        title="Conversion metrics of the reports",
        description="Comma-separated conversion metric ids (as Airbyte 3.x) or metric names "
        "(resolved through /api/metrics) for campaign_values_reports, flow_series_reports and "
        "flow_values_reports: one partition per metric. Empty: every metric (each costs report "
        "calls; a metric Klaviyo refuses for values data is skipped with a warning).",
        examples=("RESQ6t", "Placed Order", "RESQ6t,Ordered Product"),
    ),
    Setting(
        name="reporting_lookback_window",
        kind="integer",
        title="Reporting Lookback Window (Days)",
        description="Days of the report streams re-read before their saved date whenever a "
        "new day is read, because Klaviyo revises attribution afterwards (re-read days keep "
        "their primary key). Default 5: Klaviyo's default conversion (attribution) window for "
        "email is 5 days (help.klaviyo.com, 'Understanding message conversion tracking').",
        minimum=0,
        maximum=60,
        default=5,
        examples=(0, 5, 7),
    ),
    Setting(
        name="report_history_days",
        kind="integer",
        title="Report history (days)",
        description="How far back the report streams read, in days up to yesterday (and never "
        "before start_date). Values reports cost one call per day and metric (225 calls per day "
        "per endpoint), so a long history is read over several days of quota.",
        minimum=1,
        maximum=3650,
        default=30,
    ),
    Setting(
        name="metric_aggregate_metrics",
        kind="string",
        title="Metrics of metric_aggregates",
        description="Comma-separated metric ids or names whose daily aggregates "
        "metric_aggregates reads (POST /api/metric-aggregates). Empty: every metric.",
        examples=("Placed Order,Opened Email",),
    ),
    Setting(
        name="metric_aggregate_measurements",
        kind="string",
        title="Measurements of metric_aggregates",
        description="Comma-separated measurements: count, sum_value, unique (one record per "
        "day, metric, measurement and dimension values).",
        default="count,sum_value,unique",
    ),
    Setting(
        name="metric_aggregate_by",
        kind="string",
        title="Dimensions of metric_aggregates",
        description="Comma-separated dimensions to group metric_aggregates by (the spec's `by` "
        "values, e.g. $message, $attributed_flow, Campaign Name, form_id). Empty: no grouping.",
        examples=("$message", "$attributed_flow,$attributed_message"),
    ),
    Setting(
        name="report_daily_quota",
        kind="integer",
        title="Report calls per day",
        description="Calls per UTC day this connector spends on each Reporting API endpoint "
        "(Klaviyo allows 225; lower it when other tools use the same key). When a day's calls "
        "are spent the report stream ends INCOMPLETE and the next sync continues.",
        minimum=1,
        maximum=225,
        default=225,
    ),
    Setting(
        name="report_quota_day_seconds",
        kind="integer",
        title="Report quota day (seconds)",
        description="Length of the report quota's day; change only against a simulator whose "
        "quota day is shortened for tests.",
        minimum=1,
        maximum=86400,
        default=86400,
    ),
    Setting(
        name="slow_refresh_hours",
        kind="integer",
        title="Slow streams refresh interval (hours)",
        description="metric_properties has no cursor and costs one request per metric on "
        "Klaviyo's slowest rate tier (XS: 15 a minute, about 7 minutes for 100 metrics), and "
        "Klaviyo does not say which metrics' properties changed. Incremental syncs re-read it at "
        "most every this many hours; in between it ends at once, with no request, and its rows "
        "stay as last read. The last complete read's time is kept in the stream's state; a full "
        "refresh always reads. 0 = every sync.",
        minimum=0,
        maximum=8760,
        default=24,
        examples=(0, 24, 168),
    ),
    Setting(
        name="base_url",
        kind="string",
        title="API base URL",
        description="Klaviyo API base URL; change only to point at a simulator or proxy. In "
        "Airbyte cloud mode it must be https and on a public address.",
        default=DEFAULT_BASE_URL,
        pattern="^https?://",
    ),
    Setting(
        name="request_timeout",
        kind="number",
        title="Request timeout (seconds)",
        description="Per-request timeout; a request that takes longer is retried.",
        minimum=0,
        exclusive_minimum=True,
        maximum=3600,
        default=60,
    ),
    Setting(
        name="max_rate_limit_wait",
        kind="number",
        title="Maximum rate-limit wait (seconds)",
        description="Longest total time one request may wait on 429 Retry-After before its "
        "stream fails with a transient error.",
        minimum=0,
        maximum=86400,
        default=600,
    ),
    Setting(
        name="max_retries",
        kind="integer",
        title="Maximum retries on server errors",
        description="Retries per request on 5xx, timeouts and connection errors.",
        minimum=0,
        maximum=20,
        default=6,
    ),
    Setting(
        name="backoff_base",
        kind="number",
        title="Backoff base (seconds)",
        description="First exponential-backoff delay on server errors (doubles each retry, with jitter).",
        minimum=0,
        maximum=300,
        default=1,
    ),
    Setting(
        name="detect_deletions",
        kind="boolean",
        title="Detect deleted records",
        description="On incremental syncs, list the ids of each stream cheaply (sparse fieldsets, "
        "relationships endpoints) and emit records that disappeared from Klaviyo as deletions "
        "(`_ab_cdc_deleted_at`; the standalone sync soft-deletes them). Small collections are "
        "checked every sync (about one request per 10-100 records); profiles, memberships and "
        "per-parent scans every `deletion_check_days` days.",
        default=True,
    ),
    Setting(
        name="deletion_check_days",
        kind="integer",
        title="Deletion check interval for large collections (days)",
        description="Days between id scans of profiles, list and segment memberships, flow messages "
        "and form versions (0 = every sync). A profiles scan costs one request per 100 profiles "
        "in the profiles rate tier (75/s burst, 750/min steady): 1 million profiles take "
        "10,000 requests, about 14 minutes of that tier.",
        minimum=0,
        maximum=365,
        default=7,
        examples=(0, 7, 30),
    ),
)
# "" = not set (Airbyte's UI sends it)
BLANK_MEANS_UNSET = frozenset(
    {"start_date", "event_metric_ids", "metric_ids", "metric_aggregate_metrics", "metric_aggregate_by"}
)
SETTINGS_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}

SPEC_PROPERTIES: dict[str, dict[str, Any]] = {
    setting.name: setting.json_schema(order) for order, setting in enumerate(SETTINGS)
}

CONNECTION_SPECIFICATION: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Klaviyo Spec",
    "type": "object",
    "required": ["api_key"],
    "additionalProperties": True,
    "properties": SPEC_PROPERTIES,
}


# --- single values -----------------------------------------------------------------------------


def _invalid(key: str, expectation: str) -> ConfigError:
    return ConfigError(f"Invalid config: '{key}' must be {expectation}.")


def _checked(setting: Setting, value: Any) -> Any:
    """The value if it has the setting's type and bounds; ConfigError naming the key otherwise."""
    wrong = _invalid(setting.name, setting.expectation())
    if setting.kind == "boolean":
        if not isinstance(value, bool):
            raise wrong
        return value
    if setting.kind == "string":
        if not isinstance(value, str) or not value.strip():
            raise wrong
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong
    if value != value or value in (float("inf"), float("-inf")):  # NaN, infinity
        raise wrong
    if setting.kind == "integer":
        if isinstance(value, float) and not value.is_integer():
            raise wrong
        value = int(value)
    low, high = setting.minimum, setting.maximum
    if low is not None and (value <= low if setting.exclusive_minimum else value < low):
        raise wrong
    if high is not None and value > high:
        raise wrong
    return value


def parse_start_date(value: str) -> datetime:
    """A start_date (the SPEC's pattern) as an aware datetime; no offset means UTC. ValueError."""
    text = value.strip()
    if not re.match(START_DATE_PATTERN, text):
        raise ValueError(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _start_date(value: str, now: datetime) -> datetime:
    try:
        start = parse_start_date(value)
    except ValueError:
        raise _invalid("start_date", START_DATE_EXAMPLE) from None
    if start > now:
        raise ConfigError(
            f"Invalid config: 'start_date' {value.strip()} is in the future (now is "
            f"{now:%Y-%m-%dT%H:%M:%SZ}); a sync would read nothing. Use a past date such as "
            "2024-01-31."
        )
    return start


def _id_list(key: str, value: Any) -> tuple[str, ...]:
    """A comma-separated list (or a JSON list of strings) as distinct, stripped values in order."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise _invalid(key, "a comma-separated string of metric ids or names, e.g. 'UYGkp4,Xb7nQ2'")
    return tuple(dict.fromkeys(item.strip() for item in items if item.strip()))


def _blocked_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


def _cloud_safe(url: str, parts: SplitResult) -> None:
    """Airbyte cloud: https only, and never an address inside a private network (SSRF)."""
    if parts.scheme != "https":
        raise ConfigError(
            f"Invalid config: 'base_url' {url} is not https; in Airbyte cloud mode "
            "(DEPLOYMENT_MODE=cloud) only https URLs are allowed."
        )
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise ConfigError(
            f"Invalid config: 'base_url' host '{host}' cannot be resolved; in Airbyte cloud mode "
            "it must be a public host name."
        ) from None
    blocked = sorted({str(info[4][0]) for info in infos if _blocked_address(str(info[4][0]))})
    if blocked:
        raise ConfigError(
            f"Invalid config: 'base_url' host '{host}' resolves to a non-public address "
            f"({', '.join(blocked)}); in Airbyte cloud mode (DEPLOYMENT_MODE=cloud) the API must "
            "be on a public address."
        )


def _base_url(value: str, *, cloud: bool) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise _invalid("base_url", "an http(s) URL such as https://a.klaviyo.com") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid("base_url", "an http(s) URL such as https://a.klaviyo.com")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        # Credentials in the URL would be sent instead of (or beside) the API key header.
        raise _invalid("base_url", "a plain http(s) URL without credentials, query or fragment")
    url = value.rstrip("/")
    if cloud and url != DEFAULT_BASE_URL:
        _cloud_safe(url, parts)
    return url


# --- whole documents ---------------------------------------------------------------------------


def is_cloud(environ: Mapping[str, str]) -> bool:
    """Airbyte's cloud deployment, read as the CDK reads it."""
    return environ.get(DEPLOYMENT_MODE_ENV, "").strip().lower() == "cloud"


def parse_config(
    raw: Any,
    *,
    api_key_override: str | None = None,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Config:
    """Validate a config document; raise ConfigError naming the offending key."""
    env = os.environ if environ is None else environ
    if not isinstance(raw, dict):
        raise ConfigError("Invalid config: expected a JSON object.")
    api_key = api_key_override if api_key_override is not None else raw.get("api_key")
    if not isinstance(api_key, str) or not api_key.strip():
        raise _invalid("api_key", "a non-empty string (your Klaviyo private API key)")
    values: dict[str, Any] = {"api_key": api_key.strip()}
    for setting in SETTINGS[1:]:
        value = raw.get(setting.name)
        if value is None or (setting.name in BLANK_MEANS_UNSET and value == ""):
            continue
        if setting.name == "event_metric_ids":
            values["event_metric_ids"] = _id_list(setting.name, value)
            continue
        if setting.name == "start_date":
            if not isinstance(value, str):
                raise _invalid("start_date", START_DATE_EXAMPLE)
            values["start_date"] = _start_date(value, now or datetime.now(UTC))
            continue
        checked = _checked(setting, value)
        if setting.name == "base_url":
            checked = _base_url(checked, cloud=is_cloud(env))
        values[setting.name] = checked
    return Config(**values)


def unknown_key_warnings(raw: Any) -> list[str]:
    """One warning per key that is not a setting, naming the nearest known key."""
    if not isinstance(raw, dict):
        return []
    return [
        f"Config key '{key}' is not a known key and is ignored{nearest_key_hint(key)}"
        for key in unknown_keys(raw)
    ]


def unknown_keys(raw: dict[str, Any]) -> list[str]:
    """The keys of a config document that are not settings, in document order."""
    return [str(key) for key in raw if key not in SETTINGS_BY_NAME]


def nearest_key_hint(key: str) -> str:
    """'; did you mean X?' for the nearest setting, or the list of known keys."""
    nearest = difflib.get_close_matches(key, list(SETTINGS_BY_NAME), n=1, cutoff=0.6)
    return f"; did you mean {nearest[0]}?" if nearest else f" (known keys: {', '.join(SETTINGS_BY_NAME)})"


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def load_config(raw: Any, *, environ: Mapping[str, str] | None = None) -> tuple[Config, list[str]]:
    """The one loader of every face: (Config, warnings for the user); ConfigError if invalid."""
    env = os.environ if environ is None else environ
    warnings = unknown_key_warnings(raw)
    file_key = _text(raw.get("api_key")) if isinstance(raw, dict) else ""
    env_key = _text(env.get(API_KEY_ENV))
    if file_key and env_key and file_key != env_key:
        warnings.append(f"{API_KEY_ENV} is set but the config's api_key is used (the config wins).")
    override = env_key if env_key and not file_key else None
    return parse_config(raw, api_key_override=override, environ=env), warnings


def read_config_file(path: str) -> Any:
    """The JSON document in a --config file; ConfigError naming the file otherwise."""
    try:
        text = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"Cannot read the --config file '{path}': {error.strerror or error}.") from None
    if not text.strip():
        raise ConfigError(f"The --config file '{path}' is empty; expected a JSON object.")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise ConfigError(f"The --config file '{path}' is not valid JSON ({error}).") from None


def secrets_of(raw: Any, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every string that must never be printed: the key from the config and from the env."""
    env = os.environ if environ is None else environ
    found = [_text(env.get(API_KEY_ENV))]
    if isinstance(raw, dict):
        found.append(_text(raw.get("api_key")))
    return tuple(sorted({secret for secret in found if secret}, key=len, reverse=True))
