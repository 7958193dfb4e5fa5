"""The sync face over time, against the simulator over 127.0.0.1: late events re-read by the
trailing re-scan are absorbed by dedup tables (counted unchanged, never twice), and a start_date
moved earlier than the previous sync's warns how to backfill."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from kit.ground_truth import expected, loaded
from kit.sim import simulator
from klaviyo_source.cli import main
from klaviyo_source.sync.command import parse_args, run_sync

SIZES = {"events": 300, "profiles": 30, "campaigns": 2, "lists": 1, "templates": 1, "flows": 1}


def _config(path: Path, sim: Any, **values: Any) -> str:
    config = {"api_key": sim.api_key, "base_url": sim.base_url, "backoff_base": 0.01, **values}
    path.write_text(json.dumps(config))
    return str(path)


def _events(database: Path) -> tuple[int, int]:
    with duckdb.connect(str(database), read_only=True) as con:
        rows, ids = con.execute("SELECT count(*), count(DISTINCT id) FROM klaviyo.events").fetchone()  # type: ignore[misc]
    return int(rows), int(ids)


def test_late_events_land_once_in_a_dedup_table(tmp_path: Path) -> None:
    database = tmp_path / "k.duckdb"
    with simulator(sizes=SIZES, now=int(time.time()) - 60) as sim:
        sim.advance(events=1)  # the latest event is now: the saved cursor is now
        time.sleep(1.1)
        config = _config(tmp_path / "c.json", sim, late_events_hours=48)
        args = [
            "--config",
            config,
            "--destination",
            str(database),
            "--streams",
            "events",
            "--progress",
            "none",
        ]
        first = asyncio.run(run_sync(parse_args(args, environ={})))
        assert first.exit_code == 0, first.error
        late = sim.advance(late_events=3, late_events_age=6 * 3600)["late_events"]
        time.sleep(1.1)
        second = asyncio.run(run_sync(parse_args(args, environ={})))
        assert second.exit_code == 0, second.error
        counts = second.counts["events"]
        assert counts.inserted == len(late)  # the late ones, once
        assert counts.received > len(late) and counts.unchanged == counts.received - len(late)  # re-reads
        assert counts.changed == 0
        assert _events(database) == (sim.store.event_count, sim.store.event_count)


def test_an_earlier_start_date_warns_how_to_backfill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "k.duckdb"
    with simulator(sizes=SIZES, now=int(time.time()) - 60) as sim:
        common = ["--destination", str(database), "--streams", "events,email_templates", "--progress", "none"]

        def sync(start: str) -> None:
            config = _config(tmp_path / "c.json", sim, start_date=start, late_events_hours=0)
            report = asyncio.run(run_sync(parse_args(["--config", config, *common], environ={})))
            assert report.exit_code == 0, report.error

        sync("2025-06-01")
        sync("2025-06-01")
        assert "warning" not in capsys.readouterr().err
        sync("2024-01-01")
        err = capsys.readouterr().err
        assert "start_date 2024-01-01T00:00:00+00:00 is earlier than the previous sync's" in err
        assert "klaviyo-source sync --full-refresh --streams events,email_templates" in err
        assert (
            f"klaviyo-source state reset --streams events,email_templates --destination duckdb:///{database}"
            in err
        )
        assert "Traceback" not in err
        sync("2024-01-01")  # said once, when it moved
        assert "warning" not in capsys.readouterr().err


def test_write_mode_changes_are_refused_or_warned_and_counts_stay_true(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "k.duckdb"
    with simulator(sizes=SIZES, now=int(time.time()) - 60) as sim:
        config = _config(tmp_path / "c.json", sim)  # the default re-scan: 168 h
        common = [
            "--config",
            config,
            "--destination",
            str(database),
            "--streams",
            "events",
            "--progress",
            "none",
        ]
        first = asyncio.run(run_sync(parse_args(common, environ={})))
        assert first.exit_code == 0 and first.counts["events"].inserted == sim.store.event_count
        refused = main(["sync", *common, "--write", "append"])  # dedup rows -> append: refused
        err = capsys.readouterr().err
        assert refused == 1 and "holds rows written with --write dedup" in err and "Traceback" not in err
        assert _events(database) == (sim.store.event_count, sim.store.event_count)  # untouched
        rebuilt = asyncio.run(run_sync(parse_args([*common, "--write", "overwrite"], environ={})))
        assert rebuilt.exit_code == 0 and rebuilt.counts["events"].inserted == sim.store.event_count
        appended = asyncio.run(run_sync(parse_args([*common, "--write", "append"], environ={})))
        counts = appended.counts["events"]
        assert appended.exit_code == 0 and counts.inserted == counts.received >= 0 and counts.changed == 0
        assert "--write append: events re-read the last 168 h" in capsys.readouterr().err
        rows, ids = _events(database)
        assert ids == sim.store.event_count and rows == sim.store.event_count + counts.inserted


def test_space_separated_datetimes_load_as_timestamps(tmp_path: Path) -> None:
    database = tmp_path / "k.duckdb"
    streams = ["events", "profiles", "profile_subscriptions", "global_exclusions"]
    with simulator(sizes=SIZES, quirk_space_datetimes=True) as sim:
        config = _config(tmp_path / "c.json", sim)
        args = ["--config", config, "--destination", str(database), "--streams", ",".join(streams)]
        report = asyncio.run(run_sync(parse_args([*args, "--progress", "none"], environ={})))
        assert report.exit_code == 0, report.error
        assert all(report.counts[name].rejected_values == 0 for name in streams)
        truth = expected(sim.store)
        assert loaded(f"duckdb:///{database}", streams) == {name: truth[name] for name in streams}
        with duckdb.connect(str(database), read_only=True) as con:
            kind = con.execute(
                "SELECT data_type FROM information_schema.columns WHERE table_name = 'profile_subscriptions' "
                "AND column_name = 'consent_timestamp'"
            ).fetchone()
            consents = con.execute(
                "SELECT count(consent_timestamp) FROM klaviyo.profile_subscriptions"
            ).fetchone()
        assert (
            kind is not None and kind[0].startswith("TIMESTAMP") and consents is not None and consents[0] > 0
        )


def test_metric_properties_rest_between_refreshes_and_keep_their_rows(tmp_path: Path) -> None:
    """A second sync within slow_refresh_hours sends metric_properties no request and keeps its
    table; --full-refresh reads every metric again."""
    database = tmp_path / "k.duckdb"
    with simulator(sizes=SIZES) as sim:
        config = _config(tmp_path / "c.json", sim)
        args = ["--config", config, "--destination", str(database), "--streams", "metric_properties"]
        args += ["--progress", "none"]

        def sync(*extra: str) -> int:
            before = int(sim.controls.stats()["requests"].get("get_properties_for_metric", 0))
            result = asyncio.run(run_sync(parse_args([*args, *extra], environ={})))
            assert result.exit_code == 0, result.error
            return int(sim.controls.stats()["requests"].get("get_properties_for_metric", 0)) - before

        def rows() -> int:
            with duckdb.connect(str(database), read_only=True) as con:
                return int(con.execute("SELECT count(*) FROM klaviyo.metric_properties").fetchone()[0])  # type: ignore[index]

        metrics = len(sim.store.records("metric"))
        assert sync() == metrics
        held = rows()
        assert held == len(expected(sim.store)["metric_properties"])
        assert sync() == 0 and rows() == held  # rests: no request, the rows stay
        assert sync("--full-refresh") == metrics and rows() == held
