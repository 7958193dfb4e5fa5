"""The real `source-klaviyo` CLI against the simulator: every message validated against the Airbyte
protocol models, every record against its stream's JSON Schema."""

from __future__ import annotations

import socket
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kit.cli import Output, run_cli
from kit.documents import ALL_STREAMS, make_catalog, make_config
from kit.keys import FULL_KEY, NO_EVENTS_KEY, NO_METRICS_KEY
from kit.truth import record_key
from klaviyo_source.config import CONNECTION_SPECIFICATION
from klaviyo_source.streams.schema import load_schema
from klaviyo_source.streams.table import STREAMS, STREAMS_BY_NAME
from klaviyo_source.times import parse_time

VALIDATORS = {row.name: jsonschema.Draft7Validator(load_schema(row.name)) for row in STREAMS}


def statuses(result: Output) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = defaultdict(list)
    for message in result.models_of("TRACE"):
        if message.trace.stream_status is not None:
            status = message.trace.stream_status
            seen[status.stream_descriptor.name].append(status.status.value)
    return seen


def assert_records_valid(result: Output) -> None:
    for stream, records in result.records_by_stream().items():
        row = STREAMS_BY_NAME[stream]
        for record in records:
            errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATORS[stream].iter_errors(record)]
            assert errors == [], f"{stream} record {record.get('id')} violates its schema: {errors[:5]}"
            assert all(record[key] for key in row.primary_key)
            assert row.cursor_field is None or record[row.cursor_field] is not None


def assert_record_counts_match_states(result: Output) -> None:
    """sourceStats.recordCount = records of that stream since its previous STATE."""
    pending: dict[str, int] = defaultdict(int)
    for message in result.models:
        if message.record is not None:
            pending[message.record.stream] += 1
        elif message.state is not None:
            name = message.state.stream.stream_descriptor.name
            assert message.state.sourceStats.recordCount == pending.pop(name, 0)


def test_spec(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "spec")
    assert result.code == 0 and len(result.models) == 1
    spec = result.models[0].spec
    assert spec.connectionSpecification == CONNECTION_SPECIFICATION
    assert spec.connectionSpecification["properties"]["api_key"]["airbyte_secret"] is True
    jsonschema.Draft7Validator.check_schema(spec.connectionSpecification)


def test_check_succeeds(sim: Any, tmp_path: Path) -> None:
    result = run_cli(tmp_path, "check", config=make_config(sim))
    assert result.code == 0 and len(result.models) == 1
    assert result.models[0].connectionStatus.status.value == "SUCCEEDED"


def test_check_with_key_from_environment(sim: Any, tmp_path: Path) -> None:
    config = make_config(sim)
    del config["api_key"]
    result = run_cli(tmp_path, "check", config=config, env={"KLAVIYO_API_KEY": FULL_KEY})
    assert result.models[0].connectionStatus.status.value == "SUCCEEDED"


def failed_check(result: Output) -> str:
    assert result.code == 0 and len(result.models) == 1
    status = result.models[0].connectionStatus
    assert status.status.value == "FAILED"
    message: str = status.message
    return message


def test_check_bad_key_is_401(sim: Any, tmp_path: Path) -> None:
    message = failed_check(
        run_cli(tmp_path, "check", config=make_config(sim, api_key="pk_wrong_key_0000000000000000"))
    )
    assert "401" in message and "API key" in message


def test_check_missing_scope_names_the_stream_and_scope(sim: Any, tmp_path: Path) -> None:
    """A key that lacks one stream's scope still connects: SUCCEEDED, naming what will fail."""
    result = run_cli(tmp_path, "check", config=make_config(sim, api_key=NO_METRICS_KEY))
    assert result.code == 0 and len(result.models) == 1
    status = result.models[0].connectionStatus
    assert status.status.value == "SUCCEEDED"
    needing = [
        r.name
        for r in STREAMS
        if r.listing in ("metrics", "custom_metrics")
        or (r.report is not None and r.report.path == "/api/metric-aggregates")
    ]  # metrics:read
    assert needing[0] == "metrics" and "metric_properties" in needing and "custom_metrics" in needing
    assert (
        f"cannot read {len(needing)} of {len(STREAMS)} streams: {', '.join(needing)} (need metrics:read)"
        in status.message
    )


def test_check_unreachable_host(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {
        "api_key": FULL_KEY,
        "base_url": f"http://127.0.0.1:{port}",
        "max_retries": 0,
        "request_timeout": 5,
    }
    message = failed_check(run_cli(tmp_path, "check", config=config))
    assert "Could not reach Klaviyo" in message and str(port) in message


def test_discover(sim: Any, tmp_path: Path) -> None:
    result = run_cli(tmp_path, "discover", config=make_config(sim))
    assert result.code == 0 and len(result.models) == 1
    streams = result.models[0].catalog.streams
    names = [row.name for row in STREAMS]  # the listed streams, then the report streams
    assert [s.name for s in streams] == names and len(set(names)) == len(names)
    for stream in streams:
        jsonschema.Draft7Validator.check_schema(stream.json_schema)
        pk = STREAMS_BY_NAME[stream.name].primary_key
        assert stream.source_defined_primary_key == [[key] for key in pk]
        assert set(pk) <= set(stream.json_schema["properties"])
        if STREAMS_BY_NAME[stream.name].cursor_field is None:  # incremental re-reads everything
            assert not stream.source_defined_cursor and not stream.default_cursor_field
        else:
            assert stream.default_cursor_field[0] in stream.json_schema["properties"]
        assert {m.value for m in stream.supported_sync_modes} == {"full_refresh", "incremental"}


# stream -> a field the connector adds to Klaviyo's resource (as Airbyte's connector does)
STREAM_EXTRAS = {
    "events_detailed": ("relationships", "metric", "data", "name"),
    "global_exclusions": ("attributes", "subscriptions", "email", "marketing", "suppressions"),
    "lists_detailed": ("attributes", "profile_count"),
    "campaigns": ("attributes", "channel"),
    "campaigns_detailed": ("estimated_recipient_count",),
}


def has_path(record: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = record
    for key in path:
        if not isinstance(node, dict) or node.get(key) is None:
            return False
        node = node[key]
    return True


@pytest.mark.parametrize("mode", ["full_refresh", "incremental"])
def test_read_every_stream(sim: Any, tmp_path: Path, mode: str) -> None:
    result = run_cli(tmp_path, "read", config=make_config(sim), catalog=make_catalog(ALL_STREAMS, mode))
    assert result.code == 0, result.stderr.decode()[-2000:]
    found = result.records_by_stream()
    assert sorted(found) == sorted(ALL_STREAMS), f"streams without records: {set(ALL_STREAMS) - set(found)}"
    assert_records_valid(result)
    assert_record_counts_match_states(result)
    for stream, seen in statuses(result).items():
        assert seen[0] == "STARTED" and seen[-1] == "COMPLETE", (stream, seen)
    assert sorted(statuses(result)) == sorted(ALL_STREAMS)
    assert not [m for m in result.models_of("TRACE") if m.trace.error is not None]
    for stream, path in STREAM_EXTRAS.items():
        assert all(has_path(record, path) for record in found[stream]), (stream, path)
    assert any("campaign_messages" in record for record in found["campaigns_detailed"])


def test_second_incremental_read_resumes_from_state(sim: Any, tmp_path: Path) -> None:
    catalog = make_catalog(ALL_STREAMS, "incremental")
    first = run_cli(tmp_path, "read", config=make_config(sim), catalog=catalog)
    assert first.code == 0
    states = first.final_states()
    assert sorted(states) == sorted(ALL_STREAMS)
    first_counts = {k: len(v) for k, v in first.records_by_stream().items()}

    changes = {"events": 20, "profiles_updated": 5, "profiles_created": 3, "profiles_suppressed": 1}
    changes |= {"campaigns_updated": 2, "flows_updated": 2, "lists_updated": 2, "metrics_updated": 1}
    changed = sim.advance(**changes, templates_updated=1)
    time.sleep(1.1)  # windows end at the sync's start second: let the changes fall into the past

    state_doc = [
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": name}, "stream_state": value}}
        for name, value in states.items()
    ]
    second = run_cli(tmp_path, "read", config=make_config(sim), catalog=catalog, state=state_doc)
    assert second.code == 0, second.stderr.decode()[-2000:]
    assert_records_valid(second)
    found = second.records_by_stream()
    ids = {stream: {record_key(stream, r) for r in records} for stream, records in found.items()}
    assert set(changed["events"]) <= ids["events"] and set(changed["events"]) <= ids["events_detailed"]
    assert set(changed["profiles_updated"] + changed["profiles_created"]) <= ids["profiles"]
    assert set(changed["campaigns_updated"]) <= ids["campaigns"]
    assert set(changed["flows_updated"]) <= ids["flows"]
    assert set(changed["lists_updated"]) <= ids["lists"]
    assert set(changed["metrics_updated"]) <= ids["metrics"]
    assert set(changed["profiles_suppressed"]) <= ids["global_exclusions"]
    assert set(changed["templates_updated"]) <= ids["email_templates"]
    for stream in ("events", "profiles", "campaigns", "flows", "metrics", "lists"):
        assert len(found[stream]) < first_counts[stream], f"{stream} re-read everything"
    # nothing older than the saved cursor comes back for single-cursor streams
    for stream in ("events", "profiles", "metrics", "lists", "email_templates"):
        cursor = STREAMS_BY_NAME[stream].cursor_field
        saved = parse_time(states[stream][cursor])
        assert all(parse_time(r[cursor]) >= saved for r in found.get(stream, []))
    new_states = second.final_states()
    assert parse_time(new_states["events"]["datetime"]) >= parse_time(states["events"]["datetime"])


def test_missing_scope_fails_one_stream_and_the_run(sim: Any, tmp_path: Path) -> None:
    catalog = make_catalog(["events", "metrics", "flows"], "incremental")
    result = run_cli(tmp_path, "read", config=make_config(sim, api_key=NO_EVENTS_KEY), catalog=catalog)
    assert result.code == 1
    seen = statuses(result)
    assert seen["events"][-1] == "INCOMPLETE"
    assert seen["metrics"][-1] == "COMPLETE" and seen["flows"][-1] == "COMPLETE"
    found = result.records_by_stream()
    assert "events" not in found and found["metrics"] and found["flows"]
    errors = [m.trace.error for m in result.models_of("TRACE") if m.trace.error is not None]
    stream_error = next(e for e in errors if e.stream_descriptor is not None)
    assert stream_error.stream_descriptor.name == "events"
    assert stream_error.failure_type.value == "config_error"
    final = result.models[-1].trace.error
    assert final.message.startswith(
        "During the sync, the following streams did not sync successfully: events: "
    )
    assert final.failure_type.value == "config_error"


def config_error(result: Output, *needles: str) -> None:
    assert result.code == 1
    assert len(result.models) == 1, result.stdout.decode()
    error = result.models[0].trace.error
    assert error.failure_type.value == "config_error"
    for needle in needles:
        assert needle in error.message
    assert b"Traceback" not in result.stderr


def test_bad_config(tmp_path: Path) -> None:
    config_error(run_cli(tmp_path, "discover", config="{oops"), "--config", "not valid JSON")
    config_error(run_cli(tmp_path, "discover", config={"api_key": FULL_KEY, "start_date": 5}), "'start_date'")
    config_error(
        run_cli(tmp_path, "read", config={}, catalog=make_catalog(["metrics"], "incremental")),
        "'api_key'",
    )


def test_bad_catalog(sim: Any, tmp_path: Path) -> None:
    config = make_config(sim)
    unknown = make_catalog(["charges"], "incremental")
    config_error(run_cli(tmp_path, "read", config=config, catalog=unknown), "unknown stream 'charges'")
    config_error(
        run_cli(tmp_path, "read", config=config, catalog=make_catalog(["metrics"], "cdc")), "sync_mode"
    )
    config_error(run_cli(tmp_path, "read", config=config, catalog={"stream": []}), "'streams' list")


def test_bad_state(sim: Any, tmp_path: Path) -> None:
    config = make_config(sim)
    catalog = make_catalog(["metrics"], "incremental")
    config_error(
        run_cli(tmp_path, "read", config=config, catalog=catalog, state="[{"), "--state", "not valid JSON"
    )
    bad_cursor = [
        {
            "type": "STREAM",
            "stream": {"stream_descriptor": {"name": "metrics"}, "stream_state": {"updated": "soon"}},
        }
    ]
    # A stream whose saved state is unreadable fails alone, with a config_error naming it.
    failed = run_cli(tmp_path, "read", config=config, catalog=catalog, state=bad_cursor)
    assert failed.code == 1 and b"Traceback" not in failed.stderr
    errors = [m.trace.error for m in failed.models if m.type.value == "TRACE" and m.trace.error]
    assert errors and all(e.failure_type.value == "config_error" for e in errors)
    assert errors[0].stream_descriptor.name == "metrics" and "'soon'" in errors[0].message
    assert not [m for m in failed.models if m.type.value == "RECORD"]
    config_error(
        run_cli(tmp_path, "read", config=config, catalog=catalog, state=[{"type": "NOPE"}]), "Invalid state"
    )


def test_rate_limited_stream_reports_running_with_reason(sim: Any, tmp_path: Path) -> None:
    sim.controls.script("/api/metrics", [{"status": 429, "retry_after": 1}])
    try:
        result = run_cli(
            tmp_path, "read", config=make_config(sim), catalog=make_catalog(["metrics"], "incremental")
        )
    finally:
        sim.controls.clear_faults()
    assert result.code == 0
    reasons = [
        [reason.type.value for reason in m.trace.stream_status.reasons or []]
        for m in result.models_of("TRACE")
        if m.trace.stream_status is not None
    ]
    assert ["RATE_LIMITED"] in reasons
    assert statuses(result)["metrics"][-1] == "COMPLETE"
    assert result.records_by_stream()["metrics"]


def test_server_errors_fail_the_stream_as_transient(sim: Any, tmp_path: Path) -> None:
    sim.controls.script("/api/flows", [{"status": 503}] * 4)
    try:
        catalog = make_catalog(["flows", "metrics"], "full_refresh")
        result = run_cli(tmp_path, "read", config=make_config(sim, max_retries=0), catalog=catalog)
    finally:
        sim.controls.clear_faults()
    assert result.code == 1
    seen = statuses(result)
    assert seen["flows"][-1] == "INCOMPLETE" and seen["metrics"][-1] == "COMPLETE"
    final = result.models[-1].trace.error
    assert final.failure_type.value == "transient_error"
    assert "flows: " in final.message


def test_full_refresh_twice_gives_the_same_records(sim: Any, tmp_path: Path) -> None:
    catalog = make_catalog(["metrics", "lists", "campaigns", "flows", "email_templates"], "full_refresh")
    first = run_cli(tmp_path, "read", config=make_config(sim), catalog=catalog).records_by_stream()
    second = run_cli(tmp_path, "read", config=make_config(sim), catalog=catalog).records_by_stream()
    assert {k: sorted(r["id"] for r in v) for k, v in first.items()} == {
        k: sorted(r["id"] for r in v) for k, v in second.items()
    }


def test_future_state_reads_nothing(sim: Any, tmp_path: Path) -> None:
    streams = ["profiles", "events", "events_detailed", "email_templates", "metrics", "lists"]
    future = "2099-01-01T00:00:00+00:00"
    state = [
        {
            "type": "STREAM",
            "stream": {
                "stream_descriptor": {"name": name},
                "stream_state": {STREAMS_BY_NAME[name].cursor_field: future},
            },
        }
        for name in streams
    ]
    result = run_cli(
        tmp_path,
        "read",
        config=make_config(sim),
        catalog=make_catalog(streams, "incremental"),
        state=state,
    )
    assert result.code == 0
    assert result.records_by_stream() == {}
    assert sorted(result.final_states()) == sorted(streams)
    for name, value in result.final_states().items():  # a state is never lowered
        assert parse_time(value[STREAMS_BY_NAME[name].cursor_field]) == parse_time(future)


AIRBYTE_SAVED_STATE = {  # shapes Airbyte's source-klaviyo 2.10 .. 2.13 wrote
    "profiles": {"updated": "2026-01-01T00:00:00+0000"},
    "events": {"datetime": "2026-01-01 00:00:00+00:00"},
    "events_detailed": {
        "states": [
            {"partition": {"event_id": "a"}, "cursor": {"datetime": "2026-02-01T00:00:00+00:00"}},
            {"partition": {"event_id": "b"}, "cursor": {"datetime": "2026-01-01T00:00:00+00:00"}},
        ]
    },
    "campaigns": {
        "updated_at": "2026-01-01T00:00:00+00:00",
        "archived": {"updated_at": "2026-01-01T00:00:00+00:00"},
    },
    "flows": {"updated": "2026-01-01T00:00:00+00:00", "archived": {"updated": "2026-01-01T00:00:00+00:00"}},
    "lists_detailed": {
        "states": [
            {"partition": {"id": "L1", "parent_slice": {}}, "cursor": {"updated": "2026-01-01T00:00:00+0000"}}
        ]
    },
}


def test_state_saved_by_airbyte_is_accepted(sim: Any, tmp_path: Path) -> None:
    state = [
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": name}, "stream_state": value}}
        for name, value in AIRBYTE_SAVED_STATE.items()
    ]
    catalog = make_catalog(list(AIRBYTE_SAVED_STATE), "incremental")
    result = run_cli(tmp_path, "read", config=make_config(sim), catalog=catalog, state=state)
    assert result.code == 0, result.stdout.decode()[-2000:]
    assert_records_valid(result)
    since = parse_time("2026-01-01T00:00:00+00:00")
    for stream, records in result.records_by_stream().items():
        cursor = STREAMS_BY_NAME[stream].cursor_field
        if stream == "campaigns":  # Airbyte's migration: the old state covered email campaigns only
            records = [r for r in records if r["attributes"]["channel"] == "email"]
            assert records
        assert all(parse_time(record[cursor]) >= since for record in records), stream
    assert sorted(result.final_states()) == sorted(AIRBYTE_SAVED_STATE)


def test_events_alone_fast_path_emits_the_same_records(sim: Any, tmp_path: Path) -> None:
    """Read alone, events take the engine's pre-serialized fast path; the records must be exactly
    those of the ordinary path (events read together with events_detailed), and valid."""
    alone = run_cli(
        tmp_path, "read", config=make_config(sim), catalog=make_catalog(["events"], "full_refresh")
    )
    paired_catalog = make_catalog(["events", "events_detailed"], "full_refresh")
    paired = run_cli(tmp_path, "read", config=make_config(sim), catalog=paired_catalog)
    assert alone.code == 0 and paired.code == 0, alone.stderr.decode()[-2000:]
    assert_records_valid(alone)
    fast = sorted(alone.records_by_stream()["events"], key=lambda r: r["id"])
    ordinary = sorted(paired.records_by_stream()["events"], key=lambda r: r["id"])
    assert len(fast) == sim.store.event_count
    assert fast == ordinary
