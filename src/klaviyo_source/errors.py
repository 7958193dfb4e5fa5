"""The exception tree. Each error knows its Airbyte failure type and a user-facing message.

    KlaviyoSourceError              system_error    (a bug or an unexpected situation)
    ├── ConfigError                 config_error    (the user must fix config, catalog or state)
    │   ├── AccessError             config_error    (401 bad key; 403 from Klaviyo's edge, not a scope)
    │   │   └── ScopeError          config_error    (403: the key lacks the endpoint's scope)
    │   ├── UnreachableError        config_error    (base_url refused or unresolvable at first contact)
    │   └── UsageError              config_error    (a bad command line; `sync` exits 2)
    ├── TransientError              transient_error (retries or waits exhausted; retry later)
    │   ├── RateLimitError          transient_error (429s past max_rate_limit_wait)
    │   ├── ReportQuotaError        transient_error (a report endpoint's calls for the day are spent)
    │   ├── ServerError             transient_error (5xx / 408 past max_retries; `status` is the last)
    │   └── NoAnswerError           transient_error (timeouts, refused or reset connections past max_retries)
    ├── DestinationBusyError        transient_error (another sync holds the destination's lock)
    ├── NotFoundError               system_error    (404; detail fetches skip it)
    ├── BadRequestError             system_error    (400 and other 4xx: a bug on our side)
    └── MalformedResponseError      system_error    (the server answered with garbage)

Every error may carry `url` (the request's, which never holds the key: it travels in the
Authorization header only), `status` (the last HTTP status; None when no answer came) and
`stream` (filled in by whoever knows it). Messages never contain the API key: build them from
URLs without headers and from Klaviyo's error `detail`, never from request objects.
"""

from __future__ import annotations

from typing import ClassVar


class KlaviyoSourceError(Exception):
    """Base class; `message` is for users, `internal_message` for logs and traces."""

    failure_type: ClassVar[str] = "system_error"

    def __init__(
        self,
        message: str,
        internal_message: str | None = None,
        *,
        url: str | None = None,
        status: int | None = None,
        stream: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.internal_message = internal_message or message
        self.url = url
        self.status = status
        self.stream = stream


class ConfigError(KlaviyoSourceError):
    """Invalid config, catalog or state: the user has to change something."""

    failure_type = "config_error"


class AccessError(ConfigError):
    """401 (bad or revoked key) or 403 (missing scope) on a stream's endpoint."""


class ScopeError(AccessError):
    """403: the key lacks the scope an endpoint needs."""


class UnreachableError(ConfigError):
    """The configured base_url refused the connection or did not resolve on the first request."""


class UsageError(ConfigError):
    """Invalid command-line arguments (the `sync` command exits 2)."""


class TransientError(KlaviyoSourceError):
    """Temporary trouble that outlived our retries; running again later may succeed."""

    failure_type = "transient_error"


class RateLimitError(TransientError):
    """Klaviyo kept answering 429 for longer than max_rate_limit_wait."""


class ReportQuotaError(TransientError):
    """A Reporting API endpoint's calls for the day are spent: the stream stops where it got to."""


class ServerError(TransientError):
    """5xx (or 408) that outlived the retries; `status` is the last HTTP status."""


class NoAnswerError(TransientError):
    """No HTTP answer (timeout, refused or reset connection) through every retry; `status` None."""


class DestinationBusyError(KlaviyoSourceError):
    """Another sync holds the destination's lock."""

    failure_type = "transient_error"


class NotFoundError(KlaviyoSourceError):
    """404: the resource does not exist (detail fetches skip it)."""


class BadRequestError(KlaviyoSourceError):
    """Klaviyo refused the request as invalid (400 or another 4xx): a bug on our side."""


class MalformedResponseError(KlaviyoSourceError):
    """A response we cannot use: invalid JSON, wrong envelope, truncated body."""
