"""`SingerSink`: the engine's Sink written as Singer messages (JSON lines on stdout).

SCHEMA messages for every selected stream come first (`schemas()`), then RECORD messages (with
`time_extracted`, once per batch) and STATE messages carrying every stream's bookmark:
`{"bookmarks": {stream: <our per-stream state>}}`, bookmarks of streams not read this time kept
as they came. Logs and errors go to stderr, scrubbed of the API key.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO, TextIO

import orjson

from klaviyo_source import jsonio
from klaviyo_source.airbyte.messages import scrub
from klaviyo_source.airbyte.sink import describe
from klaviyo_source.engine.contract import Record, StreamStatus
from klaviyo_source.singer.catalog import SingerStream, stream_schema
from klaviyo_source.streams.table import STREAMS_BY_NAME

PROGRAM = "tap-klaviyo-source"


def time_extracted() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class SingerSink:
    """Implements `klaviyo_source.engine.contract.Sink`; remembers which streams failed."""

    streams: dict[str, SingerStream]
    bookmarks: dict[str, Any] = field(default_factory=dict)
    out: BinaryIO = field(default_factory=lambda: sys.stdout.buffer)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    secrets: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)

    def _write(self, message: dict[str, Any]) -> None:
        self.out.write(orjson.dumps(message, option=orjson.OPT_APPEND_NEWLINE))
        self.out.flush()

    def say(self, level: str, message: str) -> None:
        self.err.write(scrub(f"{PROGRAM} {level}: {message}", self.secrets) + "\n")
        self.err.flush()

    def schemas(self) -> None:
        for stream in self.streams.values():
            row = STREAMS_BY_NAME[stream.name]
            message: dict[str, Any] = {
                "type": "SCHEMA",
                "stream": stream.name,
                "schema": stream_schema(stream.name, stream.dropped),
                "key_properties": list(row.primary_key),
            }
            if stream.incremental and row.cursor_field is not None:
                message["bookmark_properties"] = [row.cursor_field]
            self._write(message)

    async def records(self, stream: str, records: Sequence[Record]) -> None:
        if not records:
            return
        dropped = self.streams[stream].dropped
        envelope: dict[str, Any] = {"type": "RECORD", "stream": stream, "record": None}
        envelope["time_extracted"] = time_extracted()
        if dropped:
            records = [{k: v for k, v in record.items() if k not in dropped} for record in records]
        self.out.write(jsonio.record_lines(envelope, envelope, "record", records))

    async def state(self, stream: str, state: dict[str, Any]) -> None:
        self.bookmarks[stream] = state
        self._write({"type": "STATE", "value": {"bookmarks": dict(self.bookmarks)}})

    async def status(self, stream: str, status: StreamStatus, reason: str | None = None) -> None:
        if status in (StreamStatus.STARTED, StreamStatus.COMPLETE, StreamStatus.INCOMPLETE) or reason:
            self.say("INFO", f"{stream}: {status}" + (f" ({reason})" if reason else ""))

    async def log(self, level: str, message: str) -> None:
        self.say(level, message)

    async def error(self, stream: str | None, error: Exception) -> None:
        message, _ = describe(error)
        self.failed[stream or "(sync)"] = message
        self.say("ERROR", f"{stream}: {message}" if stream else message)
