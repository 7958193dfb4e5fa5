"""Bad input from users: any JSON document as config, catalog or state. The entrypoint either
accepts it or answers with exactly one config_error TRACE that names the problem; never a
traceback, never the API key. A state document it cannot read is refused before any request; a
stream's state it cannot use fails that stream alone (config_error), the others are read; state
from another connector falls back to a full read (nothing is lost)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kit.cli import read_in_process
from kit.documents import make_catalog, make_config, state_document
from kit.sim import sim_fixture
from kit.truth import expected_ids
from klaviyo_simulator.server import Simulator
from klaviyo_source.airbyte.entrypoint import main as airbyte_main
from klaviyo_source.config import SPEC_PROPERTIES, parse_config
from klaviyo_source.errors import ConfigError
from klaviyo_source.streams.table import STREAMS

SECRET = "pk_reliability_fuzz_secret_0123456789abcdef"
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
# Values that probe the validators: near-misses of every accepted form, and the key itself.
probes: st.SearchStrategy[Any] = st.sampled_from(
    [
        SECRET, "", " ", "2024-01-31", "2024-01-31T00:00:00Z", "2024-13-45", "yesterday", "http://127.0.0.1:9",
        "ftp://x", "https://", 0, -1, 1, 100, 101, 3.5, 1e308, -1e308, 2**70, True, False, None, [], {},
        {"api_key": SECRET},
    ]
)  # fmt: skip
config_keys = st.sampled_from([*SPEC_PROPERTIES, "unknown_key", "API_KEY"])
configs = st.one_of(
    json_values,
    st.dictionaries(config_keys, probes | json_values, max_size=8),
    st.dictionaries(config_keys, probes, max_size=8).map(lambda d: {"api_key": SECRET, **d}),
)


def run_entrypoint(
    folder: Path, verb: str, documents: dict[str, Any]
) -> tuple[int, list[dict[str, Any]], bytes]:
    argv = [verb]
    for name, document in documents.items():
        path = folder / f"{name}.json"
        path.write_bytes(json.dumps(document).encode())
        argv += [f"--{name}", str(path)]
    out = io.BytesIO()
    code = airbyte_main(argv, out=out)
    stdout = out.getvalue()
    return code, [orjson.loads(line) for line in stdout.splitlines()], stdout


def secret_free(*outputs: bytes | str) -> bool:
    return all(SECRET.encode() not in (o.encode() if isinstance(o, str) else o) for o in outputs)


def assert_one_config_error(messages: list[dict[str, Any]]) -> str:
    assert len(messages) == 1, messages
    (message,) = messages
    assert message["type"] == "TRACE" and message["trace"]["type"] == "ERROR", message
    error = message["trace"]["error"]
    assert error["failure_type"] == "config_error"
    assert "stack_trace" not in error or not error["stack_trace"]
    text: str = error["message"]
    return text


@FUZZ
@given(document=configs)
def test_any_json_config_validates_or_gives_one_config_error_naming_the_field(
    document: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        parse_config(document)
        valid = True
    except ConfigError:
        valid = False
    verbs: list[tuple[str, dict[str, Any]]] = [("discover", {}), ("read", {"catalog": {"streams": []}})]
    for verb, extra in verbs:
        code, messages, stdout = run_entrypoint(tmp_path, verb, {"config": document, **extra})
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err and b"Traceback" not in stdout
        assert secret_free(stdout, captured.out, captured.err)
        if valid:
            assert code == 0, messages
            assert all(m["type"] != "TRACE" for m in messages)
        else:
            assert code == 1
            text = assert_one_config_error(messages)
            named = [key for key in SPEC_PROPERTIES if f"'{key}'" in text]
            assert named or (not isinstance(document, dict) and "JSON object" in text), text


def test_config_that_is_not_json_is_one_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"api_key": "' + SECRET + '", "start_date": ')
    out = io.BytesIO()
    assert airbyte_main(["read", "--config", str(path), "--catalog", str(path)], out=out) == 1
    text = assert_one_config_error([orjson.loads(line) for line in out.getvalue().splitlines()])
    assert "--config" in text and "not valid JSON" in text
    assert secret_free(out.getvalue(), capsys.readouterr().err)


sim = sim_fixture(sizes={"events": 300, "profiles": 50, "flows": 4})


# lists_detailed and campaigns_detailed are left out: their detail endpoints have 1/s tiers that the
# client rightly paces, which would make a hundred examples take minutes.
PACED = {"lists_detailed", "campaigns_detailed"}
stream_names = st.sampled_from(
    [row.name for row in STREAMS if row.name not in PACED] + ["coupons_v1", "charges", "", "Events"]
)
sync_modes = st.sampled_from(
    ["full_refresh", "incremental", "append", "incremental_deduped_history", None, 1]
)
catalog_entries = st.fixed_dictionaries(
    {"stream": st.fixed_dictionaries({"name": stream_names}), "sync_mode": sync_modes},
    optional={"cursor_field": st.lists(st.text(max_size=8), max_size=2), "primary_key": json_values},
)
catalogs = st.one_of(
    json_values,
    st.fixed_dictionaries({"streams": st.lists(catalog_entries | json_values, max_size=3)}),
)
SMALL_STREAMS = {"metrics", "flows", "email_templates", "lists", "campaigns"}


@settings(FUZZ, max_examples=80)
@given(document=catalogs)
def test_any_catalog_is_read_or_refused_with_one_config_error(
    document: Any, sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(sim, api_key=sim.api_key)
    code, messages, stdout = run_entrypoint(tmp_path, "read", {"config": config, "catalog": document})
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and b"Traceback" not in stdout
    errors = [m for m in messages if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"]
    if code == 1 and not any(m["type"] == "RECORD" or m["type"] == "STATE" for m in messages):
        event("refused")
        text = assert_one_config_error(messages)
        assert "catalog" in text
        return
    event("read" if document["streams"] else "empty")
    assert code == 0 and not errors, errors
    for entry in document["streams"]:
        name = entry["stream"]["name"]
        if name in SMALL_STREAMS:
            got = {
                m["record"]["data"]["id"]
                for m in messages
                if m["type"] == "RECORD" and m["record"]["stream"] == name
            }
            assert got == expected_ids(sim.store, name), name


stream_states = json_values | st.sampled_from(
    [{"updated": "2024-01-01T00:00:00+0000"}, {"updated": "2024-01-01 00:00:00"}, "2024-01-01T00:00:00Z",
     {"states": [{"partition": {"archived": "true"}, "cursor": {"updated": "2024-05-01T00:00:00+00:00"}}]},
     {"archived": {"updated": "2024-01-01T00:00:00+00:00"}}, {"updated": "2099-01-01T00:00:00+00:00"}]
)  # fmt: skip
state_messages = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["STREAM", "LEGACY", "GLOBAL", "stream", 3]),
        "stream": st.fixed_dictionaries(
            {
                "stream_descriptor": st.fixed_dictionaries(
                    {"name": st.sampled_from(["metrics", "flows", "x"])}
                ),
                "stream_state": stream_states,
            }
        ),
    }
)
state_documents = json_values | st.lists(state_messages | json_values, max_size=3)


@settings(FUZZ, max_examples=80)
@given(document=state_documents)
def test_any_state_is_used_or_refused_before_any_request(
    document: Any, sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.controls.reset_stats()
    config = make_config(sim)
    code, messages, stdout = run_entrypoint(
        tmp_path, "read", {"config": config, "catalog": make_catalog(["metrics", "flows"]), "state": document}
    )
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and b"Traceback" not in stdout
    if code == 1:
        errors = [m["trace"]["error"] for m in messages if m["type"] == "TRACE" and "error" in m["trace"]]
        assert errors and all(e["failure_type"] == "config_error" for e in errors)
        assert all("state" in e["message"].lower() for e in errors)
        failed = {e["stream_descriptor"]["name"] for e in errors if e.get("stream_descriptor")}
        if not failed:  # the document itself was refused: nothing was read
            event("refused")
            assert_one_config_error([m for m in messages if m["type"] != "LOG"])
            assert sim.controls.stats()["requests_total"] == 0
            return
        event("one stream refused")  # the others were read
        states = {m["state"]["stream"]["stream_descriptor"]["name"] for m in messages if m["type"] == "STATE"}
        assert states == {"metrics", "flows"} - failed
        return
    event("read")
    assert code == 0
    states = [m for m in messages if m["type"] == "STATE"]
    assert {m["state"]["stream"]["stream_descriptor"]["name"] for m in states} == {"metrics", "flows"}


def test_unknown_stream_and_unsupported_sync_mode_are_named(sim: Simulator, tmp_path: Path) -> None:
    config = make_config(sim)
    unknown = read_in_process(tmp_path, config=config, catalog=make_catalog(["metrics", "charges"]))
    assert unknown.code == 1
    assert "unknown stream 'charges'" in assert_one_config_error(unknown.messages)
    bad_mode = make_catalog(["metrics"], mode="incremental_deduped_history")
    refused = read_in_process(tmp_path, config=config, catalog=bad_mode)
    assert refused.code == 1
    text = assert_one_config_error(refused.messages)
    assert "sync_mode" in text and "incremental_deduped_history" in text


CORRUPT_STATES: list[Any] = [
    {"datetime": "garbage"},
    {"datetime": 1700000000},
    {"datetime": None},
    ["not", "an", "object"],
    {"states": [{"partition": {}, "no_cursor": True}]},
]


@pytest.mark.parametrize("stream_state", CORRUPT_STATES, ids=[json.dumps(s) for s in CORRUPT_STATES])
def test_corrupt_state_fails_only_its_stream_before_any_request_of_it(
    sim: Simulator, tmp_path: Path, stream_state: Any
) -> None:
    sim.controls.reset_stats()
    config = make_config(sim)
    state = state_document({"events": stream_state})
    result = read_in_process(
        tmp_path,
        config=config,
        catalog=make_catalog(["events", "metrics"]),
        state=state,
    )
    assert result.code == 1
    errors = [m["trace"]["error"] for m in result.messages if m["type"] == "TRACE" and "error" in m["trace"]]
    assert errors and all(e["failure_type"] == "config_error" for e in errors)
    first = errors[0]
    assert first["stream_descriptor"]["name"] == "events" and "state" in first["message"].lower()
    assert "klaviyo-source state reset --streams events" in first["message"]
    requests = sim.controls.stats()["requests"]
    assert requests.get("get_events", 0) == 0 and requests.get("get_metrics", 0) > 0
    records = {m["record"]["stream"] for m in result.messages if m["type"] == "RECORD"}
    assert records == {"metrics"}


@pytest.mark.parametrize(
    "state",
    [
        "{ not json",
        '{"type": "STREAM", "stream": 5}',
        '[{"type": "STREAM", "stream": {"stream_descriptor": {"name": 7}, "stream_state": {}}}]',
    ],
    ids=["not JSON", "stream not an object", "name not a string"],
)
def test_unreadable_state_file_is_one_config_error(sim: Simulator, tmp_path: Path, state: str) -> None:
    sim.controls.reset_stats()
    result = read_in_process(
        tmp_path,
        config=make_config(sim),
        catalog=make_catalog(["metrics"]),
        state=state,
    )
    assert result.code == 1
    assert "state" in assert_one_config_error(result.messages).lower()
    assert sim.controls.stats()["requests_total"] == 0


def test_state_from_another_connector_falls_back_to_a_full_read(sim: Simulator, tmp_path: Path) -> None:
    # Stripe-like cursors under our stream names, and a stream this source does not have.
    foreign = {
        "events": {"created": 1700000000},
        "flows": {"updated_at": "2024-01-01T00:00:00Z"},
        "charges": {"created": 1},
    }
    result = read_in_process(
        tmp_path,
        config=make_config(sim),
        catalog=make_catalog(["events", "flows"]),
        state=state_document(foreign),
    )
    assert result.code == 0, result.errors()
    for stream in ("events", "flows"):
        assert result.ids(stream) == expected_ids(sim.store, stream), stream
    assert any("charges" in line for line in result.logs()), "the unknown stream's state is reported"
