"""The standalone sync with the Reporting API streams (opt-in with --streams): their rows land in
DuckDB with their primary keys, a same-day rerun sends no report call and stores no duplicate,
and the quota ledger is committed with the rows in `_klaviyo_state`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import duckdb

from kit.documents import REPORT_SETTINGS
from kit.sim import simulator
from kit.truth import report_ids
from klaviyo_source.streams.table import REPORT_STREAMS, STREAMS_BY_NAME
from klaviyo_source.sync.command import parse_args, run_sync

SIZES = {"events": 6000, "profiles": 200, "campaigns": 8, "flows": 3, "segments": 3, "forms": 3}


def keys(path: Path, stream: str) -> list[str]:
    """Each row's primary key without its date ('/'-joined, as kit.truth.record_key spells it);
    the date is a timestamp column, the same instant for every row of the one day read."""
    columns = ", ".join(f'"{f}"' for f in STREAMS_BY_NAME[stream].primary_key[1:])
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(f'SELECT {columns}, "date" FROM klaviyo."{stream}"').fetchall()
    assert len({row[-1] for row in rows}) <= 1, stream
    return ["/".join(str(v) for v in row[:-1]) for row in rows]


def test_report_streams_sync_into_duckdb_and_a_rerun_sends_no_report_call(tmp_path: Path) -> None:
    with simulator(seed=6, sizes=SIZES) as sim:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"api_key": sim.api_key, "base_url": sim.base_url, **REPORT_SETTINGS}))
        database = tmp_path / "k.duckdb"
        args = ["--config", str(config), "--destination", f"duckdb:///{database}", "--progress", "none",
                "--streams", ",".join(REPORT_STREAMS)]  # fmt: skip
        first = asyncio.run(run_sync(parse_args(args, environ={})))
        assert first.exit_code == 0, (first.error, [(o.name, o.error) for o in first.outcomes])
        for stream in REPORT_STREAMS:
            stored = keys(database, stream)
            expected = report_ids(sim.store, stream)
            assert sorted(stored) == sorted(k.split("/", 1)[1] for k in expected), stream
        assert any(keys(database, s) for s in REPORT_STREAMS)

        posts = sum(v for k, v in sim.controls.stats()["requests"].items() if k.startswith("query_"))
        second = asyncio.run(run_sync(parse_args(args, environ={})))
        assert second.exit_code == 0, second.error
        again = sum(v for k, v in sim.controls.stats()["requests"].items() if k.startswith("query_"))
        assert again == posts  # nothing new today: no report call
        for stream in REPORT_STREAMS:
            stored = keys(database, stream)
            assert len(stored) == len(set(stored)), stream
        with duckdb.connect(str(database), read_only=True) as con:
            states = dict(con.execute("SELECT stream, state FROM klaviyo._klaviyo_state").fetchall())
        ledger = json.loads(states["campaign_values_reports"])["quota"]["query_campaign_values"]
        assert 1 <= ledger["calls"] <= 225
