"""The exception tree. Each error knows its Airbyte failure type and a user-facing message.

    KlaviyoSourceError            system_error   (a bug or an unexpected situation)
    ├── ConfigError               config_error   (the user must fix config, catalog or state)
    │   └── AccessError           config_error   (401/403: bad key or missing scope, per stream)
    ├── TransientError            transient_error (retries or rate-limit wait exhausted; retry later)
    └── MalformedResponseError    system_error   (the server answered with garbage)

Messages never contain the API key: build them from URLs without headers and from Klaviyo's
error `detail`, never from request objects.
"""

from __future__ import annotations

from typing import ClassVar


class KlaviyoSourceError(Exception):
    """Base class; `message` is for users, `internal_message` for logs and traces."""

    failure_type: ClassVar[str] = "system_error"

    def __init__(self, message: str, internal_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.internal_message = internal_message or message


class ConfigError(KlaviyoSourceError):
    """Invalid config, catalog or state: the user has to change something."""

    failure_type = "config_error"


class AccessError(ConfigError):
    """401 (bad or revoked key) or 403 (missing scope) on a stream's endpoint."""


class TransientError(KlaviyoSourceError):
    """Temporary trouble that outlived our retries; running again later may succeed."""

    failure_type = "transient_error"


class MalformedResponseError(KlaviyoSourceError):
    """A response we cannot use: invalid JSON, wrong envelope, truncated body."""
