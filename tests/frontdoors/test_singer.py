"""The Singer tap (`tap-klaviyo-source`) as Singer runners call it: discover, about, catalog
selection, bad input, and real targets from PyPI (`target-jsonl`, `meltanolabs-target-postgres`) reading every
stream from the simulator twice, the second run from the state the target handed back."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from frontdoors.harness import (
    BIN,
    KEY,
    STREAM_NAMES,
    TARGET_JSONL,
    TARGET_POSTGRES,
    advance,
    clean_env,
    config,
    key_sql,
    record_id,
    simulator,
    stored_key,
    truth,
    write_json,
)
from frontdoors.toolvenv import tool_venv
from klaviyo_source.singer.catalog import discovered_catalog, parse_catalog
from klaviyo_source.streams.table import DEFAULT_STREAMS, STREAMS_BY_NAME

TAP = str(BIN / "tap-klaviyo-source")


def tap(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([TAP, *args], capture_output=True, text=True, timeout=timeout, env=clean_env())
    assert KEY not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done


def pipe(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=clean_env(),
    )
    assert KEY not in done.stdout + done.stderr
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_discover_prints_a_singer_catalog_with_keys_and_cursors_automatic(tmp_path: Path) -> None:
    done = tap("--config", str(write_json(tmp_path / "c.json", {"api_key": KEY})), "--discover")
    assert done.returncode == 0, done.stderr
    catalog = json.loads(done.stdout)
    assert [entry["tap_stream_id"] for entry in catalog["streams"]] == STREAM_NAMES
    for entry in catalog["streams"]:
        row = STREAMS_BY_NAME[entry["stream"]]
        keys = list(row.primary_key)
        cursor = [row.cursor_field] if row.cursor_field is not None else []  # none: FULL_TABLE
        assert entry["key_properties"] == keys and entry.get("replication_key") == row.cursor_field
        metadata = {tuple(item["breadcrumb"]): item["metadata"] for item in entry["metadata"]}
        assert metadata[()]["table-key-properties"] == keys
        assert metadata[()]["valid-replication-keys"] == cursor
        assert metadata[()]["replication-method"] == ("INCREMENTAL" if cursor else "FULL_TABLE")
        assert all(metadata[("properties", key)]["inclusion"] == "automatic" for key in [*keys, *cursor])
        others = [crumb for crumb in metadata if crumb and crumb[1] not in {*keys, *cursor}]
        assert all(metadata[crumb]["inclusion"] == "available" for crumb in others)
        assert set(entry["schema"]["properties"]) == {crumb[1] for crumb in metadata if crumb}


def test_about_json_lists_capabilities_and_settings() -> None:
    done = tap("--about", "--format", "json")
    about = json.loads(done.stdout)
    assert about["name"] == "tap-klaviyo-source"
    assert {"catalog", "discover", "state", "about"} <= set(about["capabilities"])
    assert "api_key" in about["settings"]["properties"]
    assert tap("--about").stdout.startswith("# tap-klaviyo-source")


def _select(catalog: dict[str, Any], stream: str, **metadata: Any) -> None:
    entry = next(e for e in catalog["streams"] if e["stream"] == stream)
    next(m for m in entry["metadata"] if m["breadcrumb"] == [])["metadata"].update(metadata)


def test_an_untouched_catalog_reads_what_sync_reads_by_default() -> None:
    streams, _ = parse_catalog(discovered_catalog())
    assert [s.name for s in streams] == list(DEFAULT_STREAMS)


def test_catalog_selection_method_and_deselected_properties() -> None:
    catalog = discovered_catalog()
    for entry in catalog["streams"]:
        _select(catalog, entry["stream"], selected=False)
    _select(catalog, "events", selected=True)
    _select(catalog, "flows", selected=True, **{"replication-method": "FULL_TABLE"})
    events = next(e for e in catalog["streams"] if e["stream"] == "events")
    for item in events["metadata"]:
        if item["breadcrumb"] in (["properties", "links"], ["properties", "id"]):
            item["metadata"]["selected"] = False  # id is automatic: stays
    lists = next(e for e in catalog["streams"] if e["stream"] == "lists")
    lists["metadata"] = []
    lists["schema"]["selected"] = True  # the pre-metadata convention
    streams, warnings = parse_catalog(catalog)
    assert [(s.name, s.incremental, s.dropped) for s in streams] == [
        ("events", True, frozenset({"links"})),
        ("lists", True, frozenset()),
        ("flows", False, frozenset()),
    ]
    assert warnings == []


@pytest.mark.parametrize(
    ("documents", "wording"),
    [
        ({"config": "{not json"}, "--config file"),
        ({"config": {"api_key": ""}}, "'api_key' must be"),
        ({"catalog": {"streams": [{"tap_stream_id": "nope"}]}}, "unknown stream 'nope'"),
        ({"catalog": {"streams": 3}}, "Invalid Singer catalog"),
        ({"state": {"bookmarks": []}}, "'bookmarks' must be an object"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_1(
    tmp_path: Path, documents: dict[str, Any], wording: str
) -> None:
    files = {"config": {"api_key": KEY, "base_url": "http://127.0.0.1:9"}, "catalog": discovered_catalog()}
    files |= documents
    args = []
    for name, document in files.items():
        path = tmp_path / f"{name}.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        args += [f"--{name}", str(path)]
    done = tap(*args)
    assert done.returncode == 1
    assert done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and wording in errors[0], done.stderr


def test_a_bad_bookmark_fails_its_stream_alone(tmp_path: Path) -> None:
    catalog = discovered_catalog()
    for entry in catalog["streams"]:
        _select(catalog, entry["stream"], selected=entry["stream"] in ("events", "metrics"))
    with simulator() as sim:
        args = ["--config", str(write_json(tmp_path / "config.json", config(sim)))]
        args += ["--catalog", str(write_json(tmp_path / "catalog.json", catalog))]
        state = {"bookmarks": {"events": {"datetime": "noon"}}}
        done = tap(*args, "--state", str(write_json(tmp_path / "state.json", state)))
    assert done.returncode == 1
    assert "events" in done.stderr and "Invalid state for stream 'events'" in done.stderr
    streams = Counter(json.loads(line)["stream"] for line in done.stdout.splitlines() if '"RECORD"' in line)
    assert streams["metrics"] > 0 and streams["events"] == 0


def _last_state(target_stdout: str) -> dict[str, Any]:
    lines = [line for line in target_stdout.splitlines() if line.strip()]
    state: dict[str, Any] = json.loads(lines[-1])
    return state


def _jsonl_ids(folder: Path) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {name: [] for name in STREAM_NAMES}
    for path in folder.glob("*.jsonl"):
        ids[path.stem] += [record_id(path.stem, json.loads(line)) for line in path.read_text().splitlines()]
    return ids


def _check_messages(path: Path) -> None:
    """The tap's own output: SCHEMA before RECORDs, time_extracted, bookmarks for every stream."""
    messages = [json.loads(line) for line in path.read_text().splitlines()]
    schemas = {m["stream"]: m for m in messages if m["type"] == "SCHEMA"}
    assert list(schemas) == STREAM_NAMES
    first_record = next(i for i, m in enumerate(messages) if m["type"] == "RECORD")
    assert all(m["type"] == "SCHEMA" for m in messages[: len(schemas)]) and first_record >= len(schemas)
    between = {m["type"] for m in messages[len(schemas) : first_record]}
    assert between <= {"STATE"}  # a stream can end (or rest) before any stream's first record
    for name, schema in schemas.items():
        assert schema["key_properties"] == list(STREAMS_BY_NAME[name].primary_key)
        cursor = STREAMS_BY_NAME[name].cursor_field  # none: no bookmark property
        assert schema.get("bookmark_properties") == ([cursor] if cursor is not None else None)
    records = [m for m in messages if m["type"] == "RECORD"]
    assert all(m["time_extracted"].endswith("Z") for m in records)
    final = [m for m in messages if m["type"] == "STATE"][-1]["value"]
    assert sorted(final["bookmarks"]) == sorted(STREAM_NAMES)


def test_tap_into_target_jsonl_reads_every_stream_then_increments(tmp_path: Path) -> None:
    target = tool_venv("singer-jsonl", TARGET_JSONL) / "target-jsonl"
    with simulator() as sim:
        cfg = write_json(tmp_path / "config.json", config(sim))
        catalog = json.loads(tap("--config", str(cfg), "--discover").stdout)
        for entry in catalog["streams"]:  # the report streams are opt-in: select every stream
            _select(catalog, entry["stream"], selected=True)
        write_json(tmp_path / "catalog.json", catalog)
        runs = []
        for run in ("first", "second"):
            out = tmp_path / run
            out.mkdir()
            write_json(
                tmp_path / f"target-{run}.json", {"destination_path": str(out), "do_timestamp_file": False}
            )
            state = "--state state-first.json" if run == "second" else ""
            done = pipe(
                f"{TAP} --config config.json --catalog catalog.json {state} | tee tap-{run}.jsonl"
                f" | {target} --config target-{run}.json",
                tmp_path,
            )
            write_json(tmp_path / f"state-{run}.json", _last_state(done.stdout))
            runs.append(_jsonl_ids(out))
            if run == "first":
                _check_messages(tmp_path / "tap-first.jsonl")
                assert {name: set(ids) for name, ids in runs[0].items()} == truth(sim)
                changed = advance(sim)
        first, second = runs
        expected = truth(sim)
    assert {name: set(first[name]) | set(second[name]) for name in STREAM_NAMES} == expected
    assert set(changed["events"]) <= set(second["events"]) and set(changed["events"]) <= set(
        second["events_detailed"]
    )
    assert set(changed["profiles_created"]) | set(changed["profiles_updated"]) <= set(second["profiles"])
    cursored = [n for n in STREAM_NAMES if STREAMS_BY_NAME[n].cursor_field is not None]  # others re-read all
    assert sum(len(second[n]) for n in cursored) < sum(len(first[n]) for n in cursored) / 4  # incremental
    assert Counter(second["events"]).most_common(1)[0][1] == 1


def test_tap_into_target_postgres_upserts_on_the_key(tmp_path: Path, pg_schema_url: str) -> None:
    target = tool_venv("singer-postgres", TARGET_POSTGRES) / "target-postgres"
    url, schema = pg_schema_url.split("?schema=")
    target_config = {"sqlalchemy_url": url.replace("postgresql://", "postgresql+psycopg://")}
    write_json(tmp_path / "target.json", target_config | {"default_target_schema": schema})
    with simulator(seed=8) as sim:
        write_json(tmp_path / "config.json", config(sim))
        catalog = json.loads(tap("--config", str(tmp_path / "config.json"), "--discover").stdout)
        for entry in catalog["streams"]:  # the report streams are opt-in: select every stream
            _select(catalog, entry["stream"], selected=True)
        write_json(tmp_path / "catalog.json", catalog)
        command = f"{TAP} --config config.json --catalog catalog.json {{}} | {target} --config target.json"
        first = pipe(command.format(""), tmp_path)
        write_json(tmp_path / "state.json", _last_state(first.stdout))
        advance(sim)
        pipe(command.format("--state state.json"), tmp_path)
        expected = truth(sim)
    with psycopg.connect(url) as connection:
        for name in STREAM_NAMES:
            ids = [
                stored_key(name, row[0])
                for row in connection.execute(f'select {key_sql(name)} from "{schema}"."{name}"'.encode())
            ]
            assert sorted(ids) == sorted(expected[name]), name  # merged on id: no duplicates
