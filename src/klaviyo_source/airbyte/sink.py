"""`AirbyteSink`: the engine's Sink written as Airbyte protocol JSON lines on stdout.

Records are the bulk of the output, so they take a short path: one `orjson.dumps` of a small
wrapper dict per record, one `write` per batch, `emitted_at` computed once per batch; records that
arrive as JSON texts (`serialized_records`, the engine's fast path) are joined between the
wrapper's two halves in one `bytes.join`, without a Python step per record. Every other
message is flushed at once so the platform's heartbeat sees it. All text that could carry an
error's wording passes through `scrub` so the API key can never leave the process.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import orjson

from klaviyo_source import jsonio
from klaviyo_source.airbyte import messages
from klaviyo_source.engine.contract import Record, StreamStatus
from klaviyo_source.errors import KlaviyoSourceError

# Stream-status reasons the Airbyte protocol defines; others are reported as a LOG line.
PROTOCOL_REASONS = frozenset({"RATE_LIMITED"})
FAILURE_TYPES = ("config_error", "transient_error", "system_error")  # most to least actionable


def failure_type_of(error: BaseException) -> str:
    if isinstance(error, KlaviyoSourceError):
        return error.failure_type
    return "system_error"


def describe(error: BaseException) -> tuple[str, str]:
    """(user message, internal message) of any exception."""
    if isinstance(error, KlaviyoSourceError):
        return error.message, error.internal_message
    text = str(error) or type(error).__name__
    return f"Unexpected error: {text}", f"{type(error).__name__}: {text}"


@dataclass
class StreamFailure:
    stream: str
    reason: str
    failure_type: str


@dataclass
class AirbyteSink:
    """Implements `klaviyo_source.engine.contract.RawRecordSink`; also remembers failures for the
    final trace. Pre-serialized records (`orjson.Fragment`s) are embedded as they are."""

    out: BinaryIO = field(default_factory=lambda: sys.stdout.buffer)
    secrets: tuple[str, ...] = ()
    failures: list[StreamFailure] = field(default_factory=list)
    _since_state: dict[str, int] = field(default_factory=dict)

    def emit(self, message: dict[str, Any]) -> None:
        """Write one non-record message and flush."""
        self.out.write(messages.scrub_line(orjson.dumps(message), self.secrets))
        self.out.write(b"\n")
        self.out.flush()

    async def records(self, stream: str, records: Sequence[Record]) -> None:
        self._write(stream, records)

    async def raw_records(self, stream: str, records: Sequence[orjson.Fragment]) -> None:
        self._write(stream, records)

    async def serialized_records(self, stream: str, texts: Sequence[bytes], *, breaks: bool = True) -> None:
        """SerializedSink: the RECORD lines orjson would write for these records, byte for byte
        (orjson writes the wrapper's keys in order, `data` embedded as it is); `breaks`: a text
        may hold a raw line break, which becomes a space (it can only sit between tokens)."""
        if not texts:
            return
        envelope = {"stream": stream, "data": None, "emitted_at": messages.now_ms()}
        head, tail = orjson.dumps({"type": "RECORD", "record": envelope}).split(b'"data":null', 1)
        head += b'"data":'
        glue = tail + b"\n" + head
        if breaks:
            texts = [jsonio.one_line(t) if b"\n" in t or b"\r" in t else t for t in texts]
        self.out.write(b"".join((head, glue.join(texts), tail, b"\n")))
        self._since_state[stream] = self._since_state.get(stream, 0) + len(texts)

    def _write(self, stream: str, records: Sequence[Record] | Sequence[orjson.Fragment]) -> None:
        if not records:
            return
        emitted_at = messages.now_ms()
        envelope: dict[str, Any] = {"stream": stream, "data": None, "emitted_at": emitted_at}
        wrapper = {"type": "RECORD", "record": envelope}
        self.out.write(jsonio.record_lines(wrapper, envelope, "data", records))
        self._since_state[stream] = self._since_state.get(stream, 0) + len(records)

    async def state(self, stream: str, state: dict[str, Any]) -> None:
        count = self._since_state.pop(stream, 0)
        self.emit(messages.state_message(stream, state, count))

    async def status(self, stream: str, status: StreamStatus, reason: str | None = None) -> None:
        protocol_reason = reason if reason in PROTOCOL_REASONS else None
        self.emit(messages.stream_status_trace(stream, str(status), protocol_reason))
        if reason is not None and protocol_reason is None:
            self.emit(messages.log_message("INFO", f"{stream}: {status} ({reason})"))

    async def log(self, level: str, message: str) -> None:
        self.emit(messages.log_message(level, message))

    async def error(self, stream: str | None, error: Exception) -> None:
        message, internal = describe(error)
        failure_type = failure_type_of(error)
        self.emit(
            messages.error_trace(message, failure_type=failure_type, internal_message=internal, stream=stream)
        )
        self.failures.append(StreamFailure(stream or "(sync)", message, failure_type))

    def fail(self, error: BaseException) -> None:
        """Report an error that ended the whole run (outside any stream)."""
        message, internal = describe(error)
        self.emit(
            messages.error_trace(message, failure_type=failure_type_of(error), internal_message=internal)
        )

    def final_error(self, extra_failures: Sequence[StreamFailure] = ()) -> dict[str, Any] | None:
        """Airbyte's end-of-sync summary of failed streams, or None when all succeeded."""
        failures = [*self.failures, *extra_failures]
        if not failures:
            return None
        listed = ", ".join(f"{failure.stream}: {failure.reason}" for failure in failures)
        kinds = {failure.failure_type for failure in failures}
        failure_type = next((kind for kind in FAILURE_TYPES if kind in kinds), "system_error")
        return messages.error_trace(
            f"During the sync, the following streams did not sync successfully: {listed}",
            failure_type=failure_type,
        )
