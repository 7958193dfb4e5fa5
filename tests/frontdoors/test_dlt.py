"""The dlt source (`from klaviyo_source.dlt import klaviyo`) in real dlt pipelines: every stream
from the simulator into DuckDB and into Postgres, twice, the second run incremental from dlt's
resource state, the tables equal to the simulator's truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from frontdoors.harness import KEY, STREAM_NAMES, advance, config, key_sql, simulator, stored_key, truth
from klaviyo_source.config import ConfigError
from klaviyo_source.dlt import STATE_KEY, column_hints, klaviyo
from klaviyo_source.streams.table import DEFAULT_STREAMS, REPORT_STREAMS, STREAMS_BY_NAME


@pytest.fixture(autouse=True)
def _no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.delenv("KLAVIYO_API_KEY", raising=False)


def _source_kwargs(sim: Any) -> dict[str, Any]:
    kwargs = config(sim)
    kwargs.pop("api_key")
    return kwargs


def _table_ids(pipeline: dlt.Pipeline) -> dict[str, list[str]]:
    ids = {}
    with pipeline.sql_client() as client:
        for name in STREAM_NAMES:
            try:
                rows = client.execute_sql(f'select {key_sql(name)} from "{name}"')
            except DatabaseUndefinedRelation:  # dlt creates no table for a resource without rows
                rows = []
            ids[name] = [stored_key(name, row[0]) for row in rows]
    return ids


def _run_twice(pipeline: dlt.Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCES__KLAVIYO__API_KEY", KEY)  # api_key comes from dlt's secrets
    with simulator(seed=9) as sim:
        # every stream, the Reporting API's too (named: by default they are not selected)
        first = pipeline.run(klaviyo(**_source_kwargs(sim), streams=STREAM_NAMES))
        assert not first.has_failed_jobs
        loaded = _table_ids(pipeline)
        assert {name: set(ids) for name, ids in loaded.items()} == truth(sim)
        first_rows = pipeline.last_trace.last_normalize_info.row_counts  # type: ignore[union-attr]

        changed = advance(sim)
        second = pipeline.run(klaviyo(**_source_kwargs(sim), streams=STREAM_NAMES))
        assert not second.has_failed_jobs
        second_rows = pipeline.last_trace.last_normalize_info.row_counts  # type: ignore[union-attr]
        expected = truth(sim)
    loaded = _table_ids(pipeline)
    for name in STREAM_NAMES:
        assert sorted(loaded[name]) == sorted(expected[name]), name  # merged on id: no duplicates
    assert second_rows["events"] >= len(changed["events"])
    cursored = [n for n in STREAM_NAMES if STREAMS_BY_NAME[n].cursor_field is not None]  # others re-read all
    assert sum(second_rows.get(n, 0) for n in cursored) < sum(first_rows.get(n, 0) for n in cursored) / 4
    state = pipeline.state["sources"]["klaviyo"]["resources"]
    assert sorted(state) == sorted(STREAM_NAMES)
    assert all(STATE_KEY in state[name] for name in STREAM_NAMES)


def test_dlt_pipeline_into_duckdb_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = dlt.pipeline(
        pipeline_name="klaviyo_duckdb",
        destination=dlt.destinations.duckdb(str(tmp_path / "dlt.duckdb")),
        dataset_name="klaviyo",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    _run_twice(pipeline, monkeypatch)


def test_dlt_pipeline_into_postgres_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    pipeline = dlt.pipeline(
        pipeline_name="klaviyo_postgres",
        # trust authentication: dlt insists on a password, any one is accepted
        destination=dlt.destinations.postgres(credentials=postgres_url.replace("postgres@", "postgres:x@")),
        dataset_name=f"klaviyo_{tmp_path.name[-8:].lower()}".replace("-", "_"),
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    _run_twice(pipeline, monkeypatch)


def test_column_hints_follow_the_schemas() -> None:
    events = column_hints("events")
    assert events["datetime"]["data_type"] == "timestamp"
    assert events["attributes"]["data_type"] == "json"
    assert events["id"]["data_type"] == "text" and events["id"]["nullable"] is False
    source = klaviyo(api_key="pk_x_0123456789", streams=["events", "metrics"], full_refresh=True)
    assert sorted(source.resources) == ["events", "metrics"]
    assert source.resources["events"].write_disposition == "replace"
    merged = klaviyo(api_key="pk_x_0123456789")
    assert sorted(merged.resources) == sorted(STREAM_NAMES)
    assert sorted(merged.selected_resources) == sorted(DEFAULT_STREAMS)
    assert all(r.write_disposition == "merge" for r in merged.resources.values())
    assert merged.resources["events"].compute_table_schema()["columns"]["id"]["primary_key"] is True


def test_by_default_the_report_streams_are_there_but_not_selected_and_a_name_selects_them() -> None:
    """As `klaviyo-source sync` (DEFAULT_STREAMS): the Reporting API's 2/min tier and 225/day
    quota make its streams opt-in; dagster-dlt makes assets of the selected resources only."""
    source = klaviyo(api_key="pk_x_0123456789")
    assert set(REPORT_STREAMS) <= set(source.resources)
    assert not set(REPORT_STREAMS) & set(source.selected_resources)
    assert [name for name in source.selected_resources] == list(DEFAULT_STREAMS)
    picked = klaviyo(api_key="pk_x_0123456789").with_resources("flow_series_reports", "events")
    assert sorted(picked.selected_resources) == ["events", "flow_series_reports"]
    named = klaviyo(api_key="pk_x_0123456789", streams=["metric_aggregates", "profiles"])
    assert sorted(named.selected_resources) == sorted(named.resources) == ["metric_aggregates", "profiles"]


def test_every_config_key_is_an_argument_and_a_mistyped_one_fails_with_the_config_message() -> None:
    source = klaviyo(api_key="pk_x_0123456789", streams=["events"], event_metric_ids="AbC123,Opened Email")
    assert sorted(source.resources) == ["events"]
    with pytest.raises(ConfigError, match="unknown argument 'num_worker'; did you mean num_workers"):
        klaviyo(api_key="pk_x_0123456789", num_worker=4)
    with pytest.raises(ConfigError, match="max_retries"):
        klaviyo(api_key="pk_x_0123456789", max_retries="many")
