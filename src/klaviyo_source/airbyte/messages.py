"""Airbyte protocol messages as plain dicts (serialized by `sink.py` with orjson).

Builders for every message type the connector emits: SPEC, CONNECTION_STATUS, CATALOG, STATE,
LOG and TRACE (ERROR, STREAM_STATUS). RECORD lines are built on the hot path in `sink.py`.
`scrub` removes secrets from any text before it leaves the process.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

from klaviyo_source.config import CONNECTION_SPECIFICATION

DOCUMENTATION_URL = "https://docs.airbyte.com/integrations/sources/klaviyo"
PROTOCOL_VERSION = "0.2.0"
REDACTED = "**********"

Message = dict[str, Any]


def now_ms() -> int:
    return int(time.time() * 1000)


# Klaviyo private keys look like pk_ + 34 hex digits; scrubbed even when we were not told the key.
_PRIVATE_KEY = re.compile(r"\bpk_[A-Za-z0-9]{8,}")


def scrub_line(line: bytes, secrets: Iterable[str]) -> bytes:
    """`scrub` of UTF-8 text kept as bytes (a state line can be megabytes: no decode and encode
    unless it holds something shaped like a key; UTF-8 matches a secret where the text does)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            line = line.replace(secret.encode(), REDACTED.encode())
    return scrub(line.decode(), ()).encode() if b"pk_" in line else line


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret (non-trivial strings only) and anything shaped like a private key."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return _PRIVATE_KEY.sub(REDACTED, text) if "pk_" in text else text


def spec_message() -> Message:
    return {
        "type": "SPEC",
        "spec": {
            "documentationUrl": DOCUMENTATION_URL,
            "connectionSpecification": CONNECTION_SPECIFICATION,
            "supportsIncremental": True,
            "supportsNormalization": False,
            "supportsDBT": False,
            "protocol_version": PROTOCOL_VERSION,
        },
    }


def connection_status(succeeded: bool, message: str | None = None) -> Message:
    status: dict[str, Any] = {"status": "SUCCEEDED" if succeeded else "FAILED"}
    if message is not None:
        status["message"] = message
    return {"type": "CONNECTION_STATUS", "connectionStatus": status}


def catalog_message(streams: list[dict[str, Any]]) -> Message:
    return {"type": "CATALOG", "catalog": {"streams": streams}}


def state_message(stream: str, stream_state: dict[str, Any], record_count: int) -> Message:
    return {
        "type": "STATE",
        "state": {
            "type": "STREAM",
            "stream": {"stream_descriptor": {"name": stream}, "stream_state": stream_state},
            "sourceStats": {"recordCount": float(record_count)},
        },
    }


def log_message(level: str, message: str) -> Message:
    level = level.upper()
    if level == "WARNING":
        level = "WARN"
    if level not in ("FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"):
        level = "INFO"
    return {"type": "LOG", "log": {"level": level, "message": message}}


def stream_status_trace(stream: str, status: str, reason: str | None = None) -> Message:
    body: dict[str, Any] = {"stream_descriptor": {"name": stream}, "status": status}
    if reason is not None:
        body["reasons"] = [{"type": reason}]
    return {
        "type": "TRACE",
        "trace": {"type": "STREAM_STATUS", "emitted_at": now_ms(), "stream_status": body},
    }


def error_trace(
    message: str,
    *,
    failure_type: str,
    internal_message: str | None = None,
    stream: str | None = None,
    stack_trace: str | None = None,
) -> Message:
    error: dict[str, Any] = {"message": message, "failure_type": failure_type}
    if internal_message is not None:
        error["internal_message"] = internal_message
    if stack_trace is not None:
        error["stack_trace"] = stack_trace
    if stream is not None:
        error["stream_descriptor"] = {"name": stream}
    return {"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": now_ms(), "error": error}}
