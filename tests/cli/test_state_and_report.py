"""`klaviyo-source state show|reset`, a bad saved state failing only its stream, the JSON report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
from cli_commands import run_command, sim_config, write_json

from klaviyo_simulator.server import Simulator
from klaviyo_source.streams.table import DEFAULT_STREAMS

ALL = len(DEFAULT_STREAMS)


def sync(tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    ran = run_command(
        "klaviyo-source", "sync", "--config", "config.json", "--destination", "k.duckdb",
        "--progress", "none", "--report", "json", *extra, cwd=tmp_path,
    )  # fmt: skip
    return ran.code, json.loads(ran.out), ran.err


def test_state_commands_and_a_bad_state_row(sim: Simulator, tmp_path: Path) -> None:
    write_json(tmp_path / "config.json", {**sim_config(sim), "bse_url": "http://127.0.0.1:9"})
    code, report, err = sync(tmp_path, "--report-file", "run.json", "--log-level", "ERROR")
    assert code == 0, err
    assert "warning: Config key 'bse_url' is not a known key and is ignored; did you mean base_url?" in err
    assert "INFO" not in err  # --log-level ERROR
    assert report == json.loads((tmp_path / "run.json").read_text())
    assert report["exit_code"] == 0 and report["interrupted_by"] is None and len(report["streams"]) == ALL
    assert {s["status"] for s in report["streams"].values()} == {"complete"}
    assert report["totals"]["records"] == sum(s["records"] for s in report["streams"].values()) > 0
    assert report["totals"]["requests"] > 0 and report["duration_seconds"] > 0

    with duckdb.connect(str(tmp_path / "k.duckdb"), read_only=True) as con:
        runs = con.execute(
            "SELECT sync_id, exit_code, interrupted_by, report FROM klaviyo._klaviyo_sync_runs"
        ).fetchall()
    assert [(sync_id, code) for sync_id, code, _, _ in runs] == [(report["sync_id"], 0)]
    assert runs[0][2] is None and json.loads(runs[0][3])["streams"] == report["streams"]

    shown = run_command("klaviyo-source", "state", "show", "--destination", "k.duckdb", cwd=tmp_path)
    assert shown.code == 0 and shown.out.startswith("Saved state in duckdb file k.duckdb (schema klaviyo):")
    assert "metrics: committed 20" in shown.out and f"by sync {report['sync_id']}" in shown.out
    assert sum(line.endswith(report["sync_id"]) for line in shown.out.splitlines()) == ALL

    reset = run_command(
        "klaviyo-source",
        "state",
        "reset",
        "--streams",
        "events,profiles",
        "--destination",
        "k.duckdb",
        cwd=tmp_path,
    )
    assert reset.code == 0, reset.err
    assert reset.out.splitlines() == [
        "events: state deleted; the next sync reads it from start_date.",
        "profiles: state deleted; the next sync reads it from start_date.",
    ]
    shown = run_command("klaviyo-source", "state", "show", "--destination", "k.duckdb", cwd=tmp_path)
    assert "events:" not in shown.out and "profiles:" not in shown.out and "metrics:" in shown.out

    with duckdb.connect(str(tmp_path / "k.duckdb")) as con:
        con.execute("UPDATE klaviyo._klaviyo_state SET state = '{\"updated\": 42}' WHERE stream = 'metrics'")
    few = ("--streams", "metrics,events,profiles,flows")
    code, report, err = sync(tmp_path, *few)
    assert code == 1
    metrics = report["streams"]["metrics"]
    assert metrics["status"] == "incomplete"
    assert "Invalid state for stream 'metrics'" in metrics["error"]
    assert "klaviyo-source state reset --streams metrics" in metrics["error"]
    others = {name: s["status"] for name, s in report["streams"].items() if name != "metrics"}
    assert set(others.values()) == {"complete"}, others  # one bad row stops only its stream
    assert report["streams"]["events"]["records"] > 0  # read again from start_date after the reset

    reset = "klaviyo-source state reset --streams metrics --destination k.duckdb"
    assert run_command(*reset.split(), cwd=tmp_path).code == 0
    code, report, err = sync(tmp_path, *few)
    assert code == 0 and report["streams"]["metrics"]["status"] == "complete", err


def test_state_of_a_missing_database_or_bad_arguments(tmp_path: Path) -> None:
    shown = run_command("klaviyo-source", "state", "show", cwd=tmp_path)
    assert shown.code == 0 and "No database at klaviyo.duckdb" in shown.out
    assert not list(tmp_path.iterdir())  # looking created nothing
    for streams, message in (("", "names no stream"), ("segmentz", "unknown stream(s): segmentz")):
        ran = run_command("klaviyo-source", "state", "reset", "--streams", streams, cwd=tmp_path)
        assert ran.code == 2 and message in ran.err and "Traceback" not in ran.err
    ran = run_command("klaviyo-source", "state", "reset", cwd=tmp_path)
    assert ran.code == 2 and "--streams" in ran.err
