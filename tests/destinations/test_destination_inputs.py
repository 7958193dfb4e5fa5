"""What users type for a destination: the default one opens, bad URLs are refused in one line,
every libpq form connects, write modes are never mixed, and the counts say what happened."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pytest

from kit.dest_records import EVENT_SCHEMA, EVENTS, event
from kit.sim import simulator as kit_simulator
from klaviyo_simulator import Simulator
from klaviyo_source.destinations import open_destination
from klaviyo_source.destinations.base import Batch, SqlDestination, WriteMode, WriteResult, parse_destination
from klaviyo_source.destinations.duckdb import ROW_GROUP_SIZE
from klaviyo_source.errors import ConfigError
from klaviyo_source.sync.command import main, parse_args, run_sync

KEY = "pk_destination_inputs_0123456789"
SIZES = {"events": 300, "profiles": 40, "lists": 2, "templates": 2, "campaigns": 3, "flows": 2}


def simulator() -> AbstractContextManager[Simulator]:
    return kit_simulator(sizes=SIZES, keys={KEY: None}, now=int(time.time()) - 60)


def write_config(folder: Path, base_url: str) -> Path:
    path = folder / "config.json"
    path.write_text(json.dumps({"api_key": KEY, "base_url": base_url, "backoff_base": 0.01}))
    return path


def test_the_default_destination_opens_and_counts_say_what_happened(tmp_path: Path) -> None:
    with simulator() as sim:
        write_config(tmp_path, sim.base_url)
        done = subprocess.run(  # exactly the README's command, in a fresh folder
            [
                sys.executable,
                "-m",
                "klaviyo_source",
                "sync",
                "--config",
                "config.json",
                "--progress",
                "plain",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Traceback" not in done.stderr and KEY not in done.stdout + done.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "klaviyo.duckdb"]  # no .lock
        with duckdb.connect(str(tmp_path / "klaviyo.duckdb"), read_only=True) as con:
            ((events,),) = con.execute("SELECT count(*) FROM klaviyo.klaviyo.events").fetchall()
        assert events == SIZES["events"]

        sim.advance(profiles_updated=5, events=7)
        time.sleep(1.1)
        options = parse_args(
            ["--config", str(tmp_path / "config.json"), "--streams", "events,profiles", "--full-refresh"],
            environ={},
        )
        options.progress = "none"
        options.destination = parse_destination(f"duckdb:///{tmp_path / 'klaviyo.duckdb'}")
        report = asyncio.run(run_sync(options))
        assert report.exit_code == 0, report.error
        events_counts, profiles = report.counts["events"], report.counts["profiles"]
        # A full re-read: the 7 new events are inserted, the others re-read identical.
        assert (events_counts.inserted, events_counts.changed) == (7, 0)
        assert events_counts.unchanged == SIZES["events"]
        assert profiles.changed == 5 and profiles.inserted == 0
        assert profiles.unchanged == profiles.received - 5


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (":memory:", "in-memory DuckDB would be thrown away"),
        ("duckdb:///:memory:", "in-memory DuckDB would be thrown away"),
        ("duckdb:///m.duckdb?foo=bar", "unknown option foo"),
        ("m.duckdb?threads=zero", "threads 'zero'"),
        ("postgresql:///db?bogus=1", "not a PostgreSQL connection string"),
    ],
)
def test_bad_destinations_are_refused_in_one_line(
    url: str,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KLAVIYO_API_KEY", KEY)
    assert main(["sync", "--destination", url]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing created, no .lock


def test_postgres_urls_psql_accepts(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    port = urlsplit(postgres_url).port
    forms = [
        f"postgresql:///postgres?host=127.0.0.1&port={port}&user=postgres&schema=forms",
        f"host=127.0.0.1 port={port} user=postgres dbname=postgres schema=forms",
    ]
    for form in forms:
        spec = parse_destination(form)
        assert (
            spec.schema == "forms"
            and spec.display == f"postgresql://postgres@127.0.0.1:{port}/postgres (schema forms)"
        )
        open_destination(spec, "s").close()
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(port))
    monkeypatch.setenv("PGUSER", "postgres")
    spec = parse_destination("postgresql:///postgres")
    assert spec.display == f"postgresql://postgres@127.0.0.1:{port}/postgres (schema klaviyo)"
    open_destination(spec, "s").close()


def test_a_table_keeps_its_write_mode(destination_url: str) -> None:
    first = open_destination(destination_url, "s1")
    first.prepare(EVENTS, WriteMode.APPEND, EVENT_SCHEMA)
    first.close()
    second = open_destination(destination_url, "s2")
    try:
        with pytest.raises(ConfigError, match=r"written with --write append.*--write overwrite"):
            second.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
        second.prepare(EVENTS, WriteMode.OVERWRITE, EVENT_SCHEMA)  # rebuilding is always allowed
        second.finish("events", None)
        second.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)  # after a rebuild, either mode
    finally:
        second.close()


def write_events(destination: SqlDestination, count: int) -> WriteResult:
    """`count` new events in one dedup batch (with a state, as the sink commits them)."""
    destination.prepare(EVENTS, WriteMode.DEDUP, EVENT_SCHEMA)
    records = [event(n) for n in range(count)]
    return destination.write(Batch("events", records, [datetime.now(UTC)] * count, {"cursor": "x"}))


@pytest.mark.parametrize("name", ["events.duckdb", "memory.duckdb", "main.duckdb"])
def test_duckdb_writes_batches_as_small_row_groups_with_one_thread(tmp_path: Path, name: str) -> None:
    """The file is attached with ROW_GROUP_SIZE (a batch spans whole row groups, written at commit
    rather than through the WAL) and one DuckDB thread, whatever DuckDB calls the file's catalog;
    another process then reads every row with a plain `duckdb.connect`."""
    path = tmp_path / name
    count = 3 * ROW_GROUP_SIZE
    dest = open_destination(f"duckdb:///{path}", "s1")
    try:
        assert dest.query("SELECT current_setting('threads')") == [(1,)]
        assert write_events(dest, count).inserted == count
    finally:
        dest.close()
    con = duckdb.connect(str(path), read_only=True)
    try:
        groups = con.sql(
            'SELECT max(count) FROM (SELECT row_group_id, max("count") AS count FROM '
            "pragma_storage_info('klaviyo.events') GROUP BY row_group_id)"
        ).fetchall()
        assert groups == [(ROW_GROUP_SIZE,)]
        assert con.sql("SELECT count(DISTINCT id) FROM klaviyo.events").fetchall() == [(count,)]
    finally:
        con.close()


def test_duckdb_checkpoints_its_wal_when_the_sink_is_idle(tmp_path: Path) -> None:
    """A batch below a row group goes through the WAL; `tidy` (the sink calls it when no batch
    waits) checkpoints a WAL over the threshold, so `close` has little left to do."""
    path = tmp_path / "klaviyo.duckdb"
    wal = path.with_name(path.name + ".wal")
    dest = open_destination(f"duckdb:///{path}", "s1")
    try:
        write_events(dest, 500)
        held = wal.stat().st_size
        assert held > 0
        dest.tidy()  # under the threshold: left for later
        assert wal.stat().st_size == held
        dest.idle_checkpoint_bytes = held  # type: ignore[attr-defined]
        dest.tidy()
        assert not wal.exists() or wal.stat().st_size < held
        assert dest.query(f"SELECT count(*) FROM {dest.qualified('events')}") == [(500,)]
    finally:
        dest.close()
