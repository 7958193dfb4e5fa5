"""Klaviyo's JSON:API error document, built in one place for every error the simulator answers.

Shape (the spec's ClientError / ServerError, plus `status`, `links` and `meta` as real payloads
carry): `{"errors": [{"id", "status", "code", "title", "detail", "source", "links", "meta"}]}`.
`source` names the query parameter at fault when there is one, else points at `/data/`.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

JSONAPI = "application/vnd.api+json"

# status -> (code, title), following Klaviyo's Django-REST-Framework-style vocabulary
ERROR_TEXTS: dict[int, tuple[str, str]] = {
    400: ("invalid", "Invalid input."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    409: ("conflict", "Conflict."),
    410: ("gone", "This resource is no longer available."),
    429: ("throttled", "Request was throttled."),
    500: ("error", "A server error occurred."),
    502: ("bad_gateway", "Bad gateway."),
    503: ("service_unavailable", "Service temporarily unavailable, try again later."),
    504: ("gateway_timeout", "Gateway timeout."),
}


def error_document(
    status: int,
    *,
    error_id: str | None = None,
    code: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    parameter: str | None = None,
    links: dict[str, str] | None = None,
    pointer: str = "/data/",
) -> dict[str, Any]:
    """The `errors` document for one error; texts default to the status's code and title."""
    default_code, default_title = ERROR_TEXTS.get(status, ("error", "An error occurred."))
    return {
        "errors": [
            {
                "id": error_id or str(uuid.uuid4()),
                "status": status,
                "code": code or default_code,
                "title": title or default_title,
                "detail": detail or title or default_title,
                "source": {"parameter": parameter} if parameter else {"pointer": pointer},
                "links": links or {},
                "meta": {},
            }
        ]
    }


class ApiError(Exception):
    """An error a request handler answers in Klaviyo's shape (status, code, texts, parameter)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        parameter: str | None = None,
        title: str = "",
        pointer: str = "/data/",
    ) -> None:
        super().__init__(detail)
        self.pointer = pointer
        self.status, self.code, self.detail, self.parameter, self.title = (
            status,
            code,
            detail,
            parameter,
            title,
        )

    def body(self) -> bytes:
        document = error_document(
            self.status,
            code=self.code,
            title=self.title or None,
            detail=self.detail,
            parameter=self.parameter,
            pointer=self.pointer,
        )
        return orjson.dumps(document)
