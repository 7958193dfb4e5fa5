"""AirbyteSink: the exact wire format of every message, counts on STATE, failures and scrubbing."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import orjson

from kit.protocol_check import parse_output
from klaviyo_source.airbyte import messages
from klaviyo_source.airbyte.sink import AirbyteSink
from klaviyo_source.engine.contract import StreamStatus
from klaviyo_source.errors import AccessError, TransientError

KEY = "pk_0123456789abcdef0123456789abcdef01"


def lines(buffer: io.BytesIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in buffer.getvalue().splitlines()]


def run_sink(script: Any) -> tuple[AirbyteSink, io.BytesIO]:
    buffer = io.BytesIO()
    sink = AirbyteSink(out=buffer, secrets=(KEY,))
    asyncio.run(script(sink))
    parse_output(buffer.getvalue())  # every line is a valid Airbyte message
    return sink, buffer


def test_records_state_and_status_wire_format() -> None:
    async def script(sink: AirbyteSink) -> None:
        await sink.status("profiles", StreamStatus.STARTED)
        await sink.records("profiles", [{"id": "a", "updated": "2024-01-01T00:00:00+00:00"}, {"id": "b"}])
        await sink.records("profiles", [])
        await sink.records("profiles", [{"id": "c"}])
        await sink.state("profiles", {"updated": "2024-01-02T00:00:00+00:00"})
        await sink.state("profiles", {"updated": "2024-01-02T00:00:00+00:00"})
        await sink.status("profiles", StreamStatus.RUNNING, "RATE_LIMITED")
        await sink.status("profiles", StreamStatus.COMPLETE)

    sink, buffer = run_sink(script)
    out = lines(buffer)
    assert out[0]["trace"]["stream_status"] == {
        "stream_descriptor": {"name": "profiles"},
        "status": "STARTED",
    }
    records = [m["record"] for m in out if m["type"] == "RECORD"]
    assert [r["data"]["id"] for r in records] == ["a", "b", "c"]
    assert set(records[0]) == {"stream", "data", "emitted_at"} and records[0]["stream"] == "profiles"
    assert isinstance(records[0]["emitted_at"], int)
    states = [m["state"] for m in out if m["type"] == "STATE"]
    assert states[0] == {
        "type": "STREAM",
        "stream": {
            "stream_descriptor": {"name": "profiles"},
            "stream_state": {"updated": "2024-01-02T00:00:00+00:00"},
        },
        "sourceStats": {"recordCount": 3.0},
    }
    assert states[1]["sourceStats"] == {"recordCount": 0.0}
    assert out[-2]["trace"]["stream_status"]["reasons"] == [{"type": "RATE_LIMITED"}]
    assert sink.final_error() is None


def test_non_protocol_reason_becomes_a_log_line() -> None:
    async def script(sink: AirbyteSink) -> None:
        await sink.status("events", StreamStatus.RUNNING, "SPLITTING")

    _, buffer = run_sink(script)
    status, log = lines(buffer)
    assert "reasons" not in status["trace"]["stream_status"]
    assert log == {"type": "LOG", "log": {"level": "INFO", "message": "events: RUNNING (SPLITTING)"}}


def test_errors_and_final_trace() -> None:
    async def script(sink: AirbyteSink) -> None:
        await sink.error("profiles", AccessError("The API key lacks permission (403).", "GET x failed"))
        await sink.error("events", TransientError("Klaviyo kept failing."))
        await sink.log("warning", "careful")

    sink, buffer = run_sink(script)
    first = lines(buffer)[0]["trace"]["error"]
    assert first == {
        "message": "The API key lacks permission (403).",
        "failure_type": "config_error",
        "internal_message": "GET x failed",
        "stream_descriptor": {"name": "profiles"},
    }
    assert lines(buffer)[2]["log"]["level"] == "WARN"
    final = sink.final_error()
    assert final is not None
    assert final["trace"]["error"]["failure_type"] == "config_error"
    assert final["trace"]["error"]["message"] == (
        "During the sync, the following streams did not sync successfully: "
        "profiles: The API key lacks permission (403)., events: Klaviyo kept failing."
    )


def test_transient_only_failures_give_transient_final_trace() -> None:
    async def script(sink: AirbyteSink) -> None:
        await sink.error("events", TransientError("Klaviyo kept failing."))

    sink, _ = run_sink(script)
    final = sink.final_error()
    assert final is not None and final["trace"]["error"]["failure_type"] == "transient_error"


def test_the_key_is_scrubbed_from_every_non_record_message() -> None:
    async def script(sink: AirbyteSink) -> None:
        await sink.log("INFO", f"key is {KEY}")
        await sink.error(None, RuntimeError(f"Authorization: Klaviyo-API-Key {KEY}"))
        sink.fail(ValueError("pk_ffffffffffffffffffffffffffffffffff leaked from somewhere"))

    _, buffer = run_sink(script)
    text = buffer.getvalue().decode()
    assert KEY not in text and "pk_ffff" not in text
    assert messages.REDACTED in text


def test_scrub_leaves_short_or_empty_secrets_alone() -> None:
    assert messages.scrub("a b c", ["", "b"]) == "a b c"


def test_scrub_line_is_scrub_on_utf8_bytes() -> None:
    texts = [
        f'{{"message":"key {KEY} and épk_{"a" * 12} and pk_{"b" * 40}"}}',
        '{"state":{"keys":"eJzLSM3JyVcozy/KSQEAGgQEXQ=="}}',
        '{"é":"ü","short":"b"}',
    ]
    for text in texts:
        secrets = [KEY, "", "b"]
        assert messages.scrub_line(text.encode(), secrets) == messages.scrub(text, secrets).encode()
